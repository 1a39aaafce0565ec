// FaultFileSystem: a FileSystem for unit tests that does to a program what disks and power
// cuts do (leveldb's FaultInjectionTestEnv is the model). It wraps a real one (PosixFileSystem
// on a temporary directory) and can
//  - fail chosen calls with an errno (ENOSPC on Append, EIO on Sync, ...);
//  - cut an Append short: part of the data is written, then ENOSPC (a disk filling up);
//  - crash: from the n-th mutating call on, every mutating call fails with EIO and does
//    nothing, as if the process had died right there (reads still work);
//  - PowerCut(): make the disk look as after a power cut, in the worst case the kernel
//    allows: every file written through it loses what was not fsynced since (cut back to its
//    last synced size; a file emptied by kTruncate and not synced since stays empty), and
//    every create, rename and remove in a directory not SyncDir'ed since is undone (newest
//    first). Files still open are dead afterwards (their process died): every call fails.
// What it does not model: torn sectors inside a synced range, partial survival of unsynced
// data (real disks may keep some; losing all of it is the case that breaks code), and the
// durability of directories made by MakeDirs (they count as durable at once).
// Paths are compared after lexical normalisation ("d/", "./d" and "d" are one directory).
// Thread-safe (one mutex, held during the base file system's calls too).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <optional>
#include <string>
#include <vector>

#include "sys/file_system.h"

namespace hearth {

class FaultWritableFile;

class FaultFileSystem final : public FileSystem {
 public:
  enum class Op { kOpen, kAppend, kSync, kClose, kRename, kRemove, kSyncDir, kMakeDirs };

  explicit FaultFileSystem(FileSystem& base) : base_(base) {}

  // The next `count` calls of `op`, after `skip` more of them went through, fail with `err`.
  void FailNext(Op op, int err, int skip = 0, int count = 1);
  // The next Append writes the first `bytes` of its data, then fails with ENOSPC.
  void ShortWriteNext(size_t bytes);
  // From mutating call number `n` (counted from construction, 0-based) on, nothing changes.
  void CrashAt(uint64_t n);
  // Mutating calls so far (Open, Append, Sync, Close, Rename, Remove, SyncDir, MakeDirs).
  uint64_t mutations() const;
  // Undoes what a power cut would (see above) and clears the crash: the "machine" reboots.
  void PowerCut();

  Result<std::unique_ptr<WritableFile>> Open(const std::string& path, OpenMode mode, int perms = 0600) override;
  Result<std::string> Read(const std::string& path, size_t max_bytes = 64 << 20) override;
  Result<std::unique_ptr<SequentialFile>> OpenSequential(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Remove(const std::string& path) override;
  Status SyncDir(const std::string& dir) override;
  Status MakeDirs(const std::string& path, int perms = 0700) override;
  bool Exists(const std::string& path) override;

 private:
  friend class FaultWritableFile;
  static std::string Normal(const std::string& path);
  // Counts one mutating call of `op`; returns the error it must fail with, if any.
  std::optional<Status> Inject(Op op);  // mu_ held
  struct FileState {
    uint64_t size = 0;         // bytes in the file now (as written through us)
    uint64_t synced_size = 0;  // at the last Sync (0 after a kTruncate until the next one)
  };
  // A directory change not yet made durable by SyncDir: kind 'c'reate, 'r'ename, 'd'elete.
  struct DirChange {
    char kind;
    std::string path, to;
    std::optional<std::string> replaced;  // content of the file a rename replaced or a remove removed
  };
  void Appended(const std::string& path, uint64_t bytes);  // mu_ held
  void Synced(const std::string& path);                    // mu_ held
  // What of `path` would be on the disk after a power cut now (its data to the last Sync).
  std::optional<std::string> DurableContent(const std::string& path);  // mu_ held

  FileSystem& base_;
  mutable std::mutex mu_;
  std::map<Op, std::vector<int>> planned_;  // GUARDED_BY(mu_): per call of `op`: 0 = go through, else errno
  std::optional<size_t> short_write_;       // GUARDED_BY(mu_)
  std::optional<uint64_t> crash_at_;        // GUARDED_BY(mu_)
  uint64_t mutations_ = 0;                  // GUARDED_BY(mu_)
  std::map<std::string, FileState> files_;  // GUARDED_BY(mu_)
  std::vector<DirChange> dir_changes_;      // GUARDED_BY(mu_): oldest first
  std::set<FaultWritableFile*> open_;       // GUARDED_BY(mu_)
};

}  // namespace hearth

// FileSystem: the files hearth writes, behind one interface (leveldb's Env is the model), so
// that unit tests can inject what disks do to programs: ENOSPC and EIO at any step, writes
// cut short, a crash between two steps, and a power cut that loses what was not fsynced
// (sys/testing/fault_file_system.h). The POSIX adapter is sys/posix/posix_file_system.h,
// linked only by the programs (daemon, CLI) and tests.
//
// Paths are absolute or relative to the working directory; errors are Internal with the
// operation, the path and strerror's text ("write '/x': No space left on device"), except
// where a method names another code. Implementations are thread-safe; one WritableFile is
// used by one thread at a time.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace hearth {

class WritableFile {
 public:
  virtual ~WritableFile() = default;  // closes the file if Close was not called
  // Writes all of `data` at the end of the file (retrying short writes and EINTR), or fails;
  // after a failure any prefix of `data` may have been written.
  virtual Status Append(std::string_view data) = 0;
  // fsync(2): what was appended survives a power cut once this returns Ok.
  virtual Status Sync() = 0;
  virtual Status Close() = 0;
};

// A file read from start to end in pieces (a task log of up to 16 MiB per poll, read with a
// bounded buffer instead of whole).
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Replaces `*out` with the next up to `n` bytes; empty at the end of the file.
  virtual Status Read(size_t n, std::string* out) = 0;
};

enum class OpenMode {
  kCreateNew,  // O_CREAT|O_EXCL: AlreadyExists if the path exists
  kTruncate,   // created or emptied
  kAppend,     // created if missing, appended to (O_APPEND: whole lines from several writers stay whole)
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // `perms` applies when the file is created (and, for kCreateNew, always: not masked by the umask).
  virtual Result<std::unique_ptr<WritableFile>> Open(const std::string& path, OpenMode mode, int perms = 0600) = 0;
  // The whole file; NotFound if it does not exist, InvalidArgument if it is larger than `max_bytes`.
  virtual Result<std::string> Read(const std::string& path, size_t max_bytes = 64 << 20) = 0;
  // NotFound if it does not exist.
  virtual Result<std::unique_ptr<SequentialFile>> OpenSequential(const std::string& path) = 0;
  // rename(2): replaces `to` atomically. Durable only after SyncDir of `to`'s directory.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // NotFound if `path` does not exist.
  virtual Status Remove(const std::string& path) = 0;
  // fsync(2) on a directory: the creates, renames and removes in it survive a power cut.
  virtual Status SyncDir(const std::string& dir) = 0;
  // mkdir -p with `perms` on the directories it makes.
  virtual Status MakeDirs(const std::string& path, int perms = 0700) = 0;
  virtual bool Exists(const std::string& path) = 0;
};

// The directory part of `path` ("." if none), for SyncDir after a rename into it.
std::string ParentDir(const std::string& path);

// Replaces `path` with `content` so that readers, a crash or a power cut see the old or the
// new content, never a mix or nothing: a temporary file beside it (mode `perms`), Append,
// Sync, Rename over `path`, SyncDir. On a failure before the rename the temporary file is
// removed (best effort) and `path` is untouched; if only the final SyncDir fails, `path` has
// the new content but a power cut may still undo it. A crash in between may leave a
// "<path>.tmp.<random>" file beside it.
Status WriteFileAtomic(FileSystem& fs, const std::string& path, std::string_view content, int perms = 0600);

}  // namespace hearth

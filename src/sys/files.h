// File helpers with the crash-safety rule of DESIGN.md: a file is written to a temporary
// name, fsynced and renamed, so readers see the old or the new content, never half.
#pragma once

#include <string>

#include "core/result.h"

namespace hearth {

// (Atomic writes: WriteFileAtomic in sys/file_system.h, over the FileSystem seam.)
Result<std::string> ReadFile(const std::string& path);
// Creates missing directories and sets `path`'s mode (also if it existed; there a refused
// chmod is not an error).
Status MakeDirs(const std::string& path, int mode = 0700);
// Removes group and other permissions from `root` and everything below it (symlinks are
// not followed), so an install made under a looser umask becomes private. Returns how
// many entries changed.
Result<size_t> RestrictTree(const std::string& root);
// Takes the directory holding `path`, and `path` (created 0600 if missing), as exclusive
// advisory locks (flock) for the rest of the process's life and writes our pid into `path`, so
// that two daemons never manage one data dir, even if someone deletes the lock file. The kernel drops the lock when the process dies, kill -9 included; the descriptor is
// close-on-exec, so QEMUs started by the daemon never hold it. FailedPrecondition naming the
// holder's pid if another process has it.
Status HoldLockFile(const std::string& path);
// Removes the regular files directly in `dir` (not below it; symlinks are removed, never
// followed). For scratch directories whose content cannot outlive the process that wrote
// it. Returns how many went; a missing `dir` is 0.
Result<size_t> RemoveFilesIn(const std::string& dir);
// `path` resolved (symlinks followed) if it is a character device under /dev, else an
// error saying why. QEMU opens serial and parallel devices as root, so nothing else may pass.
Result<std::string> ResolveCharDevice(const std::string& path);

// Renames `from` to `to` unless `to` exists (atomically: AlreadyExists then, nothing moved),
// and fsyncs the target directory so the rename survives a power cut.
Status RenameNoReplace(const std::string& from, const std::string& to);
// fsync(2) on a file's data (opened read-only).
Status SyncFile(const std::string& path);

// fsync(2) on a directory, so that a rename or create in it survives a power cut.
Status SyncDir(const std::string& dir);
bool PathExists(const std::string& path);

struct FsSpace {
  uint64_t total = 0, avail = 0, used = 0;
};
Result<FsSpace> FilesystemSpace(const std::string& path);

}  // namespace hearth

#include "sys/posix/posix_file_system.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sys/files.h"

namespace hearth {
namespace {

Error ErrnoError(const std::string& what, const std::string& path, int err) {
  std::string text = what + " '" + path + "': " + strerror(err);
  if (err == ENOENT) return NotFound(text);
  if (err == EEXIST) return AlreadyExists(text);
  return Internal(text);
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixWritableFile() override { (void)Close(); }

  Status Append(std::string_view data) override {
    while (!data.empty()) {
      ssize_t w = ::write(fd_, data.data(), data.size());
      if (w < 0) {
        if (errno == EINTR) continue;
        return Fail(ErrnoError("write", path_, errno));
      }
      if (w == 0) return Fail(ErrnoError("write", path_, EIO));  // no progress: do not spin
      data.remove_prefix(static_cast<size_t>(w));  // a short write: the rest goes next round
    }
    return Ok();
  }

  Status Sync() override {
    if (::fsync(fd_) != 0) return Fail(ErrnoError("fsync", path_, errno));
    return Ok();
  }

  Status Close() override {
    if (fd_ < 0) return Ok();
    int rc = ::close(fd_);
    fd_ = -1;
    // close(2) reports delayed write errors (NFS); EINTR still closed the descriptor.
    if (rc != 0 && errno != EINTR) return Fail(ErrnoError("close", path_, errno));
    return Ok();
  }

 private:
  int fd_;
  std::string path_;
};

}  // namespace

Result<std::unique_ptr<WritableFile>> PosixFileSystem::Open(const std::string& path, OpenMode mode, int perms) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC;
  flags |= mode == OpenMode::kCreateNew ? O_EXCL : mode == OpenMode::kTruncate ? O_TRUNC : O_APPEND;
  int fd = ::open(path.c_str(), flags, perms);
  if (fd < 0) return Fail(ErrnoError(mode == OpenMode::kCreateNew ? "create" : "open", path, errno));
  // The umask must not widen or narrow a file we create as new (0600 keys, 0644 certificates).
  if (mode == OpenMode::kCreateNew && ::fchmod(fd, perms) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return Fail(ErrnoError("chmod", path, err));
  }
  return std::unique_ptr<WritableFile>(std::make_unique<PosixWritableFile>(fd, path));
}

Result<std::string> PosixFileSystem::Read(const std::string& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Fail(ErrnoError("open", path, errno));
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Fail(ErrnoError("read", path, err));
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      ::close(fd);
      return Fail(InvalidArgument("'" + path + "' is larger than " + std::to_string(max_bytes) + " bytes"));
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

namespace {

class PosixSequentialFile final : public SequentialFile {
 public:
  PosixSequentialFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixSequentialFile() override { ::close(fd_); }
  Status Read(size_t n, std::string* out) override {
    out->resize(n);
    for (;;) {
      ssize_t got = ::read(fd_, out->data(), n);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        out->clear();
        return Fail(ErrnoError("read", path_, errno));
      }
      out->resize(static_cast<size_t>(got));
      return Ok();
    }
  }

 private:
  int fd_;
  std::string path_;
};

}  // namespace

Result<std::unique_ptr<SequentialFile>> PosixFileSystem::OpenSequential(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Fail(ErrnoError("open", path, errno));
  return std::unique_ptr<SequentialFile>(std::make_unique<PosixSequentialFile>(fd, path));
}

Status PosixFileSystem::Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return Fail(ErrnoError("rename to", to, errno));
  return Ok();
}

Status PosixFileSystem::Remove(const std::string& path) {
  if (::unlink(path.c_str()) != 0) return Fail(ErrnoError("remove", path, errno));
  return Ok();
}

Status PosixFileSystem::SyncDir(const std::string& dir) { return hearth::SyncDir(dir); }

Status PosixFileSystem::MakeDirs(const std::string& path, int perms) { return hearth::MakeDirs(path, perms); }

bool PosixFileSystem::Exists(const std::string& path) { return PathExists(path); }

}  // namespace hearth

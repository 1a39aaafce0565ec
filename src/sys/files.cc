#include "sys/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace hearth {

static std::string ErrnoText(const std::string& what, const std::string& path) {
  return what + " '" + path + "': " + strerror(errno);
}

Status WriteFileAtomic(const std::string& path, std::string_view content, int mode) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string tmp = path + ".tmp." + std::to_string(rng() % 1000000000);
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Fail(Internal(ErrnoText("create", tmp)));
  size_t off = 0;
  while (off < content.size()) {
    ssize_t w = write(fd, content.data() + off, content.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      auto e = Internal(ErrnoText("write", tmp));
      close(fd);
      unlink(tmp.c_str());
      return Fail(e);
    }
    off += w;
  }
  if (fchmod(fd, mode) != 0 || fsync(fd) != 0) {
    auto e = Internal(ErrnoText("fsync", tmp));
    close(fd);
    unlink(tmp.c_str());
    return Fail(e);
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    auto e = Internal(ErrnoText("rename", path));
    unlink(tmp.c_str());
    return Fail(e);
  }
  return Ok();
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Fail(NotFound(ErrnoText("open", path)));
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Status MakeDirs(const std::string& path, int mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Fail(Internal("mkdir '" + path + "': " + ec.message()));
  chmod(path.c_str(), mode);
  return Ok();
}

bool PathExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

Result<FsSpace> FilesystemSpace(const std::string& path) {
  struct statvfs s;
  if (statvfs(path.c_str(), &s) != 0) return Fail(Internal(ErrnoText("statvfs", path)));
  FsSpace sp;
  sp.total = static_cast<uint64_t>(s.f_blocks) * s.f_frsize;
  sp.avail = static_cast<uint64_t>(s.f_bavail) * s.f_frsize;
  sp.used = sp.total - static_cast<uint64_t>(s.f_bfree) * s.f_frsize;
  return sp;
}

}  // namespace hearth

#include "sys/files.h"

#include "core/strings.h"
#include "sys/file_system.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace hearth {

static std::string ErrnoText(const std::string& what, const std::string& path) {
  return what + " '" + path + "': " + strerror(errno);
}

Result<std::string> ResolveCharDevice(const std::string& path) {
  char resolved[PATH_MAX];
  if (!realpath(path.c_str(), resolved)) return Fail(FailedPrecondition(ErrnoText("cannot resolve", path)));
  std::string real(resolved);
  struct stat st;
  if (real.rfind("/dev/", 0) != 0 || stat(real.c_str(), &st) != 0 || !S_ISCHR(st.st_mode))
    return Fail(FailedPrecondition("'" + path + "' is not a character device under /dev"));
  return real;
}

Status RenameNoReplace(const std::string& from, const std::string& to) {
  if (renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0) {
    if (errno == EEXIST) return Fail(AlreadyExists("'" + to + "' already exists"));
    return Fail(Internal(ErrnoText("rename to", to)));
  }
  return SyncDir(ParentDir(to));
}

Status SyncFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Fail(Internal(ErrnoText("open", path)));
  int rc = fsync(fd);
  close(fd);
  if (rc != 0) return Fail(Internal(ErrnoText("fsync", path)));
  return Ok();
}

Status SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Fail(Internal(ErrnoText("open", dir)));
  int rc = fsync(fd);
  close(fd);
  if (rc != 0) return Fail(Internal(ErrnoText("fsync", dir)));
  return Ok();
}

Result<size_t> RestrictTree(const std::string& root) {
  namespace fs = std::filesystem;
  size_t changed = 0;
  auto restrict_one = [&](const fs::path& p) {
    struct stat st;
    if (lstat(p.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) return;
    if ((st.st_mode & 077) == 0) return;
    if (chmod(p.c_str(), st.st_mode & 07700) == 0) ++changed;
  };
  std::error_code ec;
  if (!fs::exists(root, ec)) return Fail(NotFound("no such directory '" + root + "'"));
  restrict_one(root);
  // Iterative walk (no recursion on the tree's depth); symlinked directories are not entered.
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    restrict_one(it->path());
  if (ec) return Fail(Internal("walking '" + root + "': " + ec.message()));
  return changed;
}

namespace {

// The pid the holder wrote into `path`, or "?".
// Non-blocking (the path may be a FIFO someone put there); only digits count as a pid.
std::string LockHolderPid(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return "?";
  struct stat st;
  char buf[32] = {};
  ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? pread(fd, buf, sizeof buf - 1, 0) : -1;
  close(fd);
  std::string pid = n > 0 ? std::string(Trim(std::string_view(buf, static_cast<size_t>(n)))) : "";
  if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) return "?";
  return pid;
}

Status HolderError(const std::string& path) {
  return Fail(FailedPrecondition("another hearth daemon (pid " + LockHolderPid(path) +
                                 ") is using this data dir (" + path + " is locked): stop it first"));
}

}  // namespace

Status HoldLockFile(const std::string& path) {
  // The directory is the lock that counts: a lock file can be deleted while its holder runs
  // (and a second daemon would then lock a new file), a directory with our data in it cannot.
  std::string dir = ParentDir(path);
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Fail(Internal(ErrnoText("open", dir)));
  if (flock(dfd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    close(dfd);
    if (err != EWOULDBLOCK) return Fail(Internal("lock '" + dir + "': " + strerror(err)));
    return HolderError(path);
  }
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
  if (fd < 0) {
    close(dfd);
    return Fail(Internal(ErrnoText("open", path)));
  }
  if (struct stat st; fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    close(dfd);
    return Fail(FailedPrecondition(path + " is not a regular file: remove it, then start hearth again"));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {  // a holder from before the directory lock existed
    int err = errno;
    close(fd);
    close(dfd);
    if (err != EWOULDBLOCK) return Fail(Internal("lock '" + path + "': " + strerror(err)));
    return HolderError(path);
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    close(fd);
    close(dfd);
    return Fail(Internal(ErrnoText("write", path)));
  }
  return Ok();  // both descriptors stay open (and locked) until the process exits
}

Result<size_t> RemoveFilesIn(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  size_t removed = 0;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    struct stat st;
    if (lstat(it->path().c_str(), &st) != 0 || S_ISDIR(st.st_mode)) continue;
    if (unlink(it->path().c_str()) == 0) ++removed;
  }
  if (ec && ec != std::errc::no_such_file_or_directory) return Fail(Internal("listing '" + dir + "': " + ec.message()));
  return removed;
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
  bool created = std::filesystem::create_directories(path, ec);
  if (ec) return Fail(Internal("mkdir '" + path + "': " + ec.message()));
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && (st.st_mode & 07777) == static_cast<mode_t>(mode)) return Ok();
  // A directory we made must get its mode; an existing one on a file system that refuses
  // chmod (NFS with root_squash, CIFS) is used as it is.
  if (chmod(path.c_str(), mode) != 0 && created) return Fail(Internal(ErrnoText("chmod", path)));
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

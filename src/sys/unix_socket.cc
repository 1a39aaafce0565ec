#include "sys/unix_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace hearth {

UnixLineSocket& UnixLineSocket::operator=(UnixLineSocket&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.fd_;
    buf_ = std::move(o.buf_);
    o.fd_ = -1;
  }
  return *this;
}

UnixLineSocket::~UnixLineSocket() {
  if (fd_ >= 0) close(fd_);
}

static bool WaitFd(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

Result<UnixLineSocket> UnixLineSocket::Connect(const std::string& path, std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return Fail(InvalidArgument("socket path too long: " + path));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Fail(Internal(std::string("socket: ") + strerror(errno)));
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      // A unix socket does not connect in the background: EAGAIN means the listener's
      // backlog is full (QEMU's monitor takes one client at a time, and its backlog is 1),
      // and the socket stays unconnected, so polling it would "succeed" at once and the
      // first read fail with EINVAL. Try again until the deadline.
      if (std::chrono::steady_clock::now() >= deadline) {
        close(fd);
        return Fail(Unavailable("connect " + path + ": timeout (the socket's backlog is full)"));
      }
      ::usleep(5000);
      continue;
    }
    if (errno != EINPROGRESS) {
      int e = errno;
      close(fd);
      return Fail(Unavailable("connect " + path + ": " + strerror(e)));
    }
    if (!WaitFd(fd, POLLOUT, deadline)) {
      close(fd);
      return Fail(Unavailable("connect " + path + ": timeout"));
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
      close(fd);
      return Fail(Unavailable("connect " + path + ": " + strerror(err)));
    }
    break;
  }
  return UnixLineSocket(fd);
}

Status UnixLineSocket::Write(const std::string& data, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t off = 0;
  while (off < data.size()) {
    ssize_t w = send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (w > 0) {
      off += w;
      continue;
    }
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!WaitFd(fd_, POLLOUT, deadline)) return Fail(Unavailable("write: timeout"));
      continue;
    }
    return Fail(Unavailable(std::string("write: ") + strerror(errno)));
  }
  return Ok();
}

Status UnixLineSocket::WriteWithFd(const std::string& data, int fd, std::chrono::milliseconds timeout) {
  if (data.empty()) return Fail(InvalidArgument("WriteWithFd: nothing to send the descriptor with"));
  auto deadline = std::chrono::steady_clock::now() + timeout;
  // The descriptor travels with the first chunk only; the rest is a plain write.
  while (true) {
    struct iovec iov = {const_cast<char*>(data.data()), data.size()};
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    ssize_t w = sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (w > 0) {
      if (static_cast<size_t>(w) == data.size()) return Ok();
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      return Write(data.substr(w), std::max(left, std::chrono::milliseconds(1)));
    }
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!WaitFd(fd_, POLLOUT, deadline)) return Fail(Unavailable("write: timeout"));
      continue;
    }
    return Fail(Unavailable(std::string("write: ") + strerror(errno)));
  }
}

Result<std::string> UnixLineSocket::ReadLine(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return line;
    }
    // The peer may be hostile (a guest's agent): a line never grows past the bound.
    if (buf_.size() > kMaxLine) return Fail(Unavailable("line longer than " + std::to_string(kMaxLine) + " bytes"));
    char tmp[8192];
    ssize_t r = recv(fd_, tmp, sizeof tmp, 0);
    if (r > 0) {
      buf_.append(tmp, r);
      continue;
    }
    if (r == 0) return Fail(Unavailable("connection closed"));
    if (errno == EAGAIN || errno == EINTR) {
      if (!WaitFd(fd_, POLLIN, deadline)) return Fail(Unavailable("got timeout"));
      continue;
    }
    return Fail(Unavailable(std::string("read: ") + strerror(errno)));
  }
}

}  // namespace hearth

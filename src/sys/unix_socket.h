// A blocking unix-domain stream socket with deadlines, for line-based protocols (QMP, QGA).
#pragma once

#include <chrono>
#include <string>

#include "core/result.h"

namespace hearth {

class UnixLineSocket {
 public:
  // Waits up to `timeout` while the listener's backlog is full (a busy QEMU monitor).
  static Result<UnixLineSocket> Connect(const std::string& path, std::chrono::milliseconds timeout);
  UnixLineSocket(UnixLineSocket&& o) noexcept : fd_(o.fd_), buf_(std::move(o.buf_)) { o.fd_ = -1; }
  UnixLineSocket& operator=(UnixLineSocket&& o) noexcept;
  ~UnixLineSocket();

  Status Write(const std::string& data, std::chrono::milliseconds timeout);
  // Writes `data` with a copy of the open descriptor `fd` attached to its first byte
  // (SCM_RIGHTS), as QMP's getfd/add-fd expect: the receiver gets its own descriptor; ours
  // stays open and is the caller's to close.
  Status WriteWithFd(const std::string& data, int fd, std::chrono::milliseconds timeout);
  // Reads one line (without the terminator). kUnavailable on EOF, timeout, or a line longer
  // than kMaxLine bytes (guest agents answer with up to 16 MiB of base64 output).
  Result<std::string> ReadLine(std::chrono::milliseconds timeout);
  static constexpr size_t kMaxLine = size_t{48} << 20;
  int fd() const { return fd_; }

 private:
  explicit UnixLineSocket(int fd) : fd_(fd) {}
  int fd_ = -1;
  std::string buf_;
};

}  // namespace hearth

// A blocking unix-domain stream socket with deadlines, for line-based protocols (QMP, QGA).
#pragma once

#include <chrono>
#include <string>

#include "core/result.h"

namespace hearth {

class UnixLineSocket {
 public:
  static Result<UnixLineSocket> Connect(const std::string& path, std::chrono::milliseconds timeout);
  UnixLineSocket(UnixLineSocket&& o) noexcept : fd_(o.fd_), buf_(std::move(o.buf_)) { o.fd_ = -1; }
  UnixLineSocket& operator=(UnixLineSocket&& o) noexcept;
  ~UnixLineSocket();

  Status Write(const std::string& data, std::chrono::milliseconds timeout);
  // Reads one line (without the terminator). kUnavailable on EOF or timeout.
  Result<std::string> ReadLine(std::chrono::milliseconds timeout);
  int fd() const { return fd_; }

 private:
  explicit UnixLineSocket(int fd) : fd_(fd) {}
  int fd_ = -1;
  std::string buf_;
};

}  // namespace hearth

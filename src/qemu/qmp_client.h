// QMP: QEMU's JSON monitor protocol over the VM's unix socket. One connection per
// operation (QEMU serves one client at a time; holding a connection would lock out
// everyone else): connect, read the greeting, qmp_capabilities, then commands.
//
// Events QEMU sends while a connection is open are kept (at most kMaxEvents, oldest dropped)
// so an operation can wait for the event its command starts, with no window between the
// command's reply and the wait in which the event could be missed.
// Not thread-safe: one operation owns a client.
#pragma once

#include <chrono>
#include <deque>
#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "sys/unix_socket.h"

namespace hearth {

class QmpClient {
 public:
  static Result<QmpClient> Connect(const std::string& socket_path,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Returns the "return" member; a QMP error becomes an Error with QEMU's description.
  Result<nlohmann::json> Execute(const std::string& command, const nlohmann::json& arguments = nullptr,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // The same with a copy of `fd` passed along (for getfd); `fd` stays the caller's.
  Result<nlohmann::json> ExecuteWithFd(const std::string& command, const nlohmann::json& arguments, int fd,
                                       std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // The next event named `name` (the whole message: "event", "data", "timestamp"), whether it
  // arrived during an earlier command or arrives now. Unavailable on timeout or when QEMU
  // closes the connection (it exited).
  Result<nlohmann::json> WaitEvent(const std::string& name, std::chrono::milliseconds timeout);

  static constexpr size_t kMaxEvents = 1024;

 private:
  explicit QmpClient(UnixLineSocket sock) : sock_(std::move(sock)) {}
  Result<nlohmann::json> ReadReply(const std::string& command, std::chrono::milliseconds timeout);
  void Keep(nlohmann::json event);
  UnixLineSocket sock_;
  std::deque<nlohmann::json> events_;
};

}  // namespace hearth

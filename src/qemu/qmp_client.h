// QMP: QEMU's JSON monitor protocol over the VM's unix socket. One connection per
// operation (QEMU serves one client at a time; holding a connection would lock out
// everyone else): connect, read the greeting, qmp_capabilities, then commands.
#pragma once

#include <chrono>
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
  // Events arriving meanwhile are skipped.
  Result<nlohmann::json> Execute(const std::string& command, const nlohmann::json& arguments = nullptr,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  explicit QmpClient(UnixLineSocket sock) : sock_(std::move(sock)) {}
  UnixLineSocket sock_;
};

}  // namespace hearth

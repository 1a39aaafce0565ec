// The QEMU guest agent protocol over the VM's virtio-serial socket.
//
// The channel is a byte stream that may hold stale replies from earlier clients, and the
// socket accepts connections even when no agent runs in the guest. So every session starts
// with the documented handshake: send 0xFF (the agent drops any partial input), then
// guest-sync-delimited with a random id, and discard everything until {"return": id} arrives
// (0xFF bytes included). Only then are commands sent, one JSON object per line.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "sys/unix_socket.h"

namespace hearth {

class QgaClient {
 public:
  // Fails with kUnavailable "QEMU guest agent is not running" if the handshake does not
  // complete within `timeout`.
  static Result<QgaClient> Connect(const std::string& socket_path, std::chrono::milliseconds timeout);
  // The command's "return" value. Commands that never reply (guest-shutdown) pass
  // `expect_reply = false`.
  Result<nlohmann::json> Execute(const std::string& command, const nlohmann::json& arguments = nullptr,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10),
                                 bool expect_reply = true);

 private:
  explicit QgaClient(UnixLineSocket sock) : sock_(std::move(sock)) {}
  UnixLineSocket sock_;
};

constexpr const char* kAgentNotRunning = "QEMU guest agent is not running";

}  // namespace hearth

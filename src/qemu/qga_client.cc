#include "qemu/qga_client.h"

#include "qemu/replies.h"
#include "sys/random_source.h"

namespace hearth {

Result<QgaClient> QgaClient::Connect(const std::string& path, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto sock = UnixLineSocket::Connect(path, timeout);
  if (!sock) return Fail(Unavailable(kAgentNotRunning));
  int64_t id = static_cast<int64_t>(RandomU64() % 2000000000) + 1;
  std::string sync = std::string("\xFF") + nlohmann::json{{"execute", "guest-sync-delimited"}, {"arguments", {{"id", id}}}}.dump() + "\n";
  if (!sock->Write(sync, timeout)) return Fail(Unavailable(kAgentNotRunning));
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Fail(Unavailable(kAgentNotRunning));
    auto line = sock->ReadLine(left);
    if (!line) return Fail(Unavailable(kAgentNotRunning));
    if (IsQgaSyncReply(*line, id)) return QgaClient(std::move(*sock));
    // Anything else is a stale reply meant for an earlier client.
  }
}

Result<nlohmann::json> QgaClient::Execute(const std::string& command, const nlohmann::json& args,
                                          std::chrono::milliseconds timeout, bool expect_reply) {
  nlohmann::json msg = {{"execute", command}};
  if (!args.is_null()) msg["arguments"] = args;
  HEARTH_TRY(sock_.Write(msg.dump() + "\n", timeout).map_error([](Error) { return Unavailable(kAgentNotRunning); }));
  if (!expect_reply) return nlohmann::json(nullptr);
  auto line = sock_.ReadLine(timeout);
  if (!line) return Fail(Unavailable("guest agent command '" + command + "' failed - got timeout"));
  // The agent runs inside the guest: its reply is untrusted input.
  return ReadQgaReply(*line, command);
}

}  // namespace hearth

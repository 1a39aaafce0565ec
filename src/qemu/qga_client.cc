#include "qemu/qga_client.h"

#include <random>

namespace hearth {
namespace {

// Lines may carry 0xFF delimiter bytes from the sync; drop them.
std::string StripDelimiters(const std::string& line) {
  std::string out;
  for (char c : line)
    if (static_cast<unsigned char>(c) != 0xFF) out += c;
  return out;
}

}  // namespace

Result<QgaClient> QgaClient::Connect(const std::string& path, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto sock = UnixLineSocket::Connect(path, timeout);
  if (!sock) return Fail(Unavailable(kAgentNotRunning));
  static thread_local std::mt19937 rng{std::random_device{}()};
  int64_t id = std::uniform_int_distribution<int64_t>(1, 2000000000)(rng);
  std::string sync = std::string("\xFF") + nlohmann::json{{"execute", "guest-sync-delimited"}, {"arguments", {{"id", id}}}}.dump() + "\n";
  if (!sock->Write(sync, timeout)) return Fail(Unavailable(kAgentNotRunning));
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Fail(Unavailable(kAgentNotRunning));
    auto line = sock->ReadLine(left);
    if (!line) return Fail(Unavailable(kAgentNotRunning));
    auto reply = nlohmann::json::parse(StripDelimiters(*line), nullptr, false);
    if (reply.is_object() && reply.contains("return") && reply["return"] == id) return QgaClient(std::move(*sock));
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
  auto reply = nlohmann::json::parse(StripDelimiters(*line), nullptr, false);
  if (!reply.is_object()) return Fail(Internal("guest agent command '" + command + "': malformed reply"));
  if (reply.contains("error"))
    return Fail(Internal("guest agent command '" + command + "' failed - " + reply["error"].value("desc", "error")));
  return reply.value("return", nlohmann::json(nullptr));
}

}  // namespace hearth

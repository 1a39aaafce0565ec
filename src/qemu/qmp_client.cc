#include "qemu/qmp_client.h"

#include "qemu/replies.h"

namespace hearth {

Result<QmpClient> QmpClient::Connect(const std::string& path, std::chrono::milliseconds timeout) {
  HEARTH_ASSIGN_OR_RETURN(UnixLineSocket sock, UnixLineSocket::Connect(path, timeout));
  HEARTH_ASSIGN_OR_RETURN(std::string greeting, sock.ReadLine(timeout));
  if (greeting.find("\"QMP\"") == std::string::npos) return Fail(Unavailable("unexpected QMP greeting"));
  QmpClient c(std::move(sock));
  HEARTH_TRY(c.Execute("qmp_capabilities", nullptr, timeout));
  return c;
}

Result<nlohmann::json> QmpClient::Execute(const std::string& command, const nlohmann::json& args,
                                          std::chrono::milliseconds timeout) {
  nlohmann::json msg = {{"execute", command}};
  if (!args.is_null()) msg["arguments"] = args;
  HEARTH_TRY(sock_.Write(msg.dump() + "\n", timeout));
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Fail(Unavailable("QMP command '" + command + "' got timeout"));
    HEARTH_ASSIGN_OR_RETURN(std::string line, sock_.ReadLine(left));
    QmpLine reply = ReadQmpLine(line);
    if (reply.kind == QmpLine::Kind::kReturn) return std::move(reply.value);
    if (reply.kind == QmpLine::Kind::kError)
      return Fail(Internal("QMP command '" + command + "' failed: " + reply.error));
    // Events and anything unreadable are skipped.
  }
}

}  // namespace hearth

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

namespace {

std::string Message(const std::string& command, const nlohmann::json& args) {
  nlohmann::json msg = {{"execute", command}};
  if (!args.is_null()) msg["arguments"] = args;
  return msg.dump() + "\n";
}

}  // namespace

Result<nlohmann::json> QmpClient::Execute(const std::string& command, const nlohmann::json& args,
                                          std::chrono::milliseconds timeout) {
  HEARTH_TRY(sock_.Write(Message(command, args), timeout));
  return ReadReply(command, timeout);
}

Result<nlohmann::json> QmpClient::ExecuteWithFd(const std::string& command, const nlohmann::json& args, int fd,
                                                std::chrono::milliseconds timeout) {
  HEARTH_TRY(sock_.WriteWithFd(Message(command, args), fd, timeout));
  return ReadReply(command, timeout);
}

void QmpClient::Keep(nlohmann::json event) {
  if (events_.size() >= kMaxEvents) events_.pop_front();
  events_.push_back(std::move(event));
}

Result<nlohmann::json> QmpClient::ReadReply(const std::string& command, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Fail(Unavailable("QMP command '" + command + "' got timeout"));
    HEARTH_ASSIGN_OR_RETURN(std::string line, sock_.ReadLine(left));
    QmpLine reply = ReadQmpLine(line);
    if (reply.kind == QmpLine::Kind::kReturn) return std::move(reply.value);
    if (reply.kind == QmpLine::Kind::kError)
      return Fail(Internal("QMP command '" + command + "' failed: " + reply.error));
    if (reply.kind == QmpLine::Kind::kEvent) Keep(std::move(reply.value));
    // Anything unreadable is skipped.
  }
}

Result<nlohmann::json> QmpClient::WaitEvent(const std::string& name, std::chrono::milliseconds timeout) {
  for (auto it = events_.begin(); it != events_.end(); ++it)
    if (QmpEventName(*it) == name) {
      nlohmann::json e = std::move(*it);
      events_.erase(it);
      return e;
    }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Fail(Unavailable("timeout waiting for QEMU's " + name + " event"));
    auto line = sock_.ReadLine(left);
    if (!line) return Fail(Unavailable("waiting for QEMU's " + name + " event: " + line.error().message));
    QmpLine msg = ReadQmpLine(*line);
    if (msg.kind != QmpLine::Kind::kEvent) continue;
    if (QmpEventName(msg.value) == name) return std::move(msg.value);
    Keep(std::move(msg.value));
  }
}

}  // namespace hearth

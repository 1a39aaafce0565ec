#include "qemu/replies.h"

#include "core/strings.h"

namespace hearth {
namespace {

// Agent lines may carry 0xFF delimiter bytes from the sync; drop them.
std::string StripDelimiters(std::string_view line) {
  std::string out;
  out.reserve(line.size());
  for (char c : line)
    if (static_cast<unsigned char>(c) != 0xFF) out += c;
  return out;
}

nlohmann::json ParseBounded(std::string_view text) {
  if (!JsonDepthAtMost(text, kQemuJsonMaxDepth)) return nlohmann::json::value_t::discarded;
  return nlohmann::json::parse(text, nullptr, false);
}

// The "desc" of an {"error": {...}} member, whatever shape the member has.
std::string ErrorDesc(const nlohmann::json& error, const char* fallback) {
  if (error.is_object()) {
    auto it = error.find("desc");
    if (it != error.end() && it->is_string()) return it->get<std::string>();
  }
  return fallback;
}

}  // namespace

QmpLine ReadQmpLine(std::string_view line) {
  QmpLine out;
  nlohmann::json msg = ParseBounded(line);
  if (!msg.is_object()) return out;
  if (msg.contains("event")) {
    out.kind = QmpLine::Kind::kEvent;
    out.value = std::move(msg);
  } else if (auto it = msg.find("return"); it != msg.end()) {
    out.kind = QmpLine::Kind::kReturn;
    out.value = std::move(*it);
  } else if (auto err = msg.find("error"); err != msg.end()) {
    out.kind = QmpLine::Kind::kError;
    out.error = ErrorDesc(*err, "unknown error");
  }
  return out;
}

bool IsQgaSyncReply(std::string_view line, int64_t id) {
  nlohmann::json reply = ParseBounded(StripDelimiters(line));
  if (!reply.is_object()) return false;
  auto it = reply.find("return");
  return it != reply.end() && it->is_number_integer() && it->get<int64_t>() == id;
}

Result<nlohmann::json> ReadQgaReply(std::string_view line, const std::string& command) {
  nlohmann::json reply = ParseBounded(StripDelimiters(line));
  if (!reply.is_object()) return Fail(Internal("guest agent command '" + command + "': malformed reply"));
  if (auto err = reply.find("error"); err != reply.end())
    return Fail(Internal("guest agent command '" + command + "' failed - " + ErrorDesc(*err, "error")));
  auto it = reply.find("return");
  if (it == reply.end()) return nlohmann::json(nullptr);
  return std::move(*it);
}

std::string QmpRunState(const nlohmann::json& ret) {
  if (!ret.is_object()) return "";
  auto it = ret.find("status");
  return it != ret.end() && it->is_string() ? it->get<std::string>() : "";
}

std::optional<BlockIoTotals> SumBlockStats(const nlohmann::json& ret) {
  if (!ret.is_array()) return std::nullopt;
  BlockIoTotals t;
  auto counter = [](const nlohmann::json& stats, const char* key) -> uint64_t {
    auto it = stats.find(key);
    return it != stats.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
  };
  for (const auto& dev : ret) {
    if (!dev.is_object()) continue;
    auto stats = dev.find("stats");
    if (stats == dev.end() || !stats->is_object()) continue;
    t.rd_bytes += counter(*stats, "rd_bytes");
    t.wr_bytes += counter(*stats, "wr_bytes");
  }
  return t;
}

namespace {

std::string StringMember(const nlohmann::json& obj, const char* name) {
  if (!obj.is_object()) return "";
  auto it = obj.find(name);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

std::string QmpEventName(const nlohmann::json& event) { return StringMember(event, "event"); }

std::string MigrationEventStatus(const nlohmann::json& event) {
  if (!event.is_object()) return "";
  auto data = event.find("data");
  return data == event.end() ? "" : StringMember(*data, "status");
}

std::string MigrationErrorDesc(const nlohmann::json& ret) { return StringMember(ret, "error-desc"); }

std::string MachineTypeFromQom(const nlohmann::json& ret) {
  static constexpr std::string_view kSuffix = "-machine";
  if (!ret.is_string()) return "";
  const std::string& type = ret.get_ref<const std::string&>();
  if (type.size() <= kSuffix.size() || type.compare(type.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0)
    return "";
  return type.substr(0, type.size() - kSuffix.size());
}

namespace {

uint64_t UnsignedMember(const nlohmann::json& obj, const char* name) {
  if (!obj.is_object()) return 0;
  auto it = obj.find(name);
  return it != obj.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

}  // namespace

BlockJobEvent ReadBlockJobEvent(const nlohmann::json& event) {
  BlockJobEvent e;
  if (!event.is_object()) return e;
  auto data = event.find("data");
  if (data == event.end() || !data->is_object()) return e;
  e.job = StringMember(*data, "device");
  e.error = StringMember(*data, "error");
  if (e.error.empty() && QmpEventName(event) == "BLOCK_JOB_ERROR") e.error = StringMember(*data, "operation") + " error";
  e.len = UnsignedMember(*data, "len");
  e.offset = UnsignedMember(*data, "offset");
  return e;
}

std::optional<BlockJobProgress> FindBlockJob(const nlohmann::json& ret, const std::string& job) {
  if (!ret.is_array()) return std::nullopt;
  for (const auto& j : ret) {
    if (StringMember(j, "device") != job) continue;
    BlockJobProgress p;
    p.len = UnsignedMember(j, "len");
    p.offset = UnsignedMember(j, "offset");
    auto ready = j.find("ready");
    p.ready = ready != j.end() && ready->is_boolean() && ready->get<bool>();
    return p;
  }
  return std::nullopt;
}

std::string BlockNodeOfDevice(const nlohmann::json& ret, const std::string& qdev_id) {
  if (!ret.is_array() || qdev_id.empty()) return "";
  std::string qom_prefix = "/machine/peripheral/" + qdev_id + "/";
  for (const auto& dev : ret) {
    std::string qdev = StringMember(dev, "qdev");
    if (qdev != qdev_id && qdev.rfind(qom_prefix, 0) != 0) continue;
    auto inserted = dev.find("inserted");
    if (inserted == dev.end()) return "";
    return StringMember(*inserted, "node-name");
  }
  return "";
}

}  // namespace hearth

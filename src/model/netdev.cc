#include "model/netdev.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "core/strings.h"

namespace hearth {
namespace {

const std::vector<std::string> kModels = {"e1000", "e1000-82540em", "e1000-82544gc", "e1000-82545em", "e1000e",
                                          "i82551", "i82557b", "i82559er", "ne2k_isa", "ne2k_pci",
                                          "pcnet", "rtl8139", "virtio", "vmxnet3"};

std::string CheckBridge(std::string_view v) {
  if (v.empty() || v.size() > 15) return "invalid bridge name '" + std::string(v) + "'";
  for (char c : v)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
      return "invalid bridge name '" + std::string(v) + "'";
  return "";
}

std::string CheckMac(std::string_view v) {
  return IsValidUnicastMac(v) ? "" : "value does not look like a valid unicast MAC address";
}

std::string CheckTrunks(std::string_view v) {
  for (const auto& part : Split(v, ';')) {
    auto range = Split(part, '-');
    if (range.empty() || range.size() > 2) return "invalid trunks '" + std::string(v) + "'";
    for (const auto& n : range) {
      auto id = ParseUint(n);
      if (!id || *id < 1 || *id > 4094) return "invalid trunks '" + std::string(v) + "'";
    }
  }
  return "";
}

PropertyFormat MakeFormat() {
  PropertyFormat f;
  f.default_key = "model";
  f.props = {
      {"model", PropType::kEnum, kModels, {}, {}, "", nullptr, /*required=*/true},
      {"macaddr", PropType::kString, {}, {}, {}, "", CheckMac},
      {"bridge", PropType::kString, {}, {}, {}, "", CheckBridge},
      {"tag", PropType::kInteger, {}, 1.0, 4094.0},
      {"trunks", PropType::kString, {}, {}, {}, "", CheckTrunks},
      {"firewall", PropType::kBoolean},
      {"link_down", PropType::kBoolean},
      {"rate", PropType::kNumber, {}, 0.0},
      {"mtu", PropType::kInteger, {}, 1.0, 65520.0},
      {"queues", PropType::kInteger, {}, 0.0, 64.0},
  };
  return f;
}

}  // namespace

std::string NetDev::Bridge() const {
  auto it = opts.find("bridge");
  return it == opts.end() ? "" : it->second;
}

bool NetDev::LinkDown() const {
  auto it = opts.find("link_down");
  return it != opts.end() && it->second == "1";
}

NicChange ClassifyNicChange(const NetDev& before, const NetDev& after) {
  auto opt = [](const NetDev& n, const char* k) {
    auto it = n.opts.find(k);
    return it == n.opts.end() ? std::string() : it->second;
  };
  // Numbers compare as numbers (qemu-server's safe_num_ne): "1" and "1.0" are one rate.
  auto num = [&](const NetDev& n, const char* k) -> std::optional<double> {
    std::string v = opt(n, k);
    if (v.empty()) return std::nullopt;
    return std::strtod(v.c_str(), nullptr);
  };
  if (before.model != after.model || before.macaddr != after.macaddr || num(before, "queues") != num(after, "queues") ||
      num(before, "mtu") != num(after, "mtu") || before.Bridge().empty() || after.Bridge().empty())
    return NicChange::kReplace;
  bool same = before.Bridge() == after.Bridge() && num(before, "tag") == num(after, "tag") &&
              opt(before, "trunks") == opt(after, "trunks") && num(before, "firewall").value_or(0) == num(after, "firewall").value_or(0) &&
              num(before, "rate").value_or(0) == num(after, "rate").value_or(0) && before.LinkDown() == after.LinkDown();
  return same ? NicChange::kNone : NicChange::kLive;
}

std::vector<int> ExpandTrunks(std::string_view trunks) {
  std::vector<bool> on(4095, false);
  for (const auto& part : Split(trunks, ';')) {
    auto range = Split(part, '-');
    if (range.empty() || range.size() > 2) continue;
    auto a = ParseUint(range[0]), b = ParseUint(range.back());
    if (!a || !b || *a < 1 || *b > 4094 || *a > *b) continue;
    for (auto id = *a; id <= *b; ++id) on[id] = true;
  }
  std::vector<int> out;
  for (int id = 1; id <= 4094; ++id)
    if (on[id]) out.push_back(id);
  return out;
}

const PropertyFormat& NetDevFormat() {
  static const PropertyFormat f = MakeFormat();
  return f;
}

bool IsValidUnicastMac(std::string_view mac) {
  if (mac.size() != 17) return false;
  for (size_t i = 0; i < 17; ++i) {
    if (i % 3 == 2) {
      if (mac[i] != ':') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(mac[i]))) {
      return false;
    }
  }
  int first = std::stoi(std::string(mac.substr(0, 2)), nullptr, 16);
  return (first & 1) == 0;
}

Result<NetDev> ParseNetDev(std::string_view text) {
  // Rewrite the "<model>=<MAC>" alias into model=..,macaddr=.. before generic parsing.
  std::vector<std::string> parts;
  for (const auto& part : Split(text, ',')) {
    size_t eq = part.find('=');
    if (eq != std::string::npos) {
      std::string key = part.substr(0, eq);
      if (std::find(kModels.begin(), kModels.end(), key) != kModels.end()) {
        parts.push_back("model=" + key);
        parts.push_back("macaddr=" + part.substr(eq + 1));
        continue;
      }
    }
    parts.push_back(part);
  }
  HEARTH_ASSIGN_OR_RETURN(PropertyMap map, ParsePropertyString(NetDevFormat(), Join(parts, ",")));
  NetDev nic;
  auto model = map.find("model");
  if (model == map.end()) return Fail(InvalidArgument("format error\nmodel: property is missing and it is not optional\n"));
  nic.model = model->second;
  map.erase(model);
  if (auto mac = map.find("macaddr"); mac != map.end()) {
    nic.macaddr = mac->second;  // kept as sent, as PVE (generated ones are upper-case)
    map.erase(mac);
  }
  nic.opts = std::move(map);
  return nic;
}

std::string PrintNetDev(const NetDev& nic) {
  std::string out = nic.macaddr.empty() ? nic.model : nic.model + "=" + nic.macaddr;
  for (const auto& [k, v] : nic.opts) out += "," + k + "=" + v;
  return out;
}

std::string MakeMac(const std::array<uint8_t, 3>& r) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "BC:24:11:%02X:%02X:%02X", r[0], r[1], r[2]);
  return buf;
}

}  // namespace hearth

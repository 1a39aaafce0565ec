#include "model/host_network.h"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "model/ip.h"

namespace hearth {

std::vector<std::string> NetIface::Ports() const {
  std::string list = type() == "bond" ? Get("slaves") : Get("bridge_ports");
  std::set<std::string> out;
  for (const auto& p : SplitAny(list, ",; \t\n"))
    if (!p.empty() && p != "none") out.insert(p);
  return {out.begin(), out.end()};
}

std::string NetIface::Cidr() const {
  if (!Has("address")) return "";
  std::string a = Get("address");
  if (a.find('/') != std::string::npos) return a;
  return a + "/" + (Has("netmask") ? Get("netmask") : "32");
}

std::string NetIface::Cidr6() const {
  if (!Has("address6")) return "";
  std::string a = Get("address6");
  if (a.find('/') != std::string::npos) return a;
  return a + "/" + (Has("netmask6") ? Get("netmask6") : "128");
}

std::string NetIface::VlanRawDevice() const {
  size_t dot = name.rfind('.');
  if (dot != std::string::npos) return name.substr(0, dot);
  return Get("vlan-raw-device");
}

int NetIface::VlanId() const {
  size_t dot = name.rfind('.');
  std::string id = dot != std::string::npos ? name.substr(dot + 1) : Get("vlan-id");
  if (id.empty() && name.rfind("vlan", 0) == 0) id = name.substr(4);
  auto n = ParseUint(id);
  return n && *n <= 4095 ? static_cast<int>(*n) : 0;
}

int NetIface::Mtu() const {
  auto n = ParseUint(Get("mtu"));
  return n && *n <= 65535 ? static_cast<int>(*n) : 0;
}

std::string HostNetConfig::ToJson() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, i] : ifaces) {
    nlohmann::json e = {{"opts", i.opts}};
    if (i.adopted) e["adopted"] = true;
    j[name] = e;
  }
  return nlohmann::json{{"ifaces", j}}.dump();
}

Result<HostNetConfig> HostNetConfig::FromJson(const std::string& text) {
  HostNetConfig c;
  try {
    auto j = nlohmann::json::parse(text);
    auto it = j.find("ifaces");
    if (it == j.end() || !it->is_object()) return Fail(Internal("network configuration record: no 'ifaces'"));
    for (const auto& [name, e] : it->items()) {
      NetIface i;
      i.name = name;
      if (auto o = e.find("opts"); o != e.end() && o->is_object())
        for (const auto& [k, v] : o->items())
          if (v.is_string()) i.opts[k] = v.get<std::string>();
      if (auto a = e.find("adopted"); a != e.end() && a->is_boolean()) i.adopted = a->get<bool>();
      c.ifaces[name] = std::move(i);
    }
  } catch (const nlohmann::json::exception& e) {
    return Fail(Internal(std::string("network configuration record is damaged: ") + e.what()));
  }
  return c;
}

namespace {

// pve-common's writer order: the type weight of the root name, the number of parts, the name.
int TypeWeight(const std::string& type) {
  if (type == "loopback") return 1;
  if (type == "eth") return 2;
  if (type == "bond") return 4;
  if (type == "bridge") return 5;
  if (type == "vlan" || type == "vxlan") return 6;
  return 0;
}

void WriteFamily(std::string& out, const NetIface& i, bool v6, bool first) {
  std::string addr = v6 ? i.Cidr6() : i.Cidr();
  out += "iface " + i.name + (v6 ? " inet6 " : " inet ") + (addr.empty() ? "manual" : "static") + "\n";
  if (!addr.empty()) out += "\taddress " + addr + "\n";
  std::string gw = i.Get(v6 ? "gateway6" : "gateway");
  if (!gw.empty()) out += "\tgateway " + gw + "\n";
  if (first) {
    std::string t = i.type();
    if (t == "bridge") {
      auto ports = i.Ports();
      out += "\tbridge-ports " + (ports.empty() ? std::string("none") : Join(ports, " ")) + "\n";
      out += "\tbridge-stp " + std::string(i.Get("bridge_stp") == "on" ? "on" : "off") + "\n";
      out += "\tbridge-fd " + (i.Has("bridge_fd") ? i.Get("bridge_fd") : "0") + "\n";
      if (i.vlan_aware())
        out += "\tbridge-vlan-aware yes\n\tbridge-vids " + (i.Has("bridge_vids") ? i.Get("bridge_vids") : "2-4094") + "\n";
    } else if (t == "bond") {
      auto ports = i.Ports();
      std::string mode = i.Has("bond_mode") ? i.Get("bond_mode") : "balance-rr";
      out += "\tbond-slaves " + (ports.empty() ? std::string("none") : Join(ports, " ")) + "\n";
      out += "\tbond-miimon " + (i.Has("bond_miimon") ? i.Get("bond_miimon") : "100") + "\n";
      out += "\tbond-mode " + mode + "\n";
      if ((mode == "balance-xor" || mode == "802.3ad") && i.Has("bond_xmit_hash_policy"))
        out += "\tbond-xmit-hash-policy " + i.Get("bond_xmit_hash_policy") + "\n";
      if (mode == "active-backup" && i.Has("bond-primary")) out += "\tbond-primary " + i.Get("bond-primary") + "\n";
    } else if (t == "vlan" && i.name.find('.') == std::string::npos) {
      out += "\tvlan-id " + std::to_string(i.VlanId()) + "\n\tvlan-raw-device " + i.VlanRawDevice() + "\n";
    }
    if (i.Has("mtu")) out += "\tmtu " + i.Get("mtu") + "\n";
  }
  for (const auto& line : SplitAny(i.Get(v6 ? "comments6" : "comments"), "\n"))
    if (!line.empty()) out += "#" + line + "\n";
  out += "\n";
}

}  // namespace

std::string HostNetConfig::InterfacesText() const {
  std::vector<const NetIface*> order;
  for (const auto& [n, i] : ifaces) order.push_back(&i);
  auto key = [this](const NetIface* i) {
    std::string root = i->name.substr(0, i->name.find_first_of(".:"));
    const NetIface* r = Find(root);
    int parts = 1 + static_cast<int>(std::count_if(i->name.begin(), i->name.end(), [](char c) { return c == '.' || c == ':'; }));
    return std::make_tuple(TypeWeight(r ? r->type() : i->type()), parts, i->name);
  };
  std::stable_sort(order.begin(), order.end(), [&](auto* a, auto* b) { return key(a) < key(b); });
  std::string out = "# network interface settings; autogenerated by hearth\n\nauto lo\niface lo inet loopback\n\n";
  for (const NetIface* i : order) {
    if (i->autostart()) out += "auto " + i->name + "\n";
    bool v4 = !i->Cidr().empty(), v6 = !i->Cidr6().empty();
    if (v4 || !v6) WriteFamily(out, *i, false, true);
    if (v6) WriteFamily(out, *i, true, !(v4 || !v6));
  }
  return out;
}

bool CreatableIfaceType(const std::string& type) { return type == "bridge" || type == "bond" || type == "vlan"; }

std::string CheckIfaceName(const std::string& v) {
  // ^[a-z][a-z0-9_]{1,20}([:.]\d+)?$, case-insensitive
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  std::string bad = "invalid network interface name '" + v + "'";
  size_t sep = v.find_first_of(":.");
  std::string base = v.substr(0, sep);
  if (base.size() < 2 || base.size() > 21 || !alpha(base[0])) return bad;
  for (char c : base)
    if (!alpha(c) && !digit(c) && c != '_') return bad;
  if (sep != std::string::npos) {
    std::string suffix = v.substr(sep + 1);
    if (suffix.empty()) return bad;
    for (char c : suffix)
      if (!digit(c)) return bad;
  }
  return "";
}

std::string CheckIfaceList(const std::string& v) {
  for (const auto& p : SplitAny(v, ",; \t\n"))
    if (!p.empty())
      if (auto e = CheckIfaceName(p); !e.empty()) return e;
  return "";
}

namespace {

std::string CheckVlanItem(const std::string& item) {
  size_t dash = item.find('-');
  auto a = ParseUint(item.substr(0, dash));
  std::optional<uint64_t> b;
  if (dash != std::string::npos) b = ParseUint(item.substr(dash + 1));
  if (!a || (dash != std::string::npos && !b) || item[0] == '+') return "invalid VLAN configuration '" + item + "'";
  if (*a < 2 || *a > 4094) return "invalid VLAN tag '" + std::to_string(*a) + "'";
  if (b) {
    if (*b < 2 || *b > 4094) return "invalid VLAN tag '" + std::to_string(*b) + "'";
    if (*a >= *b) return "VLAN range must go from lower to higher tag '" + item + "'";
  }
  return "";
}

}  // namespace

std::string CheckVlanIdOrRangeList(const std::string& v) {
  bool any = false;
  for (const auto& item : SplitAny(v, ",; \t\n")) {
    if (item.empty()) continue;
    any = true;
    if (auto e = CheckVlanItem(item); !e.empty()) return e;
  }
  if (!any && !v.empty()) return "VLAN list items are empty";
  return "";
}

std::string NormaliseVlanList(const std::string& v) {
  std::vector<std::string> items;
  for (const auto& item : SplitAny(v, ",; \t\n"))
    if (!item.empty()) items.push_back(item);
  return Join(items, " ");
}

std::vector<int> ExpandVlanList(const std::string& v) {
  std::set<int> ids;
  for (const auto& item : SplitAny(v, ",; \t\n")) {
    if (item.empty() || !CheckVlanItem(item).empty()) continue;
    size_t dash = item.find('-');
    int a = static_cast<int>(*ParseUint(item.substr(0, dash)));
    int b = dash == std::string::npos ? a : static_cast<int>(*ParseUint(item.substr(dash + 1)));
    for (int id = a; id <= b; ++id) ids.insert(id);
  }
  return {ids.begin(), ids.end()};
}

int MaskBits(const std::string& dotted) {
  for (int bits = 0; bits <= 32; ++bits) {
    uint32_t m = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
    std::string s = std::to_string(m >> 24) + "." + std::to_string((m >> 16) & 255) + "." +
                    std::to_string((m >> 8) & 255) + "." + std::to_string(m & 255);
    if (s == dotted) return bits;
  }
  return -1;
}

std::string CheckIpv4Mask(const std::string& v) {
  return MaskBits(v) < 0 ? "value does not look like a valid IP netmask" : "";
}

std::string CheckCidr4(const std::string& v) {
  size_t slash = v.find('/');
  auto bits = slash == std::string::npos ? std::nullopt : ParseUint(v.substr(slash + 1));
  if (!IsCidr4(v) || !bits || *bits < 8) return "value does not look like a valid IPv4 CIDR network";
  return "";
}

std::string CheckCidr6(const std::string& v) {
  size_t slash = v.find('/');
  auto bits = slash == std::string::npos ? std::nullopt : ParseUint(v.substr(slash + 1));
  if (!IsCidr6(v) || !bits || *bits < 8) return "value does not look like a valid IPv6 CIDR network";
  return "";
}

}  // namespace hearth

// HostNetwork's pending edits (POST/PUT/DELETE /nodes/{node}/network...) and the views GET
// shows. The checks and their texts follow pve-manager PVE/API2/Network.pm and pve-common's
// writer (docs/reference/pve-network.md §3, §4.5); checks Proxmox leaves to ifupdown2 at
// reload time (missing ports, bridges as ports) are made here, at edit time, with a 400.
#include <net/if.h>

#include <algorithm>

#include "core/pattern.h"
#include "core/strings.h"
#include "net/host_network.h"
#include "net/net_plan.h"

namespace hearth {
namespace {

// The Proxmox type of a kernel link hearth did not configure; "" to leave it out.
std::string KernelType(const KernelLink& l) {
  if (l.name == "lo" || IsGuestPlumbing(l.name)) return "";
  if (l.kind.empty() || l.kind == "veth") return "eth";
  if (l.kind == "bridge" || l.kind == "bond" || l.kind == "vlan" || l.kind == "vxlan") return l.kind;
  return "";
}

void SetCidr(std::map<std::string, std::string>& opts, const std::string& cidr, bool v6) {
  size_t slash = cidr.find('/');
  opts[v6 ? "address6" : "address"] = cidr.substr(0, slash);
  opts[v6 ? "netmask6" : "netmask"] = slash == std::string::npos ? (v6 ? "128" : "32") : cidr.substr(slash + 1);
}

// What the kernel says about an interface hearth does not configure (or is about to adopt).
NetIface FromKernel(const KernelLink& l, const KernelState& k) {
  NetIface i;
  i.name = l.name;
  i.opts["type"] = KernelType(l).empty() ? "unknown" : KernelType(l);
  for (const auto& a : l.addrs) {
    bool v6 = a.find(':') != std::string::npos;
    if (!i.Has(v6 ? "address6" : "address")) SetCidr(i.opts, a, v6);
  }
  if (l.up) i.opts["autostart"] = "1";
  if (l.mtu && l.mtu != 1500) i.opts["mtu"] = std::to_string(l.mtu);
  if (l.kind == "bridge") {
    std::vector<std::string> ports;
    for (const auto& p : k.links)
      if (p.master == l.name && !IsGuestPlumbing(p.name)) ports.push_back(p.name);
    i.opts["bridge_ports"] = Join(ports, " ");
    i.opts["bridge_stp"] = l.stp ? "on" : "off";
    if (l.vlan_filtering) i.opts["bridge_vlan_aware"] = "1";
  }
  if (l.kind == "vlan") {
    i.opts["vlan-raw-device"] = l.vlan_parent;
    i.opts["vlan-id"] = std::to_string(l.vlan_id);
  }
  if (l.kind == "bond") i.opts["bond_mode"] = l.bond_mode;
  for (const auto& r : k.default_routes)
    if (r.dev == l.name) i.opts[r.v6 ? "gateway6" : "gateway"] = r.gateway;
  return i;
}

// cidr/cidr6 into address + netmask, as the API handlers of Network.pm do.
Status FoldCidr(std::map<std::string, std::string>& p) {
  for (bool v6 : {false, true}) {
    std::string cidr = v6 ? "cidr6" : "cidr", address = v6 ? "address6" : "address", netmask = v6 ? "netmask6" : "netmask";
    auto it = p.find(cidr);
    if (it == p.end()) {
      if (!v6 && p.count("netmask")) {
        int bits = MaskBits(p["netmask"]);
        if (bits >= 0) p["netmask"] = std::to_string(bits);
      }
      continue;
    }
    if (p.count(address)) return Fail(FieldError(address, address + " conflicts with " + cidr));
    if (p.count(netmask)) return Fail(FieldError(netmask, netmask + " conflicts with " + cidr));
    std::string value = it->second;
    p.erase(it);
    SetCidr(p, value, v6);
  }
  return Ok();
}

}  // namespace

Result<std::vector<NetIfaceView>> HostNetwork::List() {
  HostNetConfig config;
  {
    std::lock_guard lock(mu_);
    HEARTH_ASSIGN_OR_RETURN(config, PendingOrApplied());
  }
  HEARTH_ASSIGN_OR_RETURN(auto kernel, links_.Read());
  std::vector<NetIfaceView> out;
  int priority = 2;
  for (const auto& [name, i] : config.ifaces) {
    NetIfaceView v{name, i.opts, true, false, false, priority++, {}};
    if (const KernelLink* l = kernel.Find(name)) {
      v.active = l->up;
      v.exists = KernelType(*l) == "eth";
      v.altnames = l->altnames;
    }
    out.push_back(std::move(v));
  }
  for (const auto& l : kernel.links) {
    if (config.Find(l.name) || KernelType(l).empty()) continue;
    NetIface i = FromKernel(l, kernel);
    out.push_back({l.name, i.opts, false, KernelType(l) == "eth", l.up, 0, l.altnames});
  }
  return out;
}

Result<NetIfaceView> HostNetwork::Get(const std::string& iface) {
  HEARTH_ASSIGN_OR_RETURN(auto all, List());
  for (auto& v : all)
    if (v.name == iface) return v;
  return Fail(FieldError("iface", "interface does not exist"));
}

// The consistency checks of one interface against the rest of the (new) configuration and
// the kernel, each naming the field it is about.
Status HostNetwork::CheckIface(const HostNetConfig& config, const KernelState& kernel, const NetIface& i) {
  std::string type = i.type();
  for (const char* gw : {"gateway", "gateway6"}) {
    if (!i.Has(gw)) continue;
    for (const auto& [name, other] : config.ifaces)
      if (name != i.name && other.Has(gw))
        return Fail(FieldError(gw, std::string(gw) == "gateway"
                                       ? "Default gateway already exists on interface '" + name + "'."
                                       : "Default ipv6 gateway already exists on interface '" + name + "'."));
    if (!i.Has(std::string(gw) == "gateway" ? "address" : "address6"))
      return Fail(FieldError(gw, "a gateway needs an address on the same interface"));
  }
  std::string ports_key = type == "bond" ? "slaves" : "bridge_ports";
  for (const auto& port : i.Ports()) {
    if (port == i.name) return Fail(FieldError(ports_key, "interface '" + port + "' cannot be a port of itself"));
    for (const auto& [name, other] : config.ifaces) {
      if (name == i.name || (other.type() != "bridge" && other.type() != "bond")) continue;
      auto theirs = other.Ports();
      if (std::find(theirs.begin(), theirs.end(), port) != theirs.end())
        return Fail(FieldError(ports_key, port + " is already used on interface '" + name + "'."));
    }
    const KernelLink* pl = kernel.Find(port);
    const NetIface* pc = config.Find(port);
    if (!pl && !pc)
      return Fail(FieldError(ports_key, type + " '" + i.name + "' - unable to find " +
                                            (type == "bond" ? "slave" : "bridge port") + " '" + port + "'"));
    if (pl && !pl->master.empty() && pl->master != i.name && !config.Find(pl->master))
      return Fail(FieldError(ports_key, port + " is already used on interface '" + pl->master + "'."));
    if (IsGuestPlumbing(port)) return Fail(FieldError(ports_key, "'" + port + "' belongs to a guest"));
    std::string port_type = pc ? pc->type() : KernelType(*pl);
    if (port_type == "bridge")
      return Fail(FieldError(ports_key, "'" + port + "' is a bridge and cannot be a port of '" + i.name + "'"));
    if (type == "bond" && port_type != "eth")
      return Fail(FieldError(ports_key, "bond '" + i.name + "' - wrong interface type on slave '" + port + "' ('" +
                                            port_type + "' != 'eth')"));
    if (pc && (pc->Has("address") || pc->Has("address6")))
      return Fail(FieldError(ports_key, "iface " + port + " - ip address can't be set on interface if bridged in " + i.name));
  }
  if (type == "bond" && i.Has("bond-primary")) {
    auto ports = i.Ports();
    if (std::find(ports.begin(), ports.end(), i.Get("bond-primary")) == ports.end())
      return Fail(FieldError("bond-primary", "bond '" + i.name + "' - bond-primary interface is not a slave"));
  }
  if (type == "vlan") {
    std::string parent = i.VlanRawDevice();
    if (parent.empty()) return Fail(FieldError("vlan-raw-device", "missing vlan-raw-device option"));
    if (i.VlanId() < 1 || i.VlanId() > 4094)
      return Fail(FieldError("vlan-id", i.name.find('.') == std::string::npos
                                            ? "missing vlan-id option"
                                            : "vlan '" + i.name + "' - vlan-id " + std::to_string(i.VlanId()) +
                                                  " should be <= 4094"));
    const NetIface* pc = config.Find(parent);
    const KernelLink* pl = kernel.Find(parent);
    if (!pc && !pl) return Fail(FieldError("vlan-raw-device", "vlan '" + i.name + "' - unable to find parent '" + parent + "'"));
    std::string parent_type = pc ? pc->type() : KernelType(*pl);
    if (parent_type != "eth" && parent_type != "bond" && parent_type != "bridge" && parent_type != "vlan")
      return Fail(FieldError("vlan-raw-device", "vlan '" + i.name + "' - wrong interface type on parent '" + parent +
                                                    "' ('" + parent_type + "' != 'eth|bond|bridge|vlan' )"));
  }
  return Ok();
}

Status HostNetwork::Create(const std::string& iface, std::map<std::string, std::string> params) {
  std::string type = params["type"];
  if (type == "eth")
    return Fail(FieldError("type", "hearth cannot create an 'eth' interface; configure a NIC that exists with PUT "
                                   "/nodes/{node}/network/{iface} (adopt=1)"));
  if (!CreatableIfaceType(type)) return Fail(FieldError("type", "interface type '" + type + "' is not supported by hearth"));
  if (iface.size() >= IFNAMSIZ)
    return Fail(FieldError("iface", "interface name '" + iface + "' is longer than " + std::to_string(IFNAMSIZ - 1) +
                                        " characters (the kernel's limit)"));
  HEARTH_TRY(FoldCidr(params));
  if (params.count("bridge_vids")) params["bridge_vids"] = NormaliseVlanList(params["bridge_vids"]);
  HEARTH_ASSIGN_OR_RETURN(auto kernel, links_.Read());
  std::lock_guard lock(mu_);
  HEARTH_ASSIGN_OR_RETURN(auto config, PendingOrApplied());
  if (config.Find(iface) || kernel.Find(iface)) return Fail(FieldError("iface", "interface already exists"));
  NetIface i{iface, params, false};
  config.ifaces[iface] = i;
  HEARTH_TRY(CheckIface(config, kernel, i));
  return Save("pending", config);
}

Status HostNetwork::Update(const std::string& iface, std::map<std::string, std::string> params,
                           const std::vector<std::string>& del, bool adopt) {
  HEARTH_TRY(FoldCidr(params));
  HEARTH_ASSIGN_OR_RETURN(auto kernel, links_.Read());
  std::lock_guard lock(mu_);
  HEARTH_ASSIGN_OR_RETURN(auto config, PendingOrApplied());
  auto it = config.ifaces.find(iface);
  if (it == config.ifaces.end()) {
    const KernelLink* l = kernel.Find(iface);
    if (!l || KernelType(*l).empty()) return Fail(FieldError("iface", "interface does not exist"));
    if (!adopt)
      return Fail(FieldError("iface", "interface '" + iface + "' is not managed by hearth; pass adopt=1 to manage it "
                                      "(hearth then sets its addresses, MTU and state as configured)"));
    NetIface adopted = FromKernel(*l, kernel);
    adopted.adopted = true;
    it = config.ifaces.emplace(iface, std::move(adopted)).first;
  }
  NetIface& i = it->second;
  if (params.count("type") && params["type"] != i.type())
    return Fail(FieldError("type", "interface '" + iface + "' is of type '" + i.type() + "', not '" + params["type"] + "'"));
  for (const auto& key : del) {
    i.opts.erase(key);
    if (key == "cidr") i.opts.erase("address"), i.opts.erase("netmask");
    if (key == "cidr6") i.opts.erase("address6"), i.opts.erase("netmask6");
  }
  for (auto& [k, v] : params) i.opts[k] = v;
  if (i.Has("bridge_vids") && params.count("bridge_vids")) i.opts["bridge_vids"] = NormaliseVlanList(params["bridge_vids"]);
  HEARTH_TRY(CheckIface(config, kernel, i));
  return Save("pending", config);
}

Status HostNetwork::Delete(const std::string& iface) {
  HEARTH_ASSIGN_OR_RETURN(auto kernel, links_.Read());
  std::lock_guard lock(mu_);
  HEARTH_ASSIGN_OR_RETURN(auto config, PendingOrApplied());
  const NetIface* i = config.Find(iface);
  if (!i) {
    if (const KernelLink* l = kernel.Find(iface); l && !KernelType(*l).empty())
      return Fail(FieldError("iface", "interface '" + iface + "' is not managed by hearth"));
    return Fail(FieldError("iface", "interface does not exist"));
  }
  for (const auto& [name, other] : config.ifaces) {
    auto ports = other.Ports();
    if (name != iface && std::find(ports.begin(), ports.end(), iface) != ports.end())
      return Fail(FieldError("iface", "interface '" + iface + "' is a port of '" + name + "'; remove it there first"));
    if (other.type() == "vlan" && other.VlanRawDevice() == iface)
      return Fail(FieldError("iface", "interface '" + iface + "' is the raw device of vlan '" + name + "'"));
  }
  if (i->type() == "bridge" && users_ && !i->adopted) {
    auto users = users_(iface);
    if (!users.empty())
      return Fail(FieldError("iface", "bridge '" + iface + "' is used by " + Join(users, ", ") +
                                          "; move those NICs to another bridge first"));
  }
  config.ifaces.erase(iface);
  return Save("pending", config);
}

}  // namespace hearth

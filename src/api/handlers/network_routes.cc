// The host network: GET/POST/PUT/DELETE /nodes/{node}/network[/{iface}], as pve-manager's
// PVE/API2/Network.pm (docs/reference/pve-network.md), over net/host_network.h. Hearth's
// additions: `adopt` on PUT, `confirm-timeout` on apply, POST .../network/confirm, and the
// open confirm window as the list's top-level `hearth-confirm`.
#include "api/handlers/handlers.h"
#include "core/strings.h"
#include "model/host_network.h"
#include "model/ip.h"

namespace hearth {
namespace {

ParamSpec Checked(ParamSpec p, std::string (*check)(const std::string&), bool invalid_format = true) {
  p.check = [check, invalid_format](const std::string& v) -> std::string {
    std::string e = check(v);
    return e.empty() || !invalid_format ? e : "invalid format - " + e;
  };
  return p;
}

std::string CheckIpv4(const std::string& v) { return IsIPv4(v) ? "" : "value does not look like a valid IPv4 address"; }
std::string CheckIpv6(const std::string& v) { return IsIPv6(v) ? "" : "value does not look like a valid IPv6 address"; }

ParamSpec IfaceParam(std::string name = "iface") {
  ParamSpec p = MaxLen(Checked(PString(std::move(name)), CheckIfaceName), 20);
  return p;
}

// $confdesc of Network.pm, plus hearth's bridge_stp.
std::vector<ParamSpec> ConfigSpecs() {
  return {
      Required(PEnum("type", {"bridge", "bond", "eth", "alias", "vlan", "fabric", "OVSBridge", "OVSBond", "OVSPort",
                              "OVSIntPort", "vnet", "unknown"})),
      PBool("autostart"),
      MaxLen(PString("comments"), 4096),
      MaxLen(PString("comments6"), 4096),
      MaxLen(Checked(PString("bridge_ports"), CheckIfaceList), 4096),
      PBool("bridge_vlan_aware"),
      MaxLen(Checked(PString("bridge_vids"), CheckVlanIdOrRangeList), 4096),
      PEnum("bridge_stp", {"on", "off"}),
      MaxLen(Checked(PString("slaves"), CheckIfaceList), 4096),
      PEnum("bond_mode", {"balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb",
                          "balance-alb", "balance-slb", "lacp-balance-slb", "lacp-balance-tcp"}),
      IfaceParam("bond-primary"),
      PEnum("bond_xmit_hash_policy", {"layer2", "layer2+3", "layer3+4"}),
      IfaceParam("vlan-raw-device"),
      PInt("vlan-id", 1, 4094),
      MaxLen(Checked(PString("address"), CheckIpv4), 64),
      MaxLen(Checked(PString("netmask"), CheckIpv4Mask), 64),
      MaxLen(Checked(PString("cidr"), CheckCidr4), 64),
      MaxLen(Checked(PString("gateway"), CheckIpv4), 64),
      MaxLen(Checked(PString("address6"), CheckIpv6), 64),
      PInt("netmask6", 0, 128),
      MaxLen(Checked(PString("cidr6"), CheckCidr6), 64),
      MaxLen(Checked(PString("gateway6"), CheckIpv6), 64),
      PInt("mtu", 1280, 65520),
  };
}

// The request's options, with Proxmox's `requires` (address needs netmask, address6 needs
// netmask6: the error is on the missing key) and the OVS bond modes refused.
Result<std::map<std::string, std::string>> ConfigParams(const Params& params) {
  std::map<std::string, std::string> out;
  for (const auto& spec : ConfigSpecs())
    if (auto v = params.Get(spec.name)) out[spec.name] = *v;
  for (auto [key, needs] : {std::pair{"address", "netmask"}, {"netmask", "address"}, {"address6", "netmask6"},
                            {"netmask6", "address6"}})
    if (out.count(key) && !out.count(needs))
      return Fail(FieldError(needs, std::string("missing property required by '") + key + "'"));
  if (auto it = out.find("bond_mode"); it != out.end() && (it->second.find("slb") != std::string::npos ||
                                                           it->second.find("lacp") != std::string::npos))
    return Fail(FieldError("bond_mode", "bond mode '" + it->second + "' needs Open vSwitch, which hearth does not use"));
  return out;
}

// One interface with Proxmox's JSON types (docs/reference/pve-network.md §2.3): strings for
// parsed values, the number 1 for flags, `cidr` computed, `families` and `method(6)`.
nlohmann::json ViewJson(const NetIfaceView& v, bool with_name) {
  NetIface i{v.name, v.opts, false};
  nlohmann::json j = nlohmann::json::object();
  if (with_name) j["iface"] = v.name;
  static const std::set<std::string> kFlags = {"autostart", "bridge_vlan_aware"};
  for (const auto& [k, val] : v.opts) {
    if (kFlags.count(k)) {
      if (val != "0") j[k] = 1;
    } else {
      j[k] = val;
    }
  }
  bool v4 = i.Has("address"), v6 = i.Has("address6");
  if (v4) j["cidr"] = i.Cidr();
  if (v6) j["cidr6"] = i.Cidr6();
  j["method"] = v4 ? "static" : "manual";
  j["method6"] = v6 ? "static" : "manual";
  nlohmann::json families = nlohmann::json::array();
  if (v4 || !v6) families.push_back("inet");
  if (v6) families.push_back("inet6");
  j["families"] = families;
  std::string type = i.type();
  if (type == "bridge") {
    if (!j.contains("bridge_ports")) j["bridge_ports"] = "";
    if (!j.contains("bridge_stp")) j["bridge_stp"] = "off";
    if (!j.contains("bridge_fd")) j["bridge_fd"] = 0;  // a number when unset, as Proxmox (bpg #410)
    if (i.vlan_aware() && !j.contains("bridge_vids")) j["bridge_vids"] = "2-4094";
  }
  if (type == "vlan") {
    j["vlan-raw-device"] = i.VlanRawDevice();
    if (i.VlanId() > 0) j["vlan-id"] = std::to_string(i.VlanId());
  }
  if (v.active) j["active"] = 1;
  if (v.exists) j["exists"] = 1;
  if (v.priority > 0) j["priority"] = v.priority;
  if (!v.altnames.empty()) j["altnames"] = v.altnames;
  return j;
}

bool TypeMatches(const std::string& filter, const std::string& type) {
  if (filter.empty() || filter == "include_sdn") return true;
  if (filter == "any_bridge" || filter == "any_local_bridge") return type == "bridge";
  return filter == type;
}

HostNetwork& Network(ApiServices& s) {
  return *s.network;  // routes are registered only when the service exists
}

}  // namespace

void RegisterNetworkRoutes(Router& r, ApiServices& s) {
  if (!s.network) return;

  r.Add({"GET", "/nodes/{node}/network",
         {NodeParam(), PEnum("type", {"bridge", "bond", "eth", "alias", "vlan", "fabric", "OVSBridge", "OVSBond",
                                      "OVSPort", "OVSIntPort", "vnet", "any_bridge", "any_local_bridge", "include_sdn"})},
         false, "", "", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(auto views, Network(s).List());
           std::string filter = c.params.GetOr("type", "");
           nlohmann::json out = nlohmann::json::array();
           for (const auto& v : views) {
             std::string type = v.opts.count("type") ? v.opts.at("type") : "";
             if (!TypeMatches(filter, type)) continue;
             // Bridges are shown to users who may use or audit them (Proxmox's localnetwork zone).
             if (type == "bridge" && !s.access.AllowedAny(*c.who, "/sdn/zones/localnetwork/" + v.name, "SDN.Audit|SDN.Use"))
               continue;
             out.push_back(ViewJson(v, true));
           }
           ApiReply reply = Data(out);
           HEARTH_ASSIGN_OR_RETURN(auto changes, Network(s).Changes());
           if (!changes.empty()) reply.extra["changes"] = changes;
           if (auto w = Network(s).OpenWindow()) reply.extra["hearth-confirm"] = {{"user", w->user}, {"deadline", w->deadline}};
           return reply;
         },
         "List available networks (pending configuration; top-level `changes` is the diff to apply)."})
      .lane = Lane::kWork;

  r.Add({"GET", "/nodes/{node}/network/{iface}", {NodeParam(), IfaceParam()}, false, "Sys.Audit", "/nodes/{node}", true,
         true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(auto v, Network(s).Get(*c.params.Get("iface")));
           return Data(ViewJson(v, false));
         },
         "Read network device configuration."})
      .lane = Lane::kWork;

  std::vector<ParamSpec> create = ConfigSpecs();
  create.push_back(NodeParam());
  create.push_back(Required(IfaceParam()));
  r.Add({"POST", "/nodes/{node}/network", create, false, "Sys.Modify", "/nodes/{node}", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(auto params, ConfigParams(c.params));
           HEARTH_TRY(Network(s).Create(*c.params.Get("iface"), std::move(params)));
           return Data(nullptr);
         },
         "Create network device configuration (pending until applied)."});

  std::vector<ParamSpec> update = ConfigSpecs();
  update.push_back(NodeParam());
  update.push_back(IfaceParam());
  ParamSpec del = MaxLen(PString("delete", "A list of settings you want to delete."), 4096);
  del.check = [](const std::string& v) -> std::string {
    for (const auto& k : SplitAny(v, ",; \t")) {
      if (k.empty()) continue;
      bool ok = k.size() >= 2 && ((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= 'A' && k[0] <= 'Z'));
      for (char ch : k)
        ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-');
      if (!ok) return "invalid format - invalid configuration ID '" + k + "'";
    }
    return "";
  };
  update.push_back(del);
  ParamSpec adopt = PBool("adopt");
  adopt.description = "hearth: take over an interface hearth did not create (its addresses, MTU and state).";
  update.push_back(adopt);
  r.Add({"PUT", "/nodes/{node}/network/{iface}", update, false, "Sys.Modify", "/nodes/{node}", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(auto params, ConfigParams(c.params));
           std::vector<std::string> remove;
           for (const auto& k : SplitAny(c.params.GetOr("delete", ""), ",; \t"))
             if (!k.empty()) remove.push_back(k);
           HEARTH_TRY(Network(s).Update(*c.params.Get("iface"), std::move(params), remove,
                                        c.params.GetOr("adopt", "0") == "1"));
           return Data(nullptr);
         },
         "Update network device configuration (pending until applied)."});

  r.Add({"DELETE", "/nodes/{node}/network/{iface}", {NodeParam(), IfaceParam()}, false, "Sys.Modify", "/nodes/{node}",
         true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_TRY(Network(s).Delete(*c.params.Get("iface")));
           return Data(nullptr);
         },
         "Delete network device configuration (pending until applied)."});

  ParamSpec confirm = PInt("confirm-timeout", 0, 3600);
  confirm.description = "hearth: seconds to wait for a confirmation before going back (0: no confirm window).";
  r.Add({"PUT", "/nodes/{node}/network", {NodeParam(), PBool("regenerate-frr"), confirm}, false, "Sys.Modify",
         "/nodes/{node}", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           int timeout = HostNetwork::kDefaultConfirmSeconds;
           if (auto t = c.params.Get("confirm-timeout")) timeout = static_cast<int>(ParseInt(*t).value_or(timeout));
           HEARTH_ASSIGN_OR_RETURN(auto upid, Network(s).Apply(c.who->AuthId(), timeout));
           return Data(upid);
         },
         "Reload network configuration: apply the pending configuration as one transaction."});

  r.Add({"DELETE", "/nodes/{node}/network", {NodeParam()}, false, "Sys.Modify", "/nodes/{node}", true, true, false,
         [&s](ApiContext&) -> Result<ApiReply> {
           HEARTH_TRY(Network(s).Revert());
           return Data(nullptr);
         },
         "Revert network configuration changes."});

  r.Add({"POST", "/nodes/{node}/network/confirm", {NodeParam()}, false, "Sys.Modify", "/nodes/{node}", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_TRY(Network(s).Confirm(c.who->AuthId()));
           return Data(nullptr);
         },
         "hearth: keep the configuration applied last (ends its confirm window)."});
}

}  // namespace hearth

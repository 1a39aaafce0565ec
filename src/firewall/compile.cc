#include "firewall/compile.h"

#include <cstdio>
#include <map>

#include "core/strings.h"

namespace hearth {
namespace {

std::string Opt(const FwFields& o, const std::string& k, const std::string& def = "") {
  auto it = o.find(k);
  return it == o.end() || it->second.empty() ? def : it->second;
}

std::string Quote(const std::string& s) { return "\"" + s + "\""; }

// pve-firewall's ICMP names -> nftables' (type, optional code).
std::pair<std::string, std::string> IcmpMatch(const std::string& name, bool v6) {
  static const std::map<std::string, std::pair<std::string, std::string>> v4 = {
      {"network-unreachable", {"destination-unreachable", "net-unreachable"}},
      {"host-unreachable", {"destination-unreachable", "host-unreachable"}},
      {"protocol-unreachable", {"destination-unreachable", "prot-unreachable"}},
      {"port-unreachable", {"destination-unreachable", "port-unreachable"}},
      {"fragmentation-needed", {"destination-unreachable", "frag-needed"}},
      {"network-prohibited", {"destination-unreachable", "net-prohibited"}},
      {"host-prohibited", {"destination-unreachable", "host-prohibited"}},
      {"communication-prohibited", {"destination-unreachable", "admin-prohibited"}},
      {"network-redirect", {"redirect", ""}}, {"host-redirect", {"redirect", ""}},
      {"TOS-network-redirect", {"redirect", ""}}, {"TOS-host-redirect", {"redirect", ""}},
      {"ttl-zero-during-transit", {"time-exceeded", ""}}, {"ttl-zero-during-reassembly", {"time-exceeded", ""}},
      {"ip-header-bad", {"parameter-problem", ""}}, {"required-option-missing", {"parameter-problem", ""}},
      {"source-route-failed", {"destination-unreachable", ""}}, {"network-unknown", {"destination-unreachable", ""}},
      {"host-unknown", {"destination-unreachable", ""}}, {"TOS-network-unreachable", {"destination-unreachable", ""}},
      {"TOS-host-unreachable", {"destination-unreachable", ""}},
      {"host-precedence-violation", {"destination-unreachable", ""}}, {"precedence-cutoff", {"destination-unreachable", ""}},
  };
  static const std::map<std::string, std::pair<std::string, std::string>> six = {
      {"no-route", {"destination-unreachable", "no-route"}},
      {"communication-prohibited", {"destination-unreachable", "admin-prohibited"}},
      {"address-unreachable", {"destination-unreachable", "addr-unreachable"}},
      {"port-unreachable", {"destination-unreachable", "port-unreachable"}},
      {"failed-policy", {"destination-unreachable", "policy-fail"}},
      {"reject-route", {"destination-unreachable", "reject-route"}},
      {"beyond-scope", {"destination-unreachable", ""}},
      {"ttl-zero-during-transit", {"time-exceeded", ""}}, {"ttl-zero-during-reassembly", {"time-exceeded", ""}},
      {"bad-header", {"parameter-problem", ""}}, {"unknown-header-type", {"parameter-problem", ""}},
      {"unknown-option", {"parameter-problem", ""}},
      {"router-solicitation", {"nd-router-solicit", ""}}, {"router-advertisement", {"nd-router-advert", ""}},
      {"neighbor-solicitation", {"nd-neighbor-solicit", ""}}, {"neighbour-solicitation", {"nd-neighbor-solicit", ""}},
      {"neighbor-advertisement", {"nd-neighbor-advert", ""}}, {"neighbour-advertisement", {"nd-neighbor-advert", ""}},
      {"redirect", {"nd-redirect", ""}},
  };
  const auto& table = v6 ? six : v4;
  if (auto it = table.find(name); it != table.end()) return it->second;
  return {name, ""};
}

std::string NftLogLevel(const std::string& level) { return level == "warning" ? "warn" : level; }

int LogLevelNumber(const std::string& level) {
  const auto& all = FwLogLevels();
  for (size_t i = 0; i < all.size(); ++i)
    if (all[i] == level) return static_cast<int>(i);
  return 6;
}

// "80,443,8000:8010" -> "{ 80, 443, 8000-8010 }"
std::string PortSet(const std::string& spec) {
  auto ports = ParseFwPorts(spec);
  std::vector<std::string> items;
  if (ports)
    for (auto [a, b] : *ports) items.push_back(a == b ? std::to_string(a) : std::to_string(a) + "-" + std::to_string(b));
  return "{ " + Join(items, ", ") + " }";
}

// "10.0.0.1,10.0.1.0/24" -> "{ 10.0.0.1, 10.0.1.0/24 }"; a range as is.
std::string AddressSet(const std::string& spec) {
  if (spec.find('-') != std::string::npos) return spec;
  return "{ " + Join(Split(spec, ','), ", ") + " }";
}

// What a verdict means where it is compiled: the outgoing chain of a guest lets an accepted
// packet go on to the receiving NIC's rules (pve-firewall's accept mark), so ACCEPT returns.
std::string Verdict(const std::string& action, bool accept_returns) {
  if (action == "ACCEPT") return accept_returns ? "return" : "accept";
  if (action == "REJECT") return "reject";
  return "drop";
}

struct Match {
  std::string proto, dport, sport, icmp_type;
};

// One nft rule (without its chain) for one rule and one expansion of its macro, or "" when
// it does not apply to the family it is compiled for. `dir_in`: the rule's direction (the
// interface of `iface` is iifname for in, oifname for out).
std::string RuleText(const FwRule& r, const Match& m, int family, bool dir_in, bool host, const std::string& chain,
                     int vmid, bool accept_returns) {
  std::vector<std::string> parts;
  int ipv = family;
  std::string proto = m.proto;
  if (proto == "icmp") ipv = 4;
  if (proto == "icmpv6" || proto == "ipv6-icmp") ipv = 6;
  if (auto v = ParseInt(r.Get("ipversion")); v) {
    int want = static_cast<int>(*v);
    if (ipv && ipv != want) return "";
    ipv = want;
  }
  if (family && ipv && ipv != family) return "";
  if (host && r.Has("iface")) parts.push_back((dir_in ? "iifname " : "oifname ") + Quote(r.Get("iface")));
  std::string ip = ipv == 6 ? "ip6" : "ip";
  if (ipv == 4) parts.push_back("meta nfproto ipv4");
  if (ipv == 6) parts.push_back("meta nfproto ipv6");
  if (r.Has("source")) parts.push_back(ip + " saddr " + AddressSet(r.Get("source")));
  if (r.Has("dest")) parts.push_back(ip + " daddr " + AddressSet(r.Get("dest")));
  if (!proto.empty()) {
    int num = FwProtocolNumber(proto);
    bool icmp = num == 1 || num == 58;
    parts.push_back("meta l4proto " + std::to_string(num));
    std::string icmp_type = !m.icmp_type.empty() ? m.icmp_type : icmp ? m.dport : "";
    if (icmp && !icmp_type.empty() && icmp_type != "any") {
      auto [type, code] = IcmpMatch(icmp_type, num == 58);
      std::string kw = num == 58 ? "icmpv6" : "icmp";
      parts.push_back(kw + " type " + type);
      if (!code.empty()) parts.push_back(kw + " code " + code);
    }
    if (!icmp && !m.dport.empty()) parts.push_back("th dport " + PortSet(m.dport));
    if (!icmp && !m.sport.empty()) parts.push_back("th sport " + PortSet(m.sport));
  }
  std::string action = r.Get("action");
  std::string log = r.Get("log");
  if (!log.empty() && log != "nolog") {
    char prefix[96];
    std::snprintf(prefix, sizeof prefix, ":%d:%d:%s:%s: ", vmid, LogLevelNumber(log), chain.c_str(), action.c_str());
    parts.push_back("log prefix " + Quote(prefix) + " level " + NftLogLevel(log));
  }
  parts.push_back(Verdict(action, accept_returns));
  return Join(parts, " ");
}

// A rule's nft lines: one per macro expansion and family; a rule with explicit fields
// overrides or completes the macro's (pve-firewall's apply_macro).
void AddRule(std::vector<std::string>& out, const FwRule& r, bool dir_in, bool host, const std::string& chain, int vmid,
             bool accept_returns) {
  if (!r.Enabled() || r.Get("type") == "group") return;  // security groups: not compiled yet
  Match own{r.Get("proto"), r.Get("dport"), r.Get("sport"), r.Get("icmp-type")};
  const FwMacro* macro = r.Has("macro") ? FindFwMacro(r.Get("macro")) : nullptr;
  if (!macro) {
    if (auto line = RuleText(r, own, 0, dir_in, host, chain, vmid, accept_returns); !line.empty()) out.push_back(line);
    return;
  }
  auto expand = [&](const std::vector<FwMacroRule>& templ, int family) {
    for (const auto& t : templ) {
      Match m{t.proto.empty() ? own.proto : t.proto, t.dport.empty() ? own.dport : t.dport,
              t.sport.empty() ? own.sport : t.sport, own.icmp_type};
      if (auto line = RuleText(r, m, family, dir_in, host, chain, vmid, accept_returns); !line.empty()) out.push_back(line);
    }
  };
  if (macro->v6.empty()) {
    expand(macro->v4, 0);  // one template for both families (icmp ones are IPv4 by their protocol)
  } else {
    if (!macro->v6_only) expand(macro->v4, 4);
    expand(macro->v6, 6);
  }
}

void Chain(std::string& s, const std::string& name, const std::string& hook, const std::vector<std::string>& lines) {
  s += "  chain " + name + " {\n";
  if (!hook.empty()) s += "    " + hook + "\n";
  for (const auto& l : lines) s += "    " + l + "\n";
  s += "  }\n";
}

std::string PolicyLines(const std::string& policy, const std::string& log_level, const std::string& chain, int vmid,
                        bool accept_returns, std::vector<std::string>& out) {
  std::string verdict = policy == "ACCEPT" ? (accept_returns ? "" : "accept") : policy == "REJECT" ? "reject" : "drop";
  if (!log_level.empty() && log_level != "nolog" && policy != "ACCEPT") {
    char prefix[96];
    std::snprintf(prefix, sizeof prefix, ":%d:%d:%s:policy %s: ", vmid, LogLevelNumber(log_level), chain.c_str(),
                  policy.c_str());
    out.push_back("log prefix " + Quote(prefix) + " level " + NftLogLevel(log_level) + " " + verdict);
  } else if (!verdict.empty()) {
    out.push_back(verdict);
  }
  return verdict;
}

const char* kNdpTypes = "{ nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert }";

}  // namespace

std::string FwTapName(const FwNic& nic) { return "tap" + std::to_string(nic.vmid) + "i" + std::to_string(nic.index); }

std::string CompileFirewall(const FwInputs& in) {
  // Create-then-delete makes the delete safe when the table is missing; the whole script is
  // one transaction.
  std::string s = "add table inet hearth\ndelete table inet hearth\nadd table bridge hearth\ndelete table bridge hearth\n";
  if (Opt(in.cluster_options, "enable", "0") == "0") return s;
  const FwFields& host = in.host_options;
  bool host_on = Opt(host, "enable", "1") != "0";

  s += "table inet hearth {\n";
  // The node.
  for (bool dir_in : {true, false}) {
    std::vector<std::string> lines;
    std::string chain = dir_in ? "input" : "output";
    lines.push_back(std::string(dir_in ? "iifname" : "oifname") + " \"lo\" accept");
    if (dir_in && Opt(host, "nf_conntrack_allow_invalid", "0") != "1") lines.push_back("ct state invalid drop");
    lines.push_back("ct state established,related accept");
    if (Opt(host, "ndp", "1") != "0") lines.push_back(std::string("meta l4proto ipv6-icmp icmpv6 type ") + kNdpTypes + " accept");
    if (host_on) {
      std::string type = dir_in ? "in" : "out";
      std::vector<std::string> rules;
      for (const auto& r : in.host_rules)
        if (r.Get("type") == type) AddRule(rules, r, dir_in, true, chain, 0, false);
      for (const auto& r : in.cluster_rules)
        if (r.Get("type") == type) AddRule(rules, r, dir_in, true, chain, 0, false);
      lines.insert(lines.end(), rules.begin(), rules.end());
      // Never locked out: the management ports stay open from the node's own networks
      // (pve-firewall's `management` ipset, filled from `local_network`).
      if (!in.local_networks.empty() && !in.management_ports.empty()) {
        std::vector<std::string> v4, v6, ports;
        for (const auto& n : in.local_networks) (n.find(':') == std::string::npos ? v4 : v6).push_back(n);
        for (int p : in.management_ports) ports.push_back(std::to_string(p));
        std::string addr = dir_in ? "saddr" : "daddr";
        std::string port = dir_in ? "tcp dport" : "tcp sport";
        if (!v4.empty()) lines.push_back("ip " + addr + " { " + Join(v4, ", ") + " } " + port + " { " + Join(ports, ", ") + " } accept");
        if (!v6.empty()) lines.push_back("ip6 " + addr + " { " + Join(v6, ", ") + " } " + port + " { " + Join(ports, ", ") + " } accept");
      }
      std::string policy = Opt(in.cluster_options, dir_in ? "policy_in" : "policy_out", dir_in ? "DROP" : "ACCEPT");
      PolicyLines(policy, Opt(host, dir_in ? "log_level_in" : "log_level_out"), chain, 0, false, lines);
    }
    Chain(s, chain, std::string("type filter hook ") + chain + " priority filter; policy accept;", lines);
  }

  // Guests: every firewalled NIC of a VM whose firewall is enabled gets a number.
  std::vector<std::string> forward = {"ct state invalid drop", "ct state established,related accept"};
  if (Opt(host, "nf_conntrack_allow_invalid", "0") == "1") forward.erase(forward.begin());
  std::vector<std::pair<const FwVm*, FwNic>> nics;
  for (const auto& vm : in.vms)
    if (Opt(vm.options, "enable", "0") == "1")
      for (const auto& nic : vm.nics) nics.emplace_back(&vm, nic);
  std::string guest_chains;
  std::vector<std::string> marks, macfilter;
  for (size_t n = 0; n < nics.size() && n < 0xffff; ++n) {
    const FwVm& vm = *nics[n].first;
    const FwNic& nic = nics[n].second;
    unsigned id = static_cast<unsigned>(n + 1);
    std::string tap = FwTapName(nic), net = "net" + std::to_string(nic.index);
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08x", id << 16);
    std::string out_mark = hex;
    std::snprintf(hex, sizeof hex, "0x%08x", id);
    std::string in_mark = hex;
    marks.push_back("iifname " + Quote(tap) + " meta mark set meta mark & 0x0000ffff | " + out_mark);
    marks.push_back("oifname " + Quote(tap) + " meta mark set meta mark & 0xffff0000 | " + in_mark);
    if (Opt(vm.options, "macfilter", "1") != "0" && !nic.mac.empty())
      macfilter.push_back("iifname " + Quote(tap) + " ether saddr != " + ToLower(nic.mac) + " drop");
    forward.push_back("meta mark & 0xffff0000 == " + out_mark + " jump " + tap + "-out");
    forward.push_back("meta mark & 0x0000ffff == " + in_mark + " jump " + tap + "-in");
    bool dhcp = Opt(vm.options, "dhcp", "1") != "0", ndp = Opt(vm.options, "ndp", "1") != "0";
    bool radv = Opt(vm.options, "radv", "0") == "1";
    for (bool dir_in : {true, false}) {
      std::vector<std::string> lines;
      std::string chain = tap + (dir_in ? "-in" : "-out");
      std::string ok = dir_in ? "accept" : "return";
      if (dhcp) {
        lines.push_back(std::string("meta nfproto ipv4 udp sport ") + (dir_in ? "67 udp dport 68 " : "68 udp dport 67 ") + ok);
        lines.push_back(std::string("meta nfproto ipv6 udp sport ") + (dir_in ? "547 udp dport 546 " : "546 udp dport 547 ") + ok);
      }
      if (!dir_in && !radv) lines.push_back("meta l4proto ipv6-icmp icmpv6 type nd-router-advert drop");
      if (ndp) lines.push_back(std::string("meta l4proto ipv6-icmp icmpv6 type ") + kNdpTypes + " " + ok);
      std::string type = dir_in ? "in" : "out";
      for (const auto& r : vm.rules)
        if (r.Get("type") == type && (!r.Has("iface") || r.Get("iface") == net))
          AddRule(lines, r, dir_in, false, chain, vm.vmid, !dir_in);
      std::string policy = Opt(vm.options, dir_in ? "policy_in" : "policy_out", dir_in ? "DROP" : "ACCEPT");
      PolicyLines(policy, Opt(vm.options, dir_in ? "log_level_in" : "log_level_out"), chain, vm.vmid, !dir_in, lines);
      Chain(guest_chains, chain, "", lines);
    }
  }
  Chain(s, "forward", "type filter hook forward priority filter; policy accept;", forward);
  s += guest_chains;
  s += "}\n";
  if (!marks.empty()) {
    s += "table bridge hearth {\n";
    Chain(s, "ports", "type filter hook forward priority -200; policy accept;", marks);
    if (!macfilter.empty()) Chain(s, "macfilter", "type filter hook prerouting priority -200; policy accept;", macfilter);
    s += "}\n";
  }
  return s;
}

}  // namespace hearth

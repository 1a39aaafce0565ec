#include "model/firewall.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "core/strings.h"
#include "model/ip.h"
#include "model/vm_config.h"

namespace hearth {
namespace {

// /etc/protocols names Proxmox's rules use most (the full file is the host's; a number works
// for any protocol).
const std::map<std::string, int>& Protocols() {
  static const std::map<std::string, int> m = {
      {"ip", 0},      {"icmp", 1},       {"igmp", 2},   {"ggp", 3},    {"ipencap", 4}, {"st", 5},
      {"tcp", 6},     {"egp", 8},        {"igp", 9},    {"pup", 12},   {"udp", 17},    {"hmp", 20},
      {"xns-idp", 22}, {"rdp", 27},      {"iso-tp4", 29}, {"dccp", 33}, {"xtp", 36},    {"ddp", 37},
      {"idpr-cmtp", 38}, {"ipv6", 41},   {"ipv6-route", 43}, {"ipv6-frag", 44}, {"idrp", 45}, {"rsvp", 46},
      {"gre", 47},    {"esp", 50},       {"ah", 51},    {"skip", 57},  {"ipv6-icmp", 58}, {"icmpv6", 58},
      {"ipv6-nonxt", 59}, {"ipv6-opts", 60}, {"rspf", 73}, {"vmtp", 81}, {"eigrp", 88}, {"ospf", 89},
      {"ax.25", 93},  {"ipip", 94},      {"etherip", 97}, {"encap", 98}, {"pim", 103}, {"ipcomp", 108},
      {"vrrp", 112},  {"l2tp", 115},     {"isis", 124}, {"sctp", 132}, {"fc", 133},  {"mobility-header", 135},
      {"udplite", 136}, {"mpls-in-ip", 137}, {"manet", 138}, {"hip", 139}, {"shim6", 140}, {"wesp", 141},
      {"rohc", 142},
  };
  return m;
}

// /etc/services names for tcp/udp ports (the common ones).
const std::map<std::string, int>& Services() {
  static const std::map<std::string, int> m = {
      {"ftp-data", 20}, {"ftp", 21},      {"ssh", 22},        {"telnet", 23},   {"smtp", 25},    {"time", 37},
      {"whois", 43},    {"domain", 53},   {"bootps", 67},     {"bootpc", 68},   {"tftp", 69},    {"gopher", 70},
      {"finger", 79},   {"http", 80},     {"kerberos", 88},   {"pop3", 110},    {"sunrpc", 111}, {"auth", 113},
      {"nntp", 119},    {"ntp", 123},     {"epmap", 135},     {"netbios-ns", 137}, {"netbios-dgm", 138},
      {"netbios-ssn", 139}, {"imap2", 143}, {"imap", 143},    {"snmp", 161},    {"snmp-trap", 162}, {"bgp", 179},
      {"irc", 194},     {"ldap", 389},    {"https", 443},     {"microsoft-ds", 445}, {"submissions", 465},
      {"isakmp", 500},  {"syslog", 514},  {"printer", 515},   {"submission", 587}, {"ldaps", 636},
      {"rsync", 873},   {"ftps", 990},    {"imaps", 993},     {"pop3s", 995},   {"openvpn", 1194},
      {"ms-sql-s", 1433}, {"l2tp", 1701}, {"pptp", 1723},     {"nfs", 2049},    {"iscsi-target", 3260},
      {"mysql", 3306},  {"ms-wbt-server", 3389}, {"svn", 3690}, {"sip", 5060},  {"postgresql", 5432},
      {"x11", 6000},    {"http-alt", 8080}, {"webmin", 10000},
  };
  return m;
}

const std::set<std::string>& IcmpTypes(bool v6) {
  static const std::set<std::string> v4 = {
      "any", "echo-reply", "destination-unreachable", "network-unreachable", "host-unreachable",
      "protocol-unreachable", "port-unreachable", "fragmentation-needed", "source-route-failed", "network-unknown",
      "host-unknown", "network-prohibited", "host-prohibited", "TOS-network-unreachable", "TOS-host-unreachable",
      "communication-prohibited", "host-precedence-violation", "precedence-cutoff", "source-quench", "redirect",
      "network-redirect", "host-redirect", "TOS-network-redirect", "TOS-host-redirect", "echo-request",
      "router-advertisement", "router-solicitation", "time-exceeded", "ttl-zero-during-transit",
      "ttl-zero-during-reassembly", "parameter-problem", "ip-header-bad", "required-option-missing",
      "timestamp-request", "timestamp-reply", "address-mask-request", "address-mask-reply"};
  static const std::set<std::string> six = {
      "destination-unreachable", "no-route", "communication-prohibited", "beyond-scope", "address-unreachable",
      "port-unreachable", "failed-policy", "reject-route", "packet-too-big", "time-exceeded",
      "ttl-zero-during-transit", "ttl-zero-during-reassembly", "parameter-problem", "bad-header",
      "unknown-header-type", "unknown-option", "echo-request", "echo-reply", "router-solicitation",
      "router-advertisement", "neighbor-solicitation", "neighbour-solicitation", "neighbor-advertisement",
      "neighbour-advertisement", "redirect"};
  return v6 ? six : v4;
}

bool IsIcmpProto(const std::string& p) { return p == "icmp" || p == "icmpv6" || p == "ipv6-icmp" || p == "1" || p == "58"; }

bool ProtoHasPorts(const std::string& p) {
  static const std::set<std::string> with = {"tcp", "udp", "udplite", "dccp", "sctp", "6", "17", "33", "132", "136"};
  return with.count(p) > 0;
}

// [A-Za-z][A-Za-z0-9\-\_]+ of lengths lo..hi.
bool IsFwName(const std::string& s, size_t lo, size_t hi) {
  if (s.size() < lo || s.size() > hi || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; });
}

bool IsIfaceName(const std::string& s) {
  // pve-iface: ^[a-z][a-z0-9_]{1,20}([:\.]\d+)?$ (case-insensitive), length 2-20; and no
  // longer than the kernel's interface names (IFNAMSIZ - 1), which nftables enforces.
  if (s.size() < 2 || s.size() > 15 || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  size_t i = 1;
  while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_')) ++i;
  if (i == s.size()) return true;
  if (s[i] != ':' && s[i] != '.') return false;
  ++i;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  return true;
}

// One IP or CIDR: 4 or 6, 0 if neither.
int AddressFamily(const std::string& a) {
  if (IsIPv4(a) || IsCidr4(a)) return 4;
  if (IsIPv6(a) || IsCidr6(a)) return 6;
  return 0;
}

}  // namespace

const std::vector<std::string>& FwRuleFields() {
  static const std::vector<std::string> f = {"type", "action", "macro", "source", "dest", "proto", "dport",
                                             "sport", "icmp-type", "iface", "log", "enable", "comment"};
  return f;
}

const std::vector<std::string>& FwLogLevels() {
  static const std::vector<std::string> l = {"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", "nolog"};
  return l;
}

int FwProtocolNumber(const std::string& proto) {
  if (auto n = ParseUint(proto); n && *n <= 255 && !proto.empty()) return static_cast<int>(*n);
  auto it = Protocols().find(ToLower(proto));
  return it == Protocols().end() ? -1 : it->second;
}

bool IsFwIcmpType(const std::string& name, bool v6) { return IcmpTypes(v6).count(name) > 0; }

Result<std::vector<std::pair<int, int>>> ParseFwPorts(const std::string& spec) {
  std::vector<std::pair<int, int>> out;
  int count = 0;
  auto port = [](const std::string& p) -> std::optional<int> {
    if (auto n = ParseUint(p); n && !p.empty()) {
      if (*n > 65535) return std::nullopt;
      return static_cast<int>(*n);
    }
    auto it = Services().find(p);
    if (it == Services().end()) return std::nullopt;
    return it->second;
  };
  for (const auto& item : Split(spec, ',')) {
    if (item.empty()) return Fail(InvalidArgument("extraneous commas in list"));
    size_t colon = item.find(':');
    if (colon == std::string::npos) {
      auto p = port(item);
      if (!p) return Fail(InvalidArgument("invalid port '" + item + "'"));
      out.emplace_back(*p, *p);
      ++count;
    } else {
      std::string a = item.substr(0, colon), b = item.substr(colon + 1);
      auto pa = port(a), pb = port(b);
      if (!pa) return Fail(InvalidArgument("invalid port '" + a + "'"));
      if (!pb) return Fail(InvalidArgument("invalid port '" + b + "'"));
      if (*pa > *pb)
        return Fail(InvalidArgument("backwards range '" + item + "' not allowed, did you mean '" + b + ":" + a + "'?"));
      out.emplace_back(*pa, *pb);
      count += 2;
    }
  }
  if (count > 15) return Fail(InvalidArgument("too many entries in port list (> 15 numbers)"));
  return out;
}

Result<int> ParseFwAddress(const std::string& spec) {
  if (spec.empty()) return Fail(InvalidArgument("empty address"));
  if (spec[0] == '+') {
    if (spec.size() > 66) return Fail(InvalidArgument("ipset name too long"));
    return 0;
  }
  std::string alias = spec;
  if (StartsWith(alias, "dc/")) alias = alias.substr(3);
  else if (StartsWith(alias, "guest/")) alias = alias.substr(6);
  if (std::isalpha(static_cast<unsigned char>(alias[0])) && alias.find(':') == std::string::npos) {
    if (alias.size() > 64) return Fail(InvalidArgument("alias name too long"));
    if (!IsFwName(alias, 2, 64)) return Fail(InvalidArgument("invalid alias name '" + spec + "'"));
    return 0;
  }
  int family = 0;
  auto items = Split(spec, ',');
  for (const auto& item : items) {
    if (item.empty()) return Fail(InvalidArgument("extraneous commas in list"));
    int f = 0;
    if (size_t dash = item.find('-'); dash != std::string::npos) {
      if (items.size() > 1) return Fail(InvalidArgument("you can't use a range in a list"));
      std::string a = item.substr(0, dash), b = item.substr(dash + 1);
      int fa = IsIPv4(a) ? 4 : IsIPv6(a) ? 6 : 0, fb = IsIPv4(b) ? 4 : IsIPv6(b) ? 6 : 0;
      if (!fa || fb != fa) return Fail(InvalidArgument("invalid IP address: " + item));
      unsigned char x[16] = {}, y[16] = {};
      inet_pton(fa == 4 ? AF_INET : AF_INET6, a.c_str(), x);
      inet_pton(fa == 4 ? AF_INET : AF_INET6, b.c_str(), y);
      if (std::memcmp(x, y, fa == 4 ? 4 : 16) > 0)  // Net::IP: "Begin address is greater than end address"
        return Fail(InvalidArgument("invalid IP address: " + item + " (begin address is greater than end address)"));
      f = fa;
    } else {
      f = AddressFamily(item);
      if (!f) return Fail(InvalidArgument("invalid IP address: " + item));
    }
    if (family && f != family)
      return Fail(InvalidArgument("detected mixed ipv4/ipv6 addresses in address list '" + spec + "'"));
    family = f;
  }
  return family;
}

Status VerifyFwRule(FwRule& rule, FwEnv env, const FwRefs& refs) {
  auto err = [](const std::string& field, const std::string& text) { return Fail(FieldError(field, text)); };
  std::string type = rule.Get("type"), action = rule.Get("action");
  if (type.empty()) return err("type", "missing property");
  if (action.empty()) return err("action", "missing property");
  static const char* kEnvNames[] = {"cluster", "host", "vm", "group"};
  std::string env_name = kEnvNames[static_cast<int>(env)];
  bool allowed = type == "in" || type == "out" || (type == "group" && env != FwEnv::kGroup) ||
                 (type == "forward" && env != FwEnv::kVm);
  if (type == "group" && env == FwEnv::kGroup) return err("type", "security groups not allowed");
  if (!allowed) return err("type", "invalid rule type '" + type + "' for rule_env '" + env_name + "'");
  if (type == "group") {
    if (!IsFwName(action, 2, 18)) return err("action", "invalid characters in security group name");
  } else {
    if (type == "forward" && action == "REJECT") return err("action", "cannot define REJECT rules on forward chain");
    if (action != "ACCEPT" && action != "DROP" && action != "REJECT") return err("action", "unknown action '" + action + "'");
  }
  if (rule.Has("iface")) {
    if (env == FwEnv::kGroup) return err("type", "parameter -i not allowed for this rule type");
    std::string iface = rule.Get("iface");
    if (!IsIfaceName(iface)) return err("iface", "invalid network interface name '" + iface + "'");
    if (env == FwEnv::kVm && !(StartsWith(iface, "net") && ParseUint(iface.substr(3)) && iface.size() > 3))
      return err("iface", "value does not match the regex pattern 'net\\d+'");
  }
  if (rule.Has("log") && std::find(FwLogLevels().begin(), FwLogLevels().end(), rule.Get("log")) == FwLogLevels().end())
    return err("log", "value '" + rule.Get("log") + "' does not have a value in the enumeration 'emerg, alert, crit, err, "
                                                    "warning, notice, info, debug, nolog'");
  const FwMacro* macro = nullptr;
  if (rule.Has("macro")) {
    macro = FindFwMacro(rule.Get("macro"));
    if (!macro) return err("macro", "unknown macro '" + rule.Get("macro") + "'");
    rule.f["macro"] = macro->name;
  }
  std::string proto = rule.Get("proto");
  if (!proto.empty() && FwProtocolNumber(proto) < 0) return err("proto", "unknown protocol '" + proto + "'");
  int ipversion = 0;
  if (proto == "icmp") ipversion = 4;
  if (proto == "icmpv6" || proto == "ipv6-icmp") ipversion = 6;
  for (const char* key : {"dport", "sport"}) {
    if (!rule.Has(key)) continue;
    std::string spec = rule.Get(key);
    if (std::string(key) == "dport" && IsIcmpProto(proto)) {
      // The legacy spelling of icmp-type.
      if (!IsFwIcmpType(spec, proto != "icmp" && proto != "1")) return err("dport", "invalid port '" + spec + "'");
      continue;
    }
    if (auto p = ParseFwPorts(spec); !p) return err(key, p.error().message);
    if (proto.empty()) return err("proto", std::string("missing property - '") + key + "' requires this property");
    if (!ProtoHasPorts(ToLower(proto))) return err(key, "protocol '" + proto + "' does not support ports");
  }
  if (rule.Has("icmp-type")) {
    std::string t = rule.Get("icmp-type");
    if (!IsIcmpProto(proto)) return err("proto", "missing property - 'icmp-type' requires this property");
    if (rule.Has("dport")) return err("icmp-type", "'icmp-type' cannot be specified together with 'dport'");
    if (!IsFwIcmpType(t, proto != "icmp" && proto != "1")) return err("icmp-type", "invalid icmp-type '" + t + "' for proto '" + proto + "'");
  }
  for (const char* key : {"source", "dest"}) {
    if (!rule.Has(key)) continue;
    std::string spec = rule.Get(key);
    if (spec.size() > 512) return err(key, "value may only be 512 characters long");
    auto family = ParseFwAddress(spec);
    if (!family) return err(key, "invalid format - " + family.error().message);
    if (*family) {
      if (ipversion && *family != ipversion) return err(key, "detected mixed ipv4/ipv6 addresses in rule");
      ipversion = *family;
    } else if (spec[0] == '+') {
      std::string name = spec.substr(1);
      for (const char* scope : {"dc/", "guest/"})
        if (StartsWith(name, scope)) name = name.substr(std::string(scope).size());
      if (!IsFwName(name, 2, 64)) return err(key, "invalid ipset name '" + spec + "'");
      if (std::find(refs.ipsets.begin(), refs.ipsets.end(), name) == refs.ipsets.end())
        return err(key, "no such ipset '" + name + "'");
    } else {
      std::string name = spec;
      for (const char* scope : {"dc/", "guest/"})
        if (StartsWith(name, scope)) name = name.substr(std::string(scope).size());
      if (std::find(refs.aliases.begin(), refs.aliases.end(), ToLower(name)) == refs.aliases.end())
        return err(key, "no such alias '" + spec + "'");
    }
  }
  if (macro) {
    // A field the macro fixes may be repeated only with the same value (Proxmox's "sic").
    const auto& templ = macro->v4.empty() ? macro->v6 : macro->v4;
    for (const auto& t : templ)
      for (const auto& [k, v] : {std::pair<std::string, std::string>{"proto", t.proto}, {"dport", t.dport}, {"sport", t.sport}})
        if (!v.empty() && rule.Has(k) && rule.Get(k) != v)
          return err(k, "parameter '" + k + "' already define in macro (value = '" + v + "')");
  }
  if (ipversion) rule.f["ipversion"] = std::to_string(ipversion);
  else rule.f.erase("ipversion");
  return Ok();
}

std::string FwDigest(const std::vector<FwFields>& items) {
  std::string text;
  for (const auto& item : items) {
    for (const auto& [k, v] : item) text += k + ":" + v + "\n";
    text += "\n";
  }
  return ConfDigest(text);
}

}  // namespace hearth

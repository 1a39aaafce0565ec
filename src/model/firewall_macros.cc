// The firewall macros (Proxmox's $pve_fw_macros and $pve_ipv6fw_macros, imported by pve-firewall
// from shorewall's macro files; names, descriptions and expansions as src/PVE/Firewall.pm) and
// the option schemas of each level (docs/reference/pve-firewall.md §3).
#include <algorithm>

#include "core/strings.h"
#include "model/firewall.h"

namespace hearth {
namespace {

// name, description, IPv4 rules, IPv6 rules if different, IPv6 only. A rule is
// "<proto>[ <dport>][ sport=<sport>]"; rules are separated by ';'.
struct MacroRow {
  const char* name;
  const char* descr;
  const char* v4;
  const char* v6;
  bool v6_only = false;
};

const MacroRow kMacros[] = {
    {"Amanda", "Amanda Backup", "udp 10080;tcp 10080", ""},
    {"Auth", "Auth (identd) traffic", "tcp 113", ""},
    {"BGP", "Border Gateway Protocol traffic", "tcp 179", ""},
    {"BitTorrent", "BitTorrent traffic for BitTorrent 3.1 and earlier", "tcp 6881:6889;udp 6881", ""},
    {"BitTorrent32", "BitTorrent traffic for BitTorrent 3.2 and later", "tcp 6881:6999;udp 6881", ""},
    {"Ceph", "Ceph Storage Cluster traffic (Ceph Monitors, OSD & MDS Daemons)", "tcp 6789;tcp 3300;tcp 6800:7300", ""},
    {"CVS", "Concurrent Versions System pserver traffic", "tcp 2401", ""},
    {"Citrix", "Citrix/ICA traffic (ICA, ICA Browser, CGP)", "tcp 1494;udp 1604;tcp 2598", ""},
    {"DAAP", "Digital Audio Access Protocol traffic (iTunes, Rythmbox daemons)", "tcp 3689;udp 3689", ""},
    {"DCC", "Distributed Checksum Clearinghouse spam filtering mechanism", "tcp 6277", ""},
    {"DHCPfwd", "Forwarded DHCP traffic", "udp 67:68 sport=67:68", ""},
    {"DNS", "Domain Name System traffic (upd and tcp)", "udp 53;tcp 53", ""},
    {"Distcc", "Distributed Compiler service", "tcp 3632", ""},
    {"FTP", "File Transfer Protocol", "tcp 21", ""},
    {"Finger", "Finger protocol (RFC 742)", "tcp 79", ""},
    {"GNUnet", "GNUnet secure peer-to-peer networking traffic", "tcp 2086;udp 2086;tcp 1080;udp 1080", ""},
    {"GRE", "Generic Routing Encapsulation tunneling protocol", "47", ""},
    {"Git", "Git distributed revision control traffic", "tcp 9418", ""},
    {"HKP", "OpenPGP HTTP key server protocol traffic", "tcp 11371", ""},
    {"HTTP", "Hypertext Transfer Protocol (WWW)", "tcp 80", ""},
    {"HTTPS", "Hypertext Transfer Protocol (WWW) over SSL", "tcp 443", ""},
    {"ICPV2", "Internet Cache Protocol V2 (Squid) traffic", "udp 3130", ""},
    {"ICQ", "AOL Instant Messenger traffic", "tcp 5190", ""},
    {"IMAP", "Internet Message Access Protocol", "tcp 143", ""},
    {"IMAPS", "Internet Message Access Protocol over SSL", "tcp 993", ""},
    {"IPIP", "IPIP capsulation traffic", "94", ""},
    {"IPsec", "IPsec traffic", "udp 500 sport=500;50", ""},
    {"IPsecah", "IPsec authentication (AH) traffic", "udp 500 sport=500;51", ""},
    {"IPsecnat", "IPsec traffic and Nat-Traversal", "udp 500;udp 4500;50", ""},
    {"IRC", "Internet Relay Chat traffic", "tcp 6667", ""},
    {"Jetdirect", "HP Jetdirect printing", "tcp 9100", ""},
    {"L2TP", "Layer 2 Tunneling Protocol traffic", "udp 1701", ""},
    {"LDAP", "Lightweight Directory Access Protocol traffic", "tcp 389", ""},
    {"LDAPS", "Secure Lightweight Directory Access Protocol traffic", "tcp 636", ""},
    {"MSNP", "Microsoft Notification Protocol", "tcp 1863", ""},
    {"MSSQL", "Microsoft SQL Server", "tcp 1433", ""},
    {"Mail", "Mail traffic (SMTP, SMTPS, Submission)", "tcp 25;tcp 465;tcp 587", ""},
    {"MDNS", "Multicast DNS", "udp 5353", ""},
    {"Munin", "Munin networked resource monitoring traffic", "tcp 4949", ""},
    {"MySQL", "MySQL server", "tcp 3306", ""},
    {"NNTP", "NNTP traffic (Usenet).", "tcp 119", ""},
    {"NNTPS", "Encrypted NNTP traffic (Usenet)", "tcp 563", ""},
    {"NTP", "Network Time Protocol (ntpd)", "udp 123", ""},
    {"OSPF", "OSPF multicast traffic", "89", ""},
    {"OpenVPN", "OpenVPN traffic", "udp 1194", ""},
    {"PCA", "Symantec PCAnywere (tm)", "udp 5632;tcp 5631", ""},
    {"PMG", "Proxmox Mail Gateway web interface", "tcp 8006", ""},
    {"POP3", "POP3 traffic", "tcp 110", ""},
    {"POP3S", "Encrypted POP3 traffic", "tcp 995", ""},
    {"PPtP", "Point-to-Point Tunneling Protocol", "47;tcp 1723", ""},
    {"Ping", "ICMP echo request", "icmp echo-request", "icmpv6 echo-request"},
    {"PostgreSQL", "PostgreSQL server", "tcp 5432", ""},
    {"Printer", "Line Printer protocol printing", "tcp 515", ""},
    {"RDP", "Microsoft Remote Desktop Protocol traffic", "tcp 3389", ""},
    {"RIP", "Routing Information Protocol (bidirectional)", "udp 520", ""},
    {"RNDC", "BIND remote management protocol", "tcp 953", ""},
    {"Razor", "Razor Antispam System", "tcp 2703", ""},
    {"Rdate", "Remote time retrieval (rdate)", "tcp 37", ""},
    {"Rsync", "Rsync server", "tcp 873", ""},
    {"SANE", "SANE network scanning", "tcp 6566", ""},
    {"SMB", "Microsoft SMB traffic", "udp 135,445;udp 137:139;udp 1024:65535 sport=137;tcp 135,139,445", ""},
    {"SMBswat", "Samba Web Administration Tool", "tcp 901", ""},
    {"SMTP", "Simple Mail Transfer Protocol", "tcp 25", ""},
    {"SMTPS", "Encrypted Simple Mail Transfer Protocol", "tcp 465", ""},
    {"SNMP", "Simple Network Management Protocol", "udp 161:162;tcp 161", ""},
    {"SPAMD", "Spam Assassin SPAMD traffic", "tcp 783", ""},
    {"SSH", "Secure shell traffic", "tcp 22", ""},
    {"SVN", "Subversion server (svnserve)", "tcp 3690", ""},
    {"SixXS", "SixXS IPv6 Deployment and Tunnel Broker", "tcp 3874;udp 3740;41;udp 5072,8374", ""},
    {"SPICEproxy", "Proxmox VE SPICE display proxy traffic", "tcp 3128", ""},
    {"Squid", "Squid web proxy traffic", "tcp 3128", ""},
    {"Submission", "Mail message submission traffic", "tcp 587", ""},
    {"Syslog", "Syslog protocol (RFC 5424) traffic", "udp 514;tcp 514", ""},
    {"TFTP", "Trivial File Transfer Protocol traffic", "udp 69", ""},
    {"Telnet", "Telnet traffic", "tcp 23", ""},
    {"Telnets", "Telnet over SSL", "tcp 992", ""},
    {"Time", "RFC 868 Time protocol", "tcp 37", ""},
    {"Trcrt", "Traceroute (for up to 30 hops) traffic", "udp 33434:33524;icmp echo-request", "udp 33434:33524;icmpv6 echo-request"},
    {"VNC", "VNC traffic for VNC display's 0 - 99", "tcp 5900:5999", ""},
    {"VNCL", "VNC traffic from Vncservers to Vncviewers in listen mode", "tcp 5500", ""},
    {"Web", "WWW traffic (HTTP and HTTPS)", "tcp 80;tcp 443", ""},
    {"Webcache", "Web Cache/Proxy traffic (port 8080)", "tcp 8080", ""},
    {"Webmin", "Webmin traffic", "tcp 10000", ""},
    {"Whois", "Whois (nicname, RFC 3912) traffic", "tcp 43", ""},
    {"NeighborDiscovery", "IPv6 neighbor solicitation, neighbor and router advertisement", "", "icmpv6 router-solicitation;icmpv6 router-advertisement;icmpv6 neighbor-solicitation;icmpv6 neighbor-advertisement", true},
    {"DHCPv6", "DHCPv6 traffic", "", "udp 546:547 sport=546:547", true},
};

std::vector<FwMacroRule> ParseRules(const std::string& text) {
  std::vector<FwMacroRule> out;
  for (const auto& r : Split(text, ';')) {
    if (r.empty()) continue;
    FwMacroRule m;
    auto words = Split(r, ' ');
    m.proto = words[0];
    for (size_t i = 1; i < words.size(); ++i) {
      if (StartsWith(words[i], "sport=")) m.sport = words[i].substr(6);
      else m.dport = words[i];
    }
    out.push_back(m);
  }
  return out;
}

// key -> kind: "bool", "int:<min>[:<max>]", "enum:<a,b,c>", "loglevel", "ratelimit", "helpers".
using OptionSchema = std::vector<std::pair<std::string, std::string>>;

const OptionSchema& Schema(FwEnv env) {
  static const OptionSchema cluster = {
      {"enable", "int:0"},        {"policy_in", "enum:ACCEPT,REJECT,DROP"}, {"policy_out", "enum:ACCEPT,REJECT,DROP"},
      {"policy_forward", "enum:ACCEPT,DROP"}, {"ebtables", "bool"},        {"log_ratelimit", "ratelimit"}};
  static const OptionSchema host = {
      {"enable", "bool"},
      {"log_level_in", "loglevel"},
      {"log_level_out", "loglevel"},
      {"log_level_forward", "loglevel"},
      {"tcp_flags_log_level", "loglevel"},
      {"smurf_log_level", "loglevel"},
      {"nosmurfs", "bool"},
      {"tcpflags", "bool"},
      {"ndp", "bool"},
      {"nf_conntrack_max", "int:32768"},
      {"nf_conntrack_tcp_timeout_established", "int:7875"},
      {"nf_conntrack_tcp_timeout_syn_recv", "int:30:60"},
      {"nf_conntrack_allow_invalid", "bool"},
      {"nf_conntrack_helpers", "helpers"},
      {"protection_synflood", "bool"},
      {"protection_synflood_rate", "int:0"},
      {"protection_synflood_burst", "int:0"},
      {"log_nf_conntrack", "bool"},
      {"nftables", "bool"}};
  static const OptionSchema vm = {
      {"enable", "bool"},          {"dhcp", "bool"},       {"ndp", "bool"},        {"radv", "bool"},
      {"macfilter", "bool"},       {"ipfilter", "bool"},   {"policy_in", "enum:ACCEPT,REJECT,DROP"},
      {"policy_out", "enum:ACCEPT,REJECT,DROP"},           {"log_level_in", "loglevel"}, {"log_level_out", "loglevel"}};
  static const OptionSchema none;
  switch (env) {
    case FwEnv::kCluster: return cluster;
    case FwEnv::kHost: return host;
    case FwEnv::kVm: return vm;
    default: return none;
  }
}

std::string CheckOption(const std::string& kind, const std::string& v) {
  if (kind == "bool") return v == "0" || v == "1" ? "" : "type check ('boolean') failed - got '" + v + "'";
  if (StartsWith(kind, "int:")) {
    auto n = ParseInt(v);
    if (!n) return "type check ('integer') failed - got '" + v + "'";
    auto bounds = Split(kind.substr(4), ':');
    if (*n < *ParseInt(bounds[0])) return "value must have a minimum value of " + bounds[0];
    if (bounds.size() > 1 && *n > *ParseInt(bounds[1])) return "value must have a maximum value of " + bounds[1];
    return "";
  }
  if (StartsWith(kind, "enum:") || kind == "loglevel") {
    auto values = kind == "loglevel" ? FwLogLevels() : Split(kind.substr(5), ',');
    if (std::find(values.begin(), values.end(), v) != values.end()) return "";
    return "value '" + v + "' does not have a value in the enumeration '" + Join(values, ", ") + "'";
  }
  if (kind == "helpers") {
    static const std::vector<std::string> known = {"amanda", "ftp", "irc", "netbios-ns", "pptp", "sane", "sip", "snmp", "tftp"};
    for (const auto& h : SplitAny(v, ",; "))
      if (!h.empty() && std::find(known.begin(), known.end(), h) == known.end()) return "invalid format - unknown helper " + h;
    return "";
  }
  if (kind == "ratelimit") {
    // [enable=]<bool>,rate=<n>/(second|minute|hour|day),burst=<n>
    for (const auto& part : Split(v, ',')) {
      size_t eq = part.find('=');
      std::string k = eq == std::string::npos ? "enable" : part.substr(0, eq), val = eq == std::string::npos ? part : part.substr(eq + 1);
      if (k == "enable" && (val == "0" || val == "1")) continue;
      if (k == "burst" && ParseUint(val)) continue;
      if (k == "rate") {
        size_t slash = val.find('/');
        auto n = ParseUint(val.substr(0, slash));
        std::string unit = slash == std::string::npos ? "" : val.substr(slash + 1);
        if (n && *n > 0 && (unit == "second" || unit == "minute" || unit == "hour" || unit == "day")) continue;
      }
      return "invalid format - format error " + k + ": value '" + val + "' is not valid";
    }
    return "";
  }
  return "";
}

}  // namespace

const std::vector<FwMacro>& FwMacros() {
  static const std::vector<FwMacro> macros = [] {
    std::vector<FwMacro> out;
    for (const auto& row : kMacros) {
      FwMacro m{row.name, row.descr, ParseRules(row.v4), ParseRules(row.v6), row.v6_only};
      out.push_back(std::move(m));
    }
    return out;
  }();
  return macros;
}

const FwMacro* FindFwMacro(const std::string& name) {
  std::string want = ToLower(name);
  for (const auto& m : FwMacros())
    if (ToLower(m.name) == want) return &m;
  return nullptr;
}

std::vector<std::string> FwOptionKeys(FwEnv env) {
  std::vector<std::string> out;
  for (const auto& [k, kind] : Schema(env)) out.push_back(k);
  return out;
}

bool FwOptionIsNumber(FwEnv env, const std::string& key) {
  for (const auto& [k, kind] : Schema(env))
    if (k == key) return kind == "bool" || StartsWith(kind, "int:");
  return false;
}

Status VerifyFwOptions(FwEnv env, const FwFields& options) {
  for (const auto& [k, v] : options) {
    const auto& schema = Schema(env);
    auto it = std::find_if(schema.begin(), schema.end(), [&](const auto& e) { return e.first == k; });
    if (it == schema.end()) return Fail(FieldError(k, "property is not defined in schema and the schema does not allow additional properties"));
    if (std::string e = CheckOption(it->second, v); !e.empty()) return Fail(FieldError(k, e));
  }
  return Ok();
}

}  // namespace hearth

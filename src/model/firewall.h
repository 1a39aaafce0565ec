// The firewall configuration as Proxmox's pve-firewall API sees it (src/PVE/Firewall.pm;
// facts and sources in docs/reference/pve-firewall.md): rules with their fields and checks,
// the options of each level, and the macros. Pure: no I/O; the compiler to nftables lives in
// src/firewall/.
//
// A rule is kept as Proxmox's field map (type, action, macro, source, dest, proto, dport,
// sport, icmp-type, iface, log, enable, comment), as the API reads and writes it; VerifyFwRule
// normalises it (the macro's canonical spelling) and refuses it with the first error, on the
// field Proxmox names, in its words.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace hearth {

// Where a rule or an option set lives: datacenter, node, VM, security group.
enum class FwEnv { kCluster, kHost, kVm, kGroup };

using FwFields = std::map<std::string, std::string>;

struct FwRule {
  FwFields f;  // the stored fields; "enable" is "0" or "1"
  std::string Get(const std::string& k) const {
    auto it = f.find(k);
    return it == f.end() ? std::string() : it->second;
  }
  bool Has(const std::string& k) const { return f.count(k) > 0; }
  bool Enabled() const { return Get("enable") == "1"; }
};

// The rule fields a request may set (`$rule_properties` without pos/digest).
const std::vector<std::string>& FwRuleFields();

// What a rule may refer to: the ipsets and aliases that exist where it is evaluated
// (lower-cased alias names; ipset names as stored).
struct FwRefs {
  std::vector<std::string> ipsets, aliases;
};

// verify_rule (FW:1740), in its order: the first error as FieldError(field, text). Sets the
// macro's canonical spelling. `enable` is left as given.
Status VerifyFwRule(FwRule& rule, FwEnv env, const FwRefs& refs);

// One port spec ("22", "80,443", "6000:6010", "ssh"): ranges as (from, to). Errors as
// Proxmox's parse_port_name_number_or_range.
Result<std::vector<std::pair<int, int>>> ParseFwPorts(const std::string& spec);
// The protocol number of a name from /etc/protocols (the common ones) or a number 0-255, or -1.
int FwProtocolNumber(const std::string& proto);
// The ICMP (v6 = false) or ICMPv6 type names Proxmox accepts.
bool IsFwIcmpType(const std::string& name, bool v6);

// One address spec (source/dest): "+ipset", "[dc/|guest/]alias", or IPs/CIDRs ("a,b") or one
// range ("a-b"). 4 or 6 for literal addresses, 0 for references; error texts as Proxmox.
Result<int> ParseFwAddress(const std::string& spec);

// A macro: its description and the rules it expands to, per family.
struct FwMacroRule {
  std::string proto, dport, sport;
};
struct FwMacro {
  std::string name, descr;
  std::vector<FwMacroRule> v4, v6;  // v6 empty and !v6_only: same as v4 (with icmp -> icmpv6 none)
  bool v6_only = false;
};
const std::vector<FwMacro>& FwMacros();
// Case-insensitive lookup, as Proxmox.
const FwMacro* FindFwMacro(const std::string& name);

// The options of each level: key -> allowed values ("bool", "int:<min>", "enum:a,b,c",
// "loglevel", "string"). VerifyFwOptions checks a set of given options.
Status VerifyFwOptions(FwEnv env, const FwFields& options);
std::vector<std::string> FwOptionKeys(FwEnv env);
bool FwOptionIsNumber(FwEnv env, const std::string& key);

// The log levels (syslog names) and their numbers, as the rule `log` field.
const std::vector<std::string>& FwLogLevels();

// SHA-1 hex digest of a list of field maps (copy_list_with_digest): stable for equal content.
std::string FwDigest(const std::vector<FwFields>& items);

}  // namespace hearth

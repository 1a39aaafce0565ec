#include "model/firewall.h"

#include <gtest/gtest.h>

namespace hearth {
namespace {

FwRule Rule(FwFields f) { return FwRule{std::move(f)}; }

// The first error's field and text, or "ok".
std::string Verify(FwFields f, FwEnv env = FwEnv::kCluster, FwRefs refs = {}) {
  FwRule r = Rule(std::move(f));
  auto done = VerifyFwRule(r, env, refs);
  if (done) return "ok";
  const auto& [field, text] = *done.error().fields.begin();
  return field + ": " + text;
}

TEST(Firewall, RulesAreCheckedInProxmoxsOrderAndWords) {
  EXPECT_EQ(Verify({{"action", "ACCEPT"}}), "type: missing property");
  EXPECT_EQ(Verify({{"type", "in"}}), "action: missing property");
  EXPECT_EQ(Verify({{"type", "forward"}, {"action", "ACCEPT"}}, FwEnv::kVm), "type: invalid rule type 'forward' for rule_env 'vm'");
  EXPECT_EQ(Verify({{"type", "forward"}, {"action", "REJECT"}}), "action: cannot define REJECT rules on forward chain");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "accept"}}), "action: unknown action 'accept'");
  EXPECT_EQ(Verify({{"type", "group"}, {"action", "web"}}, FwEnv::kGroup), "type: security groups not allowed");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "DROP"}, {"iface", "eth0"}}, FwEnv::kVm),
            "iface: value does not match the regex pattern 'net\\d+'");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "DROP"}, {"macro", "NoSuch"}}), "macro: unknown macro 'NoSuch'");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "DROP"}, {"proto", "tcpx"}}), "proto: unknown protocol 'tcpx'");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "DROP"}, {"dport", "22"}}), "proto: missing property - 'dport' requires this property");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "DROP"}, {"proto", "gre"}, {"dport", "22"}}), "dport: protocol 'gre' does not support ports");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "DROP"}, {"proto", "tcp"}, {"dport", "70000"}}), "dport: invalid port '70000'");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "DROP"}, {"proto", "tcp"}, {"dport", "90:80"}}),
            "dport: backwards range '90:80' not allowed, did you mean '80:90'?");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "DROP"}, {"proto", "tcp"}, {"dport", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16"}}),
            "dport: too many entries in port list (> 15 numbers)");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "DROP"}, {"proto", "tcp"}, {"icmp-type", "echo-request"}}),
            "proto: missing property - 'icmp-type' requires this property");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "DROP"}, {"proto", "icmp"}, {"icmp-type", "neighbor-solicitation"}}),
            "icmp-type: invalid icmp-type 'neighbor-solicitation' for proto 'icmp'");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "DROP"}, {"source", "10.0.0.1,fd00::1"}}),
            "source: invalid format - detected mixed ipv4/ipv6 addresses in address list '10.0.0.1,fd00::1'");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "DROP"}, {"source", "10.0.0.1"}, {"dest", "fd00::/64"}}),
            "dest: detected mixed ipv4/ipv6 addresses in rule");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "DROP"}, {"source", "10.0.0.1/33"}}), "source: invalid format - invalid IP address: 10.0.0.1/33");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "DROP"}, {"source", "10.0.0.1-10.0.0.9,10.1.1.1"}}),
            "source: invalid format - you can't use a range in a list");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "DROP"}, {"source", "10.0.0.5-10.0.0.1"}}),
            "source: invalid format - invalid IP address: 10.0.0.5-10.0.0.1 (begin address is greater than end address)");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "DROP"}, {"iface", "abcdefghijklmnop"}}),
            "iface: invalid network interface name 'abcdefghijklmnop'");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "DROP"}, {"source", "+blocked"}}), "source: no such ipset 'blocked'");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "DROP"}, {"source", "+blocked"}}, FwEnv::kCluster, {{"blocked"}, {}}), "ok");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "DROP"}, {"dest", "dc/lan"}}), "dest: no such alias 'dc/lan'");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "ACCEPT"}, {"macro", "SSH"}, {"proto", "udp"}}),
            "proto: parameter 'proto' already define in macro (value = 'tcp')");
}

TEST(Firewall, GoodRulesPassAndAreNormalised) {
  FwRule r = Rule({{"type", "in"}, {"action", "ACCEPT"}, {"macro", "ssh"}, {"source", "192.168.1.0/24"}});
  ASSERT_TRUE(VerifyFwRule(r, FwEnv::kHost, {}));
  EXPECT_EQ(r.Get("macro"), "SSH");
  EXPECT_EQ(r.Get("ipversion"), "4");
  EXPECT_EQ(Verify({{"type", "out"}, {"action", "REJECT"}, {"proto", "tcp"}, {"dport", "80,443,8000:8010"}, {"sport", "http"}}), "ok");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "ACCEPT"}, {"proto", "icmp"}, {"icmp-type", "echo-request"}}), "ok");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "ACCEPT"}, {"proto", "icmpv6"}, {"dport", "neighbor-solicitation"}}), "ok");
  EXPECT_EQ(Verify({{"type", "group"}, {"action", "webservers"}, {"iface", "net0"}}, FwEnv::kVm), "ok");
  EXPECT_EQ(Verify({{"type", "in"}, {"action", "DROP"}, {"source", "10.0.0.1-10.0.0.9"}, {"log", "info"}}), "ok");
}

TEST(Firewall, MacrosAreProxmoxs) {
  EXPECT_EQ(FwMacros().size(), 86u);
  const FwMacro* ssh = FindFwMacro("sSh");
  ASSERT_NE(ssh, nullptr);
  EXPECT_EQ(ssh->descr, "Secure shell traffic");
  ASSERT_EQ(ssh->v4.size(), 1u);
  EXPECT_EQ(ssh->v4[0].proto, "tcp");
  EXPECT_EQ(ssh->v4[0].dport, "22");
  const FwMacro* ping = FindFwMacro("Ping");
  EXPECT_EQ(ping->v4[0].proto, "icmp");
  EXPECT_EQ(ping->v6[0].proto, "icmpv6");
  EXPECT_TRUE(FindFwMacro("DHCPv6")->v6_only);
  const FwMacro* ceph = FindFwMacro("Ceph");
  EXPECT_EQ(ceph->v4.size(), 3u);
}

TEST(Firewall, OptionsPerLevel) {
  EXPECT_TRUE(VerifyFwOptions(FwEnv::kCluster, {{"enable", "1"}, {"policy_in", "DROP"}, {"log_ratelimit", "enable=1,rate=1/second,burst=5"}}));
  auto bad = VerifyFwOptions(FwEnv::kCluster, {{"policy_in", "drop"}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().fields.at("policy_in"), "value 'drop' does not have a value in the enumeration 'ACCEPT, REJECT, DROP'");
  EXPECT_FALSE(VerifyFwOptions(FwEnv::kCluster, {{"policy_forward", "REJECT"}}));
  EXPECT_FALSE(VerifyFwOptions(FwEnv::kHost, {{"nf_conntrack_max", "100"}}));
  EXPECT_FALSE(VerifyFwOptions(FwEnv::kVm, {{"policy_forward", "ACCEPT"}}));
  EXPECT_TRUE(VerifyFwOptions(FwEnv::kVm, {{"enable", "1"}, {"macfilter", "0"}, {"log_level_in", "info"}}));
  EXPECT_TRUE(FwOptionIsNumber(FwEnv::kVm, "enable"));
  EXPECT_FALSE(FwOptionIsNumber(FwEnv::kVm, "policy_in"));
}

}  // namespace
}  // namespace hearth

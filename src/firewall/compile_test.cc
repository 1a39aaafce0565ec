#include "firewall/compile.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "firewall/nft_backend.h"

namespace hearth {
namespace {

FwRule Rule(FwFields f) {
  f.emplace("enable", "1");
  FwRule r{std::move(f)};
  EXPECT_TRUE(VerifyFwRule(r, FwEnv::kCluster, {}));
  return r;
}

bool Has(const std::string& script, const std::string& line) { return script.find(line) != std::string::npos; }

FwInputs Lab() {
  FwInputs in;
  in.cluster_options = {{"enable", "1"}};
  in.host_rules = {Rule({{"type", "in"}, {"action", "ACCEPT"}, {"macro", "SSH"}, {"source", "192.168.1.0/24"}})};
  in.cluster_rules = {Rule({{"type", "in"}, {"action", "ACCEPT"}, {"macro", "Ping"}}),
                      Rule({{"type", "in"}, {"action", "DROP"}, {"proto", "tcp"}, {"dport", "8000:8010"}, {"log", "info"}}),
                      Rule({{"type", "in"}, {"action", "ACCEPT"}, {"proto", "udp"}, {"dport", "53"}, {"enable", "0"}})};
  in.cluster_rules.back().f["enable"] = "0";
  FwVm vm;
  vm.vmid = 100;
  vm.options = {{"enable", "1"}};
  vm.rules = {Rule({{"type", "in"}, {"action", "ACCEPT"}, {"macro", "HTTP"}}),
              Rule({{"type", "out"}, {"action", "DROP"}, {"dest", "10.0.0.0/8"}})};
  vm.nics = {{100, 0, "BC:24:11:00:00:01"}};
  in.vms = {vm};
  in.local_networks = {"192.168.1.0/24"};
  in.management_ports = {8006, 22};
  return in;
}

TEST(FirewallCompile, OffRemovesHearthsTablesOnly) {
  FwInputs in;
  EXPECT_EQ(CompileFirewall(in),
            "add table inet hearth\ndelete table inet hearth\nadd table bridge hearth\ndelete table bridge hearth\n");
}

TEST(FirewallCompile, NodeRulesThenDatacenterRulesThenManagementThenPolicy) {
  std::string s = CompileFirewall(Lab());
  size_t ssh = s.find("ip saddr { 192.168.1.0/24 } meta l4proto 6 th dport { 22 } accept");
  size_t ping = s.find("meta l4proto 1 icmp type echo-request accept");
  size_t ping6 = s.find("meta nfproto ipv6 meta l4proto 58 icmpv6 type echo-request accept");
  size_t drop = s.find("meta l4proto 6 th dport { 8000-8010 } log prefix \":0:6:input:DROP: \" level info drop");
  size_t mgmt = s.find("ip saddr { 192.168.1.0/24 } tcp dport { 8006, 22 } accept");
  size_t policy = s.find("    drop\n  }");
  ASSERT_NE(ssh, std::string::npos) << s;
  ASSERT_NE(ping, std::string::npos) << s;
  ASSERT_NE(ping6, std::string::npos) << s;
  ASSERT_NE(drop, std::string::npos) << s;
  ASSERT_NE(mgmt, std::string::npos) << s;
  ASSERT_NE(policy, std::string::npos) << s;
  EXPECT_LT(ssh, ping);
  EXPECT_LT(ping, drop);
  EXPECT_LT(drop, mgmt);
  EXPECT_LT(mgmt, policy);
  EXPECT_FALSE(Has(s, "th dport { 53 }")) << "a disabled rule is not compiled";
}

TEST(FirewallCompile, GuestNicsAreMarkedOnTheBridgeAndFilteredInTheirChains) {
  std::string s = CompileFirewall(Lab());
  EXPECT_TRUE(Has(s, "iifname \"tap100i0\" meta mark set meta mark & 0x0000ffff | 0x00010000")) << s;
  EXPECT_TRUE(Has(s, "oifname \"tap100i0\" meta mark set meta mark & 0xffff0000 | 0x00000001")) << s;
  EXPECT_TRUE(Has(s, "iifname \"tap100i0\" ether saddr != bc:24:11:00:00:01 drop")) << s;
  EXPECT_TRUE(Has(s, "meta mark & 0x0000ffff == 0x00000001 jump tap100i0-in")) << s;
  // In: HTTP accepted, the rest dropped (the VM's policy_in default).
  size_t in = s.find("chain tap100i0-in {");
  size_t out = s.find("chain tap100i0-out {");
  ASSERT_NE(in, std::string::npos);
  ASSERT_NE(out, std::string::npos);
  std::string in_chain = s.substr(in, s.find("\n  }", in) - in) + "\n", out_chain = s.substr(out, s.find("\n  }", out) - out) + "\n";
  EXPECT_TRUE(Has(in_chain, "meta l4proto 6 th dport { 80 } accept")) << in_chain;
  EXPECT_TRUE(Has(in_chain, "udp sport 67 udp dport 68 accept")) << in_chain;
  EXPECT_TRUE(Has(in_chain, "    drop\n")) << in_chain;
  // Out: an accepted packet goes on to the receiving NIC's rules (return), the default is ACCEPT.
  EXPECT_TRUE(Has(out_chain, "ip daddr { 10.0.0.0/8 } drop")) << out_chain;
  EXPECT_TRUE(Has(out_chain, "udp sport 68 udp dport 67 return")) << out_chain;
  EXPECT_TRUE(Has(out_chain, "icmpv6 type nd-router-advert drop")) << out_chain;
  EXPECT_FALSE(Has(out_chain, "    drop\n")) << out_chain;
}

TEST(FirewallCompile, AVmWithoutItsFirewallEnabledIsNotFiltered) {
  FwInputs in = Lab();
  in.vms[0].options["enable"] = "0";
  std::string s = CompileFirewall(in);
  EXPECT_FALSE(Has(s, "tap100i0")) << s;
  EXPECT_FALSE(Has(s, "table bridge hearth {")) << s;
}

// The kernel accepts what the compiler writes (a dry run: nothing changes). Needs root.
TEST(FirewallCompile, TheKernelAcceptsTheScript) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_NET_ADMIN) for nftables";
  LibNftables nft;
  auto checked = nft.Check(CompileFirewall(Lab()));
  EXPECT_TRUE(checked) << checked.error().message << "\n" << CompileFirewall(Lab());
  auto bad = nft.Check("table inet hearth { chain c { tcp dport 99999 accept } }");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("nftables refused the rule set"), std::string::npos);
  EXPECT_NE(bad.error().message.find("99999"), std::string::npos) << bad.error().message;  // nft's own words
}

}  // namespace
}  // namespace hearth

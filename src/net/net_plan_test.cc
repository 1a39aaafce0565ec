#include "net/net_plan.h"

#include <gtest/gtest.h>

#include "net/testing/fake_host_links.h"

namespace hearth {
namespace {

NetIface Iface(const std::string& name, std::map<std::string, std::string> opts, bool adopted = false) {
  return NetIface{name, std::move(opts), adopted};
}

std::vector<std::string> Describe(const std::vector<NetStep>& steps) {
  std::vector<std::string> out;
  for (const auto& s : steps) out.push_back(s.op.Describe());
  return out;
}

// The kernel state as text, for "exactly as before" comparisons.
std::string Snapshot(const KernelState& k) {
  std::vector<std::string> lines;
  for (const auto& l : k.links) {
    auto addrs = l.addrs;
    std::sort(addrs.begin(), addrs.end());
    std::string line = l.name + " kind=" + l.kind + " mtu=" + std::to_string(l.mtu) + " up=" + std::to_string(l.up) +
                       " master=" + l.master + " stp=" + std::to_string(l.stp) + " vf=" + std::to_string(l.vlan_filtering);
    for (const auto& a : addrs) line += " " + a;
    lines.push_back(line);
  }
  for (const auto& r : k.default_routes) lines.push_back("default via " + r.gateway + " dev " + r.dev);
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

void NoLog(const std::string&) {}

class NetPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kernel_.AddNic("eth0", {"192.168.1.10/24"});
    kernel_.AddNic("eth1");
    kernel_.AddNic("eth2");
    kernel_.Link("eth1")->up = false;
    kernel_.state.default_routes.push_back({false, "192.168.1.1", "eth0"});
  }
  HostNetConfig Bridge() {
    HostNetConfig c;
    c.ifaces["vmbr1"] = Iface("vmbr1", {{"type", "bridge"}, {"bridge_ports", "eth1"}, {"autostart", "1"},
                                        {"address", "10.10.0.1"}, {"netmask", "24"}, {"mtu", "1400"}});
    return c;
  }
  FakeHostLinks kernel_;
};

TEST_F(NetPlanTest, NewBridgeIsCreatedJoinedAddressedAndUpInThatOrder) {
  auto steps = PlanApply(kernel_.state, {}, Bridge());
  EXPECT_EQ(Describe(steps), (std::vector<std::string>{"create bridge vmbr1", "eth1: port of vmbr1", "vmbr1: mtu 1400",
                                                        "vmbr1: add address 10.10.0.1/24", "eth1: up", "vmbr1: up"}));
  ASSERT_TRUE(ApplySteps(kernel_, steps, NoLog));
  EXPECT_EQ(kernel_.Link("eth1")->master, "vmbr1");
  EXPECT_TRUE(kernel_.Link("vmbr1")->up);
  // Converged: planning again against the new state finds nothing to do.
  EXPECT_TRUE(PlanApply(kernel_.state, Bridge(), Bridge()).empty());
}

TEST_F(NetPlanTest, AFailedStepUndoesEverythingBeforeIt) {
  auto wanted = Bridge();
  wanted.ifaces["vmbr1"].opts["gateway"] = "10.10.0.254";
  std::string before = Snapshot(kernel_.state);
  kernel_.fail_on = "route add";
  std::vector<std::string> log;
  auto done = ApplySteps(kernel_, PlanApply(kernel_.state, {}, wanted), [&](const std::string& l) { log.push_back(l); });
  ASSERT_FALSE(done);
  EXPECT_NE(done.error().message.find("add default route via 10.10.0.254 dev vmbr1"), std::string::npos);
  EXPECT_EQ(Snapshot(kernel_.state), before);  // the old default route is back, vmbr1 is gone
  EXPECT_NE(std::find(log.begin(), log.end(), "  undo: delete vmbr1"), log.end());
}

TEST_F(NetPlanTest, RemovedBridgesAreDeletedAndAFailedDeleteRecreatesTheOther) {
  auto applied = Bridge();
  applied.ifaces["vmbr2"] = Iface("vmbr2", {{"type", "bridge"}, {"bridge_ports", "eth2"}, {"autostart", "1"}});
  ASSERT_TRUE(ApplySteps(kernel_, PlanApply(kernel_.state, {}, applied), NoLog));
  std::string before = Snapshot(kernel_.state);
  kernel_.fail_on = "delete vmbr2";
  ASSERT_FALSE(ApplySteps(kernel_, PlanApply(kernel_.state, applied, {}), NoLog));
  EXPECT_EQ(Snapshot(kernel_.state), before);  // vmbr1 made again, with its port and address
  kernel_.fail_on.clear();
  ASSERT_TRUE(ApplySteps(kernel_, PlanApply(kernel_.state, applied, {}), NoLog));
  EXPECT_EQ(kernel_.Link("vmbr1"), nullptr);
  EXPECT_EQ(kernel_.Link("eth1")->master, "");
}

TEST_F(NetPlanTest, GuestTapsAndForeignPortsStayOnTheBridge) {
  ASSERT_TRUE(ApplySteps(kernel_, PlanApply(kernel_.state, {}, Bridge()), NoLog));
  kernel_.AddNic("tap100i0");
  kernel_.Link("tap100i0")->master = "vmbr1";
  auto wanted = Bridge();
  wanted.ifaces["vmbr1"].opts["bridge_ports"] = "";
  auto steps = PlanApply(kernel_.state, Bridge(), wanted);
  EXPECT_EQ(Describe(steps), (std::vector<std::string>{"eth1: release from its master"}));
}

TEST_F(NetPlanTest, AdoptedInterfacesAreConvergedButNeverDeleted) {
  HostNetConfig adopted;
  adopted.ifaces["eth0"] = Iface("eth0", {{"type", "eth"}, {"address", "192.168.1.20"}, {"netmask", "24"},
                                          {"gateway", "192.168.1.1"}, {"autostart", "1"}}, true);
  auto steps = PlanApply(kernel_.state, {}, adopted);
  EXPECT_EQ(Describe(steps), (std::vector<std::string>{"eth0: delete address 192.168.1.10/24",
                                                        "eth0: add address 192.168.1.20/24"}));
  ASSERT_TRUE(ApplySteps(kernel_, steps, NoLog));
  EXPECT_EQ(kernel_.Link("eth0")->addrs, std::vector<std::string>{"192.168.1.20/24"});
  // Released: its address and default route stay as they are.
  EXPECT_EQ(Describe(PlanApply(kernel_.state, adopted, {})), std::vector<std::string>{});
  EXPECT_NE(kernel_.Link("eth0"), nullptr);
}

// Deleting a subnet's primary IPv4 address takes its secondaries along (the fake does as the
// kernel does): a wanted secondary must be added again afterwards, and a rollback must bring
// back the secondaries too.
TEST_F(NetPlanTest, DeletingAPrimaryAddressKeepsTheWantedSecondary) {
  kernel_.Link("eth0")->addrs = {"192.168.1.10/24", "192.168.1.20/24", "10.9.0.1/16"};
  EXPECT_EQ(Ipv4Secondaries(kernel_.Link("eth0")->addrs, "192.168.1.10/24"),
            std::vector<std::string>{"192.168.1.20/24"});
  EXPECT_EQ(Ipv4Secondaries(kernel_.Link("eth0")->addrs, "192.168.1.20/24"), std::vector<std::string>{});
  HostNetConfig adopted;
  adopted.ifaces["eth0"] = Iface("eth0", {{"type", "eth"}, {"address", "192.168.1.20"}, {"netmask", "24"},
                                          {"gateway", "192.168.1.1"}, {"autostart", "1"}}, true);
  std::string before = Snapshot(kernel_.state);
  adopted.ifaces["eth0"].opts["gateway"] = "192.168.1.254";
  kernel_.fail_on = "route add";  // the new default route, the plan's last step, fails
  ASSERT_FALSE(ApplySteps(kernel_, PlanApply(kernel_.state, {}, adopted), NoLog));
  EXPECT_EQ(Snapshot(kernel_.state), before);
  kernel_.fail_on.clear();
  ASSERT_TRUE(ApplySteps(kernel_, PlanApply(kernel_.state, {}, adopted), NoLog));
  EXPECT_EQ(kernel_.Link("eth0")->addrs, std::vector<std::string>{"192.168.1.20/24"});
}

// An MTU taken out of the configuration (or an unconfirmed one taken back) goes back to the
// default instead of staying as the kernel has it.
TEST_F(NetPlanTest, ARemovedMtuGoesBackToTheDefault) {
  ASSERT_TRUE(ApplySteps(kernel_, PlanApply(kernel_.state, {}, Bridge()), NoLog));
  EXPECT_EQ(kernel_.Link("vmbr1")->mtu, 1400u);
  auto without = Bridge();
  without.ifaces["vmbr1"].opts.erase("mtu");
  EXPECT_EQ(Describe(PlanApply(kernel_.state, Bridge(), without)), std::vector<std::string>{"vmbr1: mtu 1500"});
  ASSERT_TRUE(ApplySteps(kernel_, PlanApply(kernel_.state, Bridge(), without), NoLog));
  EXPECT_EQ(kernel_.Link("vmbr1")->mtu, 1500u);
  EXPECT_EQ(Describe(PlanApply(kernel_.state, without, without)), std::vector<std::string>{});
}

TEST_F(NetPlanTest, VlanAwareBridgeFiltersAndCarriesItsVids) {
  auto wanted = Bridge();
  wanted.ifaces["vmbr1"].opts["bridge_vlan_aware"] = "1";
  wanted.ifaces["vmbr1"].opts["bridge_vids"] = "10 20-22";
  auto steps = PlanApply(kernel_.state, {}, wanted);
  auto d = Describe(steps);
  EXPECT_NE(std::find(d.begin(), d.end(), "vmbr1: vlan filtering on"), d.end());
  EXPECT_NE(std::find(d.begin(), d.end(), "eth1: vlans 10,20,21,22"), d.end());
  EXPECT_NE(std::find(d.begin(), d.end(), "vmbr1: vlans 10,20,21,22 (self)"), d.end());
  // A kernel without bridge VLAN filtering: refused, and nothing is left behind.
  std::string before = Snapshot(kernel_.state);
  kernel_.vlan_filtering_supported = false;
  auto done = ApplySteps(kernel_, steps, NoLog);
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(Snapshot(kernel_.state), before);
}

TEST_F(NetPlanTest, VlansAreMadeAfterTheirParentAndIPv6IsCanonical) {
  HostNetConfig c = Bridge();
  c.ifaces["vmbr1.20"] = Iface("vmbr1.20", {{"type", "vlan"}, {"address6", "fd00:0:0::1"}, {"netmask6", "64"}});
  auto d = Describe(PlanApply(kernel_.state, {}, c));
  auto bridge = std::find(d.begin(), d.end(), "create bridge vmbr1");
  auto vlan = std::find(d.begin(), d.end(), "create vlan vmbr1.20 (vmbr1, id 20)");
  ASSERT_NE(vlan, d.end());
  EXPECT_LT(bridge, vlan);
  EXPECT_NE(std::find(d.begin(), d.end(), "vmbr1.20: add address fd00::1/64"), d.end());
}

}  // namespace
}  // namespace hearth

// The rtnetlink requests byte for byte, written out by hand from the kernel's UAPI
// (linux/rtnetlink.h, if_link.h, if_bridge.h) rather than by the code under test. This is
// how the bridge VLAN and 802.1Q code is tested: the CI machines' kernels have neither.
#include "net/netlink/rtnl_messages.h"

#include <gtest/gtest.h>

namespace hearth {
namespace {

NlBytes Bytes(std::initializer_list<int> v) {
  NlBytes out;
  for (int b : v) out.push_back(static_cast<uint8_t>(b));
  return out;
}

TEST(RtnlMessages, BridgeVlanEntriesOfAPort) {
  EXPECT_EQ(BridgeVlanMessage(7, {10, 20, 21, 22}, false),
            Bytes({0x44, 0, 0, 0, 0x13, 0, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0,  // nlmsghdr: RTM_SETLINK, REQUEST|ACK
                   7, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,           // ifinfomsg: AF_BRIDGE, index 7
                   0x24, 0, 0x1a, 0,                                         // IFLA_AF_SPEC
                   8, 0, 2, 0, 6, 0, 1, 0,                                   // VLAN 1: PVID | UNTAGGED
                   8, 0, 2, 0, 0, 0, 10, 0,                                  // VLAN 10
                   8, 0, 2, 0, 8, 0, 20, 0,                                  // 20: RANGE_BEGIN
                   8, 0, 2, 0, 16, 0, 22, 0}));                              // 22: RANGE_END
}

TEST(RtnlMessages, BridgeVlanEntriesOfTheBridgeItself) {
  NlBytes m = BridgeVlanMessage(3, {100}, true);
  EXPECT_EQ(m, Bytes({0x3c, 0, 0, 0, 0x13, 0, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                      7, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                      0x1c, 0, 0x1a, 0,
                      6, 0, 0, 0, 2, 0, 0, 0,     // IFLA_BRIDGE_FLAGS: BRIDGE_FLAGS_SELF (padded)
                      8, 0, 2, 0, 6, 0, 1, 0,     // VLAN 1: PVID | UNTAGGED
                      8, 0, 2, 0, 0, 0, 100, 0}));  // VLAN 100
}

// A VM tap on a VLAN-aware bridge (PVE::Network tap_plug): the default entries go
// (`bridge vlan del dev tap100i0 vid 1-4094`), then the trunks and the tag as PVID come.
TEST(RtnlMessages, PortVlanEntriesDeletedAsOneRange) {
  std::vector<int> all;
  for (int v = 1; v <= 4094; ++v) all.push_back(v);
  EXPECT_EQ(PortVlanMessage(false, 9, all, 0),
            Bytes({0x34, 0, 0, 0, 0x11, 0, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0,  // RTM_DELLINK, REQUEST|ACK
                   7, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,           // AF_BRIDGE, index 9
                   0x14, 0, 0x1a, 0,                                         // IFLA_AF_SPEC
                   8, 0, 2, 0, 8, 0, 1, 0,                                   // 1: RANGE_BEGIN
                   8, 0, 2, 0, 16, 0, 0xfe, 0x0f}));                         // 4094: RANGE_END
}

TEST(RtnlMessages, PortVlanEntriesTrunksThenTagAsPvid) {
  EXPECT_EQ(PortVlanMessage(true, 9, {20, 30, 31, 32, 40}, 20),
            Bytes({0x44, 0, 0, 0, 0x13, 0, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0,  // RTM_SETLINK, REQUEST|ACK
                   7, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                   0x24, 0, 0x1a, 0,
                   8, 0, 2, 0, 8, 0, 30, 0,                                  // 30: RANGE_BEGIN
                   8, 0, 2, 0, 16, 0, 32, 0,                                 // 32: RANGE_END
                   8, 0, 2, 0, 0, 0, 40, 0,                                  // 40 (the tag is not repeated)
                   8, 0, 2, 0, 6, 0, 20, 0}));                               // 20: PVID | UNTAGGED
}

TEST(RtnlMessages, NewBridgeKeepsTheMacItIsGiven) {
  const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
  EXPECT_EQ(NewBridgeMessage("br0", mac),
            Bytes({0x44, 0, 0, 0, 0x10, 0, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0,  // RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE
                   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                   8, 0, 3, 0, 'b', 'r', '0', 0,                                // IFLA_IFNAME
                   10, 0, 1, 0, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0, 0,       // IFLA_ADDRESS (padded)
                   16, 0, 0x12, 0, 11, 0, 1, 0, 'b', 'r', 'i', 'd', 'g', 'e', 0, 0}));  // IFLA_LINKINFO { kind }
}

TEST(RtnlMessages, VlanFilteringOnABridge) {
  EXPECT_EQ(BridgeOptionsMessage(5, std::nullopt, true),
            Bytes({0x3c, 0, 0, 0, 0x10, 0, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0,  // RTM_NEWLINK, REQUEST|ACK
                   0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,            // index 5
                   0x1c, 0, 0x12, 0,                                          // IFLA_LINKINFO
                   11, 0, 1, 0, 'b', 'r', 'i', 'd', 'g', 'e', 0, 0,           // IFLA_INFO_KIND "bridge"
                   12, 0, 2, 0,                                               // IFLA_INFO_DATA
                   5, 0, 7, 0, 1, 0, 0, 0}));                                 // IFLA_BR_VLAN_FILTERING 1
}

TEST(RtnlMessages, StpStateOnABridge) {
  NlBytes m = BridgeOptionsMessage(5, true, std::nullopt);
  ASSERT_EQ(m.size(), 60u);
  EXPECT_EQ(NlBytes(m.begin() + 48, m.end()), Bytes({12, 0, 2, 0, 8, 0, 5, 0, 1, 0, 0, 0}));  // IFLA_BR_STP_STATE u32 1  // IFLA_BR_STP_STATE u32 1
}

TEST(RtnlMessages, NewVlanLink) {
  EXPECT_EQ(NewVlanMessage("eth0.10", 2, 10),
            Bytes({0x50, 0, 0, 0, 0x10, 0, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0,  // REQUEST|ACK|EXCL|CREATE
                   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                   12, 0, 3, 0, 'e', 't', 'h', '0', '.', '1', '0', 0,           // IFLA_IFNAME
                   8, 0, 5, 0, 2, 0, 0, 0,                                      // IFLA_LINK 2
                   28, 0, 0x12, 0,                                              // IFLA_LINKINFO
                   9, 0, 1, 0, 'v', 'l', 'a', 'n', 0, 0, 0, 0,                  // kind "vlan"
                   12, 0, 2, 0, 6, 0, 1, 0, 10, 0, 0, 0}));                     // IFLA_VLAN_ID 10
}

TEST(RtnlMessages, NewBondLinkAndModes) {
  NlBytes m = NewBondMessage("bond0", 1);
  ASSERT_EQ(m.size(), 72u);
  EXPECT_EQ(NlBytes(m.end() - 12, m.end()), Bytes({12, 0, 2, 0, 5, 0, 1, 0, 1, 0, 0, 0}));  // IFLA_BOND_MODE 1
  EXPECT_EQ(BondModeNumber("active-backup"), 1);
  EXPECT_EQ(BondModeNumber("802.3ad"), 4);
  EXPECT_EQ(BondModeNumber("balance-slb"), -1);  // OVS only
  EXPECT_EQ(BondModeName(6), "balance-alb");
}

TEST(RtnlMessages, SetUpTouchesOnlyIffUp) {
  NlBytes m = SetUpMessage(9, true);
  ASSERT_EQ(m.size(), 32u);
  EXPECT_EQ(NlBytes(m.begin() + 16, m.end()), Bytes({0, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0}));
  NlBytes down = SetUpMessage(9, false);
  EXPECT_EQ(NlBytes(down.begin() + 24, down.end()), Bytes({0, 0, 0, 0, 1, 0, 0, 0}));
}

TEST(RtnlMessages, AddressAndDefaultRoute) {
  uint8_t a[4] = {10, 0, 0, 1};
  NlBytes m = AddressMessage(true, 4, false, a, 24);
  EXPECT_EQ(m, Bytes({40, 0, 0, 0, 20, 0, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0,  // RTM_NEWADDR
                      2, 24, 0, 0, 4, 0, 0, 0,                              // ifaddrmsg: AF_INET /24 index 4
                      8, 0, 2, 0, 10, 0, 0, 1,                              // IFA_LOCAL
                      8, 0, 1, 0, 10, 0, 0, 1}));                           // IFA_ADDRESS
  uint8_t gw[4] = {10, 0, 0, 254};
  NlBytes r = DefaultRouteMessage(true, false, gw, 4);
  EXPECT_EQ(r, Bytes({44, 0, 0, 0, 24, 0, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0,  // RTM_NEWROUTE
                      2, 0, 0, 0, 254, 4, 0, 1, 0, 0, 0, 0,                 // rtmsg: main, static, universe, unicast
                      8, 0, 5, 0, 10, 0, 0, 254,                            // RTA_GATEWAY
                      8, 0, 4, 0, 4, 0, 0, 0}));                            // RTA_OIF
}

}  // namespace
}  // namespace hearth

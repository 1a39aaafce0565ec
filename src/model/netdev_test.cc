#include "model/netdev.h"

#include <gtest/gtest.h>

namespace hearth {

TEST(NetDev, ModelEqualsMacAlias) {
  auto n = ParseNetDev("virtio=bc:24:11:4f:2a:9e,bridge=vmbr0,firewall=1,tag=20");
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(n->model, "virtio");
  EXPECT_EQ(n->macaddr, "bc:24:11:4f:2a:9e");  // kept as sent, as PVE (Terraform diffs on case)
  EXPECT_EQ(n->Bridge(), "vmbr0");
  EXPECT_EQ(PrintNetDev(*n), "virtio=bc:24:11:4f:2a:9e,bridge=vmbr0,firewall=1,tag=20");
}

TEST(NetDev, ExplicitKeysAreCanonicalised) {
  // bpg's form
  auto n = ParseNetDev("model=virtio,bridge=vmbr0,firewall=0,macaddr=BC:24:11:00:00:01,rate=1.000000,tag=5");
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(PrintNetDev(*n), "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=0,rate=1.000000,tag=5");
}

TEST(NetDev, BareModelWithoutMac) {
  auto n = ParseNetDev("virtio,bridge=vmbr0");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->macaddr, "");
  EXPECT_EQ(PrintNetDev(*n), "virtio,bridge=vmbr0");
}

TEST(NetDev, RejectsBadValues) {
  EXPECT_FALSE(ParseNetDev("virtio=01:00:00:00:00:00"));  // multicast
  EXPECT_FALSE(ParseNetDev("virtio=zz:00:00:00:00:00"));
  EXPECT_FALSE(ParseNetDev("virtio,tag=4095"));
  EXPECT_FALSE(ParseNetDev("virtio,tag=0"));
  EXPECT_FALSE(ParseNetDev("rtl9999"));
  EXPECT_FALSE(ParseNetDev("virtio,bridge=br;rm -rf /"));
  EXPECT_FALSE(ParseNetDev("virtio,bridge=averyveryverylongbridgename"));
  EXPECT_FALSE(ParseNetDev("bridge=vmbr0"));  // model missing
  EXPECT_FALSE(ParseNetDev("virtio,mtu=70000"));
  EXPECT_TRUE(ParseNetDev("virtio,trunks=10;20-30"));
  EXPECT_FALSE(ParseNetDev("virtio,trunks=10;20-5000"));
}

TEST(NetDev, MakeMacHasProxmoxPrefix) {
  std::string mac = MakeMac({0xab, 0x01, 0xff});
  EXPECT_EQ(mac, "BC:24:11:AB:01:FF");
  EXPECT_TRUE(IsValidUnicastMac(mac));
}

// qemu-server vmconfig_update_net: which NIC changes a running VM takes in place.
TEST(NetDev, NicChangesInPlaceOrByReplacingTheDevice) {
  auto nic = [](const char* text) { return *ParseNetDev(text); };
  auto base = nic("virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=10");
  EXPECT_EQ(ClassifyNicChange(base, nic("virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=10")), NicChange::kNone);
  for (const char* live : {"virtio=BC:24:11:00:00:01,bridge=vmbr1,tag=10", "virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=20",
                           "virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=10,rate=5",
                           "virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=10,link_down=1",
                           "virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=10,firewall=1",
                           "virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=10,trunks=20;30"})
    EXPECT_EQ(ClassifyNicChange(base, nic(live)), NicChange::kLive) << live;
  for (const char* replace : {"e1000=BC:24:11:00:00:01,bridge=vmbr0,tag=10", "virtio=BC:24:11:00:00:02,bridge=vmbr0,tag=10",
                              "virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=10,queues=2",
                              "virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=10,mtu=1400", "virtio=BC:24:11:00:00:01"})
    EXPECT_EQ(ClassifyNicChange(base, nic(replace)), NicChange::kReplace) << replace;
  // Numbers compare as numbers: rate=1 and rate=1.0 are one rate.
  EXPECT_EQ(ClassifyNicChange(nic("virtio=BC:24:11:00:00:01,bridge=vmbr0,rate=1"),
                              nic("virtio=BC:24:11:00:00:01,bridge=vmbr0,rate=1.0")),
            NicChange::kNone);
}

TEST(NetDev, TrunksExpand) {
  EXPECT_EQ(ExpandTrunks("10;20-22;10"), (std::vector<int>{10, 20, 21, 22}));
  EXPECT_EQ(ExpandTrunks(""), std::vector<int>{});
  EXPECT_EQ(ExpandTrunks("1-4094").size(), 4094u);
  EXPECT_EQ(ExpandTrunks("0;5000;9-3;x"), std::vector<int>{});
}

}  // namespace hearth

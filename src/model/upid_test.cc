#include "model/upid.h"

#include <gtest/gtest.h>

#include "core/strings.h"

namespace hearth {

TEST(Upid, FormatMatchesProxmox) {
  Upid u{"pve", 0x1A2B3, 0x98F1C4, 0x6720A1C0, "qmcreate", "100", "root@pam"};
  EXPECT_EQ(u.ToString(), "UPID:pve:0001A2B3:0098F1C4:6720A1C0:qmcreate:100:root@pam:");
  // proxmoxer demands exactly 9 pieces when split on ':'
  EXPECT_EQ(Split(u.ToString(), ':').size(), 9u);
}

TEST(Upid, RoundTripWithToken) {
  Upid u{"node1", 5, 7, 1700000000, "qmstart", "101", "root@pam!ci"};
  auto p = ParseUpid(u.ToString());
  ASSERT_TRUE(p);
  EXPECT_EQ(p->user, "root@pam!ci");
  EXPECT_EQ(p->starttime, 1700000000);
  EXPECT_EQ(p->ToString(), u.ToString());
}

TEST(Upid, RejectsMalformed) {
  for (const char* bad : {"", "UPID:pve:1:2:3:x:1:root@pam:", "UPID:pve:0001A2B3:0098F1C4:6720A1C0:qmcreate:100:root@pam",
                          "UPID:-pve:0001A2B3:0098F1C4:6720A1C0:t:1:u:", "UPID:pve:0001A2B3:0098F1C4:6720A1C0:q/x:1:u:"}) {
    auto r = ParseUpid(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().fields.at("upid"), "unable to parse worker upid");
  }
}

}  // namespace hearth

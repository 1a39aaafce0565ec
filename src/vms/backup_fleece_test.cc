// The dirty-bitmap record kept in the store's meta between backups.
#include "vms/backup_fleece.h"

#include <gtest/gtest.h>

namespace hearth {
namespace {

TEST(BitmapRecord, RoundTripsAndRefusesWhatItCannotTrust) {
  BitmapRecord r;
  r.instance = "4242:123456";
  r.storage = "local";
  r.fingerprint = "aa:bb";
  r.time = 1764000000;
  r.disks["scsi0"] = {"hearth-backup-1764000000", "0123abcd", 1073741824};
  auto back = BitmapRecord::Decode(r.Encode());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->instance, r.instance);
  EXPECT_EQ(back->storage, "local");
  EXPECT_EQ(back->fingerprint, "aa:bb");
  EXPECT_EQ(back->time, 1764000000);
  ASSERT_EQ(back->disks.count("scsi0"), 1u);
  EXPECT_EQ(back->disks["scsi0"].bitmap, "hearth-backup-1764000000");
  EXPECT_EQ(back->disks["scsi0"].csum, "0123abcd");
  EXPECT_EQ(back->disks["scsi0"].size, 1073741824u);
  // Without a time there is nothing to count from; a disk without a size is left out (read whole).
  EXPECT_FALSE(BitmapRecord::Decode(R"({"instance": "1:2"})"));
  EXPECT_FALSE(BitmapRecord::Decode("not json"));
  EXPECT_FALSE(BitmapRecord::Decode(""));
  auto partial = BitmapRecord::Decode(R"({"time": 5, "disks": {"scsi0": {"bitmap": "b"}, "scsi1": 3}})");
  ASSERT_TRUE(partial);
  EXPECT_TRUE(partial->disks.empty());
}

}  // namespace
}  // namespace hearth

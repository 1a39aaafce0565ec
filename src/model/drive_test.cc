#include "model/drive.h"

#include <gtest/gtest.h>

#include "core/units.h"

namespace hearth {

TEST(DriveKey, ParsesIndexedKeysWithinRange) {
  EXPECT_EQ(DriveKey::Parse("scsi30")->index, 30);
  EXPECT_EQ(DriveKey::Parse("ide2")->bus, DriveBus::kIde);
  EXPECT_FALSE(DriveKey::Parse("ide4"));
  EXPECT_FALSE(DriveKey::Parse("scsi31"));
  EXPECT_FALSE(DriveKey::Parse("scsi01"));
  EXPECT_FALSE(DriveKey::Parse("scsi"));
  EXPECT_FALSE(DriveKey::Parse("scsi+1"));
  EXPECT_FALSE(DriveKey::Parse("net0"));
  EXPECT_EQ(DriveKey::Parse("efidisk0")->bus, DriveBus::kEfidisk);
  EXPECT_FALSE(DriveKey::Parse("efidisk1"));
  EXPECT_EQ(DriveKey::Parse("virtio15")->Name(), "virtio15");
}

TEST(Drive, RoundTripsCanonically) {
  auto d = ParseDrive(DriveBus::kScsi, "file=local:100/vm-100-disk-0.qcow2,size=34359738368,iothread=on,discard=on");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->file, "local:100/vm-100-disk-0.qcow2");
  EXPECT_EQ(*d->SizeBytes(), 32 * kGiB);
  EXPECT_EQ(PrintDrive(DriveBus::kScsi, *d), "local:100/vm-100-disk-0.qcow2,discard=on,iothread=1,size=32G");
}

TEST(Drive, BusSpecificKeys) {
  EXPECT_FALSE(ParseDrive(DriveBus::kIde, "local:x,iothread=1"));
  EXPECT_FALSE(ParseDrive(DriveBus::kVirtio, "local:x,ssd=1"));
  EXPECT_TRUE(ParseDrive(DriveBus::kSata, "local:x,ssd=1"));
  EXPECT_TRUE(ParseDrive(DriveBus::kScsi, "local:x,queues=4"));
  EXPECT_FALSE(ParseDrive(DriveBus::kScsi, "media=cdrom"));  // no volume
}

TEST(Drive, CdromMedia) {
  auto d = ParseDrive(DriveBus::kIde, "local:iso/tiny.iso,media=cdrom");
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->IsCdrom());
}

TEST(DriveAllocation, Syntax) {
  auto a = ParseDriveAllocation("local:4");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->storage, "local");
  EXPECT_EQ(a->size_bytes, 4 * kGiB);
  auto tiny = ParseDriveAllocation("local-lvm:0.001");
  ASSERT_TRUE(tiny);
  EXPECT_EQ(tiny->size_bytes, 1073742u);
  auto bare = ParseDriveAllocation("8");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->storage, "");
  EXPECT_TRUE(ParseDriveAllocation("local:cloudinit")->cloudinit);
  EXPECT_FALSE(ParseDriveAllocation("local:vm-100-disk-0"));
  EXPECT_FALSE(ParseDriveAllocation("local:iso/x.iso"));
  EXPECT_FALSE(ParseDriveAllocation("cloudinit"));
}

}  // namespace hearth

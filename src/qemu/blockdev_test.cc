// One builder for -blockdev and blockdev-add: the same options in both shapes.
#include "qemu/blockdev.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

namespace hearth {
namespace {

TEST(Blockdev, JsonForQmpAndKeyValueForTheCommandLine) {
  auto d = ParseDrive(DriveBus::kScsi, "local:100/vm-100-disk-0.qcow2,cache=none,discard=on,aio=native,size=1G");
  ASSERT_TRUE(d);
  auto o = DriveBlockdev(*d, {"/img/a,b.qcow2", "qcow2", "file"}, "drive-scsi0");
  EXPECT_EQ(o["driver"], "qcow2");
  EXPECT_EQ(o["file"]["filename"], "/img/a,b.qcow2");
  EXPECT_EQ(o["cache"]["direct"], true);  // a JSON boolean for blockdev-add
  EXPECT_EQ(o["discard"], "unmap");
  EXPECT_FALSE(o.contains("read-only"));
  EXPECT_EQ(BlockdevArg(o),
            "driver=qcow2,node-name=drive-scsi0,file.driver=file,file.filename=/img/a,,b.qcow2,file.aio=native,"
            "cache.direct=on,cache.no-flush=off,discard=unmap");
}

TEST(Blockdev, BlockDevicesIsosAndReadOnly) {
  auto d = ParseDrive(DriveBus::kVirtio, "tank:vm-100-disk-0,ro=1,cache=unsafe");
  ASSERT_TRUE(d);
  auto o = DriveBlockdev(*d, {"/dev/zvol/tank/vm-100-disk-0", "raw", "host_device"}, "drive-virtio0");
  EXPECT_EQ(o["file"]["driver"], "host_device");
  EXPECT_EQ(o["read-only"], true);
  EXPECT_EQ(o["cache"]["no-flush"], true);
  auto iso = ParseDrive(DriveBus::kIde, "local:iso/x.iso,media=cdrom");
  ASSERT_TRUE(iso);
  auto c = DriveBlockdev(*iso, {"/isos/x.iso", "iso", "file"}, "drive-ide2");
  EXPECT_EQ(c["driver"], "raw");  // not a QEMU format: opened raw
  EXPECT_EQ(c["read-only"], true);
}

TEST(Blockdev, BlockDevicesGetHostDevice) {
  EXPECT_EQ(BindingFor("/dev/null", "raw").file_driver, "file");  // a character device is no disk
  EXPECT_EQ(BindingFor("/nonexistent", "raw").file_driver, "file");
  EXPECT_EQ(BindingFor("/etc/hostname", "raw").file_driver, "file");
  // A loop device, where the machine has one.
  for (const char* dev : {"/dev/loop0", "/dev/loop-control"}) {
    struct stat st {};
    if (::stat(dev, &st) == 0 && S_ISBLK(st.st_mode)) EXPECT_EQ(BindingFor(dev, "raw").file_driver, "host_device");
  }
}

}  // namespace
}  // namespace hearth

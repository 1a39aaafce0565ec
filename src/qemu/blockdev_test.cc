// One builder for -blockdev and blockdev-add: the same options in both shapes.
#include "qemu/blockdev.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

namespace hearth {
namespace {

TEST(Blockdev, JsonForQmpAndKeyValueForTheCommandLine) {
  auto d = ParseDrive(DriveBus::kScsi, "local:100/vm-100-disk-0.qcow2,cache=none,discard=on,aio=native,size=1G");
  ASSERT_TRUE(d);
  auto o = DriveBlockdev(*d, HostPathBinding("/img/a,b.qcow2", "qcow2"), "drive-scsi0");
  EXPECT_EQ(o["driver"], "qcow2");
  EXPECT_EQ(o["file"]["filename"], "/img/a,b.qcow2");
  EXPECT_EQ(o["cache"]["direct"], true);  // a JSON boolean for blockdev-add
  EXPECT_EQ(o["discard"], "unmap");
  EXPECT_FALSE(o.contains("read-only"));
  EXPECT_EQ(BlockdevArg(o),
            "driver=qcow2,node-name=drive-scsi0,file.driver=file,file.filename=/img/a,,b.qcow2,file.aio=native,"
            "cache.direct=on,cache.no-flush=off,discard=unmap");
}

TEST(Blockdev, AGivenBackingReplacesTheHeadersOne) {
  auto d = ParseDrive(DriveBus::kScsi, "local:100/vm-100-disk-0.qcow2");
  ASSERT_TRUE(d);
  DriveBinding b = HostPathBinding("/img/a.qcow2", "qcow2");
  EXPECT_FALSE(DriveBlockdev(*d, b, "drive-scsi0").contains("backing"));  // the header's, if any
  b.backing = {{"driver", "nbd"}, {"node-name", "drive-scsi0-nbd"}, {"read-only", true},
               {"server", {{"type", "unix"}, {"path", "hearth/x/live-restore/100"}, {"abstract", true}}},
               {"export", "drive-scsi0"}, {"reconnect-delay", 120}};
  EXPECT_EQ(BlockdevArg(DriveBlockdev(*d, b, "drive-scsi0")),
            "driver=qcow2,node-name=drive-scsi0,file.driver=file,file.filename=/img/a.qcow2,"
            "backing.driver=nbd,backing.node-name=drive-scsi0-nbd,backing.read-only=on,backing.server.type=unix,"
            "backing.server.path=hearth/x/live-restore/100,backing.server.abstract=on,backing.export=drive-scsi0,"
            "backing.reconnect-delay=120,cache.direct=off,cache.no-flush=off");
}

TEST(Blockdev, BlockDevicesIsosAndReadOnly) {
  auto d = ParseDrive(DriveBus::kVirtio, "tank:vm-100-disk-0,ro=1,cache=unsafe");
  ASSERT_TRUE(d);
  auto o = DriveBlockdev(*d, {"raw", {{"driver", "host_device"}, {"filename", "/dev/zvol/tank/vm-100-disk-0"}}, "/dev/zvol/tank/vm-100-disk-0"}, "drive-virtio0");
  EXPECT_EQ(o["file"]["driver"], "host_device");
  EXPECT_EQ(o["read-only"], true);
  EXPECT_EQ(o["cache"]["no-flush"], true);
  auto iso = ParseDrive(DriveBus::kIde, "local:iso/x.iso,media=cdrom");
  ASSERT_TRUE(iso);
  auto c = DriveBlockdev(*iso, HostPathBinding("/isos/x.iso", "iso"), "drive-ide2");
  EXPECT_EQ(c["driver"], "raw");  // not a QEMU format: opened raw
  EXPECT_EQ(c["read-only"], true);
}

// A storage's own protocol node goes through untouched (a network protocol has no path).
TEST(Blockdev, AStoragesProtocolNodeIsUsedAsItIs) {
  auto d = ParseDrive(DriveBus::kScsi, "nas:vm-100-disk-0,aio=io_uring");
  ASSERT_TRUE(d);
  DriveBinding b{"raw", {{"driver", "nbd"}, {"server", {{"type", "inet"}, {"host", "192.0.2.1"}, {"port", "10809"}}}}, ""};
  EXPECT_EQ(BlockdevArg(DriveBlockdev(*d, b, "drive-scsi0")),
            "driver=raw,node-name=drive-scsi0,file.driver=nbd,file.server.type=inet,file.server.host=192.0.2.1,"
            "file.server.port=10809,file.aio=io_uring,cache.direct=off,cache.no-flush=off");
}

TEST(Blockdev, BlockDevicesGetHostDevice) {
  EXPECT_EQ(HostPathBinding("/dev/null", "raw").protocol["driver"], "file");  // a character device is no disk
  EXPECT_EQ(HostPathBinding("/nonexistent", "raw").protocol["driver"], "file");
  EXPECT_EQ(HostPathBinding("/etc/hostname", "raw").protocol["driver"], "file");
  // A loop device, where the machine has one.
  for (const char* dev : {"/dev/loop0", "/dev/loop-control"}) {
    struct stat st {};
    if (::stat(dev, &st) == 0 && S_ISBLK(st.st_mode)) {
      EXPECT_EQ(HostPathBinding(dev, "raw").protocol["driver"], "host_device");
    }
  }
}

}  // namespace
}  // namespace hearth

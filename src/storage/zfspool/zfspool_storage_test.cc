// ZfsPoolStorage against recorded `zfs`/`zpool` outputs (the ZFS kernel module cannot be
// loaded on the machines hearth is built on, so no pool can be made here). The outputs are
// written in the formats OpenZFS prints for the flags used (-H: tab-separated, no header;
// -p: exact numbers), as Proxmox's ZFSPoolPlugin parses them; each test checks the argv the
// driver runs, in order, and what it makes of the answers.
#include "storage/zfspool/zfspool_storage.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "core/testing/temp_dir.h"
#include "model/storage_config.h"
#include "sys/testing/scripted_runner.h"

namespace hearth {
namespace {

constexpr char kList[] = "zfs list -o name,volsize,origin,type,refquota -t volume,filesystem -d1 -Hp rpool/data";
// A pool dataset with two VMs' disks, a template, a linked clone of it, a container's dataset
// and a zvol hearth did not name (left alone).
constexpr char kListOut[] =
    "rpool/data\t-\t-\tfilesystem\t0\n"
    "rpool/data/vm-100-disk-0\t34359738368\t-\tvolume\t-\n"
    "rpool/data/base-100-disk-1\t8589934592\t-\tvolume\t-\n"
    "rpool/data/vm-101-disk-0\t8589934592\trpool/data/base-100-disk-1@__base__\tvolume\t-\n"
    "rpool/data/vm-101-cloudinit\t4194304\t-\tvolume\t-\n"
    "rpool/data/subvol-102-disk-0\t-\t-\tfilesystem\t8589934592\n"
    "rpool/data/scratch\t1073741824\t-\tvolume\t-\n";

StorageConfig Config(std::map<std::string, std::string> extra = {}) {
  std::map<std::string, std::string> params = {{"pool", "rpool/data"}};
  params.insert(extra.begin(), extra.end());
  auto c = MakeStorageConfig("tank", "zfspool", params, nullptr);
  EXPECT_TRUE(c) << c.error().message;
  return *c;
}

class ZfsPoolTest : public ::testing::Test {
 protected:
  std::unique_ptr<ZfsPoolStorage> Make(std::map<std::string, std::string> extra = {}) {
    return std::make_unique<ZfsPoolStorage>(Config(extra), runner_, [this](const std::string& path) {
      devices_checked_.push_back(path);
      return devices_checked_.size() >= device_ready_after_;
    });
  }
  void TearDown() override { EXPECT_TRUE(runner_.Unused().empty()) << Join(runner_.Unused(), "\n"); }
  ScriptedRunner runner_;
  std::vector<std::string> devices_checked_;
  size_t device_ready_after_ = 1;
};

TEST(ZfsVolname, ProxmoxsNamesParseAndNothingElseReachesZfs) {
  auto clone = ZfsPoolStorage::ParseVolname("base-100-disk-1/vm-101-disk-0");
  ASSERT_TRUE(clone);
  EXPECT_EQ(clone->name, "vm-101-disk-0");
  EXPECT_EQ(clone->base, "base-100-disk-1");
  EXPECT_EQ(clone->vmid, 101);
  EXPECT_EQ(clone->base_vmid, 100);
  EXPECT_FALSE(clone->is_base);
  auto base = ZfsPoolStorage::ParseVolname("base-100-disk-1");
  ASSERT_TRUE(base);
  EXPECT_TRUE(base->is_base);
  EXPECT_TRUE(ZfsPoolStorage::ParseVolname("vm-100-cloudinit"));
  EXPECT_TRUE(ZfsPoolStorage::ParseVolname("vm-100-state-before_upgrade"));
  for (const char* bad : {"vm-100-disk-0@snap", "vm-100-disk-0/../x", "rpool/vm-100-disk-0", "vm-100-disk 0",
                          "-vm-100-disk-0", "vm-abc-disk-0", "vm-100-", "base-1-x/base-2-y/vm-3-z", "subvol-100-disk-0",
                          "vm-100-disk-0\n"}) {
    auto r = ZfsPoolStorage::ParseVolname(bad);
    EXPECT_FALSE(r) << bad;
  }
  EXPECT_EQ(ZfsPoolStorage::ParseVolname("x").error().message, "unable to parse zfs volume name 'x'");
  EXPECT_FALSE(ZfsPoolStorage::ParseVolname("vm-1-" + std::string(300, 'a')));
}

TEST_F(ZfsPoolTest, ListsVmDisksWithLinkedClonesAndSkipsTheRest) {
  runner_.Expect(kList, kListOut).Expect(kList, kListOut);
  auto zfs = Make();
  auto all = zfs->List(ContentType::kImages, 0);
  ASSERT_TRUE(all) << all.error().message;
  std::vector<std::string> ids;
  for (const auto& v : *all) ids.push_back(v.volid);
  EXPECT_EQ(ids, (std::vector<std::string>{"tank:vm-100-disk-0", "tank:base-100-disk-1",
                                           "tank:base-100-disk-1/vm-101-disk-0", "tank:vm-101-cloudinit"}));
  EXPECT_EQ((*all)[0].size, 34359738368u);
  EXPECT_EQ((*all)[0].path, "/dev/zvol/rpool/data/vm-100-disk-0");
  EXPECT_EQ((*all)[2].parent, "tank:base-100-disk-1");
  EXPECT_EQ((*all)[2].path, "/dev/zvol/rpool/data/vm-101-disk-0");
  auto one = zfs->List(std::nullopt, 101);
  ASSERT_TRUE(one);
  EXPECT_EQ(one->size(), 2u);
  EXPECT_TRUE(zfs->List(ContentType::kIso, 0)->empty());  // no command for content it cannot hold
}

TEST_F(ZfsPoolTest, AllocatesTheNextFreeDiskRoundedToWholeMiBAndWaitsForTheDevice) {
  runner_.Expect(kList, kListOut)
      .Expect("zfs create -s -b 16k -V 2048k rpool/data/vm-100-disk-2");
  device_ready_after_ = 3;  // udev takes a moment
  auto zfs = Make({{"sparse", "1"}, {"blocksize", "16k"}});
  auto name = zfs->AllocImage(100, "raw", 1024 * 1024 + 1, "", nullptr);
  ASSERT_TRUE(name) << name.error().message;
  EXPECT_EQ(*name, "vm-100-disk-2");  // disk-1 is taken by the template's base-100-disk-1
  EXPECT_EQ(devices_checked_.size(), 3u);
  EXPECT_EQ(devices_checked_.back(), "/dev/zvol/rpool/data/vm-100-disk-2");
}

// A zvol is a block device: host_device, raw, from the name alone (no zfs command).
TEST_F(ZfsPoolTest, BlockdevOptionsAreAHostDevice) {
  auto zfs = Make();
  auto b = zfs->Blockdev("base-100-disk-1/vm-101-disk-0");
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(b->format, "raw");
  EXPECT_EQ(b->protocol.dump(), R"({"driver":"host_device","filename":"/dev/zvol/rpool/data/vm-101-disk-0"})");
  EXPECT_EQ(b->path, "/dev/zvol/rpool/data/vm-101-disk-0");
  EXPECT_FALSE(zfs->Blockdev("vm-100-disk-0@snap"));
}

TEST_F(ZfsPoolTest, NamedAllocationsAndRefusals) {
  runner_.Expect("zfs create -V 4096k rpool/data/vm-101-cloudinit");
  auto zfs = Make();
  EXPECT_EQ(*zfs->AllocImage(101, "raw", 4 << 20, "vm-101-cloudinit", nullptr), "vm-101-cloudinit");
  EXPECT_EQ(zfs->AllocImage(101, "raw", 1 << 20, "vm-102-disk-0", nullptr).error().message,
            "illegal name 'vm-102-disk-0' - should be 'vm-101-*'");
  EXPECT_FALSE(zfs->AllocImage(101, "raw", 1 << 20, "vm-101-x@y", nullptr));
  EXPECT_EQ(zfs->AllocImage(101, "qcow2", 1 << 20, "", nullptr).error().fields.at("format"),
            "unsupported format 'qcow2'");
}

TEST_F(ZfsPoolTest, ZfsErrorsReadAsProxmoxs) {
  runner_.Expect("zfs create -V 1024k rpool/data/vm-101-cloudinit", "", 1,
                 "cannot create 'rpool/data/vm-101-cloudinit': out of space\n");
  auto zfs = Make();
  auto r = zfs->AllocImage(101, "raw", 1 << 20, "vm-101-cloudinit", nullptr);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "zfs error: cannot create 'rpool/data/vm-101-cloudinit': out of space");
}

TEST_F(ZfsPoolTest, StatusFromAvailableAndUsed) {
  runner_.Expect("zfs get -o value -Hp available,used rpool/data", "912345678848\n51234567168\n");
  runner_.Expect("zfs get -o value -Hp available,used rpool/data", "", 1, "cannot open 'rpool/data': dataset does not exist\n");
  auto zfs = Make();
  auto s = zfs->Usage();
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->active);
  EXPECT_EQ(s->avail, 912345678848u);
  EXPECT_EQ(s->used, 51234567168u);
  EXPECT_EQ(s->total, 912345678848u + 51234567168u);
  EXPECT_FALSE(zfs->Usage()->active);
}

TEST_F(ZfsPoolTest, ActivationImportsAMissingPool) {
  runner_.Expect("zpool list -o name -H rpool", "", 1, "cannot open 'rpool': no such pool\n")
      .Expect("zpool import -d /dev/disk/by-id/ -o cachefile=none rpool");
  auto zfs = Make();
  EXPECT_TRUE(zfs->Activate());
  runner_.Expect("zpool list -o name -H rpool", "rpool\n");
  EXPECT_TRUE(zfs->Activate());  // imported: nothing else runs
  runner_.Expect("zpool list -o name -H rpool", "", 1, "cannot open 'rpool': no such pool\n")
      .Expect("zpool import -d /dev/disk/by-id/ -o cachefile=none rpool", "", 1, "cannot import 'rpool': no such pool available\n")
      .Expect("zpool list -o name -H rpool", "", 1, "cannot open 'rpool': no such pool\n");
  auto st = zfs->Activate();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "could not activate storage 'tank', zfs error: cannot import 'rpool': no such pool available");
}

TEST_F(ZfsPoolTest, SnapshotsAndRollbackOnlyToTheMostRecent) {
  std::string snaps = "rpool/data/vm-100-disk-0@first\nrpool/data/vm-100-disk-0@second\n";
  std::string list = "zfs list -H -r -t snapshot -o name -s creation rpool/data/vm-100-disk-0";
  runner_.Expect("zfs snapshot rpool/data/vm-100-disk-0@second")
      .Expect(list, snaps)
      .Expect(list, snaps)
      .Expect(list, snaps)
      .Expect("zfs rollback rpool/data/vm-100-disk-0@second")
      .Expect("zfs destroy rpool/data/vm-100-disk-0@first");
  auto zfs = Make();
  EXPECT_TRUE(zfs->CanSnapshot("vm-100-disk-0"));
  EXPECT_FALSE(zfs->CanSnapshot("base-100-disk-1"));
  EXPECT_FALSE(zfs->SnapshotByQemu("vm-100-disk-0"));
  EXPECT_TRUE(zfs->VolumeSnapshot("vm-100-disk-0", "second"));
  EXPECT_EQ(zfs->VolumeSnapshotRollback("vm-100-disk-0", "first").error().message,
            "can't rollback, 'first' is not most recent snapshot on 'tank:vm-100-disk-0'");
  EXPECT_EQ(zfs->VolumeSnapshotRollback("vm-100-disk-0", "third").error().message,
            "can't rollback, snapshot 'third' does not exist on 'tank:vm-100-disk-0'");
  EXPECT_TRUE(zfs->VolumeSnapshotRollback("vm-100-disk-0", "second"));
  EXPECT_TRUE(zfs->VolumeSnapshotDelete("vm-100-disk-0", "first"));
  EXPECT_EQ(zfs->SnapshotImageOf("vm-100-disk-0", "first").error().message,
            "Full clone feature is not supported for a snapshot of 'tank:vm-100-disk-0'");
  EXPECT_EQ(zfs->CloneLinkedFromSnapshot("vm-100-disk-0", "first", 105).error().message,
            "Linked clone feature is not supported for a snapshot of 'tank:vm-100-disk-0'");
}

TEST_F(ZfsPoolTest, TemplatesAndLinkedClones) {
  runner_.Expect("zfs rename rpool/data/vm-100-disk-0 rpool/data/base-100-disk-0")
      .Expect("zfs snapshot rpool/data/base-100-disk-0@__base__")
      .Expect(kList, kListOut)
      .Expect("zfs clone rpool/data/base-100-disk-0@__base__ rpool/data/vm-101-disk-1")
      .Expect("zfs destroy rpool/data/base-100-disk-0@__base__")
      .Expect("zfs rename rpool/data/base-100-disk-0 rpool/data/vm-100-disk-0");
  auto zfs = Make();
  EXPECT_EQ(*zfs->RenameToBase("vm-100-disk-0"), "base-100-disk-0");
  auto clone = zfs->CloneLinked("base-100-disk-0", 101);
  ASSERT_TRUE(clone) << clone.error().message;
  EXPECT_EQ(*clone, "base-100-disk-0/vm-101-disk-1");  // disk-0 and the cloud-init volume are taken
  EXPECT_EQ(zfs->CloneLinked("vm-100-disk-0", 101).error().message, "clone_image only works on base images");
  EXPECT_EQ(*zfs->UndoBase("base-100-disk-0"), "vm-100-disk-0");
  EXPECT_EQ(zfs->RenameToBase("base-100-disk-0").error().message, "create_base not possible with base image");
}

TEST_F(ZfsPoolTest, FreeingRetriesABusyDatasetAndKeepsABaseInUse) {
  runner_.Expect("zfs destroy -r rpool/data/vm-100-disk-0", "", 1, "cannot destroy 'rpool/data/vm-100-disk-0': dataset is busy\n")
      .Expect("zfs destroy -r rpool/data/vm-100-disk-0")
      .Expect("zfs destroy -r rpool/data/vm-109-disk-0", "", 1, "cannot open 'rpool/data/vm-109-disk-0': dataset does not exist\n")
      .Expect(kList, kListOut);
  auto zfs = Make();
  EXPECT_TRUE(zfs->FreeVolume("vm-100-disk-0"));
  EXPECT_TRUE(zfs->FreeVolume("vm-109-disk-0"));  // gone already: done
  EXPECT_EQ(zfs->FreeVolume("base-100-disk-1").error().message,
            "base volume 'base-100-disk-1' is still in use by linked clones");
}

TEST_F(ZfsPoolTest, InfoResizeAndCopy) {
  runner_.Expect("zfs get -o value -Hp volsize,usedbydataset rpool/data/vm-100-disk-0", "34359738368\n1234567168\n")
      .Expect("zfs set volsize=3146752k rpool/data/vm-100-disk-0")
      .Expect("qemu-img info -U --output=json -f qcow2 /var/lib/hearth/images/100/vm-100-disk-0.qcow2",
              "{\n    \"virtual-size\": 1073741824,\n    \"filename\": \"x\"\n}\n")
      .Expect(kList, kListOut)
      .Expect("zfs create -V 1048576k rpool/data/vm-100-disk-2")
      .Expect("qemu-img convert -p -n -U -f qcow2 -O raw /var/lib/hearth/images/100/vm-100-disk-0.qcow2 "
              "/dev/zvol/rpool/data/vm-100-disk-2",
              "    (50.00/100%)\n    (100.00/100%)\n");
  auto zfs = Make();
  auto info = zfs->Info("vm-100-disk-0");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->size, 34359738368u);
  EXPECT_EQ(info->used, 1234567168u);
  EXPECT_EQ(info->format, "raw");
  EXPECT_TRUE(zfs->ResizeImage("vm-100-disk-0", (3ull << 30) + 1));  // up to the next MiB
  std::vector<std::string> progress;
  auto copy = zfs->CopyImage("/var/lib/hearth/images/100/vm-100-disk-0.qcow2", "qcow2", 100, "raw",
                             [&](const std::string& l) { progress.push_back(l); });
  ASSERT_TRUE(copy) << copy.error().message;
  EXPECT_EQ(*copy, "vm-100-disk-2");
  EXPECT_EQ(progress, (std::vector<std::string>{"copied 50%", "copied 100%"}));
}

TEST_F(ZfsPoolTest, ReplicationStreamsGoThroughFilesAndAFailedReceiveRollsBack) {
  TempDir dir;
  std::string out = dir.Sub("stream");
  runner_.Expect("zfs send -Rpv -I rpool/data/vm-100-disk-0@__replicate_100-0_1__ -- "
                 "rpool/data/vm-100-disk-0@__replicate_100-0_2__",
                 "", 0, "", [](const ProcessOptions& o) {
                   ASSERT_GE(o.stdout_fd, 0);
                   ASSERT_EQ(write(o.stdout_fd, "STREAM", 6), 6);
                 });
  auto zfs = Make();
  auto n = zfs->ExportVolume("vm-100-disk-0", "__replicate_100-0_2__", "__replicate_100-0_1__", out);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(*n, 6u);

  runner_.Expect("zfs get -H name rpool/data/vm-100-disk-0@__replicate_100-0_1__", "rpool/data/vm-100-disk-0@__replicate_100-0_1__\tname\t-\t-\n")
      .Expect("zfs recv -F -x encryption -- rpool/data/vm-100-disk-0", "", 1, "cannot receive: invalid stream\n",
              [](const ProcessOptions& o) {
                char buf[8] = {};
                ASSERT_GE(o.stdin_fd, 0);
                EXPECT_EQ(read(o.stdin_fd, buf, sizeof buf), 6);
              })
      .Expect("zfs rollback -r -- rpool/data/vm-100-disk-0@__replicate_100-0_1__");
  auto st = zfs->ImportVolume("vm-100-disk-0", "__replicate_100-0_2__", "__replicate_100-0_1__", out);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "zfs error: cannot receive: invalid stream");

  runner_.Expect("zfs get -H name rpool/data/vm-100-disk-0", "rpool/data/vm-100-disk-0\tname\t-\t-\n");
  EXPECT_EQ(zfs->ImportVolume("vm-100-disk-0", "s", "", out).error().message,
            "volume 'rpool/data/vm-100-disk-0' already exists");
  runner_.Expect("zfs get -H name rpool/data/vm-100-disk-0@gone", "", 1,
                 "cannot open 'rpool/data/vm-100-disk-0@gone': dataset does not exist\n");
  EXPECT_EQ(zfs->ImportVolume("vm-100-disk-0", "s", "gone", out).error().message,
            "base snapshot 'rpool/data/vm-100-disk-0@gone' doesn't exist");
}

}  // namespace
}  // namespace hearth

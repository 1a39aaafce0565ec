// LvmThinStorage against recorded LVM outputs (device-mapper is missing on the machines hearth
// is built on: no thin pool can be made there), in the format lvs prints for the options used
// (`--separator : --noheadings --units b --nosuffix`, 12 columns), as Proxmox's LVMPlugin
// reads it. Each test checks the argv the driver runs and what it makes of the answers. A
// last test runs the driver on a real thin pool on a loop device where /dev/mapper/control
// exists, and says why it is skipped elsewhere.
#include "storage/lvmthin/lvmthin_storage.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/testing/temp_dir.h"
#include "model/storage_config.h"
#include "sys/posix/posix_process.h"
#include "sys/testing/scripted_runner.h"

namespace hearth {
namespace {

constexpr char kLvs[] =
    "/sbin/lvs --separator : --noheadings --units b --unbuffered --nosuffix --config report/time_format=\"%s\" "
    "--options vg_name,lv_name,lv_size,lv_attr,pool_lv,data_percent,metadata_percent,snap_percent,uuid,tags,"
    "metadata_size,time pve";
// The pool, two VM disks (one with a snapshot), a template and its linked clone, a thick LV
// of the same VG outside the pool (left alone) and a line of another VG.
constexpr char kLvsOut[] =
    "  pve:data:140660178944:twi-aotz--::12.50:1.56::aB3dEf-0001::1442840576:1700000000\n"
    "  pve:root:34359738368:-wi-ao----::::gH7iJk-0002:::1699990000\n"
    "  pve:vm-100-disk-0:34359738368:Vwi-aotz--:data:5.20:::gH7iJk-0003:::1700000100\n"
    "  pve:snap_vm-100-disk-0_before:34359738368:Vri---tz-k:data:5.20:::gH7iJk-0004:::1700000200\n"
    "  pve:base-100-disk-1:8589934592:Vri---tz-k:data:20.00:::gH7iJk-0005:::1700000300\n"
    "  pve:vm-101-disk-0:8589934592:Vwi-a-tz--:data:20.00:::gH7iJk-0006:::1700000400\n"
    "  other:vm-100-disk-7:1073741824:Vwi-a-tz--:pool:0.00:::gH7iJk-0007:::1700000500\n";

class LvmThinTest : public ::testing::Test {
 protected:
  std::unique_ptr<LvmThinStorage> Make() {
    auto c = MakeStorageConfig("thin", "lvmthin", {{"vgname", "pve"}, {"thinpool", "data"}}, nullptr);
    EXPECT_TRUE(c) << c.error().message;
    return std::make_unique<LvmThinStorage>(*c, runner_, "/var/lib/hearth/tmp");
  }
  void TearDown() override { EXPECT_TRUE(runner_.Unused().empty()) << Join(runner_.Unused(), "\n"); }
  ScriptedRunner runner_;
};

TEST(LvmThinLines, TwelveColumnsOrNothing) {
  auto lv = LvmThinStorage::ParseLvsLine("  pve:data:140660178944:twi-aotz--::12.50:1.56::aB3dEf::1442840576:1700000000");
  ASSERT_TRUE(lv);
  EXPECT_EQ(lv->type(), 't');
  EXPECT_TRUE(lv->active());
  EXPECT_EQ(lv->size, 140660178944u);
  EXPECT_DOUBLE_EQ(lv->data_percent, 12.5);
  EXPECT_FALSE(LvmThinStorage::ParseLvsLine("  pve:data:1"));
  EXPECT_FALSE(LvmThinStorage::ParseLvsLine(""));
  auto odd = LvmThinStorage::ParseLvsLine("pve:x:abc:Vwi:data:nan:::u:::t");
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->size, 0u);
  EXPECT_EQ(odd->data_percent, 0);
  EXPECT_FALSE(LvmThinStorage::ParseVolname("vm-100-disk-0/../x"));
  EXPECT_FALSE(LvmThinStorage::ParseVolname("snap_vm-100-disk-0_a"));
  EXPECT_EQ(LvmThinStorage::ParseVolname("x").error().message, "unable to parse lvm volume name 'x'");
}

TEST_F(LvmThinTest, ListStatusAndInfoFromOneLvsCall) {
  runner_.Expect(kLvs, kLvsOut).Expect(kLvs, kLvsOut).Expect(kLvs, kLvsOut);
  auto thin = Make();
  auto all = thin->List(ContentType::kImages, 0);
  ASSERT_TRUE(all) << all.error().message;
  std::vector<std::string> ids;
  for (const auto& v : *all) ids.push_back(v.volid);
  EXPECT_EQ(ids, (std::vector<std::string>{"thin:base-100-disk-1", "thin:vm-100-disk-0", "thin:vm-101-disk-0"}));
  EXPECT_EQ((*all)[1].path, "/dev/pve/vm-100-disk-0");
  EXPECT_EQ((*all)[1].ctime, 1700000100);
  auto s = thin->Usage();
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->active);
  EXPECT_EQ(s->total, 140660178944u);
  EXPECT_EQ(s->used, 17582522368u);  // 12.5 %
  EXPECT_EQ(s->avail, 140660178944u - 17582522368u);
  auto info = thin->Info("vm-100-disk-0");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->size, 34359738368u);
}

TEST_F(LvmThinTest, AllocatesThinLvsWithoutAutoActivation) {
  runner_.Expect(kLvs, kLvsOut)
      .Expect("/sbin/lvcreate -aly -V 4194304k --name vm-100-disk-2 --thinpool pve/data")
      .Expect("/sbin/lvchange --setautoactivation n pve/vm-100-disk-2", "", 3,
              "  Option --setautoactivation is not supported with thin LVs.\n");  // only a warning
  auto thin = Make();
  auto name = thin->AllocImage(100, "raw", 4ull << 30, "", nullptr);
  ASSERT_TRUE(name) << name.error().message;
  EXPECT_EQ(*name, "vm-100-disk-2");  // disk-1 is the template's base-100-disk-1
  runner_.Expect(kLvs, kLvsOut).Expect("/sbin/lvcreate -aly -V 4096k --name vm-100-cloudinit --thinpool pve/data",
                                       "", 5, "  Insufficient free space for thin pool data.\n");
  auto full = thin->AllocImage(100, "raw", 4 << 20, "vm-100-cloudinit", nullptr);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().message, "lvcreate 'pve/vm-100-cloudinit' error: Insufficient free space for thin pool data.");
}

TEST_F(LvmThinTest, SnapshotsRollbackAndDelete) {
  runner_.Expect("/sbin/lvcreate -n snap_vm-100-disk-0_after -pr -s pve/vm-100-disk-0")
      .Expect(kLvs, kLvsOut)
      .Expect("/sbin/lvcreate -kn -n rollback_vm-100-disk-0 -s pve/snap_vm-100-disk-0_before")
      .Expect("/sbin/lvremove -f pve/vm-100-disk-0")
      .Expect("/sbin/lvrename pve rollback_vm-100-disk-0 vm-100-disk-0")
      .Expect("/sbin/lvchange --setautoactivation n pve/vm-100-disk-0")
      .Expect("/sbin/lvremove -f pve/snap_vm-100-disk-0_before");
  auto thin = Make();
  EXPECT_TRUE(thin->VolumeSnapshot("vm-100-disk-0", "after"));
  EXPECT_TRUE(thin->VolumeSnapshotRollback("vm-100-disk-0", "before"));
  EXPECT_TRUE(thin->VolumeSnapshotDelete("vm-100-disk-0", "before"));
  EXPECT_FALSE(thin->CanSnapshot("base-100-disk-1"));
}

TEST_F(LvmThinTest, ARollbackCutShortIsFinishedByTheNextOne) {
  // A crash after the old volume went: rollback_vm-100-disk-0 holds the data, no vm-100-disk-0.
  std::string after_crash =
      "  pve:data:140660178944:twi-aotz--::12.50:1.56::a::1442840576:1700000000\n"
      "  pve:snap_vm-100-disk-0_before:34359738368:Vri---tz-k:data:5.20:::b:::1700000200\n"
      "  pve:rollback_vm-100-disk-0:34359738368:Vwi---tz--:data:5.20:::c:::1700000600\n";
  runner_.Expect(kLvs, after_crash)
      .Expect("/sbin/lvrename pve rollback_vm-100-disk-0 vm-100-disk-0")
      .Expect("/sbin/lvchange --setautoactivation n pve/vm-100-disk-0");
  auto thin = Make();
  EXPECT_TRUE(thin->VolumeSnapshotRollback("vm-100-disk-0", "before"));
}

TEST_F(LvmThinTest, TemplatesClonesAndFreeing) {
  runner_.Expect(kLvs, kLvsOut);
  auto thin = Make();
  EXPECT_EQ(thin->RenameToBase("vm-100-disk-0").error().message,
            "unable to create base volume - found snaphost 'snap_vm-100-disk-0_before'");
  runner_.Expect(kLvs, kLvsOut)
      .Expect("/sbin/lvrename pve vm-101-disk-0 base-101-disk-0")
      .Expect("/sbin/lvchange -pr -ky pve/base-101-disk-0")
      .Expect(kLvs, kLvsOut)
      .Expect("/sbin/lvcreate -n vm-102-disk-0 -prw -kn -s pve/base-100-disk-1")
      .Expect("/sbin/lvchange --setautoactivation n pve/vm-102-disk-0")
      .Expect(kLvs, kLvsOut)
      .Expect("/sbin/lvremove -f pve/snap_vm-100-disk-0_before")
      .Expect("/sbin/lvremove -f pve/vm-100-disk-0")
      .Expect(kLvs, kLvsOut);
  EXPECT_EQ(*thin->RenameToBase("vm-101-disk-0"), "base-101-disk-0");
  EXPECT_EQ(*thin->CloneLinked("base-100-disk-1", 102), "vm-102-disk-0");  // no base part, as Proxmox
  EXPECT_TRUE(thin->FreeVolume("vm-100-disk-0"));                           // its snapshot first
  EXPECT_TRUE(thin->FreeVolume("vm-100-disk-9"));                           // gone already
}

TEST_F(LvmThinTest, ActivationOfThePoolAndOfVolumes) {
  runner_.Expect("/sbin/vgs --separator : --noheadings --units b --unbuffered --nosuffix --options "
                 "vg_name,vg_size,vg_free,lv_count",
                 "  pve:500107862016:16106127360:6\n")
      .Expect(kLvs, kLvsOut)
      .Expect(kLvs, kLvsOut)
      .Expect("/sbin/lvchange -ay -K pve/base-100-disk-1");
  auto thin = Make();
  EXPECT_TRUE(thin->Activate());                          // the pool is active: nothing to do
  EXPECT_TRUE(thin->ActivateVolume("base-100-disk-1"));  // inactive (activation skipped)
  runner_.Expect("/sbin/vgs --separator : --noheadings --units b --unbuffered --nosuffix --options "
                 "vg_name,vg_size,vg_free,lv_count",
                 "")
      .Expect("/sbin/vgscan --ignorelockingfailure --mknodes")
      .Expect(kLvs, "", 5, "  Volume group \"pve\" not found\n");
  auto st = thin->Activate();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "could not activate storage 'thin', lvs 'pve' error: Volume group \"pve\" not found");
}

// QEMU opens an LV as the block device it is, raw, without asking LVM anything.
TEST_F(LvmThinTest, BlockdevOptionsAreAHostDevice) {
  auto thin = Make();
  auto b = thin->Blockdev("vm-100-disk-0");
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(b->format, "raw");
  EXPECT_EQ(b->protocol.dump(), R"({"driver":"host_device","filename":"/dev/pve/vm-100-disk-0"})");
  EXPECT_EQ(b->path, "/dev/pve/vm-100-disk-0");
  EXPECT_FALSE(thin->Blockdev("../etc/passwd"));
}

// The real thing, where the kernel has device-mapper.
TEST(LvmThinReal, AllocSnapshotRollbackFreeOnALoopDevice) {
  struct stat st {};
  if (::stat("/dev/mapper/control", &st) != 0)
    GTEST_SKIP() << "no /dev/mapper/control: this kernel has no device-mapper, so no LVM thin pool can be made "
                    "(the recorded-output tests above cover the driver's commands)";
  if (::geteuid() != 0 || ::access("/sbin/lvcreate", X_OK) != 0) GTEST_SKIP() << "needs root and lvm2";
  TempDir dir;
  PosixProcessRunner runner;
  auto run = [&](std::vector<std::string> argv) {
    auto r = runner.Run(argv, {});
    return r && r->exit_code == 0 ? r->out : std::string("FAILED");
  };
  std::string img = dir.Sub("pv.img");
  ASSERT_NE(run({"truncate", "-s", "1G", img}), "FAILED");
  std::string dev(Trim(run({"losetup", "--find", "--show", img})));
  ASSERT_NE(dev, "FAILED");
  std::string vg = "hearthtest" + std::to_string(::getpid());
  ASSERT_NE(run({"/sbin/vgcreate", vg, dev}), "FAILED");
  ASSERT_NE(run({"/sbin/lvcreate", "-L", "512M", "-T", vg + "/pool"}), "FAILED");
  auto c = MakeStorageConfig("thin", "lvmthin", {{"vgname", vg}, {"thinpool", "pool"}}, nullptr);
  ASSERT_TRUE(c);
  LvmThinStorage thin(*c, runner, dir.Sub("tmp"));
  EXPECT_TRUE(thin.Activate());
  auto name = thin.AllocImage(100, "raw", 64 << 20, "", nullptr);
  ASSERT_TRUE(name) << name.error().message;
  EXPECT_TRUE(thin.VolumeSnapshot(*name, "s1"));
  EXPECT_TRUE(thin.VolumeSnapshotRollback(*name, "s1"));
  EXPECT_EQ(thin.List(ContentType::kImages, 100)->size(), 1u);
  EXPECT_TRUE(thin.FreeVolume(*name));
  run({"/sbin/vgremove", "-f", vg});
  run({"losetup", "-d", dev});
}

}  // namespace
}  // namespace hearth

// NfsStorage's commands and its reading of /proc/mounts, against recorded outputs: the
// machines hearth is built on have no NFS client in their kernels, so no export can be
// mounted here (tests/api/test_storage_config.py checks the failed mount's error for real).
#include "storage/nfs/nfs_storage.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/strings.h"
#include "core/testing/temp_dir.h"
#include "model/storage_config.h"
#include "sys/testing/scripted_runner.h"

namespace hearth {
namespace {

class NfsTest : public ::testing::Test {
 protected:
  std::unique_ptr<NfsStorage> Make(std::map<std::string, std::string> extra = {}) {
    std::map<std::string, std::string> params = {
        {"server", "192.0.2.10"}, {"export", "/srv/vm"}, {"path", dir_.Sub("nas")}, {"content", "images,iso"}};
    for (auto& [k, v] : extra) params[k] = v;
    auto c = MakeStorageConfig("nas", "nfs", params, nullptr);
    EXPECT_TRUE(c) << c.error().message;
    return std::make_unique<NfsStorage>(*c, runner_, [this] { return mounts_; });
  }
  // What the kernel lists once the export is mounted.
  std::string MountedLine() const {
    return "192.0.2.10:/srv/vm " + dir_.Sub("nas") +
           " nfs4 rw,relatime,vers=4.2,rsize=1048576,wsize=1048576,hard,proto=tcp 0 0\n";
  }
  void TearDown() override { EXPECT_TRUE(runner_.Unused().empty()) << Join(runner_.Unused(), "\n"); }
  TempDir dir_;
  ScriptedRunner runner_;
  std::string mounts_ = "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n/dev/vda1 / ext4 rw 0 0\n";
};

TEST(NfsMounts, MatchesProxmoxsRule) {
  std::string m = "10.0.0.1:/export/ /mnt/pve/a nfs rw 0 0\n"
                  "[2001:db8::1]:/e /mnt/pve/b nfs4 rw 0 0\n"
                  "10.0.0.1:/other /mnt/pve/c nfs rw 0 0\n"
                  "10.0.0.1:/export /mnt/pve/d ext4 rw 0 0\n"
                  "10.0.0.1:/a\\040b /mnt/pve/with\\040space nfs rw 0 0\n";
  EXPECT_TRUE(NfsStorage::IsMounted(m, "10.0.0.1", "/export", "/mnt/pve/a"));  // trailing '/' allowed
  EXPECT_TRUE(NfsStorage::IsMounted(m, "2001:db8::1", "/e", "/mnt/pve/b"));    // IPv6 in brackets
  EXPECT_FALSE(NfsStorage::IsMounted(m, "10.0.0.1", "/export", "/mnt/pve/c"));  // another export there
  EXPECT_FALSE(NfsStorage::IsMounted(m, "10.0.0.1", "/export", "/mnt/pve/d"));  // not nfs
  EXPECT_FALSE(NfsStorage::IsMounted(m, "10.0.0.1", "/export", "/mnt/pve/a/sub"));
  EXPECT_TRUE(NfsStorage::IsMounted(m, "10.0.0.1", "/a b", "/mnt/pve/with space"));  // \040 decoded
  EXPECT_EQ(NfsStorage::Source("2001:db8::1", "/e"), "[2001:db8::1]:/e");
}

TEST_F(NfsTest, ActivationMountsTheExportOnceAndMakesTheContentDirectories) {
  // The scripted mount "succeeds"; the kernel lists it from then on.
  runner_.Expect("/sbin/showmount --no-headers --exports 192.0.2.10", "/srv/vm 192.0.2.0/24\n")
      .Expect("/bin/mount -t nfs 192.0.2.10:/srv/vm " + dir_.Sub("nas") + " -o vers=3,soft", "", 0, "",
              [this](const ProcessOptions&) { mounts_ += MountedLine(); });
  auto nfs = Make({{"options", "vers=3,soft"}});
  EXPECT_FALSE(nfs->Usage()->active);  // not mounted: inactive, as Proxmox's status
  ASSERT_TRUE(nfs->Activate());
  EXPECT_TRUE(std::filesystem::is_directory(dir_.Sub("nas/images")));
  EXPECT_TRUE(std::filesystem::is_directory(dir_.Sub("nas/template/iso")));
  EXPECT_TRUE(nfs->Usage()->active);
  ASSERT_TRUE(nfs->Activate());  // mounted: no command at all
  EXPECT_EQ(nfs->type(), "nfs");
  // Disks land on the mounted export, as on any dir storage.
  runner_.Expect("qemu-img create -q -f qcow2 " + dir_.Sub("nas/images/100/vm-100-disk-0.qcow2") + " 1048576");
  auto vol = nfs->AllocImage(100, "qcow2", 1 << 20, "", nullptr);
  ASSERT_TRUE(vol) << vol.error().message;
  EXPECT_EQ(*vol, "100/vm-100-disk-0.qcow2");
}

TEST_F(NfsTest, AServerThatDoesNotAnswerIsNotOnline) {
  runner_.Expect("/sbin/showmount --no-headers --exports 192.0.2.10", "", 1,
                 "clnt_create: RPC: Unable to receive\n");
  auto nfs = Make();
  auto st = nfs->Activate();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "storage 'nas' is not online");
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("nas")));  // nothing made for a server that is away
  EXPECT_EQ(nfs->AllocImage(100, "raw", 1 << 20, "", nullptr).error().message,
            "unable to activate storage 'nas' - NFS export '192.0.2.10:/srv/vm' is not mounted on '" +
                dir_.Sub("nas") + "'");
}

TEST_F(NfsTest, NfsV4AsksRpcinfoAndAMountErrorIsTheKernels) {
  runner_.Expect("/usr/sbin/rpcinfo -T tcp 192.0.2.10 nfs 4", "   program version netid     address\n")
      .Expect("/bin/mount -t nfs 192.0.2.10:/srv/vm " + dir_.Sub("nas") + " -o vers=4.2", "", 32,
              "mount: " + dir_.Sub("nas") + ": unknown filesystem type 'nfs'.\n"
              "       dmesg(1) may have more information after failed mount system call.\n");
  auto nfs = Make({{"options", "vers=4.2"}});
  auto st = nfs->Activate();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "mount error: mount: " + dir_.Sub("nas") + ": unknown filesystem type 'nfs'.");
}

}  // namespace
}  // namespace hearth

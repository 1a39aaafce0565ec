// BtrfsStorage against a real btrfs on a loop device (root and btrfs-progs needed; skipped
// with the reason otherwise): Proxmox's layout, snapshots, rollback, templates and clones.
#include "storage/btrfs/btrfs_storage.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <fstream>

#include "core/testing/temp_dir.h"
#include "core/units.h"
#include "model/vm_snapshot.h"
#include "sys/posix/posix_process.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;

std::string ReadAt(const std::string& path, off_t offset, size_t n) {
  std::string out(n, '\0');
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return "";
  ssize_t got = ::pread(fd, out.data(), n, offset);
  ::close(fd);
  out.resize(got > 0 ? static_cast<size_t>(got) : 0);
  return out;
}

bool WriteAt(const std::string& path, off_t offset, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY);
  if (fd < 0) return false;
  bool ok = ::pwrite(fd, data.data(), data.size(), offset) == static_cast<ssize_t>(data.size());
  ::close(fd);
  return ok;
}

// Test set-up commands, argv only (no shell), through the same runner the driver uses.
bool RunArgv(const std::vector<std::string>& argv) {
  PosixProcessRunner runner;
  auto r = runner.Run(argv, {});
  return r && r->exit_code == 0;
}

bool IsSubvolume(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_ino == 256;  // btrfs subvolume roots
}

class BtrfsStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a btrfs loop device";
    if (!RunArgv({"btrfs", "--version"}) || !RunArgv({"mkfs.btrfs", "--version"}))
      GTEST_SKIP() << "btrfs-progs is not installed (scripts/install-deps.sh installs it)";
    std::string img = dir_.Sub("btrfs.img");
    mnt_ = dir_.Sub("mnt");
    fs::create_directories(mnt_);
    { std::ofstream(img).close(); }
    fs::resize_file(img, 320 * kMiB);
    ASSERT_TRUE(RunArgv({"mkfs.btrfs", "-q", img}));
    if (!RunArgv({"mount", "-o", "loop", img, mnt_})) GTEST_SKIP() << "cannot mount a loop device here";
    mounted_ = true;
    config_.id = "tank";
    config_.type = "btrfs";
    config_.options = {{"path", mnt_ + "/store"}, {"content", "images,iso"}};
    storage_ = std::make_unique<BtrfsStorage>(config_, runner_);
    ASSERT_TRUE(storage_->Activate());
  }
  void TearDown() override {
    storage_.reset();
    if (mounted_) ::umount2(mnt_.c_str(), MNT_DETACH);
  }
  std::string Images(const std::string& rel) { return mnt_ + "/store/images/" + rel; }

  TempDir dir_;
  std::string mnt_;
  bool mounted_ = false;
  PosixProcessRunner runner_;
  StorageConfig config_;
  std::unique_ptr<BtrfsStorage> storage_;
};

TEST_F(BtrfsStorageTest, RawImagesAreSubvolumesLaidOutAsProxmoxs) {
  auto a = storage_->AllocImage(100, "raw", 64 * kMiB, "", nullptr);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(*a, "100/vm-100-disk-0.raw");
  EXPECT_TRUE(IsSubvolume(Images("100/vm-100-disk-0")));
  EXPECT_EQ(*storage_->Path(*a), Images("100/vm-100-disk-0/disk.raw"));
  EXPECT_EQ(fs::file_size(Images("100/vm-100-disk-0/disk.raw")), 64 * kMiB);
  auto b = storage_->AllocImage(100, "raw", kMiB, "", nullptr);
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, "100/vm-100-disk-1.raw");
  auto ci = storage_->AllocImage(100, "raw", 4 * kMiB, "vm-100-cloudinit", nullptr);
  ASSERT_TRUE(ci) << ci.error().message;
  EXPECT_EQ(*ci, "100/vm-100-cloudinit.raw");

  auto list = storage_->List(ContentType::kImages, 100);
  ASSERT_TRUE(list);
  std::vector<std::string> ids;
  for (const auto& v : *list) ids.push_back(v.volid);
  EXPECT_EQ(ids, (std::vector<std::string>{"tank:100/vm-100-cloudinit.raw", "tank:100/vm-100-disk-0.raw",
                                           "tank:100/vm-100-disk-1.raw"}));
  EXPECT_EQ(storage_->Info(*a)->size, 64 * kMiB);
  EXPECT_EQ(storage_->DefaultFormat(), "raw");
  auto q = storage_->AllocImage(100, "qcow2", kMiB, "", nullptr);
  ASSERT_FALSE(q);
  EXPECT_NE(q.error().fields.at("format").find("unsupported format 'qcow2' for storage 'tank'"), std::string::npos);

  ASSERT_TRUE(storage_->ResizeImage(*a, 128 * kMiB));
  EXPECT_EQ(storage_->Info(*a)->size, 128 * kMiB);
  for (const auto& v : ids) ASSERT_TRUE(storage_->FreeVolume(v.substr(5)));
  EXPECT_FALSE(fs::exists(Images("100")));  // the last disk took the VM's directory along
}

TEST_F(BtrfsStorageTest, SnapshotsRollBackAndGoAwayWithTheVolume) {
  auto vol = *storage_->AllocImage(101, "raw", 16 * kMiB, "", nullptr);
  std::string file = *storage_->Path(vol);
  ASSERT_TRUE(WriteAt(file, kMiB, "before"));
  ASSERT_TRUE(storage_->VolumeSnapshot(vol, "s1"));
  EXPECT_TRUE(IsSubvolume(Images("101/vm-101-disk-0@s1")));
  ASSERT_TRUE(WriteAt(file, kMiB, "after!"));
  ASSERT_TRUE(storage_->VolumeSnapshot(vol, "s2"));
  EXPECT_EQ(*storage_->VolumeSnapshotNames(vol), (std::vector<std::string>{"s1", "s2"}));
  EXPECT_EQ(storage_->VolumeSnapshot(vol, "s1").error().code, ErrorCode::kAlreadyExists);
  EXPECT_FALSE(storage_->VolumeSnapshot(vol, "1bad"));
  // Snapshots are read-only: nothing can change what was saved.
  EXPECT_FALSE(WriteAt(Images("101/vm-101-disk-0@s1/disk.raw"), 0, "x"));

  ASSERT_TRUE(storage_->VolumeSnapshotRollback(vol, "s1"));  // not the newest: allowed, as Proxmox
  EXPECT_EQ(ReadAt(file, kMiB, 6), "before");
  ASSERT_TRUE(WriteAt(file, kMiB, "again!"));  // the rolled-back disk is writable
  EXPECT_EQ(*storage_->VolumeSnapshotNames(vol), (std::vector<std::string>{"s1", "s2"}));
  ASSERT_TRUE(storage_->VolumeSnapshotRollback(vol, "s2"));
  EXPECT_EQ(ReadAt(file, kMiB, 6), "after!");
  EXPECT_EQ(storage_->VolumeSnapshotRollback(vol, "nope").error().message,
            "snapshot 'nope' of volume 'tank:101/vm-101-disk-0.raw' does not exist");
  for (const auto& e : fs::directory_iterator(Images("101")))  // no rollback leftovers
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();

  ASSERT_TRUE(storage_->VolumeSnapshotDelete(vol, "s2"));
  EXPECT_EQ(*storage_->VolumeSnapshotNames(vol), std::vector<std::string>{"s1"});
  // The listing shows the disk once, never its snapshots.
  EXPECT_EQ(storage_->List(ContentType::kImages, 101)->size(), 1u);
  ASSERT_TRUE(storage_->FreeVolume(vol));
  EXPECT_FALSE(fs::exists(Images("101")));
}

TEST_F(BtrfsStorageTest, TemplatesAreReadOnlyAndClonesShareTheirDataButNotTheirFate) {
  auto vol = *storage_->AllocImage(900, "raw", 16 * kMiB, "", nullptr);
  ASSERT_TRUE(WriteAt(*storage_->Path(vol), 0, "golden image"));
  auto base = storage_->RenameToBase(vol);
  ASSERT_TRUE(base) << base.error().message;
  EXPECT_EQ(*base, "900/base-900-disk-0.raw");
  EXPECT_FALSE(WriteAt(*storage_->Path(*base), 0, "x"));  // ro subvolume
  EXPECT_EQ(storage_->ResizeImage(*base, 32 * kMiB).error().code, ErrorCode::kFailedPrecondition);
  EXPECT_FALSE(storage_->CloneLinked(*storage_->AllocImage(900, "raw", kMiB, "", nullptr), 901));  // not a base

  auto clone = storage_->CloneLinked(*base, 901);
  ASSERT_TRUE(clone) << clone.error().message;
  EXPECT_EQ(*clone, "901/vm-901-disk-0.raw");  // no base part: the clone is independent
  std::string cfile = *storage_->Path(*clone);
  EXPECT_EQ(ReadAt(cfile, 0, 12), "golden image");
  ASSERT_TRUE(WriteAt(cfile, 0, "clone's own "));
  EXPECT_EQ(ReadAt(*storage_->Path(*base), 0, 12), "golden image");
  ASSERT_TRUE(storage_->FreeVolume(*base));  // the template goes; the clone keeps its data
  EXPECT_EQ(ReadAt(cfile, 0, 12), "clone's own ");

  auto again = *storage_->AllocImage(902, "raw", kMiB, "", nullptr);
  auto b2 = *storage_->RenameToBase(again);
  auto undone = storage_->UndoBase(b2);
  ASSERT_TRUE(undone) << undone.error().message;
  EXPECT_EQ(*undone, again);
  EXPECT_TRUE(WriteAt(*storage_->Path(again), 0, "writable again"));
}

TEST_F(BtrfsStorageTest, FullCopiesConvertIntoANewSubvolume) {
  std::string src = dir_.Sub("src.qcow2");
  ASSERT_TRUE(RunArgv({"qemu-img", "create", "-q", "-f", "qcow2", src, "8M"}));
  ASSERT_TRUE(RunArgv({"qemu-io", "-f", "qcow2", "-c", "write -P 0x61 1M 4k", src}));
  std::vector<std::string> seen;
  auto vol = storage_->CopyImage(src, "qcow2", 300, "raw", [&](const std::string& l) { seen.push_back(l); });
  ASSERT_TRUE(vol) << vol.error().message;
  EXPECT_EQ(*vol, "300/vm-300-disk-0.raw");
  EXPECT_EQ(ReadAt(*storage_->Path(*vol), kMiB, 4), "aaaa");
  EXPECT_EQ(storage_->Info(*vol)->size, 8 * kMiB);
  EXPECT_FALSE(seen.empty());
  EXPECT_FALSE(storage_->CopyImage(src, "qcow2", 300, "qcow2", nullptr));
}

TEST_F(BtrfsStorageTest, ActivationRefusesOtherFileSystemsAndClearsRollbackLeftovers) {
  // A rollback cut short between its exchange and its delete leaves a subvolume nothing names.
  auto leftover_vol = *storage_->AllocImage(400, "raw", kMiB, "", nullptr);
  ASSERT_TRUE(RunArgv({"btrfs", "-q", "subvolume", "create", Images("400/vm-400-disk-0.tmp.4242")}));
  ASSERT_TRUE(storage_->Activate());
  EXPECT_FALSE(fs::exists(Images("400/vm-400-disk-0.tmp.4242")));
  EXPECT_TRUE(fs::exists(*storage_->Path(leftover_vol)));

  StorageConfig other = config_;
  other.options["path"] = dir_.Sub("plain");  // the test's temp dir: not btrfs
  BtrfsStorage plain(other, runner_);
  auto st = plain.Activate();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "'" + dir_.Sub("plain") + "' is not a btrfs file system");
  // Nothing is ever written there (an unmounted file system leaves such a directory).
  auto vol = plain.AllocImage(100, "raw", kMiB, "", nullptr);
  ASSERT_FALSE(vol);
  EXPECT_EQ(vol.error().message, "'" + dir_.Sub("plain") + "' is not a btrfs file system");
  EXPECT_FALSE(plain.Usage()->active);
  EXPECT_FALSE(fs::exists(dir_.Sub("plain") + "/images/100"));
}

TEST_F(BtrfsStorageTest, NocowMarksNewImages) {
  config_.options["nocow"] = "1";
  storage_->Reconfigure(config_);
  auto vol = *storage_->AllocImage(500, "raw", kMiB, "", nullptr);
  int fd = ::open(storage_->Path(vol)->c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  int flags = 0;
  ASSERT_EQ(::ioctl(fd, FS_IOC_GETFLAGS, &flags), 0);
  ::close(fd);
  EXPECT_TRUE(flags & FS_NOCOW_FL);
}

TEST_F(BtrfsStorageTest, CompressSetsTheCompressionOfNewImages) {
  config_.options["compress"] = "zstd";
  storage_->Reconfigure(config_);
  auto vol = *storage_->AllocImage(501, "raw", kMiB, "", nullptr);
  // The file inherited the property of its subvolume.
  auto r = runner_.Run({"btrfs", "property", "get", *storage_->Path(vol), "compression"}, {});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->out, "compression=zstd\n");
  // Without the option, none.
  config_.options.erase("compress");
  storage_->Reconfigure(config_);
  auto plain = *storage_->AllocImage(501, "raw", kMiB, "", nullptr);
  r = runner_.Run({"btrfs", "property", "get", *storage_->Path(plain), "compression"}, {});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->out, "");
}

// Replication's storage half: a full send, then one of only the changes, received by a second
// storage on the same btrfs (as the target node's would be); a stream cut short
// changes nothing there.
TEST_F(BtrfsStorageTest, ExportAndImportReplicateFullThenIncrementally) {
  StorageConfig other = config_;
  other.options["path"] = mnt_ + "/replica";
  BtrfsStorage target(other, runner_);
  ASSERT_TRUE(target.Activate());
  auto vol = *storage_->AllocImage(600, "raw", 64 * kMiB, "", nullptr);
  EXPECT_TRUE(storage_->CanReplicate(vol));
  std::string file = *storage_->Path(vol), copy = mnt_ + "/replica/images/600/vm-600-disk-0/disk.raw";
  ASSERT_TRUE(WriteAt(file, 8 * kMiB, "first"));
  std::string s1 = ReplicationSnapshotName("600-0", 1000), s2 = ReplicationSnapshotName("600-0", 2000);
  ASSERT_TRUE(storage_->VolumeSnapshot(vol, s1));
  std::string stream = dir_.Sub("full.stream");
  auto full = storage_->ExportVolume(vol, s1, "", stream);
  ASSERT_TRUE(full) << full.error().message;
  auto imported = target.ImportVolume(vol, s1, "", stream);
  ASSERT_TRUE(imported) << imported.error().message;
  EXPECT_EQ(ReadAt(copy, 8 * kMiB, 5), "first");
  EXPECT_EQ(*target.VolumeSnapshotNames(vol), std::vector<std::string>{s1});
  EXPECT_EQ(target.List(ContentType::kImages, 600)->size(), 1u);

  // 4 MiB more of data: the incremental stream holds about that, not the whole disk.
  ASSERT_TRUE(WriteAt(file, 8 * kMiB, std::string(4 * kMiB, 'x')));
  ASSERT_TRUE(storage_->VolumeSnapshot(vol, s2));
  std::string inc = dir_.Sub("inc.stream");
  auto delta = storage_->ExportVolume(vol, s2, s1, inc);
  ASSERT_TRUE(delta) << delta.error().message;
  EXPECT_LT(*delta, 5 * kMiB);
  // Cut short: the receive fails and the copy is as it was, with its snapshot.
  fs::copy_file(inc, dir_.Sub("cut.stream"));
  fs::resize_file(dir_.Sub("cut.stream"), *delta / 2);
  EXPECT_FALSE(target.ImportVolume(vol, s2, s1, dir_.Sub("cut.stream")));
  EXPECT_EQ(ReadAt(copy, 8 * kMiB, 5), "first");
  EXPECT_EQ(*target.VolumeSnapshotNames(vol), std::vector<std::string>{s1});
  for (const auto& e : fs::directory_iterator(mnt_ + "/replica/images/600"))
    EXPECT_EQ(e.path().filename().string().find(".recv."), std::string::npos) << e.path();
  // A base the target does not hold: refused before anything is read.
  EXPECT_EQ(target.ImportVolume(vol, s2, ReplicationSnapshotName("600-0", 5), inc).error().code, ErrorCode::kNotFound);
  // The whole stream: the changes arrive.
  auto st = target.ImportVolume(vol, s2, s1, inc);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(ReadAt(copy, 8 * kMiB, 5), "xxxxx");
  EXPECT_EQ(*target.VolumeSnapshotNames(vol), (std::vector<std::string>{s1, s2}));
  // The same snapshot twice: refused, nothing changed.
  EXPECT_EQ(target.ImportVolume(vol, s2, s1, inc).error().code, ErrorCode::kAlreadyExists);
  // The copy is writable (a failover starts from it) and its snapshots are not.
  EXPECT_TRUE(WriteAt(copy, 0, "boot"));
  EXPECT_FALSE(WriteAt(mnt_ + "/replica/images/600/vm-600-disk-0@" + s2 + "/disk.raw", 0, "x"));
  // Garbage is refused as a stream.
  { std::ofstream(dir_.Sub("junk.stream")) << "not a btrfs stream"; }
  EXPECT_FALSE(target.ImportVolume(vol, ReplicationSnapshotName("600-0", 3000), s2, dir_.Sub("junk.stream")));
  EXPECT_EQ(*target.VolumeSnapshotNames(vol), (std::vector<std::string>{s1, s2}));
}

// Found by a break-test: a stream whose disk.raw is a symlink to a host file was swapped in,
// and QEMU then opened /etc/shadow as the disk.
TEST_F(BtrfsStorageTest, ImportTakesNothingButARegularDiskImage) {
  StorageConfig other = config_;
  other.options["path"] = mnt_ + "/replica";
  BtrfsStorage target(other, runner_);
  ASSERT_TRUE(target.Activate());
  std::string snap = ReplicationSnapshotName("700-0", 1000);
  std::string vol = "700/vm-700-disk-0.raw";
  auto crafted = [&](const std::function<void(const std::string&)>& fill) {
    std::string sub = mnt_ + "/craft/vm-700-disk-0@" + snap;
    fs::create_directories(mnt_ + "/craft");
    EXPECT_TRUE(RunArgv({"btrfs", "-q", "subvolume", "create", sub}));
    fill(sub);
    EXPECT_TRUE(RunArgv({"btrfs", "-q", "property", "set", "-ts", sub, "ro", "true"}));
    std::string stream = dir_.Sub("crafted.stream");
    fs::remove(stream);
    EXPECT_TRUE(RunArgv({"btrfs", "-q", "send", "-f", stream, sub}));
    EXPECT_TRUE(RunArgv({"btrfs", "-q", "subvolume", "delete", sub}));
    return stream;
  };
  auto refused = [&](const std::string& stream) {
    auto st = target.ImportVolume(vol, snap, "", stream);
    EXPECT_FALSE(st);
    if (!st) {
      EXPECT_NE(st.error().message.find("not just a disk image"), std::string::npos) << st.error().message;
    }
    EXPECT_FALSE(fs::exists(mnt_ + "/replica/images/700/vm-700-disk-0"));
    EXPECT_FALSE(fs::exists(mnt_ + "/replica/images/700/vm-700-disk-0@" + snap));
  };
  refused(crafted([](const std::string& sub) { fs::create_symlink("/etc/shadow", sub + "/disk.raw"); }));
  refused(crafted([](const std::string& sub) { fs::create_directory(sub + "/disk.raw"); }));
  refused(crafted([](const std::string& sub) {
    std::ofstream(sub + "/disk.raw") << "x";
    std::ofstream(sub + "/extra") << "y";
  }));
  refused(crafted([](const std::string& sub) {
    std::ofstream(sub + "/disk.raw") << "x";
    fs::permissions(sub + "/disk.raw", fs::perms::set_uid, fs::perm_options::add);
  }));
  // A plain image is taken; a second full stream onto it is refused.
  std::string good = crafted([](const std::string& sub) { std::ofstream(sub + "/disk.raw") << "data"; });
  auto st = target.ImportVolume(vol, snap, "", good);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(target.ImportVolume(vol, ReplicationSnapshotName("700-0", 2000), "", good).error().message,
            "volume 'tank:700/vm-700-disk-0.raw' already exists");
}

TEST_F(BtrfsStorageTest, OnlyRawImagesReplicate) {
  EXPECT_TRUE(storage_->CanReplicate("601/vm-601-disk-0.raw"));
  EXPECT_FALSE(storage_->CanReplicate("601/vm-601-disk-0.qcow2"));
  EXPECT_FALSE(storage_->CanReplicate("iso/x.iso"));
  EXPECT_EQ(storage_->ExportVolume("iso/x.iso", "s", "", dir_.Sub("x")).error().message,
            "missing replicate feature on volume 'tank:iso/x.iso'");
}

}  // namespace
}  // namespace hearth

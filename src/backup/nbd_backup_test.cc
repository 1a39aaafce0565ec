// Backing up qcow2 images through the real qemu-storage-daemon and libnbd: what is stored is
// what the guest sees (the backing chain of a linked clone included), and a restore gives
// back exactly `qemu-img convert -O raw` of the image.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "backup/image_backup.h"
#include "backup/image_export.h"
#include "backup/nbd_image.h"
#include "core/strings.h"
#include "core/testing/temp_dir.h"
#include "sys/files.h"
#include "sys/posix/posix_file_system.h"
#include "sys/posix/posix_process.h"

namespace hearth {
namespace {

// The whole file ("" if unreadable: the comparison then fails).
std::string Slurp(const std::string& path) { return ReadFile(path).value_or(""); }

class NbdBackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/usr/bin/qemu-storage-daemon", X_OK) != 0 || ::access("/usr/bin/qemu-io", X_OK) != 0)
      GTEST_SKIP() << "qemu-storage-daemon and qemu-io (qemu-system-common, qemu-utils) are needed";
  }
  void Run(const std::vector<std::string>& argv) {
    auto r = runner_.Run(argv, {});
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->exit_code, 0) << Join(argv, " ") << ": " << r->err;
  }
  // Backs up `image` through an export and restores it to a raw file; returns its path.
  std::string RoundTrip(const std::string& image, const std::string& format, ImageBackupStats* stats) {
    auto ex = ImageExport::Start(runner_, image, format, dir_.Sub("nbd.sock"), std::chrono::seconds(30));
    EXPECT_TRUE(ex) << ex.error().message;
    if (!ex) return "";
    auto nbd = NbdImage::ConnectUnix((*ex)->socket(), ImageExport::kExportName, std::chrono::seconds(30));
    EXPECT_TRUE(nbd) << nbd.error().message;
    if (!nbd) return "";
    auto idx = BackupImage(store_, (*nbd)->size(), [&](uint64_t off, size_t len) { return (*nbd)->Read(off, len); },
                           "drive-scsi0", nullptr, stats);
    EXPECT_TRUE(idx) << idx.error().message;
    std::string out = dir_.Sub("restored-" + std::to_string(++restores_) + ".raw");
    EXPECT_TRUE(RestoreRawFile(store_, *idx, out, "drive-scsi0", nullptr));
    return out;
  }
  TempDir dir_;
  PosixFileSystem fs_;
  PosixProcessRunner runner_;
  ChunkStore store_{fs_, dir_.Sub("store")};
  int restores_ = 0;
};

TEST_F(NbdBackupTest, AQcow2ImageAndItsLinkedCloneComeBackAsTheGuestSeesThem) {
  std::string base = dir_.Sub("base.qcow2"), clone = dir_.Sub("clone.qcow2");
  Run({"qemu-img", "create", "-q", "-f", "qcow2", base, "24M"});
  Run({"qemu-io", "-f", "qcow2", "-c", "write -P 0x41 1M 5M", "-c", "write -P 0x42 13M 1M", base});
  Run({"qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, clone});
  Run({"qemu-io", "-f", "qcow2", "-c", "write -P 0x43 4M 64k", clone});

  ImageBackupStats first, second;
  std::string base_raw = RoundTrip(base, "qcow2", &first);
  Run({"qemu-img", "convert", "-f", "qcow2", "-O", "raw", base, dir_.Sub("base-expected.raw")});
  EXPECT_EQ(Slurp(base_raw), Slurp(dir_.Sub("base-expected.raw")));
  EXPECT_EQ(first.chunks, 6u);

  std::string clone_raw = RoundTrip(clone, "qcow2", &second);
  Run({"qemu-img", "convert", "-f", "qcow2", "-O", "raw", clone, dir_.Sub("clone-expected.raw")});
  EXPECT_EQ(Slurp(clone_raw), Slurp(dir_.Sub("clone-expected.raw")));
  // The clone shares all but the chunk it changed with its template.
  EXPECT_EQ(second.chunks - second.reused, 1u);
}

TEST_F(NbdBackupTest, AnImageQemuCannotOpenIsAnErrorInQemusWords) {
  std::ofstream(dir_.Sub("not.qcow2")) << "not an image";
  auto ex = ImageExport::Start(runner_, dir_.Sub("not.qcow2"), "qcow2", dir_.Sub("nbd.sock"), std::chrono::seconds(30));
  ASSERT_FALSE(ex);
  EXPECT_NE(ex.error().message.find("qemu-storage-daemon: "), std::string::npos) << ex.error().message;
  EXPECT_NE(ex.error().message.find("qcow2"), std::string::npos) << ex.error().message;
  EXPECT_FALSE(ImageExport::Start(runner_, dir_.Sub("x"), "iso", dir_.Sub("nbd.sock"), std::chrono::seconds(1)));
}

TEST_F(NbdBackupTest, ExportsLeftByACrashAreStoppedAtTheNextStart) {
  std::string img = dir_.Sub("disk.raw");
  Run({"qemu-img", "create", "-q", "-f", "raw", img, "4M"});
  auto ex = ImageExport::Start(runner_, img, "raw", dir_.Sub("backup-100-scsi0.nbd"), std::chrono::seconds(30));
  ASSERT_TRUE(ex) << ex.error().message;
  // A stranger's pid file with a pid that is no qemu-storage-daemon is not signalled.
  std::ofstream(dir_.Sub("backup-x.nbd.pid")) << ::getpid();
  EXPECT_EQ(ImageExport::StopStale(dir_.path().string(), "backup-"), 1);
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("backup-100-scsi0.nbd")));
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("backup-x.nbd.pid")));
  EXPECT_FALSE(NbdImage::ConnectUnix(dir_.Sub("backup-100-scsi0.nbd"), ImageExport::kExportName, std::chrono::milliseconds(200)));
}

}  // namespace
}  // namespace hearth

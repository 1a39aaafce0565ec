#include "storage/dir/dir_storage.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/testing/temp_dir.h"
#include "core/units.h"
#include "sys/posix/posix_process.h"

namespace hearth {
namespace {

// Component test against the real qemu-img.
class DirStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage_ = std::make_unique<DirStorage>("local", root_.string(),
                                            std::vector<ContentType>{ContentType::kImages, ContentType::kIso,
                                                                     ContentType::kSnippets},
                                            runner_);
  }
  PosixProcessRunner runner_;
  TempDir dir_;
  const std::filesystem::path& root_ = dir_.path();
  std::unique_ptr<DirStorage> storage_;
};

TEST_F(DirStorageTest, AllocatesLowestFreeIndexAndReportsVirtualSize) {
  auto a = storage_->AllocImage(100, "qcow2", 4 * kGiB, "", nullptr);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(*a, "100/vm-100-disk-0.qcow2");
  auto b = storage_->AllocImage(100, "raw", kMiB, "", nullptr);
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(*b, "100/vm-100-disk-1.raw");
  auto info = storage_->Info(*a);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->size, 4 * kGiB);
  EXPECT_EQ(info->format, "qcow2");
  ASSERT_TRUE(storage_->FreeVolume(*a));
  EXPECT_EQ(*storage_->AllocImage(100, "qcow2", kGiB, "", nullptr), "100/vm-100-disk-0.qcow2");
}

// Image files: QEMU's file protocol under the image's own format.
TEST_F(DirStorageTest, BlockdevOptionsAreTheImageFile) {
  auto a = storage_->AllocImage(100, "qcow2", kMiB, "", nullptr);
  ASSERT_TRUE(a) << a.error().message;
  auto b = storage_->Blockdev(*a);
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(b->format, "qcow2");
  std::string file = (root_ / "images/100/vm-100-disk-0.qcow2").string();
  EXPECT_EQ(b->protocol.dump(), nlohmann::ordered_json({{"driver", "file"}, {"filename", file}}).dump());
  EXPECT_EQ(b->path, file);
  EXPECT_FALSE(storage_->Blockdev("100/vm-100-disk-9.qcow2"));
}

TEST_F(DirStorageTest, TheLastFreedDiskTakesItsVmDirAlong) {
  auto a = storage_->AllocImage(100, "qcow2", kGiB, "", nullptr);
  auto b = storage_->AllocImage(100, "qcow2", kGiB, "", nullptr);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(storage_->FreeVolume(*a));
  EXPECT_TRUE(std::filesystem::exists(root_ / "images" / "100"));  // disk-1 is still there
  ASSERT_TRUE(storage_->FreeVolume(*b));
  EXPECT_FALSE(std::filesystem::exists(root_ / "images" / "100"));
  EXPECT_TRUE(std::filesystem::exists(root_ / "images"));
  EXPECT_EQ(*storage_->AllocImage(100, "qcow2", kGiB, "", nullptr), "100/vm-100-disk-0.qcow2");  // made again
}

TEST_F(DirStorageTest, ListsByContentAndVmid) {
  ASSERT_TRUE(storage_->AllocImage(100, "qcow2", kGiB, "", nullptr));
  ASSERT_TRUE(storage_->AllocImage(101, "qcow2", kGiB, "", nullptr));
  std::filesystem::create_directories(root_ / "iso");
  std::ofstream(root_ / "iso" / "tiny.iso") << "x";
  std::ofstream(root_ / "iso" / ".upload-123") << "partial";  // temp files are not volumes
  EXPECT_EQ(storage_->List(std::nullopt, 0)->size(), 3u);
  EXPECT_EQ(storage_->List(ContentType::kIso, 0)->at(0).volid, "local:iso/tiny.iso");
  EXPECT_EQ(storage_->List(ContentType::kImages, 101)->size(), 1u);
}

TEST_F(DirStorageTest, RawNeedsItsFullSizeFree) {
  auto r = storage_->AllocImage(100, "raw", uint64_t{1} << 60, "", nullptr);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not enough space"), std::string::npos);
  EXPECT_TRUE(storage_->List(ContentType::kImages, 100)->empty());  // nothing left behind
}

TEST_F(DirStorageTest, ImportRefusesPathTricks) {
  std::string tmp = (root_ / "t").string();
  std::ofstream(tmp) << "data";
  EXPECT_FALSE(storage_->ImportFile(ContentType::kIso, "../escape.iso", tmp));
  EXPECT_FALSE(storage_->ImportFile(ContentType::kIso, "x/y.iso", tmp));
  auto ok = storage_->ImportFile(ContentType::kIso, "good.iso", tmp);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(*ok, "local:iso/good.iso");
}

}  // namespace
}  // namespace hearth

namespace hearth {
namespace {

class DirStorageCloneTest : public DirStorageTest {};

TEST_F(DirStorageCloneTest, TemplateBaseAndLinkedClones) {
  auto disk = storage_->AllocImage(100, "qcow2", 64 * kMiB, "", nullptr);
  ASSERT_TRUE(disk);
  auto base = storage_->RenameToBase(*disk);
  ASSERT_TRUE(base) << base.error().message;
  EXPECT_EQ(*base, "100/base-100-disk-0.qcow2");
  auto clone = storage_->CloneLinked(*base, 101);
  ASSERT_TRUE(clone) << clone.error().message;
  EXPECT_EQ(*clone, "100/base-100-disk-0.qcow2/101/vm-101-disk-0.qcow2");
  EXPECT_EQ(Qcow2BackingFile(*storage_->Path(*clone)), "../100/base-100-disk-0.qcow2");
  // Listed under its full volid with the base as parent, and sized like the base.
  auto listed = storage_->List(ContentType::kImages, 101);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->at(0).volid, "local:100/base-100-disk-0.qcow2/101/vm-101-disk-0.qcow2");
  EXPECT_EQ(listed->at(0).parent, "local:100/base-100-disk-0.qcow2");
  EXPECT_EQ(listed->at(0).size, 64 * kMiB);
  // The base cannot go while a clone uses it; deleting the clone never touches the base.
  auto refused = storage_->FreeVolume(*base);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("still in use by linked clone"), std::string::npos);
  ASSERT_TRUE(storage_->FreeVolume(*clone));
  EXPECT_TRUE(storage_->Info(*base));
  EXPECT_TRUE(storage_->FreeVolume(*base));
}

TEST_F(DirStorageCloneTest, LinkedClonesNeedAQcow2Base) {
  EXPECT_FALSE(storage_->CloneLinked("100/vm-100-disk-0.qcow2", 101));  // not a base
  auto raw = storage_->AllocImage(100, "raw", kMiB, "", nullptr);
  auto base = storage_->RenameToBase(*raw);
  ASSERT_TRUE(base);
  auto r = storage_->CloneLinked(*base, 101);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("qcow2"), std::string::npos);
}

TEST_F(DirStorageCloneTest, FullCopyReportsProgress) {
  auto disk = storage_->AllocImage(100, "qcow2", 32 * kMiB, "", nullptr);
  std::vector<std::string> progress;
  auto copy = storage_->CopyImage(*storage_->Path(*disk), "qcow2", 102, "raw",
                                  [&](const std::string& l) { progress.push_back(l); });
  ASSERT_TRUE(copy) << copy.error().message;
  EXPECT_EQ(*copy, "102/vm-102-disk-0.raw");
  EXPECT_EQ(storage_->Info(*copy)->size, 32 * kMiB);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), "copied 100%");
}

}  // namespace
}  // namespace hearth

// WriteFileAtomic against a disk that fails at every step, a crash between any two steps,
// and power cuts (sys/testing/fault_file_system.h): the file is always the old content or
// the new one, whole.
#include "sys/file_system.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>

#include "core/testing/temp_dir.h"
#include "sys/posix/posix_file_system.h"
#include "sys/testing/fault_file_system.h"

namespace hearth {
namespace {

using Op = FaultFileSystem::Op;

class FileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.Sub("vm.conf");
    ASSERT_TRUE(WriteFileAtomic(posix_, path_, kOld));
  }
  std::string Content() { return posix_.Read(path_).value_or("<missing>"); }
  // Files in the directory other than the target (temporaries left behind).
  std::vector<std::string> Others() {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_.path()))
      if (e.path().string() != path_) out.push_back(e.path().filename().string());
    return out;
  }
  static constexpr const char* kOld = "memory: 512\n";
  const std::string kNew = "memory: 2048\ncores: 4\n" + std::string(10000, '#');
  TempDir dir_;
  PosixFileSystem posix_;
  FaultFileSystem fs_{posix_};
  std::string path_;
};

TEST_F(FileSystemTest, EveryFailingStepBeforeTheRenameLeavesTheOldFileAndNoTemporary) {
  for (Op op : {Op::kOpen, Op::kAppend, Op::kSync, Op::kClose, Op::kRename}) {
    for (int err : {ENOSPC, EIO}) {
      fs_.FailNext(op, err);
      auto st = WriteFileAtomic(fs_, path_, kNew);
      ASSERT_FALSE(st) << static_cast<int>(op);
      EXPECT_NE(st.error().message.find(strerror(err)), std::string::npos) << st.error().message;
      EXPECT_EQ(Content(), kOld) << static_cast<int>(op);
      EXPECT_TRUE(Others().empty()) << static_cast<int>(op) << ": " << Others()[0];
      fs_.FailNext(op, 0, 0, 0);  // clear what was not used
    }
  }
}

TEST_F(FileSystemTest, AShortWriteIsAnErrorNotATruncatedFile) {
  fs_.ShortWriteNext(5);
  ASSERT_FALSE(WriteFileAtomic(fs_, path_, kNew));
  EXPECT_EQ(Content(), kOld);
  EXPECT_TRUE(Others().empty());
}

TEST_F(FileSystemTest, AFailedDirectorySyncIsReportedAlthoughTheNewContentIsInPlace) {
  // The rename happened, but without the directory fsync a power cut may undo it: the
  // caller must hear about it (and the content is the new one, whole).
  fs_.FailNext(Op::kSyncDir, EIO);
  ASSERT_FALSE(WriteFileAtomic(fs_, path_, kNew));
  EXPECT_EQ(Content(), kNew);
  fs_.PowerCut();
  EXPECT_EQ(Content(), kOld);
}

TEST_F(FileSystemTest, WhatReturnedOkSurvivesAPowerCut) {
  ASSERT_TRUE(WriteFileAtomic(fs_, path_, kNew));
  fs_.PowerCut();
  EXPECT_EQ(Content(), kNew);
}

TEST_F(FileSystemTest, ACrashAtAnyStepThenAPowerCutLeavesOldOrNewNeverAMix) {
  // Count the steps of one write, then crash at each of them in turn.
  uint64_t before = fs_.mutations();
  ASSERT_TRUE(WriteFileAtomic(fs_, path_, kNew));
  uint64_t steps = fs_.mutations() - before;
  ASSERT_GE(steps, 5u);  // open, write, fsync, close, rename, fsync dir
  ASSERT_TRUE(WriteFileAtomic(posix_, path_, kOld));
  for (uint64_t i = 0; i <= steps; ++i) {
    fs_.CrashAt(fs_.mutations() + i);
    bool ok = static_cast<bool>(WriteFileAtomic(fs_, path_, kNew));
    std::string crashed = Content();  // the process died; the machine did not
    EXPECT_TRUE(crashed == kOld || crashed == kNew) << "crash at step " << i;
    fs_.PowerCut();
    std::string got = Content();
    EXPECT_TRUE(got == kOld || got == kNew) << "crash at step " << i << ": " << got.size() << " bytes";
    if (ok) EXPECT_EQ(got, kNew) << "crash at step " << i << ": returned Ok, then lost";
    EXPECT_EQ(i == steps, ok) << i;
    // A temporary may outlive the crash only if it was made durable before it; this one
    // never is (its directory is synced after the rename), so the power cut takes it.
    EXPECT_TRUE(Others().empty()) << "crash at step " << i << ": " << Others()[0];
    ASSERT_TRUE(WriteFileAtomic(posix_, path_, kOld));
  }
}

TEST_F(FileSystemTest, TheModelBitesAWriteWithoutFsync) {
  // The negative control: the naive way (truncate and write in place, no fsync) loses the
  // data in a power cut, and the fault file system shows it: the worst case, an empty file.
  auto f = fs_.Open(path_, OpenMode::kTruncate);
  ASSERT_TRUE(f);
  ASSERT_TRUE((*f)->Append(kNew));
  ASSERT_TRUE((*f)->Close());
  EXPECT_EQ(Content(), kNew);
  fs_.PowerCut();
  EXPECT_EQ(Content(), "");
  auto g = fs_.Open(dir_.Sub("new-file"), OpenMode::kCreateNew);
  ASSERT_TRUE(g);
  ASSERT_TRUE((*g)->Append("x"));
  ASSERT_TRUE((*g)->Sync());
  ASSERT_TRUE((*g)->Close());
  fs_.PowerCut();  // synced data, but the directory entry never was
  EXPECT_FALSE(posix_.Exists(dir_.Sub("new-file")));
}

TEST_F(FileSystemTest, APowerCutBringsBackOnlyWhatWasSynced) {
  // A file with synced and unsynced data, then replaced by a rename: the power cut undoes
  // the rename and the file comes back with its synced part only.
  auto f = fs_.Open(path_, OpenMode::kAppend);
  ASSERT_TRUE(f);
  ASSERT_TRUE((*f)->Append("synced\n"));
  ASSERT_TRUE((*f)->Sync());
  ASSERT_TRUE((*f)->Append("lost\n"));
  ASSERT_TRUE((*f)->Close());
  auto g = fs_.Open(dir_.Sub("other"), OpenMode::kCreateNew);
  ASSERT_TRUE(g && (*g)->Append("other") && (*g)->Sync() && (*g)->Close());
  ASSERT_TRUE(fs_.SyncDir(dir_.path().string() + "/"));  // a trailing slash names the same directory
  ASSERT_TRUE(fs_.Rename(dir_.Sub("other"), path_));
  EXPECT_EQ(Content(), "other");
  fs_.PowerCut();
  EXPECT_EQ(Content(), std::string(kOld) + "synced\n");
  EXPECT_EQ(posix_.Read(dir_.Sub("other")).value_or(""), "other");
}

TEST_F(FileSystemTest, AFileOpenAtThePowerCutIsDead) {
  auto f = fs_.Open(dir_.Sub("log"), OpenMode::kAppend);
  ASSERT_TRUE(f);
  fs_.PowerCut();
  EXPECT_FALSE((*f)->Append("after"));
  EXPECT_FALSE((*f)->Sync());
}

TEST(PosixFileSystem, ErrorsNameTheFileAndTheCause) {
  TempDir dir;
  PosixFileSystem fs;
  auto r = fs.Read(dir.Sub("missing"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_NE(r.error().message.find("missing': No such file"), std::string::npos) << r.error().message;
  ASSERT_TRUE(WriteFileAtomic(fs, dir.Sub("f"), std::string(100, 'x')));
  auto big = fs.Read(dir.Sub("f"), 10);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, ErrorCode::kInvalidArgument);
  auto again = fs.Open(dir.Sub("f"), OpenMode::kCreateNew);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists);
}

TEST(PosixFileSystem, NewFilesGetExactlyTheirModeWhateverTheUmask) {
  TempDir dir;
  PosixFileSystem fs;
  mode_t old = umask(0);
  ASSERT_TRUE(WriteFileAtomic(fs, dir.Sub("key"), "secret", 0600));
  umask(old);
  EXPECT_EQ(std::filesystem::status(dir.Sub("key")).permissions(),
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

}  // namespace
}  // namespace hearth

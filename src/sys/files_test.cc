#include "sys/files.h"
#include "sys/posix/posix_file_system.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/testing/temp_dir.h"

namespace hearth {
namespace {

TEST(HoldLockFile, SecondHolderIsRefusedWithThePid) {
  TempDir dir;
  std::string path = dir.Sub("hearth.lock");
  ASSERT_TRUE(HoldLockFile(path));
  auto again = HoldLockFile(path);  // a second open file description: flock conflicts
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(again.error().message.find("(pid " + std::to_string(getpid()) + ")"), std::string::npos)
      << again.error().message;
}

TEST(HoldLockFile, DeletingTheLockFileDoesNotLetASecondHolderIn) {
  TempDir dir;
  std::string path = dir.Sub("hearth.lock");
  ASSERT_TRUE(HoldLockFile(path));
  ASSERT_EQ(unlink(path.c_str()), 0);
  auto again = HoldLockFile(path);  // the directory is still locked
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(again.error().message.find("another hearth daemon"), std::string::npos) << again.error().message;
}

TEST(HoldLockFile, AFifoOrJunkInPlaceOfTheLockFileNeverHangsOrLies) {
  TempDir dir;
  std::string path = dir.Sub("hearth.lock");
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  auto fifo = HoldLockFile(path);  // nobody holds the directory: the FIFO itself is refused
  ASSERT_FALSE(fifo);
  EXPECT_NE(fifo.error().message.find("is not a regular file"), std::string::npos) << fifo.error().message;
  ASSERT_EQ(unlink(path.c_str()), 0);
  ASSERT_TRUE(HoldLockFile(path));
  ASSERT_EQ(unlink(path.c_str()), 0);
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  auto held = HoldLockFile(path);  // held: refused at once, without opening the FIFO for a pid
  ASSERT_FALSE(held);
  EXPECT_NE(held.error().message.find("(pid ?)"), std::string::npos) << held.error().message;
  ASSERT_EQ(unlink(path.c_str()), 0);
  PosixFileSystem fs;
  ASSERT_TRUE(WriteFileAtomic(fs, path, "rm -rf /\n"));
  auto junk = HoldLockFile(path);
  ASSERT_FALSE(junk);
  EXPECT_NE(junk.error().message.find("(pid ?)"), std::string::npos) << junk.error().message;
}

TEST(RemoveFilesIn, RemovesFilesNotDirectoriesAndToleratesAMissingDir) {
  TempDir dir;
  PosixFileSystem fs;
  ASSERT_TRUE(WriteFileAtomic(fs, dir.Sub("a"), "x"));
  ASSERT_TRUE(WriteFileAtomic(fs, dir.Sub(".upload-1"), "x"));
  ASSERT_TRUE(MakeDirs(dir.Sub("keep")));
  ASSERT_EQ(symlink("/etc/passwd", dir.Sub("link").c_str()), 0);
  auto n = RemoveFilesIn(dir.path().string());
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 3u);
  EXPECT_TRUE(PathExists(dir.Sub("keep")));
  EXPECT_TRUE(PathExists("/etc/passwd"));
  EXPECT_EQ(*RemoveFilesIn(dir.Sub("missing")), 0u);
}

}  // namespace
}  // namespace hearth

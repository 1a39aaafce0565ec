#include "tasks/task_log.h"

#include <gtest/gtest.h>

#include <string>

#include "core/testing/temp_dir.h"
#include "sys/posix/posix_file_system.h"

namespace hearth {
namespace {

const char kUpid[] = "UPID:node1:00001234:00005678:65000000:qmstart:100:root@pam:";

class TaskLogReadTest : public ::testing::Test {
 protected:
  void Write(const std::string& text) {
    ASSERT_TRUE(fs_.MakeDirs(ParentDir(logs_.PathFor(kUpid))));
    ASSERT_TRUE(WriteFileAtomic(fs_, logs_.PathFor(kUpid), text));
  }
  TempDir dir_;
  PosixFileSystem fs_;
  TaskLogDir logs_{fs_, dir_.Sub("tasks")};
};

TEST_F(TaskLogReadTest, LinesAcrossReadPiecesComeBackWholeWithTheTotal) {
  // Lines of every length around the 64 KiB read piece, so line ends fall on, before and
  // after piece boundaries; the reader must give back exactly what was written.
  std::vector<std::string> want;
  std::string text;
  for (size_t len : {0u, 1u, 65535u, 65536u, 65537u, 10u, 131072u, 3u}) {
    want.push_back(std::string(len, static_cast<char>('a' + want.size())));
    text += want.back() + "\n";
  }
  Write(text);
  auto all = logs_.Read(kUpid, 0, 0);
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(all->second, want.size());
  EXPECT_EQ(all->first, want);
  auto some = logs_.Read(kUpid, 2, 3);
  ASSERT_TRUE(some);
  EXPECT_EQ(some->second, want.size());
  EXPECT_EQ(some->first, std::vector<std::string>(want.begin() + 2, want.begin() + 5));
  auto past = logs_.Read(kUpid, 100, 5);
  ASSERT_TRUE(past);
  EXPECT_TRUE(past->first.empty());
  EXPECT_EQ(past->second, want.size());
}

TEST_F(TaskLogReadTest, ALastLineStillBeingWrittenCounts) {
  Write("first\nsecond\npartial");
  auto r = logs_.Read(kUpid, 0, 0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, (std::vector<std::string>{"first", "second", "partial"}));
  Write("");
  EXPECT_EQ(logs_.Read(kUpid, 0, 0)->second, 0u);
  Write("\n");
  EXPECT_EQ(logs_.Read(kUpid, 0, 0)->first, std::vector<std::string>{""});
}

TEST_F(TaskLogReadTest, AHugeLineIsCutNotHeld) {
  Write(std::string(3 << 20, 'x') + "\nend\n");
  auto r = logs_.Read(kUpid, 0, 0);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->second, 2u);
  EXPECT_EQ(r->first[0].size(), size_t{1} << 20);
  EXPECT_EQ(r->first[1], "end");
}

TEST_F(TaskLogReadTest, AMissingLogIsNotFound) {
  auto r = logs_.Read(kUpid, 0, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace hearth

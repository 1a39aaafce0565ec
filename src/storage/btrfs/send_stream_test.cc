#include "storage/btrfs/send_stream.h"

#include <gtest/gtest.h>

namespace hearth {
namespace {

std::string Le(uint64_t v, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

std::string Stream(uint16_t cmd, const std::string& path, uint32_t version = 1) {
  std::string attrs = Le(1, 2) + Le(16, 2) + std::string(16, 'u');  // a UUID first
  attrs += Le(15, 2) + Le(path.size(), 2) + path;
  return std::string("btrfs-stream\0", 13) + Le(version, 4) + Le(attrs.size(), 4) + Le(cmd, 2) + Le(0, 4) + attrs;
}

TEST(SendStream, TheFirstCommandNamesTheSubvolume) {
  auto full = ParseSendStreamHead(Stream(1, "vm-100-disk-0@s1"));
  ASSERT_TRUE(full) << full.error().message;
  EXPECT_EQ(full->path, "vm-100-disk-0@s1");
  EXPECT_FALSE(full->incremental);
  auto inc = ParseSendStreamHead(Stream(2, "vm-100-disk-0@s2"));
  ASSERT_TRUE(inc);
  EXPECT_TRUE(inc->incremental);
}

TEST(SendStream, RefusesWhatIsNotOne) {
  EXPECT_FALSE(ParseSendStreamHead(""));
  EXPECT_FALSE(ParseSendStreamHead("not a stream at all, just text"));
  EXPECT_FALSE(ParseSendStreamHead(Stream(1, "x", 9)));         // unknown version
  EXPECT_FALSE(ParseSendStreamHead(Stream(3, "x")));            // mkfile first
  EXPECT_FALSE(ParseSendStreamHead(Stream(1, "../escape")));    // not a plain name
  EXPECT_FALSE(ParseSendStreamHead(Stream(1, "")));
  std::string s = Stream(1, "vm-100-disk-0@s1");
  for (size_t cut = 0; cut < s.size(); ++cut) EXPECT_FALSE(ParseSendStreamHead(s.substr(0, cut))) << cut;
}

}  // namespace
}  // namespace hearth

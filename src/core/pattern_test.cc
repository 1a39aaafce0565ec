#include "core/pattern.h"

#include <gtest/gtest.h>

namespace hearth {
namespace {

TEST(PatternTest, FullMatchIsAnchored) {
  Pattern p("[a-z]+[0-9]");
  EXPECT_TRUE(p.FullMatch("abc1"));
  EXPECT_FALSE(p.FullMatch("abc1 "));
  EXPECT_FALSE(p.FullMatch(" abc1"));
}

TEST(PatternTest, CaptureAndSearch) {
  Pattern p("([a-z]+)-(\\d+)?");
  auto m = p.Capture("vm-");
  ASSERT_TRUE(m);
  EXPECT_EQ((*m)[0], "vm");
  EXPECT_EQ((*m)[1], "");
  EXPECT_FALSE(p.Capture("vm-1x"));
  Pattern q("filename=\"([^\"]+)\"", true);
  auto s = q.Search("attachment; FILENAME=\"a.iso\"; x");
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)[0], "a.iso");
}

// std::regex recursed per character and crashed on long values; RE2 must not.
TEST(PatternTest, HugeInputDoesNotCrash) {
  Pattern p("^(/dev/[a-zA-Z0-9_./-]+|socket)$");
  std::string big = "/dev/" + std::string(4 << 20, 'a');
  EXPECT_TRUE(p.FullMatch(big));
  EXPECT_FALSE(p.FullMatch(big + ","));
  Pattern alt("(ab|a)*c");
  EXPECT_FALSE(alt.FullMatch(std::string(1 << 20, 'a') + "b"));
}

}  // namespace
}  // namespace hearth

#include "core/text_diff.h"

#include <gtest/gtest.h>

namespace hearth {
namespace {

TEST(UnifiedDiff, SameTextIsNoDiff) { EXPECT_EQ(UnifiedDiff("a", "b", "x\ny\n", "x\ny\n"), ""); }

// The shape `diff -u` prints (GNU diffutils): removed lines before added ones in a change, three
// lines of context, hunk headers with 1-based starts.
TEST(UnifiedDiff, ChangedLineIsRemovalThenAddition) {
  std::string old_text = "1\n2\n3\n4\naddress 10.0.0.1/24\n5\n6\n7\n8\n";
  std::string new_text = "1\n2\n3\n4\naddress 10.0.0.9/24\n5\n6\n7\n8\n";
  EXPECT_EQ(UnifiedDiff("old", "new", old_text, new_text),
            "--- old\n+++ new\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-address 10.0.0.1/24\n+address 10.0.0.9/24\n 5\n 6\n 7\n");
}

TEST(UnifiedDiff, AddedBlockAtTheEnd) {
  EXPECT_EQ(UnifiedDiff("old", "new", "a\nb\n", "a\nb\nc\nd\n"), "--- old\n+++ new\n@@ -1,2 +1,4 @@\n a\n b\n+c\n+d\n");
}

TEST(UnifiedDiff, FarApartChangesAreTwoHunks) {
  std::string old_text, new_text;
  for (int i = 0; i < 20; ++i) {
    old_text += std::to_string(i) + "\n";
    new_text += (i == 1 || i == 18 ? "x" : std::to_string(i)) + "\n";
  }
  std::string d = UnifiedDiff("old", "new", old_text, new_text);
  EXPECT_NE(d.find("@@ -1,5 +1,5 @@\n 0\n-1\n+x\n 2\n"), std::string::npos) << d;
  EXPECT_NE(d.find("@@ -16,5 +16,5 @@\n 15\n 16\n 17\n-18\n+x\n 19\n"), std::string::npos) << d;
}

}  // namespace
}  // namespace hearth

#include "core/units.h"

#include <gtest/gtest.h>

namespace hearth {

TEST(Units, ParseSize) {
  EXPECT_EQ(ParseSize("32G"), 32 * kGiB);
  EXPECT_EQ(ParseSize("528K"), 528 * kKiB);
  EXPECT_EQ(ParseSize("4194304"), 4194304u);
  EXPECT_EQ(ParseSize("1.5G"), 1536 * kMiB);
  EXPECT_FALSE(ParseSize("1.5"));
  EXPECT_FALSE(ParseSize("G"));
  EXPECT_FALSE(ParseSize("-1G"));
  EXPECT_FALSE(ParseSize("99999999999T"));
}

TEST(Units, FormatSizeUsesLargestExactUnit) {
  EXPECT_EQ(FormatSize(34359738368ull), "32G");
  EXPECT_EQ(FormatSize(4194304), "4M");
  EXPECT_EQ(FormatSize(540672), "528K");
  EXPECT_EQ(FormatSize(1000), "1000");
  EXPECT_EQ(FormatSize(0), "0");
}

}  // namespace hearth

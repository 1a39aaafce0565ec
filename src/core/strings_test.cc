#include "core/strings.h"

#include <gtest/gtest.h>

namespace hearth {

TEST(Strings, SplitKeepsEmptyPieces) {
  EXPECT_EQ(Split("a,,b", ','), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(Split("", ','), (std::vector<std::string>{""}));
}

TEST(Strings, SplitAnyDropsEmptyPieces) {
  EXPECT_EQ(SplitAny("a, b;;c  d", ",; "), (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST(Strings, ParseIntIsStrict) {
  EXPECT_EQ(ParseInt("42"), 42);
  EXPECT_EQ(ParseInt("-7"), -7);
  EXPECT_EQ(ParseInt("+7"), 7);
  EXPECT_FALSE(ParseInt("4x"));
  EXPECT_FALSE(ParseInt(""));
  EXPECT_FALSE(ParseInt("-"));
  EXPECT_FALSE(ParseInt(" 4"));
  EXPECT_FALSE(ParseInt("99999999999999999999"));
}

TEST(Strings, ParseDoubleRejectsHexAndNan) {
  EXPECT_DOUBLE_EQ(*ParseDouble("0.5"), 0.5);
  EXPECT_DOUBLE_EQ(*ParseDouble("1e3"), 1000);
  EXPECT_FALSE(ParseDouble("nan"));
  EXPECT_FALSE(ParseDouble("0x10"));
  EXPECT_FALSE(ParseDouble("."));
  EXPECT_FALSE(ParseDouble("1e"));
}

TEST(Strings, PercentDecode) {
  EXPECT_EQ(*PercentDecode("a%2Cb+c", true), "a,b c");
  EXPECT_EQ(*PercentDecode("a+b", false), "a+b");
  EXPECT_FALSE(PercentDecode("%4", false));
  EXPECT_FALSE(PercentDecode("%zz", false));
  EXPECT_EQ(*PercentDecode("%41", false), "A");
}

TEST(Strings, LastLine) {
  EXPECT_EQ(LastLine("a\n  cannot open 'x': no such pool  \n\n"), "cannot open 'x': no such pool");
  EXPECT_EQ(LastLine("one line"), "one line");
  EXPECT_EQ(LastLine(" \n\t"), "");
}

TEST(Strings, Base64RoundTrip) {
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    EXPECT_EQ(*Base64Decode(Base64Encode(s)), s);
    EXPECT_EQ(*Base64Decode(Base64Encode(s, false)), s);
  }
  EXPECT_FALSE(Base64Decode("a$b"));
}

TEST(Strings, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("gr\xc3\xbc\xc3\x9f"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));
  EXPECT_FALSE(IsValidUtf8(std::string("a\0b", 3)));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  // The edges of RFC 3629's table (found by fuzzing cloud-init: the API let "\xc1\xa9" in, and
  // the YAML quoting threw on it).
  EXPECT_TRUE(IsValidUtf8("\xc2\x80"));          // U+0080
  EXPECT_TRUE(IsValidUtf8("\xe0\xa0\x80"));      // U+0800
  EXPECT_TRUE(IsValidUtf8("\xed\x9f\xbf"));      // U+D7FF
  EXPECT_TRUE(IsValidUtf8("\xf0\x90\x80\x80"));  // U+10000
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xc1\xa9"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xc0\x80"));          // overlong NUL
  EXPECT_FALSE(IsValidUtf8("\xe0\x9f\xbf"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xf0\x8f\xbf\xbf"));  // overlong
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xf5\x80\x80\x80"));
  EXPECT_FALSE(IsValidUtf8("\x80"));              // a lone continuation byte
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // cut short
  EXPECT_FALSE(IsValidUtf8("\xe2\x28\xa1"));      // a bad continuation
}

}  // namespace hearth

#include "model/property_string.h"

#include <gtest/gtest.h>

namespace hearth {
namespace {

PropertyFormat TestFormat() {
  PropertyFormat f;
  f.default_key = "file";
  f.props = {{"file", PropType::kString},
             {"volume", PropType::kString, {}, {}, {}, "file"},
             {"size", PropType::kSize},
             {"ssd", PropType::kBoolean},
             {"queues", PropType::kInteger, {}, 2.0, 16.0},
             {"media", PropType::kEnum, {"disk", "cdrom"}}};
  return f;
}

TEST(PropertyString, ParsesDefaultKeyAndOptions) {
  auto m = ParsePropertyString(TestFormat(), "local:vm-1-disk-0,ssd=on,size=4G");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ((*m)["file"], "local:vm-1-disk-0");
  EXPECT_EQ((*m)["ssd"], "1");  // booleans normalised
  EXPECT_EQ((*m)["size"], "4G");
}

TEST(PropertyString, AliasMapsToTarget) {
  auto m = ParsePropertyString(TestFormat(), "volume=local:x");
  ASSERT_TRUE(m);
  EXPECT_EQ((*m)["file"], "local:x");
}

TEST(PropertyString, PrintIsCanonical) {
  auto m = ParsePropertyString(TestFormat(), "ssd=yes,media=disk,file=local:x");
  ASSERT_TRUE(m);
  EXPECT_EQ(PrintPropertyString(TestFormat(), *m), "local:x,media=disk,ssd=1");
}

TEST(PropertyString, RejectsBadInputWithKeyName) {
  auto f = TestFormat();
  EXPECT_NE(ParsePropertyString(f, "local:x,bogus=1").error().message.find("bogus"), std::string::npos);
  EXPECT_NE(ParsePropertyString(f, "local:x,queues=99").error().message.find("queues"), std::string::npos);
  EXPECT_NE(ParsePropertyString(f, "local:x,queues=abc").error().message.find("integer"), std::string::npos);
  EXPECT_NE(ParsePropertyString(f, "local:x,media=floppy").error().message.find("enumeration"), std::string::npos);
  EXPECT_NE(ParsePropertyString(f, "local:x,ssd=maybe").error().message.find("boolean"), std::string::npos);
  EXPECT_NE(ParsePropertyString(f, "local:x,file=local:y").error().message.find("duplicate"), std::string::npos);
  EXPECT_NE(ParsePropertyString(f, "local:x,size=lots").error().message.find("size"), std::string::npos);
  EXPECT_FALSE(ParsePropertyString(f, "local:x\xff"));
}

TEST(PropertyString, BooleanWords) {
  for (const char* t : {"1", "on", "YES", "True"}) EXPECT_EQ(ParseBooleanWord(t), true) << t;
  for (const char* f : {"0", "off", "no", "FALSE"}) EXPECT_EQ(ParseBooleanWord(f), false) << f;
  EXPECT_FALSE(ParseBooleanWord("2"));
}

}  // namespace
}  // namespace hearth

#include "model/retention.h"

#include <time.h>

#include <gtest/gtest.h>

namespace hearth {
namespace {

int64_t Utc(int y, int mo, int d, int h, int mi, int s) {
  struct tm tm {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<int64_t>(timegm(&tm));
}

// pve-storage's prune_backups_test.pm group (TZ=UTC): E, D, P (protected), C, B, A.
std::vector<PruneItem> Group() {
  return {{Utc(2018, 5, 26, 11, 18, 21)}, {Utc(2019, 12, 31, 11, 18, 21)}, {Utc(2019, 12, 31, 11, 18, 51), true},
          {Utc(2019, 12, 31, 11, 19, 21)}, {Utc(2020, 1, 1, 11, 18, 21)},   {Utc(2020, 1, 1, 12, 18, 21)}};
}

std::string Marks(const std::string& options, std::vector<PruneItem> items = Group()) {
  auto keep = ParseKeepOptions(options);
  EXPECT_TRUE(keep) << options;
  std::string out;
  for (auto m : MarkForPrune(items, *keep, /*utc=*/true)) out += std::string(out.empty() ? "" : ",") + PruneMarkName(m);
  return out;
}

TEST(Retention, PveStorageCases) {
  //                                      E      D      P          C      B      A
  EXPECT_EQ(Marks("keep-last=3"), "remove,remove,protected,keep,keep,keep");
  EXPECT_EQ(Marks("keep-weekly=2"), "keep,remove,protected,remove,remove,keep");
  EXPECT_EQ(Marks("keep-last=2,keep-hourly=2"), "keep,remove,protected,keep,keep,keep");
  EXPECT_EQ(Marks("keep-daily=2"), "remove,remove,protected,keep,remove,keep");
  EXPECT_EQ(Marks("keep-yearly=2,keep-last=0"), "remove,remove,protected,keep,remove,keep");
  EXPECT_EQ(Marks(""), "keep,keep,protected,keep,keep,keep");
  EXPECT_EQ(Marks("keep-last=0,keep-daily=0"), "keep,keep,protected,keep,keep,keep");
}

TEST(Retention, ThreewayAndWeekBoundary) {
  std::vector<PruneItem> three = {{Utc(2019, 12, 25, 12, 18, 0)}, {Utc(2019, 12, 31, 12, 18, 0)},
                                  {Utc(2020, 1, 1, 12, 18, 0)}};
  EXPECT_EQ(Marks("keep-daily=1,keep-weekly=1,keep-monthly=1", three), "keep,remove,keep");
  std::vector<PruneItem> week = {{Utc(2020, 12, 3, 12, 0, 0)}, {Utc(2020, 12, 4, 12, 0, 0)}, {Utc(2020, 12, 7, 12, 0, 0)}};
  EXPECT_EQ(Marks("keep-daily=1,keep-weekly=1", week), "remove,keep,keep");
}

TEST(Retention, OptionsAsProxmox) {
  EXPECT_TRUE(ParseKeepOptions("keep-all=0")->KeepsAll());
  EXPECT_EQ(ParseKeepOptions("keep-daily=7,keep-last=3")->Print(), "keep-last=3,keep-daily=7");
  EXPECT_EQ(ParseKeepOptions("")->Print(), "keep-all=1");
  EXPECT_EQ(ParseKeepOptions("keep-all=1,keep-last=2").error().message,
            "keep-all cannot be set together with other options.");
  EXPECT_EQ(ParseKeepOptions("keep-last=x").error().fields.at("keep-last"), "type check ('integer') failed - got 'x'");
  EXPECT_EQ(ParseKeepOptions("keep-last=-1").error().fields.at("keep-last"), "value must have a minimum value of 0");
  EXPECT_EQ(ParseKeepOptions("keep-minutely=1").error().message,
            "invalid key in comma-separated list property: keep-minutely");
  EXPECT_EQ(ParseKeepOptions("keep-last=1,keep-last=2").error().message,
            "duplicate key in comma-separated list property: keep-last");
}

}  // namespace
}  // namespace hearth

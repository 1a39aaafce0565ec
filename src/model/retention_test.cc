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


// The worked examples of docs/reference/pve-prune.md section 1.5 (checked there against the
// upstream code, TZ=UTC), oldest first.
std::vector<PruneItem> At(std::vector<int64_t> times, int protected_at = -1) {
  std::vector<PruneItem> out;
  for (size_t i = 0; i < times.size(); ++i) out.push_back({times[i], static_cast<int>(i) == protected_at});
  return out;
}

TEST(Retention, ReferenceWorkedExamples) {
  EXPECT_EQ(Marks("keep-last=2,keep-daily=2", At({1710057600, 1710100800, 1710147600, 1710205200, 1710286200})),
            "remove,keep,keep,keep,keep");
  EXPECT_EQ(Marks("keep-last=1", At({1714528800, 1714615200, 1714701600}, 2)), "remove,keep,protected");
  EXPECT_EQ(Marks("keep-all=1", At({1714528800, 1714615200, 1714701600}, 2)), "keep,keep,protected");
  EXPECT_EQ(Marks("keep-weekly=2,keep-yearly=1", At({1609156800, 1609675200, 1609761600, 1610280000, 1610366400})),
            "keep,remove,remove,keep,keep");
  EXPECT_EQ(Marks("keep-hourly=2,keep-monthly=2", At({1705312800, 1706742000, 1706778600, 1706781000, 1706781900})),
            "remove,keep,remove,keep,keep");
  EXPECT_EQ(Marks("keep-yearly=1", At({83, 3155760060})), "remove,keep");
}

}  // namespace
}  // namespace hearth

// Proxmox's prune marking, table tests from docs/reference/pve-prune.md section 1.5 (checked
// there against the upstream code, TZ=UTC) and Proxmox's own prune_backups_test.pm cases.
#include "backup/prune.h"

#include <gtest/gtest.h>

namespace hearth {
namespace {

std::tm Utc(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return tm;
}

// Marks oldest -> newest for backups at `times` (oldest first), `protected_at` protected.
std::vector<std::string> Marks(std::vector<int64_t> times, KeepOptions keep, std::vector<size_t> protected_at = {}) {
  std::vector<PruneEntry> g;
  for (size_t i = 0; i < times.size(); ++i) {
    PruneEntry e{times[i], ""};
    for (size_t p : protected_at)
      if (p == i) e.mark = "protected";
    g.push_back(e);
  }
  PruneMarkGroup(g, keep, Utc);
  std::vector<std::string> out;
  for (const auto& e : g) out.push_back(e.mark);
  return out;
}

using V = std::vector<std::string>;

TEST(Prune, ExampleA_LastThenDaily) {
  KeepOptions k;
  k.last = 2;
  k.daily = 2;
  EXPECT_EQ(Marks({1710057600, 1710100800, 1710147600, 1710205200, 1710286200}, k),
            (V{"remove", "keep", "keep", "keep", "keep"}));
  EXPECT_EQ(k.Describe(), "keep-daily=2,keep-last=2");
}

TEST(Prune, ExampleB_AProtectedBackupDoesNotCount) {
  KeepOptions k;
  k.last = 1;
  EXPECT_EQ(Marks({1714528800, 1714615200, 1714701600}, k, {2}), (V{"remove", "keep", "protected"}));
  KeepOptions all;
  all.keep_all = true;
  EXPECT_EQ(Marks({1714528800, 1714615200, 1714701600}, all, {2}), (V{"keep", "keep", "protected"}));
  EXPECT_EQ(Marks({1714528800, 1714615200}, KeepOptions{}), (V{"keep", "keep"}));  // no options: keep all
}

TEST(Prune, ExampleC_IsoWeeksAndCalendarYears) {
  KeepOptions k;
  k.weekly = 2;
  k.yearly = 1;
  EXPECT_EQ(Marks({1609156800, 1609675200, 1609761600, 1610280000, 1610366400}, k),
            (V{"keep", "remove", "remove", "keep", "keep"}));
}

TEST(Prune, ExampleD_HourlyThenMonthly) {
  KeepOptions k;
  k.hourly = 2;
  k.monthly = 2;
  // 2024-01-15 10:00, 01-31 23:00, 02-01 09:10, 09:50, 10:05 (UTC)
  EXPECT_EQ(Marks({1705312800, 1706742000, 1706778600, 1706781000, 1706781900}, k),
            (V{"remove", "keep", "remove", "keep", "keep"}));
}

TEST(Prune, ProxmoxsOwnTableTests) {
  KeepOptions three;
  three.daily = three.weekly = three.monthly = 1;
  // 2019-12-25, 2019-12-31, 2020-01-01 12:18:21
  EXPECT_EQ(Marks({1577276301, 1577794701, 1577881101}, three), (V{"keep", "remove", "keep"}));
  KeepOptions week;
  week.daily = week.weekly = 1;
  // 2020-12-03, 12-04, 12-07 12:18:21
  EXPECT_EQ(Marks({1606997901, 1607084301, 1607343501}, week), (V{"remove", "keep", "keep"}));
  KeepOptions yearly;
  yearly.yearly = 1;
  EXPECT_EQ(Marks({83, 3155760060}, yearly), (V{"remove", "keep"}));
}

}  // namespace
}  // namespace hearth

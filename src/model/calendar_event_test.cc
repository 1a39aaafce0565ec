#include "model/calendar_event.h"

#include <time.h>

#include <gtest/gtest.h>

namespace hearth {
namespace {

int64_t Utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  struct tm tm {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<int64_t>(timegm(&tm));
}

// proxmox-time's tests run every event with " UTC" appended.
std::optional<int64_t> Next(const std::string& event, int64_t last) {
  auto e = ParseCalendarEvent(event + " UTC");
  EXPECT_TRUE(e) << event << ": " << (e ? "" : e.error().message);
  if (!e) return std::nullopt;
  EXPECT_TRUE(e->utc);
  return NextEvent(*e, last);
}

constexpr int64_t kT0 = 0;  // Thursday 1970-01-01 00:00:00

// The worked examples of docs/reference/pve-calendar-and-prune.md 1.6 (proxmox-time
// test.rs and pve-common's calendar_event_test.pl).
TEST(CalendarEvent, ProxmoxExamples) {
  EXPECT_EQ(Next("0", kT0), Utc(1970, 1, 1, 1));
  EXPECT_EQ(Next("*", kT0), Utc(1970, 1, 1, 0, 1));
  EXPECT_EQ(Next("*:*:*", kT0), 1);
  EXPECT_EQ(Next("*:3:5", kT0), Utc(1970, 1, 1, 0, 3, 5));
  EXPECT_EQ(Next("mon 2:50", kT0), Utc(1970, 1, 5, 2, 50));
  EXPECT_EQ(Next("thu", kT0), Utc(1970, 1, 8));  // strictly after
  EXPECT_EQ(Next("4..10/2:0", kT0), Utc(1970, 1, 1, 4));
  EXPECT_EQ(Next("4..10/2:0", Utc(1970, 1, 1, 5)), Utc(1970, 1, 1, 6));
  EXPECT_EQ(Next("4..10/2:0", Utc(1970, 1, 1, 11)), Utc(1970, 1, 2, 4));
  EXPECT_EQ(Next("6,4..10:23,5/5", kT0), Utc(1970, 1, 1, 4, 5));
  EXPECT_EQ(Next("daily", 1), Utc(1970, 1, 2));
  EXPECT_EQ(Next("1:0", Utc(1970, 1, 1, 15)), Utc(1970, 1, 2, 1));
  EXPECT_EQ(Next("sat", Utc(2020, 7, 31)), Utc(2020, 8, 1));
  EXPECT_EQ(Next("mon", Utc(2020, 7, 31)), Utc(2020, 8, 3));
  EXPECT_EQ(Next("02-29", kT0), Utc(1972, 2, 29));
  EXPECT_EQ(Next("1965/5-01-01", -1), Utc(1970, 1, 1));
  EXPECT_EQ(Next("2020-7..9-2/2", Utc(2020, 7, 31)), Utc(2020, 8, 2));
  EXPECT_EQ(Next("2020,2021-12-31", Utc(2020, 7, 31)), Utc(2020, 12, 31));
  EXPECT_EQ(Next("weekly", kT0), Utc(1970, 1, 5));
  EXPECT_EQ(Next("monthly", kT0), Utc(1970, 2, 1));
  EXPECT_EQ(Next("quarterly", kT0), Utc(1970, 4, 1));
  EXPECT_EQ(Next("semiannually", kT0), Utc(1970, 7, 1));
  EXPECT_EQ(Next("yearly", kT0), Utc(1971, 1, 1));
  EXPECT_EQ(Next("2021-02-29", kT0), std::nullopt);
  EXPECT_EQ(Next("02-30", kT0), std::nullopt);
  EXPECT_EQ(Next("*/10", 0), 600);
  EXPECT_EQ(Next("*/10", 599), 600);
  EXPECT_EQ(Next("*/10", 600), 1200);
  EXPECT_EQ(Next("*/10", 3000), 3600);
  EXPECT_EQ(Next("1/12:0/15", 0), Utc(1970, 1, 1, 1));
  EXPECT_EQ(Next("1/12:0/15", 3600), Utc(1970, 1, 1, 1, 15));
  EXPECT_EQ(Next("1/12:0/15", Utc(1970, 1, 1, 1, 45)), Utc(1970, 1, 1, 13));
  EXPECT_EQ(Next("sat..sun", kT0), Utc(1970, 1, 3));
  EXPECT_EQ(Next("sat..sun", Utc(1970, 1, 3)), Utc(1970, 1, 4));
  EXPECT_EQ(Next("sat..sun", Utc(1970, 1, 4)), Utc(1970, 1, 10));
  EXPECT_EQ(Next("20..22:*/30", kT0), Utc(1970, 1, 1, 20));
  EXPECT_EQ(Next("20..22:*/30", Utc(1970, 1, 1, 20)), Utc(1970, 1, 1, 20, 30));
  EXPECT_EQ(Next("20..22:*/30", Utc(1970, 1, 1, 22, 30)), Utc(1970, 1, 2, 20));
  EXPECT_EQ(Next("mon..fri *:00", kT0), Utc(1970, 1, 1, 1));
  EXPECT_EQ(Next("fri..mon", Utc(1970, 1, 1)), Utc(1970, 1, 2));  // ranges wrap: Fri, Sat, Sun, Mon
  EXPECT_EQ(Next("fri..mon", Utc(1970, 1, 5)), Utc(1970, 1, 9));
  EXPECT_EQ(Next("*:*:*/5", 12), 15);
}

TEST(CalendarEvent, ErrorsInProxmoxsWords) {
  auto msg = [](const std::string& s) {
    auto e = ParseCalendarEvent(s);
    return e ? std::string("ok") : e.error().message;
  };
  EXPECT_EQ(msg(""), "unable to parse calendar event - event is empty");
  EXPECT_EQ(msg("  "), "unable to parse calendar event - event is empty");
  EXPECT_EQ(msg("xyz"), "unable to parse calendar event at 'xyz' - Context(\"weekday\")");
  EXPECT_EQ(msg("daily 12:00"), "unable to parse calendar event at 'daily 12:00' - Context(\"weekday\")");
  EXPECT_EQ(msg("61"), "unable to parse calendar event at '61' - Context(\"date or time specification\")");
  EXPECT_EQ(msg("12:75"), "unable to parse calendar event at '12:75' - Context(\"date or time specification\")");
  EXPECT_EQ(msg("mon 12:75"), "unable to parse calendar event at '12:75' - Nom(Eof)");
  EXPECT_EQ(msg("*/0"), "unable to parse calendar event at '*/0' - Context(\"date or time specification\")");
  EXPECT_EQ(msg("10..4:00"), "unable to parse calendar event at '10..4:00' - Context(\"date or time specification\")");
  EXPECT_EQ(msg("25:00"), "unable to parse calendar event at '25:00' - Context(\"date or time specification\")");
  EXPECT_EQ(msg(std::string(129, '1')), "value may only be 128 characters long");
  EXPECT_EQ(msg("mon utc"), "unable to parse calendar event at 'utc' - Nom(Eof)");
  EXPECT_EQ(msg("Mon..Fri 02:00"), "ok");  // weekday names in any case
  EXPECT_EQ(msg("Daily"), "unable to parse calendar event at 'Daily' - Context(\"weekday\")");  // keywords are not
}

TEST(CalendarEvent, LocalTimeUnlessUtc) {
  auto e = ParseCalendarEvent("02:30");
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->utc);
  // Whatever the daemon's zone, the event is at 02:30 local time.
  auto next = NextEvent(*e, 1700000000);
  ASSERT_TRUE(next);
  time_t t = static_cast<time_t>(*next);
  struct tm tm {};
  localtime_r(&t, &tm);
  EXPECT_EQ(tm.tm_hour, 2);
  EXPECT_EQ(tm.tm_min, 30);
  EXPECT_EQ(tm.tm_sec, 0);
  EXPECT_GT(*next, 1700000000);
  EXPECT_LE(*next, 1700000000 + 25 * 3600);
}

}  // namespace
}  // namespace hearth

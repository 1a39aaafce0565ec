// Proxmox's calendar events (the `schedule` of backup, replication and hearth's snapshot
// jobs): "[weekdays] [[YYYY-]MM-DD] [HH:]MM[:SS] [UTC]" and the keywords minutely, hourly,
// daily, weekly, monthly, yearly/annually, quarterly, semiannually/semi-annually. After
// proxmox-time's CalendarEvent (calendar_event.rs, date_time_value.rs; the grammar, defaults
// and examples are in docs/reference/pve-calendar-and-prune.md section 1).
//
// Pure functions; the parser walks the text once with no recursion. Errors use proxmox-time's
// wording ("unable to parse calendar event at '<rest>' - ..."). One difference: an hour that
// is out of range ("25:00") is refused here, where proxmox-time reads it as minute 25.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace hearth {

// One element of a field's list: v, a..b, or start/step (up to `end` when set).
struct CalendarValue {
  enum class Kind { kSingle, kRange, kRepeated };
  Kind kind = Kind::kSingle;
  int start = 0, end = -1, step = 0;
  bool Matches(int v) const;
  // The smallest matching value greater than `v`, if any.
  std::optional<int> NextAfter(int v) const;
};

struct CalendarEvent {
  bool utc = false;   // "UTC" suffix: computed in UTC, else in the daemon's local time zone
  uint8_t days = 0;   // weekday bits, Monday = bit 0 ... Sunday = bit 6; 0 = every day
  // An empty list matches any value.
  std::vector<CalendarValue> second, minute, hour, day, month, year;
};

// Parses `text` (trimmed; at most kMaxCalendarEventLength characters, as the API's schema).
Result<CalendarEvent> ParseCalendarEvent(std::string_view text);
constexpr size_t kMaxCalendarEventLength = 128;

// The first time strictly after `last` (unix seconds) that the event matches, to the second;
// nullopt if there is none (an impossible date such as 02-30, or none within proxmox-time's
// 1000 search steps).
std::optional<int64_t> NextEvent(const CalendarEvent& event, int64_t last);

}  // namespace hearth

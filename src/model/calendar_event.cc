#include "model/calendar_event.h"

#include <time.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "core/strings.h"

namespace hearth {

bool CalendarValue::Matches(int v) const {
  switch (kind) {
    case Kind::kSingle: return v == start;
    case Kind::kRange: return v >= start && v <= end;
    case Kind::kRepeated:
      if (v < start || (end >= 0 && v > end)) return false;
      return step == 0 ? v == start : (v - start) % step == 0;
  }
  return false;
}

std::optional<int> CalendarValue::NextAfter(int v) const {
  switch (kind) {
    case Kind::kSingle: return start > v ? std::optional<int>(start) : std::nullopt;
    case Kind::kRange:
      if (v < start) return start;
      return v + 1 <= end ? std::optional<int>(v + 1) : std::nullopt;
    case Kind::kRepeated: {
      if (v < start) return start;
      if (step == 0) return std::nullopt;
      int next = start + ((v - start) / step + 1) * step;
      if (end >= 0 && next > end) return std::nullopt;
      return next;
    }
  }
  return std::nullopt;
}

namespace {

// --- parsing

struct Cursor {
  std::string_view all;
  size_t pos = 0;
  bool End() const { return pos >= all.size(); }
  char Peek() const { return End() ? '\0' : all[pos]; }
  std::string_view Rest() const { return all.substr(std::min(pos, all.size())); }
  void SkipSpaces() {
    while (!End() && all[pos] == ' ') ++pos;
  }
};

Error ParseError(std::string_view rest, const std::string& kind) {
  return InvalidArgument("unable to parse calendar event at '" + std::string(rest) + "' - " + kind);
}

bool ReadNumber(Cursor& c, int& out) {
  size_t begin = c.pos;
  long v = 0;
  while (!c.End() && std::isdigit(static_cast<unsigned char>(c.Peek())) && c.pos - begin < 6) v = v * 10 + (c.all[c.pos++] - '0');
  if (c.pos == begin) return false;
  out = static_cast<int>(v);
  return true;
}

// A field's list: "*" ["/" step] | comp ("," comp)*, comp := N [".." N] ["/" step]; values
// below `max` (exclusive). `star_start` is where "*/step" starts (1 for months and days).
bool ReadList(Cursor& c, int max, int star_start, std::vector<CalendarValue>& out) {
  out.clear();
  if (c.Peek() == '*') {
    ++c.pos;
    if (c.Peek() == '/') {
      ++c.pos;
      int step;
      if (!ReadNumber(c, step) || step == 0) return false;
      out.push_back({CalendarValue::Kind::kRepeated, star_start, -1, step});
    }
    return true;  // "*" alone: any value (empty list)
  }
  while (true) {
    CalendarValue v;
    if (!ReadNumber(c, v.start) || v.start >= max) return false;
    if (c.all.substr(c.pos, 2) == "..") {
      c.pos += 2;
      if (!ReadNumber(c, v.end) || v.end >= max || v.end < v.start) return false;
      v.kind = CalendarValue::Kind::kRange;
    }
    if (c.Peek() == '/') {
      ++c.pos;
      if (!ReadNumber(c, v.step)) return false;
      if (v.kind == CalendarValue::Kind::kSingle) v.end = -1;
      v.kind = CalendarValue::Kind::kRepeated;
    }
    out.push_back(v);
    if (c.Peek() != ',') return true;
    ++c.pos;
  }
}

// "mon", "monday", ...; the weekday's bit (Monday = 0).
std::optional<int> ReadWeekday(Cursor& c) {
  static constexpr std::array<std::string_view, 7> kShort = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
  static constexpr std::array<std::string_view, 7> kLong = {"monday", "tuesday", "wednesday", "thursday",
                                                           "friday", "saturday", "sunday"};
  size_t begin = c.pos;
  while (!c.End() && std::isalpha(static_cast<unsigned char>(c.Peek()))) ++c.pos;
  std::string word = ToLower(c.all.substr(begin, c.pos - begin));
  for (int i = 0; i < 7; ++i)
    if (word == kShort[i] || word == kLong[i]) return i;
  c.pos = begin;
  return std::nullopt;
}

// "mon..fri,sun": ranges wrap ("fri..mon").
Status ReadWeekdays(Cursor& c, uint8_t& days) {
  while (true) {
    size_t at = c.pos;
    auto from = ReadWeekday(c);
    if (!from) return Fail(ParseError(c.all.substr(at), "Context(\"weekday\")"));
    int to = *from;
    if (c.all.substr(c.pos, 2) == "..") {
      c.pos += 2;
      size_t at2 = c.pos;
      auto t = ReadWeekday(c);
      if (!t) return Fail(ParseError(c.all.substr(at2), "Context(\"weekday\")"));
      to = *t;
    }
    for (int d = *from;; d = (d + 1) % 7) {
      days |= static_cast<uint8_t>(1u << d);
      if (d == to) break;
    }
    if (c.Peek() != ',') return Ok();
    ++c.pos;
  }
}

bool KeywordEvent(std::string_view word, CalendarEvent& e) {
  auto single = [](int v) { return std::vector<CalendarValue>{{CalendarValue::Kind::kSingle, v, -1, 0}}; };
  e.second = single(0);
  if (word == "minutely") return true;
  e.minute = single(0);
  if (word == "hourly") return true;
  e.hour = single(0);
  if (word == "daily") return true;
  if (word == "weekly") {
    e.days = 1;
    return true;
  }
  e.day = single(1);
  if (word == "monthly") return true;
  if (word == "yearly" || word == "annually") {
    e.month = single(1);
    return true;
  }
  if (word == "quarterly") {
    e.month = {{CalendarValue::Kind::kSingle, 1, -1, 0}, {CalendarValue::Kind::kSingle, 4, -1, 0},
               {CalendarValue::Kind::kSingle, 7, -1, 0}, {CalendarValue::Kind::kSingle, 10, -1, 0}};
    return true;
  }
  if (word == "semiannually" || word == "semi-annually") {
    e.month = {{CalendarValue::Kind::kSingle, 1, -1, 0}, {CalendarValue::Kind::kSingle, 7, -1, 0}};
    return true;
  }
  return false;
}

// The date part, "[YYYY-]MM-DD", if the token at the cursor is one.
bool ReadDate(Cursor& c, CalendarEvent& e) {
  Cursor t = c;
  std::vector<CalendarValue> a, b, d;
  if (!ReadList(t, 2200, 0, a) || t.Peek() != '-') return false;
  ++t.pos;
  if (!ReadList(t, 32, 1, b)) return false;
  if (t.Peek() == '-') {
    ++t.pos;
    if (!ReadList(t, 32, 1, d)) return false;
    for (const auto& v : b)
      if (v.start >= 13 || v.end >= 13) return false;
    e.year = std::move(a);
    e.month = std::move(b);
    e.day = std::move(d);
  } else {
    for (const auto& v : a)
      if (v.start >= 13 || v.end >= 13) return false;
    e.month = std::move(a);
    e.day = std::move(b);
  }
  c = t;
  return true;
}

// The time part, "[HH:]MM[:SS]"; seconds default to 0, a missing hour means every hour.
bool ReadTime(Cursor& c, CalendarEvent& e) {
  Cursor t = c;
  std::vector<CalendarValue> parts[3];
  int n = 0;
  while (n < 3) {
    if (!ReadList(t, 60, 0, parts[n])) return false;
    ++n;
    if (t.Peek() != ':') break;
    ++t.pos;
  }
  if (n == 3 && t.Peek() == ':') return false;
  auto at_most = [](const std::vector<CalendarValue>& l, int max) {
    return std::all_of(l.begin(), l.end(), [&](const CalendarValue& v) { return v.start < max && v.end < max; });
  };
  e.second = {{CalendarValue::Kind::kSingle, 0, -1, 0}};
  if (n == 1) {
    e.minute = std::move(parts[0]);
  } else {
    if (!at_most(parts[0], 24)) return false;
    e.hour = std::move(parts[0]);
    e.minute = std::move(parts[1]);
    if (n == 3) e.second = std::move(parts[2]);
  }
  c = t;
  return true;
}

}  // namespace

Result<CalendarEvent> ParseCalendarEvent(std::string_view text) {
  text = Trim(text);
  if (text.empty()) return Fail(InvalidArgument("unable to parse calendar event - event is empty"));
  if (text.size() > kMaxCalendarEventLength)
    return Fail(InvalidArgument("value may only be " + std::to_string(kMaxCalendarEventLength) + " characters long"));
  CalendarEvent e;
  if (text.size() >= 3 && text.substr(text.size() - 3) == "UTC") {
    e.utc = true;
    text = text.substr(0, text.size() - 3);
    while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  }
  if (KeywordEvent(text, e)) return e;
  e = CalendarEvent{.utc = e.utc};
  Cursor c{text};
  bool any = false;
  if (std::isalpha(static_cast<unsigned char>(c.Peek()))) {
    HEARTH_TRY(ReadWeekdays(c, e.days));
    any = true;
    c.SkipSpaces();
  }
  bool date = !c.End() && ReadDate(c, e);
  if (date) c.SkipSpaces();
  bool time = !c.End() && ReadTime(c, e);
  if (!time && (any || date)) {
    // A day without a time is that day at 00:00:00.
    e.hour = e.minute = e.second = {{CalendarValue::Kind::kSingle, 0, -1, 0}};
  }
  any = any || date || time;
  if (!any) return Fail(ParseError(text, "Context(\"date or time specification\")"));
  if (!c.End()) return Fail(ParseError(c.Rest(), "Nom(Eof)"));
  if (e.days == 0x7f) e.days = 0;
  return e;
}

namespace {

bool ListMatches(const std::vector<CalendarValue>& l, int v) {
  return l.empty() || std::any_of(l.begin(), l.end(), [&](const CalendarValue& x) { return x.Matches(v); });
}

std::optional<int> ListNext(const std::vector<CalendarValue>& l, int v, int max) {
  std::optional<int> best;
  for (const auto& x : l)
    if (auto n = x.NextAfter(v); n && *n <= max && (!best || *n < *best)) best = n;
  return best;
}

}  // namespace

std::optional<int64_t> NextEvent(const CalendarEvent& e, int64_t last) {
  time_t t = static_cast<time_t>(last + 1);
  struct tm tm {};
  if (e.utc ? !gmtime_r(&t, &tm) : !localtime_r(&t, &tm)) return std::nullopt;
  // Writes the fields back through timegm/mktime, which also carries overflows (day 32,
  // hour 24) into the next month or day.
  auto normalise = [&]() -> bool {
    tm.tm_isdst = -1;
    time_t n = e.utc ? timegm(&tm) : mktime(&tm);
    return n != static_cast<time_t>(-1);
  };
  auto midnight = [&] { tm.tm_hour = tm.tm_min = tm.tm_sec = 0; };
  for (int step = 0; step < 1000; ++step) {
    int year = tm.tm_year + 1900;
    if (!ListMatches(e.year, year)) {
      auto next = ListNext(e.year, year, 2199);
      if (!next) return std::nullopt;
      tm.tm_year = *next - 1900;
      tm.tm_mon = 0;
      tm.tm_mday = 1;
      midnight();
      if (!normalise()) return std::nullopt;
      continue;
    }
    int month = tm.tm_mon + 1;
    if (!ListMatches(e.month, month)) {
      if (auto next = ListNext(e.month, month, 12)) {
        tm.tm_mon = *next - 1;
      } else {
        tm.tm_year += 1;
        tm.tm_mon = 0;
      }
      tm.tm_mday = 1;
      midnight();
      if (!normalise()) return std::nullopt;
      continue;
    }
    if (!ListMatches(e.day, tm.tm_mday)) {
      if (auto next = ListNext(e.day, tm.tm_mday, 31)) {
        tm.tm_mday = *next;
      } else {
        tm.tm_mon += 1;
        tm.tm_mday = 1;
      }
      midnight();
      if (!normalise()) return std::nullopt;
      continue;
    }
    int weekday = (tm.tm_wday + 6) % 7;  // Monday = 0
    if (e.days != 0 && !(e.days & (1u << weekday))) {
      int ahead = 1;
      while (ahead < 7 && !(e.days & (1u << ((weekday + ahead) % 7)))) ++ahead;
      tm.tm_mday += ahead;
      midnight();
      if (!normalise()) return std::nullopt;
      continue;
    }
    if (!ListMatches(e.hour, tm.tm_hour)) {
      if (auto next = ListNext(e.hour, tm.tm_hour, 23)) {
        tm.tm_hour = *next;
      } else {
        tm.tm_mday += 1;
        tm.tm_hour = 0;
      }
      tm.tm_min = tm.tm_sec = 0;
      if (!normalise()) return std::nullopt;
      continue;
    }
    if (!ListMatches(e.minute, tm.tm_min)) {
      if (auto next = ListNext(e.minute, tm.tm_min, 59)) {
        tm.tm_min = *next;
      } else {
        tm.tm_hour += 1;
        tm.tm_min = 0;
      }
      tm.tm_sec = 0;
      if (!normalise()) return std::nullopt;
      continue;
    }
    if (!ListMatches(e.second, tm.tm_sec)) {
      if (auto next = ListNext(e.second, tm.tm_sec, 59)) {
        tm.tm_sec = *next;
      } else {
        tm.tm_min += 1;
        tm.tm_sec = 0;
      }
      if (!normalise()) return std::nullopt;
      continue;
    }
    tm.tm_isdst = -1;
    time_t found = e.utc ? timegm(&tm) : mktime(&tm);
    if (found == static_cast<time_t>(-1)) return std::nullopt;
    return static_cast<int64_t>(found);
  }
  return std::nullopt;
}

}  // namespace hearth

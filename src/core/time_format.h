// Unix times as text, through strftime: "2026-12-02 08:00:00" (local time, task logs) or
// "2026-12-02T08:00:00Z" (UTC, backup names). Thread-safe (gmtime_r/localtime_r).
#pragma once

#include <cstdint>
#include <ctime>
#include <string>

namespace hearth {

inline std::string FormatUnixTime(int64_t unix_seconds, const char* format, bool utc) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  if (utc) gmtime_r(&t, &tm);
  else localtime_r(&t, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, format, &tm);
  return std::string(buf, n);
}

}  // namespace hearth

#include "model/upid.h"

#include <cstdio>
#include <regex>

#include "core/strings.h"

namespace hearth {

std::string Upid::ToString() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%08llX:%08llX:%08llX", static_cast<unsigned long long>(pid),
                static_cast<unsigned long long>(pstart), static_cast<unsigned long long>(starttime));
  return "UPID:" + node + ":" + buf + ":" + type + ":" + id + ":" + user + ":";
}

Result<Upid> ParseUpid(std::string_view text) {
  static const std::regex re(
      "^UPID:([a-zA-Z0-9]([a-zA-Z0-9\\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):"
      "([^:\\s/]+):([^:\\s]*):([^:\\s]+):$");
  std::smatch m;
  std::string s(text);
  if (!std::regex_match(s, m, re)) return Fail(FieldError("upid", "unable to parse worker upid"));
  Upid u;
  u.node = m[1].str();
  u.pid = std::stoull(m[3].str(), nullptr, 16);
  u.pstart = std::stoull(m[4].str(), nullptr, 16);
  u.starttime = static_cast<int64_t>(std::stoull(m[5].str(), nullptr, 16));
  u.type = m[6].str();
  u.id = m[7].str();
  u.user = m[8].str();
  return u;
}

}  // namespace hearth

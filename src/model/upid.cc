#include "model/upid.h"

#include <cstdio>
#include <cstdlib>

#include "core/pattern.h"
#include "core/strings.h"

namespace hearth {

std::string Upid::ToString() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%08llX:%08llX:%08llX", static_cast<unsigned long long>(pid),
                static_cast<unsigned long long>(pstart), static_cast<unsigned long long>(starttime));
  return "UPID:" + node + ":" + buf + ":" + type + ":" + id + ":" + user + ":";
}

Result<Upid> ParseUpid(std::string_view text) {
  static const Pattern re(
      "UPID:([a-zA-Z0-9](?:[a-zA-Z0-9\\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):"
      "([^:\\s/]+):([^:\\s]*):([^:\\s]+):");
  if (text.size() > 512) return Fail(FieldError("upid", "unable to parse worker upid"));
  auto m = re.Capture(text);
  if (!m) return Fail(FieldError("upid", "unable to parse worker upid"));
  auto hex = [](const std::string& h) { return std::strtoull(h.c_str(), nullptr, 16); };  // at most 9 digits
  Upid u;
  u.node = (*m)[0];
  u.pid = hex((*m)[1]);
  u.pstart = hex((*m)[2]);
  u.starttime = static_cast<int64_t>(hex((*m)[3]));
  u.type = (*m)[4];
  u.id = (*m)[5];
  u.user = (*m)[6];
  return u;
}

}  // namespace hearth

#include "core/units.h"

#include <cmath>
#include <cstdio>

#include "core/strings.h"

namespace hearth {

std::optional<uint64_t> ParseSize(std::string_view text) {
  if (text.empty()) return std::nullopt;
  uint64_t mult = 1;
  switch (text.back()) {
    case 'K': case 'k': mult = kKiB; break;
    case 'M': case 'm': mult = kMiB; break;
    case 'G': case 'g': mult = kGiB; break;
    case 'T': case 't': mult = kTiB; break;
    default: break;
  }
  if (mult != 1) text.remove_suffix(1);
  if (auto n = ParseUint(text)) {
    if (*n > UINT64_MAX / mult) return std::nullopt;
    return *n * mult;
  }
  if (mult == 1) return std::nullopt;  // fractional bytes make no sense
  auto d = ParseDouble(text);
  if (!d || *d < 0 || *d * static_cast<double>(mult) > 1.8e19) return std::nullopt;
  return static_cast<uint64_t>(std::llround(*d * static_cast<double>(mult)));
}

std::string FormatSize(uint64_t bytes) {
  if (bytes == 0) return "0";
  const struct { uint64_t unit; char suffix; } units[] = {{kTiB, 'T'}, {kGiB, 'G'}, {kMiB, 'M'}, {kKiB, 'K'}};
  for (const auto& u : units)
    if (bytes % u.unit == 0) return std::to_string(bytes / u.unit) + u.suffix;
  return std::to_string(bytes);
}

std::string HumanBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return std::to_string(bytes) + (bytes ? " B" : "");
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  // Whole MiB read as such ("512 MiB"); larger units get one decimal ("2.0 GiB").
  if (u <= 2 && v == static_cast<double>(static_cast<uint64_t>(v)))
    std::snprintf(buf, sizeof buf, "%.0f %s", v, units[u]);
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace hearth

// Sizes as Proxmox writes them: "32G", "528K", "4194304" (bytes).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hearth {

constexpr uint64_t kKiB = 1024, kMiB = kKiB * 1024, kGiB = kMiB * 1024, kTiB = kGiB * 1024;

// "<n>[KMGT]" (a bare number is bytes). Fractions allowed with a unit ("1.5G").
std::optional<uint64_t> ParseSize(std::string_view text);
// The largest unit that represents `bytes` exactly: 34359738368 -> "32G", 540672 -> "528K".
std::string FormatSize(uint64_t bytes);
// For people: "4629 B", "512 MiB", "2.0 GiB" (binary units, one decimal past MiB).
std::string HumanBytes(uint64_t bytes);

}  // namespace hearth

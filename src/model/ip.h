// IP address checks used by config validation (inet_pton: pure, no I/O).
#pragma once

#include <string_view>

namespace hearth {

bool IsIPv4(std::string_view s);
bool IsIPv6(std::string_view s);
// "10.0.0.5/24"; prefix 0-32 (v4) / 0-128 (v6).
bool IsCidr4(std::string_view s);
bool IsCidr6(std::string_view s);

}  // namespace hearth

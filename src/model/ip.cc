#include "model/ip.h"

#include <arpa/inet.h>

#include <string>

#include "core/strings.h"

namespace hearth {

bool IsIPv4(std::string_view s) {
  in_addr a;
  return s.size() < 16 && inet_pton(AF_INET, std::string(s).c_str(), &a) == 1;
}

bool IsIPv6(std::string_view s) {
  in6_addr a;
  return s.size() < 46 && inet_pton(AF_INET6, std::string(s).c_str(), &a) == 1;
}

static bool IsCidr(std::string_view s, bool v6) {
  size_t slash = s.find('/');
  if (slash == std::string_view::npos) return false;
  auto prefix = ParseUint(s.substr(slash + 1));
  if (!prefix || s[slash + 1] == '+' || *prefix > (v6 ? 128u : 32u)) return false;
  return v6 ? IsIPv6(s.substr(0, slash)) : IsIPv4(s.substr(0, slash));
}

bool IsCidr4(std::string_view s) { return IsCidr(s, false); }
bool IsCidr6(std::string_view s) { return IsCidr(s, true); }

}  // namespace hearth

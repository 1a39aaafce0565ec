#include "api/auth_header.h"

#include "core/strings.h"

namespace hearth {

// The value of `name` in a Cookie or Authorization header, PVE-style: the name at the start
// or after whitespace/';', then '=' or a space, value up to ';', as sent (still
// percent-encoded if the client encoded it; see CredentialCandidates).
std::optional<std::string> ExtractAuthValue(const std::string& header, const std::string& name) {
  size_t pos = 0;
  while ((pos = header.find(name, pos)) != std::string::npos) {
    bool at_start = pos == 0 || header[pos - 1] == ' ' || header[pos - 1] == ';' || header[pos - 1] == '\t';
    size_t after = pos + name.size();
    if (at_start && after < header.size() && (header[after] == '=' || header[after] == ' ')) {
      size_t end = header.find(';', after + 1);
      return std::string(Trim(header.substr(after + 1, end == std::string::npos ? std::string::npos : end - after - 1)));
    }
    pos = after;
  }
  return std::nullopt;
}

// A credential as sent and, if that differs, percent-decoded once (browsers encode the
// cookie, proxmoxer and curl do not). Each candidate must verify on its own — a ticket's
// signature covers its exact text — so trying both never turns one user into another.
std::vector<std::string> CredentialCandidates(const std::string& raw) {
  std::vector<std::string> out = {raw};
  if (raw.find('%') != std::string::npos)
    if (auto decoded = PercentDecode(raw, false); decoded && *decoded != raw) out.push_back(*decoded);
  return out;
}

}  // namespace hearth

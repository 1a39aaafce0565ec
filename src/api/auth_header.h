// Credentials in request headers, read as PVE's HTTPServer.pm reads them. Pure functions
// on untrusted text (fuzzed in fuzz/http_request.cc).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace hearth {

// The value of `name` (PVEAuthCookie, PVEAPIToken) in a Cookie or Authorization header.
std::optional<std::string> ExtractAuthValue(const std::string& header, const std::string& name);
// The credential as sent and, if different, percent-decoded once.
std::vector<std::string> CredentialCandidates(const std::string& raw);

}  // namespace hearth

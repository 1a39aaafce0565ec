#include "access/userid.h"

namespace hearth {
namespace {

bool IsRealmOrTokenName(std::string_view s) {
  if (s.size() < 2 || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z'))) return false;
  for (char c : s) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool IsNameChar(unsigned char c) {
  // Not whitespace (Perl \s), ':' or '/'; no control characters either.
  return c > 0x20 && c != 0x7f && c != ':' && c != '/';
}

}  // namespace

std::optional<AuthId> ParseUserId(std::string_view userid) {
  if (userid.size() < 3 || userid.size() > 64) return std::nullopt;
  size_t at = userid.rfind('@');
  if (at == std::string_view::npos || at == 0) return std::nullopt;
  std::string_view name = userid.substr(0, at), realm = userid.substr(at + 1);
  if (!IsRealmOrTokenName(realm)) return std::nullopt;
  for (unsigned char c : name)
    if (!IsNameChar(c)) return std::nullopt;
  return AuthId{std::string(name), std::string(realm), ""};
}

std::optional<AuthId> ParseTokenId(std::string_view tokenid) {
  size_t at = tokenid.rfind('@');
  if (at == std::string_view::npos) return std::nullopt;
  size_t bang = tokenid.find('!', at);
  if (bang == std::string_view::npos) return std::nullopt;
  auto user = ParseUserId(tokenid.substr(0, bang));
  std::string_view token = tokenid.substr(bang + 1);
  if (!user || !IsRealmOrTokenName(token)) return std::nullopt;
  user->token = std::string(token);
  return user;
}

std::optional<AuthId> ParseAuthId(std::string_view authid) {
  size_t at = authid.rfind('@');
  if (at != std::string_view::npos && authid.find('!', at) != std::string_view::npos) return ParseTokenId(authid);
  return ParseUserId(authid);
}

std::string InvalidUserIdMessage(std::string_view userid) {
  std::string u(userid);
  if (u.size() < 3) return "invalid format - user name '" + u + "' is too short\n";
  if (u.size() > 64) return "invalid format - user name '" + u.substr(0, 64) + "...' is too long (" + std::to_string(u.size()) + " > 64)\n";
  return "invalid format - value '" + u + "' does not look like a valid user name\n";
}

}  // namespace hearth

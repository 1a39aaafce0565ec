// User ids and API token ids, in Proxmox's grammar (pve-access-control Auth/Plugin.pm
// `verify_username`, AccessControl.pm `pve_verify_tokenid`):
//
//   userid  = name "@" realm            3..64 characters in all
//   name    = one or more characters other than whitespace, ':' and '/'  ('@' and '!' allowed)
//   realm   = [A-Za-z][A-Za-z0-9.\-_]+
//   tokenid = userid "!" tokenname      tokenname = [A-Za-z][A-Za-z0-9.\-_]+
//
// A realm never contains '@' or '!', and a token name never contains '@', so an id splits
// without ambiguity at its last '@' and, after that, at a '!'. Every place that takes a
// user or token id apart uses these functions; none splits at the first '@' or '!'.
// Control characters and DEL are refused in names as well (PVE's \s misses some of them).
//
// Pure functions, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hearth {

struct AuthId {
  std::string name;   // "alice"
  std::string realm;  // "pve"
  std::string token;  // token name, "" for a user
  std::string UserId() const { return name + "@" + realm; }
  std::string Full() const { return token.empty() ? UserId() : UserId() + "!" + token; }
};

// "alice@pve" -> {alice, pve}; nullopt if it is not a valid user id.
std::optional<AuthId> ParseUserId(std::string_view userid);
// "alice@pve!ci" -> {alice, pve, ci}; nullopt if it is not a valid token id.
std::optional<AuthId> ParseTokenId(std::string_view tokenid);
// Either form (a task's owner, /access/permissions?userid=...).
std::optional<AuthId> ParseAuthId(std::string_view authid);

// Proxmox's error text for an invalid user id (as a parameter error).
std::string InvalidUserIdMessage(std::string_view userid);

}  // namespace hearth

// Small string helpers shared by every layer. Pure functions, no allocation surprises.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth {

std::vector<std::string> Split(std::string_view s, char sep);
// Splits on any of `seps`, dropping empty pieces (Proxmox split_list: ",; " and friends).
std::vector<std::string> SplitAny(std::string_view s, std::string_view seps);
std::string Join(const std::vector<std::string>& parts, std::string_view sep);
std::string_view Trim(std::string_view s);
bool StartsWith(std::string_view s, std::string_view prefix);
bool EndsWith(std::string_view s, std::string_view suffix);
std::string ToLower(std::string_view s);
std::string ToUpper(std::string_view s);

// Strict decimal parsing: the whole string must be the number ("+5" and "-5" allowed).
std::optional<int64_t> ParseInt(std::string_view s);
// The last line of `text` with surrounding whitespace trimmed (a tool's final stderr line,
// which is where zfs and lvm say why they failed); "" for blank text.
std::string LastLine(std::string_view text);
std::optional<uint64_t> ParseUint(std::string_view s);
std::optional<double> ParseDouble(std::string_view s);

// Percent-decoding. `plus_is_space` for application/x-www-form-urlencoded.
// Returns nullopt on a malformed escape.
std::optional<std::string> PercentDecode(std::string_view s, bool plus_is_space);
// Encodes everything except unreserved characters (RFC 3986).
std::string PercentEncode(std::string_view s);

std::string HexEncode(std::string_view bytes, bool upper = false);
std::string Base64Encode(std::string_view bytes, bool pad = true);
std::optional<std::string> Base64Decode(std::string_view text);

// True if the JSON text nests arrays and objects at most `max_depth` deep (a linear scan,
// no parsing). Checked before parsing untrusted JSON: parsing is iterative, but printing
// and walking the result recurse.
bool JsonDepthAtMost(std::string_view json, size_t max_depth);

// Characters (code points) in UTF-8 text, as Proxmox counts maxLength; invalid bytes count one each.
size_t CharacterCount(std::string_view s);

// True if `s` is valid UTF-8 with no NUL bytes.
bool IsValidUtf8(std::string_view s);

}  // namespace hearth

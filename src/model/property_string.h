// Proxmox property strings: "local:vm-100-disk-0,iothread=1,size=32G".
//
// A PropertyFormat lists the allowed keys, their types, an optional default key (written as a
// bare value) and aliases. Parsing validates every key and value and normalises booleans to
// "1"/"0"; printing is canonical: the default key first as a bare value, then the other keys
// in alphabetical order (what Proxmox does whenever it re-renders a value).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace hearth {

enum class PropType { kString, kInteger, kBoolean, kNumber, kEnum, kSize };

struct PropDef {
  std::string name;
  PropType type = PropType::kString;
  std::vector<std::string> enum_values;  // for kEnum
  std::optional<double> min, max;        // for kInteger / kNumber
  std::string alias_of;                  // non-empty: this key is another name for alias_of
  // Extra check on the (already type-checked) value; returns an error message or "".
  std::string (*check)(std::string_view value) = nullptr;
};

struct PropertyFormat {
  std::vector<PropDef> props;
  std::string default_key;  // key that may be written without "key="
  const PropDef* Find(std::string_view name) const;
};

// Parsed values in key order. Values are normalised (booleans "1"/"0").
using PropertyMap = std::map<std::string, std::string>;

// Parses `text` against `format`. Errors name the offending key; never throws.
Result<PropertyMap> ParsePropertyString(const PropertyFormat& format, std::string_view text);

// Canonical print: default key bare first, then the others sorted.
std::string PrintPropertyString(const PropertyFormat& format, const PropertyMap& values);

// Checks one value against a PropDef, returning the normalised value or an error message.
Result<std::string> CheckPropValue(const PropDef& def, std::string_view value);

// Proxmox parse_boolean: 1/0/on/off/yes/no/true/false, case-insensitive.
std::optional<bool> ParseBooleanWord(std::string_view text);

}  // namespace hearth

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
  // The value's format (Proxmox `format =>`), checked after the type; returns an error
  // message or "". Its failures read "invalid format - <message>" as in Proxmox.
  std::string (*check)(std::string_view value) = nullptr;
  bool required = false;  // Proxmox `optional => 0`
};

struct PropertyFormat {
  std::vector<PropDef> props;
  std::string default_key;  // key that may be written without "key="
  const PropDef* Find(std::string_view name) const;
};

// Parsed values in key order. Values are normalised (booleans "1"/"0").
using PropertyMap = std::map<std::string, std::string>;

// Parses `text` against `format`; never throws. Errors carry Proxmox's texts (its
// parse_property_string and check_object), without the "invalid format - " that the caller
// adds: "duplicate key in comma-separated list property: <key>\n", "missing key in
// comma-separated list property\n", "value without key, but schema does not define a default
// key\n", or "format error\n<key>: <problem>\n" for a value that fails its check (Proxmox
// prefixes <key> with the parameter's name: see QualifyFormatError).
Result<PropertyMap> ParsePropertyString(const PropertyFormat& format, std::string_view text);

// "format error\nbridge: x\n" -> "format error\nnet0.bridge: x\n" (other messages unchanged).
std::string QualifyFormatError(const std::string& message, std::string_view param);

// Canonical print: default key bare first, then the others sorted.
std::string PrintPropertyString(const PropertyFormat& format, const PropertyMap& values);

// Checks one value against a PropDef, returning the normalised value or an error message.
Result<std::string> CheckPropValue(const PropDef& def, std::string_view value);

// Proxmox parse_boolean: 1/0/on/off/yes/no/true/false, case-insensitive.
std::optional<bool> ParseBooleanWord(std::string_view text);

}  // namespace hearth

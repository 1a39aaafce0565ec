#include "model/property_string.h"

#include <algorithm>
#include <cmath>

#include "core/strings.h"
#include "core/units.h"

namespace hearth {
namespace {

std::string fmt_num(double d) {
  if (d == std::floor(d)) return std::to_string(static_cast<int64_t>(d));
  std::string s = std::to_string(d);
  while (!s.empty() && s.back() == '0') s.pop_back();
  return s;
}

}  // namespace

const PropDef* PropertyFormat::Find(std::string_view name) const {
  for (const auto& p : props)
    if (p.name == name) return &p;
  return nullptr;
}

std::optional<bool> ParseBooleanWord(std::string_view text) {
  std::string t = ToLower(text);
  if (t == "1" || t == "on" || t == "yes" || t == "true") return true;
  if (t == "0" || t == "off" || t == "no" || t == "false") return false;
  return std::nullopt;
}

Result<std::string> CheckPropValue(const PropDef& def, std::string_view value) {
  std::string out(value);
  switch (def.type) {
    case PropType::kString:
      break;
    case PropType::kInteger: {
      auto n = ParseInt(value);
      if (!n) return Fail(InvalidArgument("type check ('integer') failed - got '" + out + "'"));
      if (def.min && *n < *def.min)
        return Fail(InvalidArgument("value must have a minimum value of " + std::to_string(int64_t(*def.min))));
      if (def.max && *n > *def.max)
        return Fail(InvalidArgument("value must have a maximum value of " + std::to_string(int64_t(*def.max))));
      out = std::to_string(*n);
      break;
    }
    case PropType::kNumber: {
      auto d = ParseDouble(value);
      if (!d) return Fail(InvalidArgument("type check ('number') failed - got '" + out + "'"));
      if (def.min && *d < *def.min) return Fail(InvalidArgument("value must have a minimum value of " + fmt_num(*def.min)));
      if (def.max && *d > *def.max) return Fail(InvalidArgument("value must have a maximum value of " + fmt_num(*def.max)));
      break;
    }
    case PropType::kBoolean: {
      auto b = ParseBooleanWord(value);
      if (!b) return Fail(InvalidArgument("type check ('boolean') failed - got '" + out + "'"));
      out = *b ? "1" : "0";
      break;
    }
    case PropType::kEnum:
      if (std::find(def.enum_values.begin(), def.enum_values.end(), out) == def.enum_values.end())
        return Fail(InvalidArgument("value '" + out + "' does not have a value in the enumeration '" +
                                    Join(def.enum_values, ", ") + "'"));
      break;
    case PropType::kSize:
      if (!ParseSize(value))
        return Fail(InvalidArgument("invalid format - value does not look like a valid disk size: " + out + "\n"));
      break;
  }
  if (def.check) {
    std::string msg = def.check(out);
    if (!msg.empty()) return Fail(InvalidArgument("invalid format - " + msg + "\n"));
  }
  return out;
}

std::string QualifyFormatError(const std::string& message, std::string_view param) {
  if (!StartsWith(message, "format error\n")) return message;
  std::string out = "format error\n";
  for (const auto& line : Split(message.substr(13), '\n'))
    if (!line.empty()) out += std::string(param) + "." + line + "\n";
  // A nested format failure ends with its own newline too (Proxmox prints "...\n\n").
  if (EndsWith(message, "\n\n")) out += "\n";
  return out;
}

Result<PropertyMap> ParsePropertyString(const PropertyFormat& format, std::string_view text) {
  PropertyMap out;
  if (!IsValidUtf8(text)) return Fail(InvalidArgument("invalid characters in value\n"));
  // A nested format failure keeps its own line end, so it ends "\n\n" as in Proxmox.
  auto field = [](const std::string& key, const std::string& msg) {
    return Fail(InvalidArgument("format error\n" + key + ": " + msg + "\n"));
  };
  std::vector<std::pair<std::string, std::string>> parts;
  for (const std::string& part : Split(text, ',')) {
    if (part.empty()) continue;  // Proxmox skips empty parts ("a,,b")
    size_t eq = part.find('=');
    if (eq == std::string::npos) {
      if (format.default_key.empty())
        return Fail(InvalidArgument("value without key, but schema does not define a default key\n"));
      if (out.count(format.default_key))
        return Fail(InvalidArgument("duplicate key in comma-separated list property: " + format.default_key + "\n"));
      out[format.default_key] = part;
      continue;
    }
    std::string key = part.substr(0, eq), value = part.substr(eq + 1);
    if (key.empty() || value.empty()) return Fail(InvalidArgument("missing key in comma-separated list property\n"));
    if (const PropDef* def = format.Find(key); def && !def->alias_of.empty()) key = def->alias_of;
    if (out.count(key)) return Fail(InvalidArgument("duplicate key in comma-separated list property: " + key + "\n"));
    out[key] = value;
  }
  // Then every key against the schema (Proxmox's check_object).
  for (auto& [key, value] : out) {
    const PropDef* def = format.Find(key);
    if (!def) return field(key, "property is not defined in schema and the schema does not allow additional properties");
    auto checked = CheckPropValue(*def, value);
    if (!checked) return field(key, checked.error().message);
    value = *checked;
  }
  for (const auto& def : format.props)
    if (def.required && !out.count(def.name)) return field(def.name, "property is missing and it is not optional");
  return out;
}

std::string PrintPropertyString(const PropertyFormat& format, const PropertyMap& values) {
  std::vector<std::string> parts;
  auto def_it = format.default_key.empty() ? values.end() : values.find(format.default_key);
  if (def_it != values.end()) parts.push_back(def_it->second);
  for (const auto& [k, v] : values) {
    if (def_it != values.end() && k == def_it->first) continue;
    parts.push_back(k + "=" + v);
  }
  return Join(parts, ",");
}

}  // namespace hearth

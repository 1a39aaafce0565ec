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
      if (!ParseSize(value)) return Fail(InvalidArgument("unable to parse size '" + out + "'"));
      break;
  }
  if (def.check) {
    std::string msg = def.check(out);
    if (!msg.empty()) return Fail(InvalidArgument(msg));
  }
  return out;
}

Result<PropertyMap> ParsePropertyString(const PropertyFormat& format, std::string_view text) {
  PropertyMap out;
  if (!IsValidUtf8(text)) return Fail(InvalidArgument("invalid characters in value"));
  for (const std::string& part : Split(text, ',')) {
    if (part.empty()) continue;  // Proxmox tolerates empty parts ("a,,b")
    std::string key, value;
    size_t eq = part.find('=');
    if (eq == std::string::npos) {
      if (format.default_key.empty())
        return Fail(InvalidArgument("value without key, but schema does not define a default key"));
      key = format.default_key;
      value = part;
    } else {
      key = part.substr(0, eq);
      value = part.substr(eq + 1);
    }
    const PropDef* def = format.Find(key);
    if (!def) return Fail(InvalidArgument("invalid format - property '" + key + "' is not defined in schema"));
    if (!def->alias_of.empty()) {
      key = def->alias_of;
      def = format.Find(key);
    }
    if (out.count(key)) return Fail(InvalidArgument("invalid format - duplicate key '" + key + "'"));
    auto checked = CheckPropValue(*def, value);
    if (!checked) return Fail(InvalidArgument("invalid format - " + key + ": " + checked.error().message));
    out[key] = *checked;
  }
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

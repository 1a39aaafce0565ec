#include "api/router.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "core/strings.h"
#include "model/vm_schema.h"

namespace hearth {

ParamSpec PString(std::string name, std::string description) {
  ParamSpec p;
  p.name = std::move(name);
  p.description = std::move(description);
  return p;
}
ParamSpec PInt(std::string name, std::optional<double> min, std::optional<double> max) {
  ParamSpec p;
  p.name = std::move(name);
  p.type = ParamType::kInteger;
  p.min = min;
  p.max = max;
  return p;
}
ParamSpec PBool(std::string name) {
  ParamSpec p;
  p.name = std::move(name);
  p.type = ParamType::kBoolean;
  return p;
}
ParamSpec PEnum(std::string name, std::vector<std::string> values) {
  ParamSpec p;
  p.name = std::move(name);
  p.enum_values = std::move(values);
  return p;
}
ParamSpec MaxLen(ParamSpec p, size_t n) {
  p.max_length = n;
  return p;
}

ParamSpec Required(ParamSpec p) {
  p.optional = false;
  return p;
}

Route& Router::Add(Route route) {
  // The first of two equal routes would answer, silently shadowing the other (it happened: a
  // placeholder list hid the real one). A programming error: stop at start, naming it.
  for (const auto& r : routes_)
    if (r.method == route.method && r.path == route.path) {
      std::fprintf(stderr, "route registered twice: %s %s\n", route.method.c_str(), route.path.c_str());
      std::abort();
    }
  routes_.push_back(std::move(route));
  return routes_.back();
}

std::optional<std::pair<const Route*, std::map<std::string, std::string>>> Router::Match(
    const std::string& method, const std::string& path) const {
  std::vector<std::string> segs = SplitAny(path, "/");
  for (const auto& r : routes_) {
    if (r.method != method) continue;
    std::vector<std::string> pat = SplitAny(r.path, "/");
    std::map<std::string, std::string> vars;
    size_t i = 0;
    bool ok = true;
    for (; i < pat.size(); ++i) {
      const std::string& p = pat[i];
      if (EndsWith(p, "*}")) {  // greedy tail
        if (i >= segs.size()) {
          ok = false;
          break;
        }
        std::vector<std::string> rest(segs.begin() + static_cast<long>(i), segs.end());
        vars[p.substr(1, p.size() - 3)] = Join(rest, "/");
        i = segs.size();
        break;
      }
      if (i >= segs.size()) {
        ok = false;
        break;
      }
      if (p.front() == '{') {
        vars[p.substr(1, p.size() - 2)] = segs[i];
      } else if (p != segs[i]) {
        ok = false;
        break;
      }
    }
    if (ok && i == segs.size() && (pat.size() == segs.size() || EndsWith(pat.back(), "*}")))
      return std::make_pair(&r, std::move(vars));
  }
  return std::nullopt;
}

namespace {

std::string CheckValue(const ParamSpec& spec, std::string& value) {
  size_t max_length = spec.max_length ? spec.max_length : kDefaultParamMaxLength;
  if (CharacterCount(value) > max_length) return "value may only be " + std::to_string(max_length) + " characters long";
  switch (spec.type) {
    case ParamType::kInteger: {
      auto n = ParseInt(value);
      if (!n) return "type check ('integer') failed - got '" + value + "'";
      if (spec.min && *n < *spec.min) return "value must have a minimum value of " + std::to_string(int64_t(*spec.min));
      if (spec.max && *n > *spec.max) return "value must have a maximum value of " + std::to_string(int64_t(*spec.max));
      value = std::to_string(*n);
      break;
    }
    case ParamType::kBoolean:
      if (value != "0" && value != "1") return "type check ('boolean') failed - got '" + value + "'";
      break;
    case ParamType::kNumber: {
      auto d = ParseDouble(value);
      if (!d) return "type check ('number') failed - got '" + value + "'";
      if (spec.min && *d < *spec.min) return "value out of range";
      if (spec.max && *d > *spec.max) return "value out of range";
      break;
    }
    case ParamType::kString:
      break;
  }
  if (!spec.enum_values.empty() &&
      std::find(spec.enum_values.begin(), spec.enum_values.end(), value) == spec.enum_values.end())
    return "value '" + value + "' does not have a value in the enumeration '" + Join(spec.enum_values, ", ") + "'";
  if (spec.check) return spec.check(value);
  return "";
}

}  // namespace

Status ValidateParams(const Route& route, const std::map<std::string, std::string>& path_params, Params& params) {
  Error err = FieldError("_", "");
  err.fields.clear();
  for (const auto& [k, v] : path_params) {
    if (params.Has(k)) {
      auto given = params.GetAll(k);
      if (given.size() != 1 || given[0] != v) {
        err.fields[k] = "duplicate parameter (already defined in URI) with conflicting values!";
        continue;
      }
    }
    params.Set(k, v);
  }
  if (params.all().size() > 1000) return Fail(InvalidArgument("too many parameters"));
  Params checked;
  for (const auto& [key, values] : params.all()) {
    const ParamSpec* spec = nullptr;
    for (const auto& p : route.params)
      if (p.name == key) spec = &p;
    if (!spec) {
      if (route.accepts_vm_config && FindVmKey(key)) {
        if (values.size() > 1) {
          err.fields[key] = "parameter given more than once";
          continue;
        }
        auto canon = CanonicalVmValue(key, values[0]);
        if (!canon) {
          for (const auto& [f, m] : canon.error().fields) err.fields[f] = m;
          continue;
        }
        checked.Set(key, *canon);
        continue;
      }
      err.fields[key] = "property is not defined in schema and the schema does not allow additional properties";
      continue;
    }
    std::vector<std::string> vals = values;
    if (vals.size() > 1 && !spec->repeatable) vals = {Join(vals, ",")};
    for (auto& v : vals) {
      std::string msg = CheckValue(*spec, v);
      if (!msg.empty()) {
        err.fields[key] = msg;
        break;
      }
      checked.Add(key, v);
    }
  }
  for (const auto& p : route.params)
    if (!p.optional && !params.Has(p.name)) err.fields[p.name] = "property is missing and it is not optional";
  if (!err.fields.empty()) return Fail(err);
  params = std::move(checked);
  return Ok();
}

}  // namespace hearth

#include "api/params.h"

#include <nlohmann/json.hpp>

#include "core/strings.h"

namespace hearth {

std::optional<std::string> Params::Get(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  if (it->second.size() == 1) return it->second[0];
  return Join(it->second, ",");
}

std::string Params::GetOr(const std::string& key, const std::string& fallback) const {
  auto v = Get(key);
  return v ? *v : fallback;
}

std::vector<std::string> Params::GetAll(const std::string& key) const {
  auto it = values_.find(key);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

bool Params::IsRepeated(const std::string& key) const {
  auto it = values_.find(key);
  return it != values_.end() && it->second.size() > 1;
}

int64_t Params::Int(const std::string& key, int64_t fallback) const {
  auto v = Get(key);
  if (!v) return fallback;
  auto n = ParseInt(*v);
  return n ? *n : fallback;
}

bool Params::Bool(const std::string& key, bool fallback) const {
  auto v = Get(key);
  if (!v) return fallback;
  return *v == "1";
}

Result<SplitTarget> SplitRequestTarget(const std::string& target) {
  size_t q = target.find('?');
  std::string raw_path = target.substr(0, q);
  auto path = PercentDecode(raw_path, false);
  if (!path) return Fail(InvalidArgument("malformed percent-encoding in path"));
  return SplitTarget{*path, q == std::string::npos ? "" : target.substr(q + 1)};
}

Status DecodeUrlEncoded(const std::string& text, Params& into) {
  for (const auto& pair : SplitAny(text, "&;")) {
    size_t eq = pair.find('=');
    std::string raw_key = pair.substr(0, eq);
    std::string raw_value = eq == std::string::npos ? "" : pair.substr(eq + 1);
    auto key = PercentDecode(raw_key, true);
    auto value = PercentDecode(raw_value, true);
    if (!key || !value) return Fail(InvalidArgument("malformed percent-encoding in parameters"));
    if (!IsValidUtf8(*key)) return Fail(InvalidArgument("parameter names must be valid UTF-8 without NUL bytes"));
    if (!IsValidUtf8(*value)) return Fail(FieldError(*key, "value must be valid UTF-8 without NUL bytes"));
    if (key->empty() || value->empty() || *key == "_dc") continue;  // PVE: empty value = absent
    into.Add(*key, *value);
  }
  return Ok();
}

static Status AddJsonValue(Params& into, const std::string& key, const nlohmann::json& v) {
  if (v.is_null()) return Ok();
  if (v.is_boolean()) into.Add(key, v.get<bool>() ? "1" : "0");
  else if (v.is_number_integer()) into.Add(key, std::to_string(v.get<int64_t>()));
  else if (v.is_number()) into.Add(key, v.dump());
  else if (v.is_string()) into.Add(key, v.get<std::string>());
  else if (v.is_array()) {
    // A list of scalars (a repeated key); PVE has no deeper shapes in parameters.
    for (const auto& item : v) {
      if (item.is_array() || item.is_object()) return Fail(FieldError(key, "nested lists are not supported"));
      HEARTH_TRY(AddJsonValue(into, key, item));
    }
  } else {
    return Fail(FieldError(key, "nested objects are not supported"));
  }
  return Ok();
}

Result<Params> ExtractParams(const HttpRequest& request, const std::string& query) {
  Params params;
  bool body_allowed = request.method == "POST" || request.method == "PUT";
  if (!body_allowed && !request.body.empty())
    return Fail(MakeError(ErrorCode::kNotImplemented, "Unexpected content for method '" + request.method + "'"));
  if (body_allowed && !request.body.empty()) {
    std::string ct = ToLower(request.Header("content-type"));
    if (StartsWith(ct, "application/json")) {
      nlohmann::json j;
      if (!JsonDepthAtMost(request.body, 8)) return Fail(InvalidArgument("malformed JSON body: nested too deeply"));
      try {
        j = nlohmann::json::parse(request.body);
      } catch (const std::exception& e) {
        return Fail(InvalidArgument(std::string("malformed JSON body: ") + e.what()));
      }
      if (!j.is_object()) return Fail(InvalidArgument("JSON body must be an object"));
      for (const auto& [k, v] : j.items()) HEARTH_TRY(AddJsonValue(params, k, v));
    } else {
      HEARTH_TRY(DecodeUrlEncoded(request.body, params));
    }
  }
  Params from_query;
  HEARTH_TRY(DecodeUrlEncoded(query, from_query));
  for (const auto& [k, vs] : from_query.all()) {
    params.Erase(k);  // query wins
    for (const auto& v : vs) params.Add(k, v);
  }
  return params;
}

}  // namespace hearth

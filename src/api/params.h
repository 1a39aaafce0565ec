// Request parameters as PVE's HTTP server extracts them:
//  - GET/DELETE: only the query string (a body is an error);
//  - POST/PUT: a JSON object if Content-Type is application/json, otherwise the body is
//    application/x-www-form-urlencoded (also when no Content-Type is sent); query
//    parameters are merged on top;
//  - pairs split on '&' or ';', '+' is a space, a key repeated becomes a list, a key with an
//    empty value is absent, `_dc` is dropped.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "http/http.h"

namespace hearth {

class Params {
 public:
  void Set(const std::string& key, std::string value) { values_[key] = {std::move(value)}; }
  void Add(const std::string& key, std::string value) { values_[key].push_back(std::move(value)); }
  void Erase(const std::string& key) { values_.erase(key); }
  bool Has(const std::string& key) const { return values_.count(key) > 0; }
  // The single value (a repeated key joins with ',' as PVE does for -list formats).
  std::optional<std::string> Get(const std::string& key) const;
  std::string GetOr(const std::string& key, const std::string& fallback) const;
  std::vector<std::string> GetAll(const std::string& key) const;
  bool IsRepeated(const std::string& key) const;
  // Validated by the route schema, so these only fail on programming errors.
  int64_t Int(const std::string& key, int64_t fallback = 0) const;
  bool Bool(const std::string& key, bool fallback = false) const;
  const std::map<std::string, std::vector<std::string>>& all() const { return values_; }

 private:
  std::map<std::string, std::vector<std::string>> values_;
};

// Splits "path?query" and decodes the path (percent escapes only; '+' stays).
struct SplitTarget {
  std::string path;
  std::string query;
};
Result<SplitTarget> SplitRequestTarget(const std::string& target);

Status DecodeUrlEncoded(const std::string& text, Params& into);
// Extracts parameters from a request per the rules above (uploads are handled separately).
Result<Params> ExtractParams(const HttpRequest& request, const std::string& query);

}  // namespace hearth

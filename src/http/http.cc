#include "http/http.h"

namespace hearth {

std::string HttpRequest::Header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return "";
}

}  // namespace hearth

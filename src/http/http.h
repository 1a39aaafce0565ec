// Plain HTTP request/response values shared by the server, the API layer and the CLI
// client. Deliberately free of Boost so that only two translation units compile Beast.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace hearth {

struct HttpRequest {
  std::string method;  // "GET"
  std::string target;  // path and query, still percent-encoded
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string body_file;  // set instead of body when the body was streamed to disk (uploads)
  std::string peer;       // remote address

  // First header with this (lower-case) name, or "".
  std::string Header(const std::string& name) const;
};

struct HttpResponse {
  int status = 200;
  std::string reason;  // empty: the standard phrase
  std::string content_type = "application/json;charset=UTF-8";
  std::string body;
  // A shared, immutable body (cached responses) sent without copying; wins over `body`.
  std::shared_ptr<const std::string> shared_body;
  std::vector<std::pair<std::string, std::string>> headers;
  // Send only after this long (PVE delays authentication failures by 3 s). The server
  // waits on a timer; no thread is held.
  int delay_ms = 0;
};

}  // namespace hearth

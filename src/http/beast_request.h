// The one translation from a parsed Beast request to hearth's HttpRequest, and the parser
// limits, shared by the server and the HTTP fuzz target (fuzz/http_request.cc) so that the
// fuzzer exercises exactly the path the server runs. Include only where Beast is compiled.
#pragma once

#include <cctype>
#include <cstddef>
#include <string>

#include <boost/beast/http.hpp>

#include "http/http.h"

namespace hearth {

// A request head larger than this is refused with 414 (PVE: 64 KiB in AnyEvent.pm).
constexpr size_t kMaxRequestHeaderBytes = 64 * 1024;

// Method, target and headers (names lower-cased); the body and the peer are the caller's.
template <class Message>
HttpRequest RequestHead(const Message& req) {
  HttpRequest r;
  r.method = std::string(req.method_string());
  r.target = std::string(req.target());
  for (const auto& f : req) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers.emplace_back(std::move(name), std::string(f.value()));
  }
  return r;
}

}  // namespace hearth

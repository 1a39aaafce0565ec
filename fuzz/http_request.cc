// The HTTP request path hearth owns, from raw bytes: Beast's parser with the server's
// limits, the conversion to HttpRequest, the target split, the credential headers and the
// parameters. Invariant: never throws or crashes, and the parsed head respects the limits.
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "api/auth_header.h"
#include "api/params.h"
#include "fuzz_common.h"
#include "http/beast_request.h"

using namespace hearth;
namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(kMaxRequestHeaderBytes);
  parser.body_limit(1 << 20);
  parser.eager(true);
  boost::beast::error_code ec;
  size_t used = parser.put(boost::asio::buffer(data, size), ec);
  FUZZ_CHECK(used <= size, "the parser consumes at most its input");
  if (ec || !parser.is_header_done()) return 0;
  HttpRequest req = RequestHead(parser.get());
  size_t header_bytes = 0;
  for (const auto& [k, v] : req.headers) header_bytes += k.size() + v.size();
  FUZZ_CHECK(header_bytes <= kMaxRequestHeaderBytes, "the head respects the header limit");
  if (parser.is_done()) req.body = parser.get().body();
  for (const auto& h : {"cookie", "authorization"})
    for (const char* name : {"PVEAuthCookie", "PVEAPIToken"})
      if (auto v = ExtractAuthValue(req.Header(h), name)) (void)CredentialCandidates(*v);
  auto target = SplitRequestTarget(req.target);
  if (!target) return 0;
  (void)ExtractParams(req, target->query);
  return 0;
}

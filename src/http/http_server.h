// HttpsServer: HTTP/1.1 over TLS 1.2/1.3 with keep-alive, built on Boost.Beast (which stays
// inside http_server.cc). The handler is called on an I/O thread, one request at a time per
// connection; it must answer quickly (slow work belongs in tasks). Like PVE, the connection
// is closed after any response with status >= 400.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/result.h"
#include "http/http.h"

namespace hearth {

struct HttpsServerOptions {
  std::string address = "0.0.0.0";
  uint16_t port = 8006;  // 0 = any free port (tests)
  std::string cert_file, key_file;
  int threads = 2;
  size_t max_body = 16 << 20;
  // For requests whose body should be streamed to a file (uploads): where to put it, or a
  // reason to refuse before reading the body (e.g. not enough space). nullopt buffers the
  // body in memory as usual. Called with method, target and Content-Length (if any).
  struct StreamTarget {
    std::string dir;
    std::string refusal;  // non-empty: answer 500 with this message
  };
  std::function<std::optional<StreamTarget>(const std::string&, const std::string&, std::optional<uint64_t>)>
      stream_body_to;
  uint64_t max_streamed_body = uint64_t{64} << 30;
};

class HttpsServer {
 public:
  using Handler = std::function<HttpResponse(HttpRequest&)>;
  static Result<std::unique_ptr<HttpsServer>> Start(const HttpsServerOptions& options, Handler handler);
  virtual ~HttpsServer() = default;
  virtual uint16_t port() const = 0;
  // Stops accepting and ends all connections; returns when the I/O threads have exited.
  virtual void Stop() = 0;
};

}  // namespace hearth

// HttpsServer: HTTP/1.1 over TLS 1.2/1.3 with keep-alive, built on Boost.Beast (which stays
// inside http_server.cc).
//
// Threads: `threads` I/O threads run every connection. The handler is called on an I/O
// thread, one request at a time per connection, and must not block: it answers at once
// through the Responder, or passes the request to another thread that calls the Responder
// later (exactly once, from any thread). Like PVE, the connection is closed after any
// response with status >= 400.
//
// Defences: at most `max_connections` connections in all (at the cap the oldest idle one,
// still in its TLS handshake or waiting for a request header, is closed to make room; if
// every connection is busy, accepting pauses until one closes) and `max_connections_per_ip` from one address (more are closed at
// once); accept errors (out of file descriptors) back off instead of spinning; a client must
// finish its TLS handshake, each request header and each body chunk within `client_timeout`,
// and is dropped when idle that long between requests.
#pragma once

#include <chrono>
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
  size_t max_body = 1 << 20;  // form and JSON bodies (PVE: 512 KiB)
  size_t max_connections = 1000;
  size_t max_connections_per_ip = 100;
  std::chrono::seconds client_timeout{60};  // nginx's client_header_timeout default
  std::chrono::seconds handshake_timeout{10};  // from accept to a finished TLS handshake
  // For requests whose body should be streamed to a file (uploads): where to put it, or the
  // answer that refuses it before the body is stored (caller not authenticated, not enough
  // space). nullopt buffers the body in memory as usual. Called on the I/O thread with the
  // request's head (no body yet) and its Content-Length, if any; must not block.
  struct StreamTarget {
    std::string dir;
    std::optional<HttpResponse> refusal;  // set: answer this at once; the body is discarded, never stored
  };
  std::function<std::optional<StreamTarget>(const HttpRequest& head, std::optional<uint64_t> length)> stream_body_to;
  uint64_t max_streamed_body = uint64_t{64} << 30;
};

class HttpsServer {
 public:
  using Responder = std::function<void(HttpResponse)>;
  using Handler = std::function<void(HttpRequest, Responder)>;
  static Result<std::unique_ptr<HttpsServer>> Start(const HttpsServerOptions& options, Handler handler);
  virtual ~HttpsServer() = default;
  virtual uint16_t port() const = 0;
  // Stops accepting and ends all connections; returns when the I/O threads have exited.
  // Responders called after this are ignored.
  virtual void Stop() = 0;
};

}  // namespace hearth

// A small blocking HTTPS client (Beast) for the CLI and for replication to another node.
//
// Trust: a certificate that verifies against the system's CAs for the host name is
// trusted. hearth's own certificate is self-signed, so otherwise the caller decides from
// its SHA-256 fingerprint: a pinned fingerprint must match exactly; else `on_unverified`
// is asked (the CLI checks its known-hosts file and, at a terminal, asks the user, as ssh
// does). Nothing is sent before the server is trusted. `insecure` skips all of this
// (tests only). Not thread-safe: one client per thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "core/result.h"
#include "http/http.h"

namespace hearth {

struct TlsTrust {
  bool insecure = false;
  std::string fingerprint;  // "AB:CD:…" (case-insensitive); set: only this certificate
  // host:port and the certificate's fingerprint; true trusts the certificate.
  std::function<bool(const std::string& host_port, const std::string& fingerprint)> on_unverified;
};

class HttpsClient {
 public:
  // `base`: "https://host[:port]" (port 8006 by default). Connects lazily.
  static Result<std::unique_ptr<HttpsClient>> Connect(const std::string& base, TlsTrust trust);
  virtual ~HttpsClient() = default;
  // Sends one request on a kept-alive connection, reconnecting once if the server closed it.
  // Fails with Unavailable (naming the fingerprint) when the server is not trusted.
  virtual Result<HttpResponse> Send(const HttpRequest& request) = 0;
  // Bounds for Send (hostile servers): an answer whose body is longer than `max_body` bytes
  // fails it (default 1 GiB), and so does a request still unanswered after `timeout` (0, the
  // default: no limit; the connection is dropped, Unavailable "no answer from … within N s").
  virtual void SetLimits(uint64_t max_body, std::chrono::seconds timeout) = 0;
  // Sends `head` (method, target, headers; its body is ignored) with the file at `path` as the
  // body (Content-Length: the file's size), streamed from disk in chunks of at most 1 MiB, at
  // most `rate_bps` bytes a second (0: no limit). `progress` gets the bytes sent so far after
  // each chunk. When nothing moves for `idle_timeout` (sending, or waiting for the answer),
  // the connection is dropped and the call fails with Unavailable. Not retried. A server that
  // answers before taking the whole body (a refusal) gets its answer returned.
  virtual Result<HttpResponse> SendFile(const HttpRequest& head, const std::string& path, uint64_t rate_bps,
                                        const std::function<void(uint64_t)>& progress,
                                        std::chrono::seconds idle_timeout) = 0;
};

}  // namespace hearth

// A small blocking HTTPS client (Beast) for the CLI. Certificate verification is off by
// default (the daemon's certificate is self-signed, as with Proxmox); --fingerprint pins it.
#pragma once

#include <memory>
#include <string>

#include "core/result.h"
#include "http/http.h"

namespace hearth {

class HttpsClient {
 public:
  // `base`: "https://host:port".
  static Result<std::unique_ptr<HttpsClient>> Connect(const std::string& base, const std::string& fingerprint = "");
  virtual ~HttpsClient() = default;
  // Sends one request on a kept-alive connection, reconnecting once if the server closed it.
  virtual Result<HttpResponse> Send(const HttpRequest& request) = 0;
};

}  // namespace hearth

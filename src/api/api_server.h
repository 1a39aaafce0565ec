// ApiServer: turns HTTP requests into route calls with PVE's wire behaviour — the
// /api2/json prefix, authentication (ticket cookie or header, API token), CSRF checks,
// parameter validation, the permission check, the {"data":…} envelope and the mapping of
// errors to status codes and reason phrases.
#pragma once

#include <string>

#include "access/access_service.h"
#include "api/router.h"
#include "http/http.h"

namespace hearth {

class ApiServer {
 public:
  ApiServer(const Router& router, AccessService& access, std::string node)
      : router_(router), access_(access), node_(std::move(node)) {}
  HttpResponse Handle(HttpRequest& request);
  // Whether this request's body should be streamed to disk (uploads).
  bool IsUpload(const std::string& method, const std::string& target) const;

 private:
  Result<Identity> Authenticate(const HttpRequest& request, const Route& route);

  const Router& router_;
  AccessService& access_;
  std::string node_;
};

// One mapping from Error to HTTP (status, reason phrase, JSON body).
HttpResponse ErrorResponse(const Error& error);
HttpResponse DataResponse(const ApiReply& reply);
// The {"data":...} envelope as text (for cached bodies).
std::string SerializeData(const nlohmann::json& data);

}  // namespace hearth

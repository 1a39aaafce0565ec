// ApiServer: turns HTTP requests into route calls with PVE's wire behaviour — the
// /api2/json prefix, authentication (ticket cookie or header, API token), CSRF checks,
// parameter validation, the permission check, the {"data":…} envelope and the mapping of
// errors to status codes and reason phrases.
//
// Threads: Handle() runs on an HTTP I/O thread and never blocks there. Routing,
// authentication (cached), parsing and validation happen inline; the handler runs inline
// only for Lane::kInline routes and otherwise on one of three bounded worker pools (work,
// wait, login). A full pool answers 503 at once. Authentication failures are answered
// after 3 s, as PVE does, on a timer.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "access/access_service.h"
#include "api/router.h"
#include "core/worker_pool.h"
#include "http/http.h"
#include "http/http_server.h"

namespace hearth {

struct ApiServerOptions {
  size_t work_threads = 8, work_queue = 512;
  size_t wait_threads = 16, wait_queue = 256;
  size_t login_threads = 2, login_queue = 64;
  int auth_failure_delay_ms = 3000;  // PVE: pve-http-server AnyEvent.pm delays every 401 by 3 s
  // Called on the I/O thread for every authenticated request (must be quick): the host
  // network's confirm window listens for the applying user here.
  std::function<void(const Identity&)> on_admitted;
};

class ApiServer {
 public:
  ApiServer(const Router& router, AccessService& access, std::string node, ApiServerOptions options = {});
  ~ApiServer();
  // Answers through `respond`, now or later from a worker thread.
  void Handle(HttpRequest request, HttpsServer::Responder respond);
  // Whether this request's body should be streamed to disk (uploads).
  bool IsUpload(const std::string& method, const std::string& target) const;
  // For an upload's head, before its body is stored: the answer that refuses a caller
  // without valid credentials or without the route's privilege (Datastore.AllocateTemplate
  // on the storage), so that nobody can fill the disk without the right to upload. Uploads
  // need no CSRF token (as in PVE's HTTPServer.pm: HTML forms cannot send one). nullopt: go
  // ahead (the route's own checks run again once the body is in).
  std::optional<HttpResponse> RefuseUpload(const HttpRequest& head);
  // Lets running handlers finish and drops queued ones. Call after the HTTP server stopped
  // and before it is destroyed.
  void StopWorkers();

 private:
  struct Call;
  // Authentication and the CSRF check: nullopt and `who` set, or the refusing answer.
  // The route's privilege on its permission path (filled from `params`): any one suffices.
  Status CheckPrivilege(const Route& route, const Params& params, const Identity& who) const;
  std::optional<HttpResponse> Admit(const HttpRequest& request, const Route& route, const std::string& api_path,
                                    Identity& who);
  Result<Identity> Authenticate(const HttpRequest& request, const Route& route, const std::string& api_path);
  HttpResponse Run(Call& call);

  const Router& router_;
  AccessService& access_;
  std::string node_;
  ApiServerOptions options_;
  WorkerPool work_, wait_, login_;
};

// One mapping from Error to HTTP (status, reason phrase, JSON body).
HttpResponse ErrorResponse(const Error& error);
HttpResponse DataResponse(const ApiReply& reply);
// The {"data":...} envelope as text (for cached bodies).
std::string SerializeData(const nlohmann::json& data);

}  // namespace hearth

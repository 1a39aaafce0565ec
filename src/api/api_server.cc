#include "api/api_server.h"

#include <spdlog/spdlog.h>

#include "api/auth_header.h"
#include "core/pattern.h"
#include "core/strings.h"

namespace hearth {
namespace {

constexpr const char* kPrefix = "/api2/json";

int StatusFor(const Error& e) {
  switch (e.code) {
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kUnauthenticated: return 401;
    case ErrorCode::kPermissionDenied: return 403;
    case ErrorCode::kNotImplemented: return 501;
    // PVE reports runtime failures ("does not exist", "already exists", "VM is locked")
    // as 500 with the message, and clients match on the message — so do we.
    default: return 500;
  }
}

std::string FillPath(const std::string& tmpl, const Params& params) {
  std::string out;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] == '{') {
      size_t end = tmpl.find('}', i);
      out += params.GetOr(tmpl.substr(i + 1, end - i - 1), "");
      i = end;
    } else {
      out += tmpl[i];
    }
  }
  return out;
}

HttpResponse Unauthorized(const std::string& reason, int delay_ms) {
  HttpResponse r;
  r.status = 401;
  r.reason = reason;
  r.body = "";  // PVE sends no JSON body for authentication failures
  r.delay_ms = delay_ms;
  return r;
}

HttpResponse Busy() {
  HttpResponse r;
  r.status = 503;
  r.reason = "too many requests in progress - try again";
  r.body = "{\"data\":null,\"message\":\"too many requests in progress - try again\\n\"}";
  return r;
}

}  // namespace

std::string SerializeData(const nlohmann::json& data) {
  return nlohmann::json{{"data", data}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

HttpResponse ErrorResponse(const Error& e) {
  HttpResponse r;
  r.status = StatusFor(e);
  std::string message = e.message;
  if (!e.fields.empty()) message = "Parameter verification failed.";
  r.reason = message.substr(0, message.find('\n'));
  nlohmann::json body = {{"data", nullptr}, {"message", message + "\n"}};
  if (!e.fields.empty()) body["errors"] = e.fields;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

HttpResponse DataResponse(const ApiReply& reply) {
  if (reply.raw) {
    HttpResponse r;
    r.content_type = "application/octet-stream";
    r.body = *reply.raw;
    return r;
  }
  if (reply.body) {
    HttpResponse r;
    r.shared_body = std::shared_ptr<const std::string>(reply.body, &reply.body->plain);
    return r;
  }
  nlohmann::json body = {{"data", reply.data}};
  if (reply.total) body["total"] = *reply.total;
  for (const auto& [k, v] : reply.extra.items()) body[k] = v;
  HttpResponse r;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

bool ApiServer::IsUpload(const std::string& method, const std::string& target) const {
  if (method != "POST") return false;
  // Storage uploads, and replication streams (the target's side of a replication job).
  static const Pattern re("/api2/json/nodes/[^/]+/(storage/[^/]+/upload|hearth/replication/receive)/?(\\?.*)?");
  return re.FullMatch(target);
}

std::optional<HttpResponse> ApiServer::RefuseUpload(const HttpRequest& head) {
  auto target = SplitRequestTarget(head.target);
  if (!target) return ErrorResponse(target.error());
  if (!StartsWith(target->path, std::string(kPrefix) + "/")) return std::nullopt;  // Handle answers 501
  std::string api_path = target->path.substr(std::string(kPrefix).size());
  auto match = router_.Match(head.method, api_path);
  if (!match || !match->first->needs_auth) return std::nullopt;
  const Route& route = *match->first;
  Identity who;
  if (auto refusal = Admit(head, route, api_path, who)) return refusal;
  // Uploads skip the CSRF check (HTML forms cannot send the header), so, as in PVE's
  // HTTPServer.pm, the upload privilege is checked before a byte of the body is stored.
  Params path_params;
  for (const auto& [k, v] : match->second) path_params.Set(k, v);
  if (auto st = CheckPrivilege(route, path_params, who); !st) return ErrorResponse(st.error());
  return std::nullopt;
}

Status ApiServer::CheckPrivilege(const Route& route, const Params& params, const Identity& who) const {
  if (route.privilege.empty()) return Ok();
  std::string perm_path = FillPath(route.permission_path.empty() ? "/" : route.permission_path, params);
  if (access_.AllowedAny(who, perm_path, route.privilege)) return Ok();
  return Fail(PermissionDenied("Permission check failed (" + perm_path + ", " + route.privilege + ")"));
}

std::optional<HttpResponse> ApiServer::Admit(const HttpRequest& req, const Route& route, const std::string& api_path,
                                             Identity& who) {
  auto id = Authenticate(req, route, api_path);
  if (!id) {
    if (id.error().code == ErrorCode::kPermissionDenied) return ErrorResponse(id.error());
    return Unauthorized(id.error().message, options_.auth_failure_delay_ms);
  }
  who = std::move(*id);
  if (options_.on_admitted) options_.on_admitted(who);
  if (who.via_ticket && req.method != "GET" && !route.csrf_exempt &&
      !access_.CheckCsrf(who, req.Header("csrfpreventiontoken")))
    return Unauthorized("Permission denied - invalid csrf token", options_.auth_failure_delay_ms);
  return std::nullopt;
}

Result<Identity> ApiServer::Authenticate(const HttpRequest& req, const Route& route, const std::string& api_path) {
  std::string cookie = req.Header("cookie");
  std::string authz = req.Header("authorization");
  std::optional<std::string> ticket = ExtractAuthValue(cookie, "PVEAuthCookie");
  if (!ticket) ticket = ExtractAuthValue(authz, "PVEAuthCookie");
  if (ticket) {
    for (const auto& t : CredentialCandidates(*ticket))
      if (auto id = access_.FromTicket(t)) return id;
    return Fail(Unauthenticated("Authentication failed!"));
  }
  if (auto raw_token = ExtractAuthValue(authz, "PVEAPIToken")) {
    Result<Identity> id = Fail(Unauthenticated("Authentication failed!"));
    for (const auto& token : CredentialCandidates(*raw_token)) {
      size_t eq = token.rfind('=');
      if (eq == std::string::npos) continue;
      id = access_.FromToken(token.substr(0, eq), token.substr(eq + 1));
      if (id) break;
    }
    if (!id) return Fail(Unauthenticated("Authentication failed!"));
    if (!route.allow_token)
      return Fail(PermissionDenied("Permission check failed (URI '" + api_path +
                                   "' not available with API token, need proper ticket.)"));
    return id;
  }
  return Fail(Unauthenticated("No ticket"));
}

// A request on its way through: owns everything the handler's context points to, so the
// handler can run on another thread after Handle() returned.
struct ApiServer::Call {
  HttpRequest request;
  Identity who;
  ApiContext ctx;
  const Route* route = nullptr;
  std::chrono::steady_clock::time_point started;
};

ApiServer::ApiServer(const Router& router, AccessService& access, std::string node, ApiServerOptions options)
    : router_(router), access_(access), node_(std::move(node)), options_(options),
      work_("api-work", options.work_threads, options.work_queue),
      wait_("api-wait", options.wait_threads, options.wait_queue),
      login_("api-login", options.login_threads, options.login_queue) {}

ApiServer::~ApiServer() { StopWorkers(); }

void ApiServer::StopWorkers() {
  work_.Stop();
  wait_.Stop();
  login_.Stop();
}

void ApiServer::Handle(HttpRequest request, HttpsServer::Responder respond) {
  auto call = std::make_shared<Call>();
  call->started = std::chrono::steady_clock::now();
  call->request = std::move(request);
  HttpRequest& req = call->request;
  ApiContext& ctx = call->ctx;
  auto target = SplitRequestTarget(req.target);
  if (!target) return respond(ErrorResponse(target.error()));
  std::string path = target->path;
  if (!StartsWith(path, std::string(kPrefix) + "/") && path != kPrefix) {
    return respond(
        ErrorResponse(MakeError(ErrorCode::kNotImplemented, "Method '" + req.method + " " + path + "' not implemented")));
  }
  std::string api_path = path.substr(std::string(kPrefix).size());
  auto match = router_.Match(req.method, api_path);
  if (!match) {
    return respond(ErrorResponse(
        MakeError(ErrorCode::kNotImplemented, "Method '" + req.method + " " + api_path + "' not implemented")));
  }
  const Route& route = *match->first;
  call->route = &route;

  ctx.request = &req;
  ctx.path = api_path;
  if (route.needs_auth) {
    if (auto refusal = Admit(req, route, api_path, call->who)) return respond(std::move(*refusal));
    ctx.who = &call->who;
  }

  if (req.body_file.empty()) {
    auto params = ExtractParams(req, target->query);
    if (!params) return respond(ErrorResponse(params.error()));
    ctx.params = std::move(*params);
  } else {
    Params query;
    if (auto st = DecodeUrlEncoded(target->query, query); !st) return respond(ErrorResponse(st.error()));
    ctx.params = std::move(query);  // the upload route parses its multipart body itself
  }
  if (auto st = ValidateParams(route, match->second, ctx.params); !st) return respond(ErrorResponse(st.error()));

  if (auto node = ctx.params.Get("node"); node && *node != node_ && route.path.find("{node}") != std::string::npos) {
    return respond(ErrorResponse(Internal("hostname lookup '" + *node + "' failed - failed to get address info for: " +
                                          *node + ": Name or service not known")));
  }
  if (route.needs_auth)
    if (auto st = CheckPrivilege(route, ctx.params, call->who); !st) return respond(ErrorResponse(st.error()));
  if (route.needs_auth && route.authorize)
    if (auto st = route.authorize(ctx); !st) return respond(ErrorResponse(st.error()));

  Lane lane = route.lane;
  if (lane == Lane::kAuto) lane = req.method == "GET" ? Lane::kInline : Lane::kWork;
  if (lane == Lane::kInline) return respond(Run(*call));
  WorkerPool& pool = lane == Lane::kWait ? wait_ : lane == Lane::kLogin ? login_ : work_;
  if (!pool.Submit([this, call, respond] { respond(Run(*call)); })) {
    spdlog::warn("{} {}: worker pool full, answering 503", req.method, api_path);
    respond(Busy());
  }
}

HttpResponse ApiServer::Run(Call& call) {
  const HttpRequest& req = call.request;
  ApiContext& ctx = call.ctx;
  Result<ApiReply> reply = Fail(Internal("no reply"));
  try {
    reply = call.route->handler(ctx);
  } catch (const std::exception& e) {
    // A bug, but one request must never take the daemon down.
    spdlog::error("{} {}: handler threw: {}", req.method, ctx.path, e.what());
    reply = Fail(Internal("internal error"));
  }
  if (!reply) {
    if (reply.error().code == ErrorCode::kInternal)
      spdlog::warn("{} {}: {}", req.method, ctx.path, reply.error().message);
    HttpResponse r = ErrorResponse(reply.error());
    if (r.status == 401) {
      // PVE answers failed logins after 3 s counted from the request's start.
      auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - call.started);
      r.delay_ms = std::max<int>(0, options_.auth_failure_delay_ms - static_cast<int>(spent.count()));
    }
    return r;
  }
  // Like PVE, large answers go gzip-compressed to clients that accept it.
  if (reply->body && !reply->body->gzip.empty() && ToLower(req.Header("accept-encoding")).find("gzip") != std::string::npos) {
    HttpResponse r;
    r.shared_body = std::shared_ptr<const std::string>(reply->body, &reply->body->gzip);
    r.headers.emplace_back("Content-Encoding", "gzip");
    return r;
  }
  if (reply->raw) {  // moved, not copied: a chunk is up to 16 MiB
    HttpResponse r;
    r.content_type = "application/octet-stream";
    r.body = std::move(*reply->raw);
    return r;
  }
  return DataResponse(*reply);
}

}  // namespace hearth

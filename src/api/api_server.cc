#include "api/api_server.h"

#include <spdlog/spdlog.h>

#include <regex>

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

// The value of `name` in a Cookie or Authorization header, PVE-style: the name at the start
// or after whitespace/';', then '=' or a space, value up to ';'. Percent escapes are decoded
// but '+' is kept (ticket signatures contain '+').
std::optional<std::string> ExtractAuthValue(const std::string& header, const std::string& name) {
  size_t pos = 0;
  while ((pos = header.find(name, pos)) != std::string::npos) {
    bool at_start = pos == 0 || header[pos - 1] == ' ' || header[pos - 1] == ';' || header[pos - 1] == '\t';
    size_t after = pos + name.size();
    if (at_start && after < header.size() && (header[after] == '=' || header[after] == ' ')) {
      size_t end = header.find(';', after + 1);
      std::string raw(Trim(header.substr(after + 1, end == std::string::npos ? std::string::npos : end - after - 1)));
      auto decoded = PercentDecode(raw, false);
      return decoded ? *decoded : raw;
    }
    pos = after;
  }
  return std::nullopt;
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

HttpResponse Unauthorized(const std::string& reason) {
  HttpResponse r;
  r.status = 401;
  r.reason = reason;
  r.body = "";  // PVE sends no JSON body for authentication failures
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
  if (reply.body) {
    HttpResponse r;
    r.shared_body = std::shared_ptr<const std::string>(reply.body, &reply.body->plain);
    return r;
  }
  nlohmann::json body = {{"data", reply.data}};
  if (reply.total) body["total"] = *reply.total;
  HttpResponse r;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

bool ApiServer::IsUpload(const std::string& method, const std::string& target) const {
  if (method != "POST") return false;
  static const std::regex re("^/api2/json/nodes/[^/]+/storage/[^/]+/upload/?(\\?.*)?$");
  return std::regex_match(target, re);
}

Result<Identity> ApiServer::Authenticate(const HttpRequest& req, const Route& route) {
  std::string cookie = req.Header("cookie");
  std::string authz = req.Header("authorization");
  std::optional<std::string> ticket = ExtractAuthValue(cookie, "PVEAuthCookie");
  if (!ticket) ticket = ExtractAuthValue(authz, "PVEAuthCookie");
  if (ticket) {
    auto id = access_.FromTicket(*ticket);
    if (!id) return Fail(Unauthenticated("Authentication failed!"));
    return id;
  }
  if (auto token = ExtractAuthValue(authz, "PVEAPIToken")) {
    size_t eq = token->rfind('=');
    if (eq == std::string::npos) return Fail(Unauthenticated("Authentication failed!"));
    auto id = access_.FromToken(token->substr(0, eq), token->substr(eq + 1));
    if (!id) return Fail(Unauthenticated("Authentication failed!"));
    if (!route.allow_token)
      return Fail(PermissionDenied("URI '" + std::string(kPrefix) + route.path + "' not available with API token, need proper ticket."));
    return id;
  }
  return Fail(Unauthenticated("No ticket"));
}

HttpResponse ApiServer::Handle(HttpRequest& req) {
  auto target = SplitRequestTarget(req.target);
  if (!target) return ErrorResponse(target.error());
  std::string path = target->path;
  if (!StartsWith(path, std::string(kPrefix) + "/") && path != kPrefix) {
    return ErrorResponse(MakeError(ErrorCode::kNotImplemented, "Method '" + req.method + " " + path + "' not implemented"));
  }
  std::string api_path = path.substr(std::string(kPrefix).size());
  auto match = router_.Match(req.method, api_path);
  if (!match) {
    return ErrorResponse(
        MakeError(ErrorCode::kNotImplemented, "Method '" + req.method + " " + api_path + "' not implemented"));
  }
  const Route& route = *match->first;

  ApiContext ctx;
  ctx.request = &req;
  ctx.path = api_path;
  Identity who;
  if (route.needs_auth) {
    auto id = Authenticate(req, route);
    if (!id) {
      if (id.error().code == ErrorCode::kPermissionDenied) return ErrorResponse(id.error());
      return Unauthorized(id.error().message);
    }
    who = *id;
    ctx.who = &who;
    if (who.via_ticket && req.method != "GET" && !route.csrf_exempt &&
        !access_.CheckCsrf(who, req.Header("csrfpreventiontoken")))
      return Unauthorized("Permission denied - invalid csrf token");
  }

  if (req.body_file.empty()) {
    auto params = ExtractParams(req, target->query);
    if (!params) return ErrorResponse(params.error());
    ctx.params = std::move(*params);
  } else {
    Params query;
    if (auto st = DecodeUrlEncoded(target->query, query); !st) return ErrorResponse(st.error());
    ctx.params = std::move(query);  // the upload route parses its multipart body itself
  }
  if (auto st = ValidateParams(route, match->second, ctx.params); !st) return ErrorResponse(st.error());

  if (auto node = ctx.params.Get("node"); node && *node != node_ && route.path.find("{node}") != std::string::npos) {
    return ErrorResponse(Internal("hostname lookup '" + *node + "' failed - failed to get address info for: " + *node +
                                  ": Name or service not known"));
  }
  if (route.needs_auth && !route.privilege.empty()) {
    std::string perm_path = FillPath(route.permission_path.empty() ? "/" : route.permission_path, ctx.params);
    if (!access_.Allowed(who, perm_path, route.privilege))
      return ErrorResponse(PermissionDenied("Permission check failed (" + perm_path + ", " + route.privilege + ")"));
  }
  auto reply = route.handler(ctx);
  if (!reply) {
    if (reply.error().code == ErrorCode::kInternal)
      spdlog::warn("{} {}: {}", req.method, api_path, reply.error().message);
    return ErrorResponse(reply.error());
  }
  // Like PVE, large answers go gzip-compressed to clients that accept it.
  if (reply->body && !reply->body->gzip.empty() && ToLower(req.Header("accept-encoding")).find("gzip") != std::string::npos) {
    HttpResponse r;
    r.shared_body = std::shared_ptr<const std::string>(reply->body, &reply->body->gzip);
    r.headers.emplace_back("Content-Encoding", "gzip");
    return r;
  }
  return DataResponse(*reply);
}

}  // namespace hearth

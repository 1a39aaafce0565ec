#include "cli/api_client.h"

#include "sys/random_source.h"

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "core/strings.h"
#include "model/upid.h"

namespace hearth {

std::string FormEncode(const KeyValues& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += "&";
    out += PercentEncode(k) + "=" + PercentEncode(v);
  }
  return out;
}

static Result<nlohmann::json> Unwrap(const HttpResponse& resp, const std::string& hint_401, bool envelope = false) {
  nlohmann::json body = nlohmann::json::parse(resp.body, nullptr, false);
  if (resp.status >= 200 && resp.status < 300) {
    if (body.is_discarded() || !body.contains("data")) return Fail(Internal("malformed response from server"));
    return envelope ? body : body["data"];
  }
  Error e = MakeError(resp.status == 401 ? ErrorCode::kUnauthenticated
                      : resp.status == 403 ? ErrorCode::kPermissionDenied
                      : resp.status == 400 ? ErrorCode::kInvalidArgument
                      : resp.status == 501 ? ErrorCode::kNotImplemented : ErrorCode::kInternal,
                      std::to_string(resp.status) + " " + resp.reason);
  if (!body.is_discarded() && body.contains("errors") && body["errors"].is_object())
    for (const auto& [k, v] : body["errors"].items()) e.fields[k] = v.is_string() ? v.get<std::string>() : v.dump();
  if (resp.status == 401 && !hint_401.empty()) e.message += " (" + hint_401 + ")";
  return Fail(e);
}

Result<nlohmann::json> ApiClient::Call(const std::string& method, const std::string& path, const KeyValues& params) {
  return Send(method, path, params, false);
}

Result<nlohmann::json> ApiClient::CallEnvelope(const std::string& method, const std::string& path,
                                               const KeyValues& params) {
  return Send(method, path, params, true);
}

Result<nlohmann::json> ApiClient::Send(const std::string& method, const std::string& path, const KeyValues& params,
                                       bool envelope) {
  HttpRequest req;
  req.method = method;
  req.target = "/api2/json" + path;
  std::string encoded = FormEncode(params);
  if (method == "GET" || method == "DELETE") {
    if (!encoded.empty()) req.target += "?" + encoded;
  } else {
    req.body = encoded;
    req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  }
  if (!creds_.token.empty()) req.headers.emplace_back("Authorization", "PVEAPIToken=" + creds_.token);
  if (!creds_.ticket.empty()) {
    req.headers.emplace_back("Cookie", "PVEAuthCookie=" + creds_.ticket);
    if (method != "GET") req.headers.emplace_back("CSRFPreventionToken", creds_.csrf);
  }
  HEARTH_ASSIGN_OR_RETURN(HttpResponse resp, http_->Send(req));
  return Unwrap(resp, path == "/access/ticket" ? "wrong user name or password" : creds_.hint_401, envelope);
}

Result<std::string> ApiClient::WaitTask(const std::string& upid, const std::function<void(const std::string&)>& on_line) {
  HEARTH_ASSIGN_OR_RETURN(Upid u, ParseUpid(upid));
  std::string base = "/nodes/" + u.node + "/tasks/" + PercentEncode(upid);
  size_t shown = 0;
  auto pump_log = [&]() -> Status {
    HEARTH_ASSIGN_OR_RETURN(auto lines, Call("GET", base + "/log", {{"start", std::to_string(shown)}, {"limit", "0"}}));
    for (const auto& l : lines) {
      std::string t = l.value("t", "");
      if (t == "no content") continue;
      ++shown;
      if (on_line) on_line(t);
    }
    return Ok();
  };
  auto delay = std::chrono::milliseconds(50);
  while (true) {
    HEARTH_ASSIGN_OR_RETURN(auto status, Call("GET", base + "/status"));
    HEARTH_TRY(pump_log());
    if (status.value("status", "") == "stopped") return status.value("exitstatus", std::string("unexpected status"));
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(500));
  }
}

Result<nlohmann::json> ApiClient::Upload(const std::string& path, const KeyValues& fields, const std::string& file_field,
                                         const std::string& file_name, const std::string& file_path) {
  std::ifstream f(file_path, std::ios::binary);
  if (!f) return Fail(InvalidArgument("cannot read '" + file_path + "'"));
  std::stringstream data;
  data << f.rdbuf();
  std::string boundary = "hearth" + RandomHex(24);
  std::string body;
  for (const auto& [k, v] : fields)
    body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + k + "\"\r\n\r\n" + v + "\r\n";
  body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + file_field + "\"; filename=\"" + file_name +
          "\"\r\nContent-Type: application/octet-stream\r\n\r\n";
  body += data.str();
  body += "\r\n--" + boundary + "--\r\n";
  HttpRequest req;
  req.method = "POST";
  req.target = "/api2/json" + path;
  req.body = std::move(body);
  req.headers.emplace_back("Content-Type", "multipart/form-data; boundary=" + boundary);
  if (!creds_.token.empty()) req.headers.emplace_back("Authorization", "PVEAPIToken=" + creds_.token);
  if (!creds_.ticket.empty()) req.headers.emplace_back("Cookie", "PVEAuthCookie=" + creds_.ticket);
  HEARTH_ASSIGN_OR_RETURN(HttpResponse resp, http_->Send(req));
  return Unwrap(resp, path == "/access/ticket" ? "wrong user name or password" : creds_.hint_401);
}

}  // namespace hearth

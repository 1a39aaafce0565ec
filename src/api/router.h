// The API route table. Each route carries its parameter schema, the privilege it needs and
// its handler, so validation, permission checks and documentation come from one place
// (after qemu-server's register_method). Handlers are thin: they validate nothing the schema
// already covers and return quickly — slow work returns a task UPID.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "access/access_service.h"
#include "api/params.h"
#include "api/response_cache.h"
#include "core/result.h"
#include "http/http.h"

namespace hearth {

enum class ParamType { kString, kInteger, kBoolean, kNumber };

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::kString;
  bool optional = true;
  std::optional<double> min, max;
  std::vector<std::string> enum_values;
  // Extra check on the value; returns an error message or "".
  std::function<std::string(const std::string&)> check;
  bool repeatable = false;  // a repeated key is a list (e.g. agent/exec `command`)
  std::string description;
  // Longest accepted value in characters, checked before anything else looks at it
  // (0: kDefaultParamMaxLength). Proxmox's maxLength where its schema has one.
  size_t max_length = 0;
};

constexpr size_t kDefaultParamMaxLength = 65536;
ParamSpec MaxLen(ParamSpec p, size_t n);

// Shorthands for route tables.
ParamSpec PString(std::string name, std::string description = "");
ParamSpec PInt(std::string name, std::optional<double> min = std::nullopt, std::optional<double> max = std::nullopt);
ParamSpec PBool(std::string name);
ParamSpec PEnum(std::string name, std::vector<std::string> values);
ParamSpec Required(ParamSpec p);

struct ApiContext {
  const Identity* who = nullptr;  // null on public routes
  Params params;
  const HttpRequest* request = nullptr;
  std::string path;  // decoded API path, e.g. "/nodes/n1/qemu"
};

struct ApiReply {
  nlohmann::json data;
  std::optional<int64_t> total;
  // A complete, already serialised {"data":...} body (from a ResponseCache); wins over `data`.
  std::shared_ptr<const CachedBody> body;
  // Bytes answered as application/octet-stream instead of {"data": …} (backup files and
  // chunks a pulling node reads); errors keep the JSON envelope.
  std::optional<std::string> raw;
  // Keys beside "data" at the top level of the answer (Proxmox's result attributes, such as
  // the network list's `changes`).
  nlohmann::json extra = nlohmann::json::object();
};

using ApiHandler = std::function<Result<ApiReply>(ApiContext&)>;

// Where a route's handler runs. The HTTP I/O threads must never block, so only handlers that
// read in-memory state run there; the rest go to bounded worker pools (see ApiServer).
enum class Lane {
  kAuto,    // GET: kInline; every other method: kWork
  kInline,  // on the I/O thread: quick, never blocks
  kWork,    // store writes (fsync), file operations, process runs
  kWait,    // waits on something outside (QMP, the guest agent, remote URLs) or on a VM's
            // lock (synchronous calls wait up to 60 s while a task holds it)
  kLogin,   // password hashing: its own small pool, so a login flood only slows logins
};

struct Route {
  std::string method;  // GET POST PUT DELETE
  std::string path;    // "/nodes/{node}/qemu/{vmid}/config"; "{name*}" takes the rest
  std::vector<ParamSpec> params;  // path parameters are listed here too
  bool accepts_vm_config = false;  // any VM config key is a parameter as well
  std::string privilege;           // required privilege ("" = any authenticated user)
  std::string permission_path;     // e.g. "/vms/{vmid}"; placeholders from parameters
  bool needs_auth = true;
  bool allow_token = true;
  bool csrf_exempt = false;
  ApiHandler handler;
  std::string description;
  Lane lane = Lane::kAuto;
  // Checked after `privilege`, for what one privilege on one path cannot say (Proxmox's
  // "or"/"and" permission blocks, owner checks). Returns PermissionDenied to refuse.
  std::function<Status(const ApiContext&)> authorize;
};

class Router {
 public:
  // The stored route, to set optional fields: r.Add({...}).lane = Lane::kWait. The reference
  // is valid until the next Add.
  Route& Add(Route route);
  // The route and its path parameters, or nullopt.
  std::optional<std::pair<const Route*, std::map<std::string, std::string>>> Match(const std::string& method,
                                                                                   const std::string& path) const;
  const std::vector<Route>& routes() const { return routes_; }
  Route& MutableRoute(size_t i) { return routes_.at(i); }

 private:
  std::vector<Route> routes_;
};

// Merges path parameters into `params` and checks every parameter against the route's
// schema: unknown keys, types, ranges, enums, required keys. Errors name the field.
Status ValidateParams(const Route& route, const std::map<std::string, std::string>& path_params, Params& params);

}  // namespace hearth

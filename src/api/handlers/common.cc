#include "api/handlers/handlers.h"
#include <ctime>

#include "core/strings.h"
#include "model/storage_config.h"
#include "model/vm_schema.h"

namespace hearth {

nlohmann::json ConfigValueJson(const std::string& key, const std::string& value) {
  const VmKeySpec* spec = FindVmKey(key);
  if (spec && (spec->type == KeyType::kInteger || spec->type == KeyType::kBoolean)) {
    if (auto n = ParseInt(value)) return *n;
  }
  // Numbers (cpulimit, migrate_downtime) as JSON numbers: bpg decodes them into floats.
  if (spec && spec->type == KeyType::kNumber) {
    if (auto n = ParseInt(value)) return *n;
    if (auto d = ParseDouble(value)) return *d;
  }
  return value;
}

nlohmann::json VmResourceJson(const VmStatusInfo& s, const std::string& node) {
  nlohmann::json j = {{"id", "qemu/" + std::to_string(s.vmid)},
                      {"vmid", s.vmid},
                      {"node", node},
                      {"type", "qemu"},
                      {"name", s.name},
                      {"status", s.status},
                      {"template", s.is_template ? 1 : 0},
                      {"uptime", s.uptime},
                      {"maxcpu", s.cpus},
                      {"cpu", s.cpu},
                      {"maxmem", s.maxmem},
                      {"mem", s.mem},
                      {"memhost", s.mem},
                      {"maxdisk", s.maxdisk},
                      {"disk", 0},
                      {"netin", s.netin},
                      {"netout", s.netout},
                      {"diskread", s.diskread},
                      {"diskwrite", s.diskwrite}};
  if (!s.lock.empty()) j["lock"] = s.lock;
  if (!s.tags.empty()) j["tags"] = s.tags;
  return j;
}

uint64_t ListingVersion(const ApiServices& s) {
  uint64_t now = static_cast<uint64_t>(std::time(nullptr));
  // Both counters only grow, so their sum changes whenever either does.
  return ((s.vms.Generation() + s.storage.Generation()) & ((uint64_t{1} << 40) - 1)) | (now << 40);
}

ApiReply Data(nlohmann::json data) {
  ApiReply r;
  r.data = std::move(data);
  return r;
}

ParamSpec NodeParam() {
  ParamSpec p = Required(PString("node", "The cluster node name."));
  p.check = [](const std::string& v) -> std::string {
    for (char c : v)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return "invalid node name";
    return v.empty() ? "invalid node name" : "";
  };
  return p;
}

ParamSpec VmidParam() { return Required(PInt("vmid", 100, 999999999)); }

ParamSpec StorageParam() {
  ParamSpec p = Required(PString("storage", "The storage identifier."));
  p.check = [](const std::string& v) -> std::string {
    auto st = CheckStorageId(v);
    return st ? "" : st.error().fields.begin()->second;
  };
  return p;
}

Status CheckNetworkAccess(const ApiServices& s, const Identity& who, const std::string& node) {
  if ((s.access.Allowed(who, "/", "Sys.Audit") && s.access.Allowed(who, "/", "Sys.Modify")) ||
      s.access.Allowed(who, "/nodes/" + node, "Sys.AccessNetwork"))
    return Ok();
  return Fail(PermissionDenied("Permission check failed"));
}

void RegisterIntrospectionRoutes(Router& r) {
  r.Add({"GET", "/hearth/routes", {}, false, "Sys.Audit", "/", true, true, false,
         [&r](ApiContext&) -> Result<ApiReply> {
           nlohmann::json out = nlohmann::json::array();
           for (const auto& route : r.routes()) {
             nlohmann::json params = nlohmann::json::array();
             for (const auto& p : route.params) params.push_back({{"name", p.name}, {"optional", p.optional ? 1 : 0}});
             // Routes that take VM config keys list them too (PVE's schema does), indexed
             // ones once with their highest index.
             if (route.accepts_vm_config)
               for (const auto& k : AllVmKeys()) {
                 if (k.internal) continue;
                 nlohmann::json p = {{"name", k.max_index >= 0 ? k.name + "0" : k.name}, {"optional", 1}, {"vm_config", 1}};
                 if (k.max_index >= 0) p["max_index"] = k.max_index;
                 params.push_back(p);
               }
             out.push_back({{"method", route.method}, {"path", route.path}, {"auth", route.needs_auth ? 1 : 0},
                            {"privilege", route.privilege}, {"description", route.description}, {"parameters", params}});
           }
           return Data(out);
         },
         "hearth extension: every API route with its privilege and parameters."});
}

}  // namespace hearth

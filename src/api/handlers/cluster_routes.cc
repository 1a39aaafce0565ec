#include <cstdio>

#include "api/api_server.h"
#include "api/handlers/handlers.h"
#include "core/strings.h"
#include "model/volume_id.h"
#include "sys/files.h"

namespace hearth {
namespace {

nlohmann::json NodeEntry(const NodeFacts& f, const HostStats& host) {
  int ncpu = host.OnlineCpus();
  HostMemory mem = host.Memory();
  auto disk = FilesystemSpace(f.data_dir).value_or(FsSpace{});
  double load = host.LoadAverage()[0];
  nlohmann::json j = {{"node", f.node}, {"id", "node/" + f.node}, {"type", "node"}, {"status", "online"},
                      {"level", ""}, {"cpu", std::min(1.0, load / std::max(1, ncpu))}, {"maxcpu", ncpu},
                      {"mem", mem.total - std::min(mem.total, mem.available)}, {"maxmem", mem.total},
                      {"disk", disk.used}, {"maxdisk", disk.total},
                      {"uptime", static_cast<int64_t>(host.UptimeSeconds())}};
  if (!f.ssl_fingerprint.empty()) j["ssl_fingerprint"] = f.ssl_fingerprint;
  return j;
}

nlohmann::json StorageResourceJson(const StorageEntry& e, const std::string& node) {
  const auto& st = e.plugin;
  auto u = st->Usage().value_or(StorageStatus{});
  return {{"id", "storage/" + node + "/" + e.config.id}, {"storage", e.config.id}, {"node", node}, {"type", "storage"},
          {"plugintype", e.config.type}, {"status", u.active ? "available" : "unknown"},
          {"shared", e.config.Shared() ? 1 : 0}, {"content", e.config.Get("content", "none")},
          {"disk", u.used}, {"maxdisk", u.total}};
}

}  // namespace

void RegisterClusterRoutes(Router& r, ApiServices& s) {
  // Like PVE, any authenticated user (not the world) may read the version.
  r.Add({"GET", "/version", {}, false, "", "", true, true, false,
         [&s](ApiContext&) -> Result<ApiReply> {
           return Data({{"version", s.facts.version}, {"release", s.facts.release}, {"repoid", s.facts.repoid},
                        {"hearth", s.facts.hearth_version}});
         },
         "API version details."});

  r.Add({"GET", "/cluster/status", {}, false, "Sys.Audit", "/", true, true, false,
         [&s](ApiContext&) -> Result<ApiReply> {
           return Data(nlohmann::json::array({{{"type", "node"}, {"id", "node/" + s.facts.node}, {"name", s.facts.node},
                                               {"ip", "127.0.0.1"}, {"local", 1}, {"nodeid", 0}, {"online", 1}, {"level", ""}}}));
         },
         "Cluster (standalone node) status."});

  r.Add({"GET", "/cluster/resources", {PEnum("type", {"vm", "storage", "node", "sdn"})}, false, "", "", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           std::string type = c.params.GetOr("type", "");
           // Today the answer depends on the caller only through the admin flag; with ACLs
           // the key must carry the caller's ACL generation.
           std::string key = "resources|" + type + "|" + (c.who->admin ? "admin" : c.who->AuthId());
           ApiReply reply;
           reply.body = s.cache.Get(key, ListingVersion(s), [&] {
             nlohmann::json out = nlohmann::json::array();
             if (type.empty() || type == "vm") {
               for (const auto& vm : s.vms.List())
                 if (s.access.Allowed(*c.who, "/vms/" + std::to_string(vm.vmid), "VM.Audit"))
                   out.push_back(VmResourceJson(vm, s.facts.node));
             }
             if ((type.empty() || type == "node") && s.access.Allowed(*c.who, "/nodes/" + s.facts.node, "Sys.Audit")) {
               nlohmann::json n = NodeEntry(s.facts, s.host);
               n["cgroup-mode"] = 2;
               out.push_back(n);
             }
             if (type.empty() || type == "storage")
               for (const auto& e : s.storage.Entries())  // as pve-manager: the storages enabled here
                 if (e.config.EnabledOn(s.facts.node) &&
                     s.access.Allowed(*c.who, "/storage/" + e.config.id, "Datastore.Audit"))
                   out.push_back(StorageResourceJson(e, s.facts.node));
             return SerializeData(out);
           });
           return reply;
         },
         "Resources of the cluster: VMs, nodes, storages."});

  r.Add({"GET", "/cluster/nextid", {PInt("vmid", 100, 999999999)}, false, "", "", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           std::optional<int> wanted;
           if (c.params.Has("vmid")) wanted = static_cast<int>(c.params.Int("vmid"));
           HEARTH_ASSIGN_OR_RETURN(int id, s.vms.NextId(wanted));
           return Data(std::to_string(id));  // a JSON string, as PVE (Telmate depends on it)
         },
         "The lowest free VM id."});

  r.Add({"GET", "/cluster/ha/resources/{sid}", {Required(PString("sid"))}, false, "", "", true, true, false,
         [](ApiContext& c) -> Result<ApiReply> {
           std::string sid = *c.params.Get("sid");
           if (sid.find(':') == std::string::npos) sid = "vm:" + sid;
           return Fail(Internal("no such resource '" + sid + "'"));
         },
         "HA resources (none: hearth has no HA manager yet)."});

  r.Add({"GET", "/cluster/ha/resources", {}, false, "", "", true, true, false,
         [](ApiContext&) -> Result<ApiReply> { return Data(nlohmann::json::array()); }, "HA resources."});

  r.Add({"GET", "/pools", {PString("poolid"), PEnum("type", {"qemu", "lxc", "storage"})}, false, "", "", true, true, false,
         [](ApiContext& c) -> Result<ApiReply> {
           if (auto id = c.params.Get("poolid")) return Fail(Internal("pool '" + *id + "' does not exist"));
           return Data(nlohmann::json::array());
         },
         "Resource pools (none yet)."});

  r.Add({"GET", "/nodes", {}, false, "", "", true, true, false,
         [&s](ApiContext&) -> Result<ApiReply> { return Data(nlohmann::json::array({NodeEntry(s.facts, s.host)})); },
         "Cluster nodes."});
}

void RegisterNodeRoutes(Router& r, ApiServices& s) {
  r.Add({"GET", "/nodes/{node}", {NodeParam()}, false, "", "", true, true, false,
         [](ApiContext&) -> Result<ApiReply> {
           nlohmann::json out = nlohmann::json::array();
           for (const char* d : {"qemu", "lxc", "storage", "tasks", "status", "network", "version", "subscription", "replication"})
             out.push_back({{"name", d}});
           return Data(out);
         },
         "Node index."});

  r.Add({"GET", "/nodes/{node}/status", {NodeParam()}, false, "Sys.Audit", "/nodes/{node}", true, true, false,
         [&s](ApiContext&) -> Result<ApiReply> {
           nlohmann::json n = NodeEntry(s.facts, s.host);
           int ncpu = s.host.OnlineCpus();
           std::string model = s.host.CpuModel();
           // PVE sends the load averages as strings, as /proc/loadavg writes them ("0.15").
           std::vector<std::string> load;
           for (double l : s.host.LoadAverage()) {
             char buf[32];
             snprintf(buf, sizeof buf, "%.2f", l);
             load.push_back(buf);
           }
           std::string kversion = s.host.KernelVersion();
           uint64_t total = n["maxmem"], used = n["mem"];
           auto disk = FilesystemSpace(s.facts.data_dir).value_or(FsSpace{});
           // "probing" until decided; a plain int keeps gcc's optional<bool> false positive away.
           int kvm = -1;
           if (s.facts.accel)
             if (auto k = s.facts.accel->Kvm()) kvm = *k ? 1 : 0;
           nlohmann::json out = {
               {"cpu", n["cpu"]}, {"uptime", n["uptime"]}, {"loadavg", load}, {"kversion", kversion},
               {"pveversion", "hearth/" + s.facts.hearth_version},
               {"cpuinfo", {{"cpus", ncpu}, {"cores", ncpu}, {"sockets", 1}, {"model", model}}},
               {"memory", {{"total", total}, {"used", used}, {"free", total - used}, {"available", total - used}}},
               {"rootfs", {{"total", disk.total}, {"used", disk.used}, {"avail", disk.avail}, {"free", disk.avail}}},
               {"accel", kvm < 0 ? "probing" : (kvm ? "kvm" : "tcg")}};
           if (kvm == 0) out["accel-reason"] = s.facts.accel->Reason();
           return Data(out);
         },
         "Node status; `accel` says whether VMs run with KVM or TCG."});

  r.Add({"GET", "/nodes/{node}/version", {NodeParam()}, false, "", "", true, true, false,
         [&s](ApiContext&) -> Result<ApiReply> {
           return Data({{"version", s.facts.version}, {"release", s.facts.release}, {"repoid", s.facts.repoid}});
         },
         "Version of this node."});

  std::vector<const char*> empty_lists = {"/nodes/{node}/lxc"};
  if (!s.network) empty_lists.push_back("/nodes/{node}/network");  // network_routes.cc otherwise
  for (const char* empty_list : empty_lists)
    r.Add({"GET", empty_list, {NodeParam(), PString("type")}, false, "", "", true, true, false,
           [](ApiContext&) -> Result<ApiReply> { return Data(nlohmann::json::array()); },
           "Present for API clients; hearth has none of these yet."});

  r.Add({"GET", "/nodes/{node}/subscription", {NodeParam()}, false, "", "", true, true, false,
         [](ApiContext&) -> Result<ApiReply> {
           return Data({{"status", "notfound"}, {"message", "hearth needs no subscription"}});
         },
         "Subscription status."});
}

}  // namespace hearth

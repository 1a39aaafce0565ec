// Storage replication, in Proxmox's shapes (pve-manager PVE/API2/ReplicationConfig.pm and
// PVE/API2/Replication.pm; docs/reference/pve-replication.md §5):
//   /cluster/replication            GET, POST; /{id} GET, PUT, DELETE
//   /nodes/{node}/replication       GET (status); /{id} GET; /{id}/status, /{id}/log GET;
//                                   /{id}/schedule_now POST
// hearth's own (docs/api/replication.md):
//   /cluster/hearth/replication-remotes       GET, POST; /{node} GET, PUT, DELETE
//   /nodes/{node}/hearth/replication/prepare|receive|finalize  POST: the target's side, called
//   by the source node with an API token holding Datastore.Allocate on /storage.
#include <fstream>

#include "api/handlers/handlers.h"
#include "core/strings.h"
#include "jobs/replica_receiver.h"
#include "jobs/replication_scheduler.h"

namespace hearth {
namespace {

Result<ReplicationScheduler*> Jobs(ApiServices& s) {
  if (!s.replication) return Fail(MakeError(ErrorCode::kNotImplemented, "replication is not available"));
  return s.replication;
}

ParamSpec JobIdParam() {
  ParamSpec p = Required(MaxLen(PString("id", "Replication Job ID. The ID is composed of a Guest ID and a job number, "
                                              "separated by a hyphen, i.e. '<GUEST>-<JOBNUM>'."),
                                64));
  p.check = [](const std::string& v) -> std::string {
    auto r = ParseReplicationJobId(v);
    return r ? "" : "invalid format - " + r.error().message;
  };
  return p;
}

// A replication remote's name in a path: {remote}, since {node} means this node to the router.
ParamSpec RemoteParam() { return Required(MaxLen(PString("remote", "The target's node name."), 63)); }

int GuestOf(const std::string& id) { return ParseReplicationJobId(id).value_or(std::make_pair(0, 0)).first; }

// VM.Replicate (or VM.Audit for reads) on the job's guest, as Proxmox checks it.
std::function<Status(const ApiContext&)> OnGuest(ApiServices& s, const char* privilege) {
  return [&s, privilege](const ApiContext& c) -> Status {
    std::string path = "/vms/" + std::to_string(GuestOf(c.params.GetOr("id", "")));
    if (s.access.Allowed(*c.who, path, privilege)) return Ok();
    return Fail(PermissionDenied("Permission check failed (" + path + ", " + privilege + ")"));
  };
}

std::map<std::string, std::string> Fields(const Params& params, const std::vector<std::string>& names) {
  std::map<std::string, std::string> out;
  for (const auto& name : names)
    if (auto v = params.Get(name)) out[name] = *v;
  return out;
}

std::vector<ParamSpec> JobSpecs(bool create) {
  std::vector<ParamSpec> out = {JobIdParam(),
                                MaxLen(PString("schedule", "Storage replication schedule. The format is a subset of "
                                                           "`systemd` calendar events."),
                                       128),
                                PString("rate", "Rate limit in mbps (megabytes per second) as floating point number."),
                                MaxLen(PString("comment", "Description."), 4096),
                                PBool("disable"),
                                PEnum("remove_job", {"local", "full"}),
                                MaxLen(PString("source", "For internal use, to detect if the guest was stolen."), 64)};
  if (create) {
    out.push_back(Required(PEnum("type", {"local"})));
    out.push_back(Required(MaxLen(PString("target", "Target node."), 64)));
  } else {
    out.push_back(MaxLen(PString("delete", "A list of settings you want to delete."), 4096));
    out.push_back(MaxLen(PString("digest", "Prevent changes if current configuration file has a different digest."), 64));
  }
  return out;
}

// The lines of a job's log as Proxmox's dump_logfile gives them ({n, t}, total).
Result<ApiReply> LogReply(const std::string& path, size_t start, size_t limit) {
  std::ifstream in(path);
  nlohmann::json out = nlohmann::json::array();
  if (!in) {
    ApiReply r = Data(nlohmann::json::array({{{"n", 1}, {"t", "unable to open file - No such file or directory"}}}));
    r.total = 1;
    return r;
  }
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (n > start && (limit == 0 || out.size() < limit)) out.push_back({{"n", n}, {"t", line}});
  }
  if (n == 0) out.push_back({{"n", 1}, {"t", "no content"}});
  ApiReply r = Data(out);
  r.total = static_cast<int64_t>(std::max<size_t>(n, 1));
  return r;
}

std::vector<std::string> VolumeList(const Params& p) {
  std::vector<std::string> out;
  for (auto v : Split(p.GetOr("volumes", ""), ','))
    if (!v.empty()) out.emplace_back(v);
  return out;
}

}  // namespace

void RegisterReplicationRoutes(Router& r, ApiServices& s) {
  // --- /cluster/replication
  r.Add({"GET", "/cluster/replication", {}, false, "", "", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(ReplicationScheduler * jobs, Jobs(s));
           nlohmann::json out = nlohmann::json::array();
           for (const auto& j : jobs->List())
             if (s.access.Allowed(*c.who, "/vms/" + std::to_string(j.guest), "VM.Audit")) out.push_back(j.ToJson());
           return Data(out);
         },
         "List replication jobs."});

  r.Add({"POST", "/cluster/replication", JobSpecs(true), false, "", "", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(ReplicationScheduler * jobs, Jobs(s));
           HEARTH_ASSIGN_OR_RETURN(ReplicationJob job, MakeReplicationJob(Fields(c.params, ReplicationJobFields())));
           HEARTH_TRY(jobs->Create(std::move(job)));
           return Data(nullptr);
         },
         "Create a new replication job", Lane::kAuto, OnGuest(s, "VM.Replicate")});

  r.Add({"GET", "/cluster/replication/{id}", {JobIdParam()}, false, "", "", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(ReplicationScheduler * jobs, Jobs(s));
           HEARTH_ASSIGN_OR_RETURN(ReplicationJob job, jobs->Get(*c.params.Get("id")));
           nlohmann::json j = job.ToJson();
           j["digest"] = ConfDigest(j.dump());
           return Data(j);
         },
         "Read replication job configuration.", Lane::kAuto, OnGuest(s, "VM.Audit")});

  r.Add({"PUT", "/cluster/replication/{id}", JobSpecs(false), false, "", "", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(ReplicationScheduler * jobs, Jobs(s));
           std::string id = *c.params.Get("id");
           if (auto digest = c.params.Get("digest"); digest && !digest->empty()) {
             HEARTH_ASSIGN_OR_RETURN(ReplicationJob current, jobs->Get(id));
             if (*digest != ConfDigest(current.ToJson().dump()))
               return Fail(Internal("detected modified configuration - file changed by other user? Try again."));
           }
           std::vector<std::string> remove;
           for (auto k : SplitAny(c.params.GetOr("delete", ""), ",; \t"))
             if (!k.empty()) remove.emplace_back(k);
           std::vector<std::string> names;
           for (const auto& f : ReplicationJobFields())
             if (f != "id" && f != "type" && f != "target") names.push_back(f);
           HEARTH_TRY(jobs->Update(id, Fields(c.params, names), remove));
           return Data(nullptr);
         },
         "Update replication job configuration.", Lane::kAuto, OnGuest(s, "VM.Replicate")});

  r.Add({"DELETE", "/cluster/replication/{id}", {JobIdParam(), PBool("keep"), PBool("force")}, false, "", "", true,
         true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(ReplicationScheduler * jobs, Jobs(s));
           if (c.params.Has("keep") && c.params.Has("force"))
             return Fail(FieldError("keep", "conflicts with parameter 'force'"));
           HEARTH_TRY(jobs->Delete(*c.params.Get("id"), c.params.Bool("keep"), c.params.Bool("force")));
           return Data(nullptr);
         },
         "Mark replication job for removal (the scheduler removes it and, unless `keep`, the target's copies); "
         "`force` removes the entry at once without cleanup.",
         Lane::kAuto, OnGuest(s, "VM.Replicate")});

  // --- /nodes/{node}/replication
  r.Add({"GET", "/nodes/{node}/replication", {NodeParam(), PInt("guest", 100, 999999999)}, false, "", "", true, true,
         false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(ReplicationScheduler * jobs, Jobs(s));
           std::optional<int> guest;
           if (c.params.Has("guest")) guest = static_cast<int>(c.params.Int("guest"));
           nlohmann::json out = nlohmann::json::array();
           for (auto& j : jobs->StatusList(guest))
             if (s.access.Allowed(*c.who, "/vms/" + std::to_string(j["guest"].get<int>()), "VM.Audit"))
               out.push_back(std::move(j));
           return Data(out);
         },
         "List status of all replication jobs on this node."});

  r.Add({"GET", "/nodes/{node}/replication/{id}", {NodeParam(), JobIdParam()}, false, "", "", true, true, false,
         [](ApiContext&) -> Result<ApiReply> {
           return Data(nlohmann::json::array({{{"name", "schedule_now"}}, {{"name", "log"}}, {{"name", "status"}}}));
         },
         "Directory index."});

  r.Add({"GET", "/nodes/{node}/replication/{id}/status", {NodeParam(), JobIdParam()}, false, "", "", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(ReplicationScheduler * jobs, Jobs(s));
           HEARTH_ASSIGN_OR_RETURN(nlohmann::json j, jobs->StatusOf(*c.params.Get("id")));
           return Data(j);
         },
         "Get replication job status.", Lane::kAuto, OnGuest(s, "VM.Audit")});

  r.Add({"GET", "/nodes/{node}/replication/{id}/log", {NodeParam(), JobIdParam(), PInt("start", 0), PInt("limit", 0)},
         false, "", "", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(ReplicationScheduler * jobs, Jobs(s));
           std::string id = *c.params.Get("id");
           HEARTH_TRY(jobs->Get(id));
           size_t limit = c.params.Has("limit") ? static_cast<size_t>(c.params.Int("limit")) : 50;
           return LogReply(jobs->LogPath(id), static_cast<size_t>(c.params.Int("start")), limit);
         },
         "Read replication job log.", Lane::kAuto,
         [&s](const ApiContext& c) -> Status {
           std::string vm = "/vms/" + std::to_string(GuestOf(c.params.GetOr("id", "")));
           if (s.access.Allowed(*c.who, vm, "VM.Audit") ||
               s.access.Allowed(*c.who, "/nodes/" + s.facts.node, "Sys.Audit"))
             return Ok();
           return Fail(PermissionDenied("Permission check failed"));
         }});

  r.Add({"POST", "/nodes/{node}/replication/{id}/schedule_now", {NodeParam(), JobIdParam()}, false, "", "", true,
         true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(ReplicationScheduler * jobs, Jobs(s));
           HEARTH_TRY(jobs->ScheduleNow(*c.params.Get("id")));
           return Data("OK");
         },
         "Schedule replication job to start as soon as possible.", Lane::kAuto, OnGuest(s, "VM.Replicate")});

  // --- /cluster/hearth/replication-remotes
  auto remote_specs = [](bool create) {
    std::vector<ParamSpec> out = {create ? Required(MaxLen(PString("node", "The target node's name (its `--node`)."), 63))
                                         : RemoteParam(),
                                  MaxLen(PString("host", "Its address or host name."), 255),
                                  PInt("port", 1, 65535),
                                  MaxLen(PString("fingerprint", "SHA-256 fingerprint of its TLS certificate."), 95),
                                  MaxLen(PString("apitoken", "An API token there: 'user@realm!name=secret'."), 512),
                                  MaxLen(PString("path", "Or: a directory on a btrfs file system of this host."), 4096)};
    return out;
  };
  auto remote_json = [](const ReplicationRemote& rm) { return rm.ToJson(/*with_secret=*/false); };

  r.Add({"GET", "/cluster/hearth/replication-remotes", {}, false, "Sys.Audit", "/", true, true, false,
         [&s, remote_json](ApiContext&) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(ReplicationScheduler * jobs, Jobs(s));
           nlohmann::json out = nlohmann::json::array();
           for (const auto& rm : jobs->Remotes()) out.push_back(remote_json(rm));
           return Data(out);
         },
         "List the nodes and directories replication jobs may target."});

  r.Add({"POST", "/cluster/hearth/replication-remotes", remote_specs(true), false, "Sys.Modify", "/", true, true,
         false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(ReplicationScheduler * jobs, Jobs(s));
           HEARTH_ASSIGN_OR_RETURN(ReplicationRemote rm,
                                   MakeReplicationRemote(Fields(c.params, ReplicationRemoteFields())));
           HEARTH_TRY(jobs->PutRemote(std::move(rm), /*create=*/true));
           return Data(nullptr);
         },
         "Add a replication target: another hearth node (host, fingerprint, apitoken) or a directory (path)."});

  r.Add({"GET", "/cluster/hearth/replication-remotes/{remote}", {RemoteParam()}, false, "Sys.Audit", "/", true, true,
         false,
         [&s, remote_json](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(ReplicationScheduler * jobs, Jobs(s));
           HEARTH_ASSIGN_OR_RETURN(ReplicationRemote rm, jobs->GetRemote(*c.params.Get("remote")));
           return Data(remote_json(rm));
         },
         "Read a replication target (never its token's secret)."});

  r.Add({"PUT", "/cluster/hearth/replication-remotes/{remote}", remote_specs(false), false, "Sys.Modify", "/", true,
         true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(ReplicationScheduler * jobs, Jobs(s));
           std::string node = *c.params.Get("remote");
           HEARTH_ASSIGN_OR_RETURN(ReplicationRemote current, jobs->GetRemote(node));
           nlohmann::json merged = current.ToJson(/*with_secret=*/true);
           for (const auto& [k, v] : Fields(c.params, ReplicationRemoteFields())) merged[k] = v;
           if (c.params.Has("path")) merged.erase("host"), merged.erase("apitoken"), merged.erase("fingerprint"), merged.erase("port");
           else if (c.params.Has("host")) merged.erase("path");
           HEARTH_ASSIGN_OR_RETURN(ReplicationRemote rm, ReplicationRemote::FromJson(merged));
           HEARTH_TRY(jobs->PutRemote(std::move(rm), /*create=*/false));
           return Data(nullptr);
         },
         "Change a replication target (a new token, address or fingerprint)."});

  r.Add({"DELETE", "/cluster/hearth/replication-remotes/{remote}", {RemoteParam()}, false, "Sys.Modify", "/", true, true,
         false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(ReplicationScheduler * jobs, Jobs(s));
           std::string name = *c.params.Get("remote");
           // Proxmox Backup Server's text for a remote a sync job uses (src/api2/config/remote.rs).
           if (s.datastore_jobs)
             for (const auto& job : s.datastore_jobs->List())
               if (job.remote == name)
                 return Fail(FieldError("remote", "remote '" + name + "' is used by datastore job '" + job.id +
                                                      "' (storage '" + job.storage + "')"));
           HEARTH_TRY(jobs->DeleteRemote(name));
           return Data(nullptr);
         },
         "Remove a replication target (refused while a job targets it or a datastore job pulls from it)."});

  // --- the target's side
  auto receiver = [&s]() -> Result<ReplicaReceiver*> {
    if (!s.replica_receiver) return Fail(MakeError(ErrorCode::kNotImplemented, "replication is not available"));
    return s.replica_receiver;
  };
  std::string base = "/nodes/{node}/hearth/replication";
  r.Add({"POST", base + "/prepare",
         {NodeParam(), JobIdParam(), MaxLen(PString("volumes"), 65536), MaxLen(PString("scan"), 4096),
          PInt("last_sync", 0), PBool("remove"), MaxLen(PString("source"), 64)},
         false, "Datastore.Allocate", "/storage", true, true, false,
         [receiver](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(ReplicaReceiver * rr, receiver());
           nlohmann::json log = nlohmann::json::array();
           std::vector<std::string> scan;
           for (auto v : Split(c.params.GetOr("scan", ""), ','))
             if (!v.empty()) scan.emplace_back(v);
           HEARTH_ASSIGN_OR_RETURN(auto held, rr->Prepare(*c.params.Get("id"), VolumeList(c.params), scan,
                                                          c.params.Int("last_sync"), c.params.Bool("remove"),
                                                          c.params.GetOr("source", ""),
                                                          [&](const std::string& l) { log.push_back(l); }));
           nlohmann::json vols = nlohmann::json::object();
           for (const auto& [volid, snaps] : held) vols[volid] = snaps;
           return Data({{"volumes", vols}, {"log", log}});
         },
         "Replication target: check the volumes a source will send, drop stale snapshots, say which it holds."});

  r.Add({"POST", base + "/receive",
         {NodeParam(), Required(PInt("guest", 100, 999999999)), Required(MaxLen(PString("volume"), 1024)),
          Required(MaxLen(PString("snapshot"), 64)), MaxLen(PString("base"), 64)},
         false, "Datastore.Allocate", "/storage", true, true, false,
         [receiver](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(ReplicaReceiver * rr, receiver());
           if (c.request->body_file.empty())
             return Fail(InvalidArgument("the replication stream must be the request body (with Content-Length)"));
           HEARTH_TRY(rr->Receive(static_cast<int>(c.params.Int("guest")), *c.params.Get("volume"),
                                  *c.params.Get("snapshot"), c.params.GetOr("base", ""), c.request->body_file));
           return Data(nullptr);
         },
         "Replication target: one volume's stream as the raw request body; swapped in only when whole."})
      .lane = Lane::kWait;

  r.Add({"POST", base + "/finalize",
         {NodeParam(), JobIdParam(), Required(MaxLen(PString("volumes"), 65536)), Required(PInt("last_sync", 1)),
          MaxLen(PString("source"), 64), MaxLen(PString("config"), 1 << 20)},
         false, "Datastore.Allocate", "/storage", true, true, false,
         [receiver](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(ReplicaReceiver * rr, receiver());
           nlohmann::json log = nlohmann::json::array();
           HEARTH_TRY(rr->Finalize(*c.params.Get("id"), VolumeList(c.params), c.params.Int("last_sync"),
                                   c.params.GetOr("source", ""), c.params.GetOr("config", ""),
                                   [&](const std::string& l) { log.push_back(l); }));
           return Data({{"log", log}});
         },
         "Replication target: keep only the newest snapshot and the guest's config."});
}

}  // namespace hearth

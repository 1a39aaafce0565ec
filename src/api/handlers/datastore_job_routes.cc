// Datastore jobs, hearth's own API (beyond Proxmox VE, whose storages have no such jobs; the
// fields are Proxmox Backup Server's, the shape that of /cluster/backup):
// GET/POST /cluster/hearth/datastore-jobs, GET/PUT/DELETE /cluster/hearth/datastore-jobs/{id},
// POST .../{id}/run. Documented in docs/api/datastore-jobs.md.
//
// A run is done by root@pam, so creating or changing a job needs, besides Sys.Modify on /
// (as /cluster/backup), what running it by hand needs on its storages (the
// /nodes/{node}/storage/{storage}/hearth/* routes): verify Datastore.AllocateSpace, gc and
// prune Datastore.Allocate, sync read access to the backups it copies here (Datastore.Allocate,
// or with a vmid AllocateSpace plus that VM's VM.Backup) and Datastore.AllocateSpace on the
// target (Datastore.Allocate there with prune-backups), a pull from a remote Datastore.Allocate
// here, drill Datastore.AllocateSpace here and
// VM.Allocate on /vms (it makes and destroys a scratch VM).
#include "api/handlers/handlers.h"
#include "core/strings.h"

namespace hearth {
namespace {

constexpr char kBase[] = "/cluster/hearth/datastore-jobs";

Result<DatastoreJobScheduler*> Jobs(ApiServices& s) {
  if (!s.datastore_jobs) return Fail(MakeError(ErrorCode::kNotImplemented, "datastore jobs are not available"));
  return s.datastore_jobs;
}

ParamSpec IdParam() {
  return Required(MaxLen(PString("id", "The job ID: a letter, then letters, digits, '-' or '_'."), kMaxBackupJobIdLength));
}

std::vector<ParamSpec> FieldSpecs(bool create) {
  std::vector<ParamSpec> out;
  for (const auto& name : DatastoreJobFields()) {
    if (name == "id") {
      out.push_back(IdParam());
    } else if (name == "type") {
      if (create) out.push_back(Required(PEnum("type", {"verify", "gc", "sync", "prune", "drill"})));
    } else if (name == "enabled" || name == "repeat-missed" || name == "ignore-verified") {
      out.push_back(PBool(name));
    } else if (name == "vmid" || name == "scratch-vmid") {
      out.push_back(PInt(name, 100, 999999999));
    } else if (name == "timeout") {
      out.push_back(PInt(name, 10, 86400));
    } else if (name == "outdated-after") {
      out.push_back(PInt(name, 0, 36500));
    } else if (name == "storage" || name == "schedule") {
      ParamSpec p = MaxLen(PString(name), name == "schedule" ? kMaxCalendarEventLength : 256);
      out.push_back(create ? Required(p) : p);
    } else {
      out.push_back(MaxLen(PString(name), name == "comment" ? 512 : 1024));
    }
  }
  if (!create) out.push_back(MaxLen(PString("delete", "A list of settings you want to delete."), 4096));
  return out;
}

std::map<std::string, std::string> Fields(const Params& params) {
  std::map<std::string, std::string> out;
  for (const auto& name : DatastoreJobFields())
    if (auto v = params.Get(name)) out[name] = *v;
  return out;
}

Status NeedOn(ApiServices& s, const Identity& who, const std::string& storage, const std::string& privs) {
  if (s.access.AllowedAny(who, "/storage/" + storage, privs)) return Ok();
  return Fail(PermissionDenied("Permission check failed (/storage/" + storage + ", " + privs + ")"));
}

Status NeedBackupStorage(ApiServices& s, const std::string& field, const std::string& id) {
  auto st = s.storage.Get(id);
  if (!st) return Fail(FieldError(field, "storage '" + id + "' does not exist"));
  if (!(*st)->Supports(ContentType::kBackup)) return Fail(FieldError(field, "storage '" + id + "' does not support backups"));
  return Ok();
}

// Reading the backups a sync copies from `storage`: PVE's volume access for each of them
// (Datastore.Allocate, or for one VM's backups AllocateSpace plus VM.Backup on that VM).
Status NeedSyncSource(ApiServices& s, const Identity& who, const std::string& storage, int vmid) {
  VolumeInfo v;
  v.content = ContentType::kBackup;
  v.vmid = vmid;
  if (MayAccessVolume(s, who, storage, v)) return Ok();
  return Fail(PermissionDenied("Permission check failed (/storage/" + storage + ", Datastore.Allocate)"));
}

// What running `job` needs of its storages: they exist, hold backups, and the caller may
// do by hand what the job will do as root@pam.
Status CheckJob(ApiServices& s, const Identity& who, const DatastoreJob& job) {
  HEARTH_TRY(NeedBackupStorage(s, "storage", job.storage));
  if (job.type == "verify") return NeedOn(s, who, job.storage, "Datastore.AllocateSpace");
  if (job.type == "gc" || job.type == "prune") return NeedOn(s, who, job.storage, "Datastore.Allocate");
  if (job.type == "drill") {
    HEARTH_TRY(NeedOn(s, who, job.storage, "Datastore.AllocateSpace"));
    if (!s.access.Allowed(who, "/vms", "VM.Allocate"))
      return Fail(PermissionDenied("Permission check failed (/vms, VM.Allocate)"));
    return Ok();
  }
  if (!job.remote.empty()) {
    // A pull into `storage` (it writes and may prune there) with a remote of this node.
    if (!s.replication) return Fail(MakeError(ErrorCode::kNotImplemented, "remotes are not available on this node"));
    HEARTH_TRY(s.replication->GetRemote(job.remote).map([](auto&&) {}).map_error([](Error e) {
      return FieldError("remote", e.message);
    }));
    return NeedOn(s, who, job.storage, "Datastore.Allocate");
  }
  HEARTH_TRY(NeedBackupStorage(s, "target", job.target));
  HEARTH_TRY(NeedSyncSource(s, who, job.storage, job.vmid));
  return NeedOn(s, who, job.target, job.prune_backups.empty() ? "Datastore.AllocateSpace" : "Datastore.Allocate");
}

nlohmann::json Entry(const DatastoreJob& job, int64_t now) {
  nlohmann::json e = job.ToApiJson();
  if (auto next = job.NextEvent(std::max(now, job.last_run)); next && job.enabled) e["next-run"] = *next;
  if (!job.last_upid.empty()) e["last-upid"] = job.last_upid;
  return e;
}

}  // namespace

void RegisterDatastoreJobRoutes(Router& r, ApiServices& s) {
  std::string one = std::string(kBase) + "/{id}";

  r.Add({"GET", kBase, {}, false, "Sys.Audit", "/", true, true, false,
         [&s](ApiContext&) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(DatastoreJobScheduler * jobs, Jobs(s));
           nlohmann::json out = nlohmann::json::array();
           for (const auto& job : jobs->List()) out.push_back(Entry(job, jobs->Now()));
           return Data(out);
         },
         "List datastore jobs (scheduled verify, garbage collection, sync and prune of backups)."});

  r.Add({"POST", kBase, FieldSpecs(true), false, "Sys.Modify", "/", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(DatastoreJobScheduler * jobs, Jobs(s));
           HEARTH_ASSIGN_OR_RETURN(DatastoreJob job, MakeDatastoreJob(Fields(c.params)));
           HEARTH_TRY(CheckJob(s, *c.who, job));
           HEARTH_TRY(jobs->Create(std::move(job)));
           return Data(nullptr);
         },
         "Create a datastore job."});

  r.Add({"GET", one, {IdParam()}, false, "Sys.Audit", "/", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(DatastoreJobScheduler * jobs, Jobs(s));
           std::string id = *c.params.Get("id");
           auto job = jobs->Get(id);
           if (!job) return Fail(FieldError("id", "No such job '" + id + "'"));
           return Data(Entry(*job, jobs->Now()));
         },
         "Read a datastore job."});

  r.Add({"PUT", one, FieldSpecs(false), false, "Sys.Modify", "/", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(DatastoreJobScheduler * jobs, Jobs(s));
           std::string id = *c.params.Get("id");
           auto fields = Fields(c.params);
           fields.erase("id");  // the path's
           std::vector<std::string> remove;
           for (auto k : SplitAny(c.params.GetOr("delete", ""), ",; \t"))
             if (!k.empty()) remove.emplace_back(k);
           // The job after the change is checked as a new one would be.
           if (auto current = jobs->Get(id)) {
             HEARTH_ASSIGN_OR_RETURN(DatastoreJob after, UpdateDatastoreJob(*current, fields, remove));
             HEARTH_TRY(CheckJob(s, *c.who, after));
           }
           HEARTH_TRY(jobs->Update(id, fields, remove));
           return Data(nullptr);
         },
         "Update a datastore job."});

  r.Add({"DELETE", one, {IdParam()}, false, "Sys.Modify", "/", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(DatastoreJobScheduler * jobs, Jobs(s));
           HEARTH_TRY(jobs->Delete(*c.params.Get("id")));
           return Data(nullptr);
         },
         "Delete a datastore job."});

  r.Add({"POST", one + "/run", {IdParam()}, false, "Sys.Modify", "/", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(DatastoreJobScheduler * jobs, Jobs(s));
           HEARTH_ASSIGN_OR_RETURN(std::string upid, jobs->RunNow(*c.params.Get("id")));
           return Data(upid);
         },
         "Run a datastore job now (it counts as the job's last run). Returns the task's UPID."});
}

}  // namespace hearth

// Snapshot schedules, hearth's own API (beyond Proxmox, in the shape of its job APIs such as
// /cluster/replication and /cluster/backup): GET/POST /cluster/hearth/snapshot-schedules,
// GET/PUT/DELETE /cluster/hearth/snapshot-schedules/{id}, POST .../{id}/run. Documented in
// docs/api/snapshot-schedules.md.
#include "api/handlers/handlers.h"
#include "core/strings.h"

namespace hearth {
namespace {

constexpr char kBase[] = "/cluster/hearth/snapshot-schedules";

Result<SnapshotScheduler*> Scheduler(ApiServices& s) {
  if (!s.snapshot_schedules) return Fail(MakeError(ErrorCode::kNotImplemented, "snapshot schedules are not available"));
  return s.snapshot_schedules;
}

nlohmann::json Entry(const SnapshotSchedule& sched) {
  nlohmann::json j = sched.ToJson();
  if (auto next = sched.NextRun(); next && sched.enabled) j["next-run"] = *next;
  return j;
}

std::map<std::string, std::string> Fields(const Params& params, bool with_id) {
  std::map<std::string, std::string> out;
  for (const auto& name : SnapshotScheduleFields()) {
    if (name == "id" && !with_id) continue;
    if (auto v = params.Get(name)) out[name] = *v;
  }
  return out;
}

std::vector<ParamSpec> FieldSpecs(bool create) {
  std::vector<ParamSpec> out;
  for (const auto& name : SnapshotScheduleFields()) {
    if (name == "id") continue;
    if (name == "schedule") {
      ParamSpec p = MaxLen(PString(name, "Proxmox calendar event, e.g. 'daily', 'mon..fri 02:00', '*/15'."),
                           kMaxCalendarEventLength);
      out.push_back(create ? Required(p) : p);
    } else if (name == "vmstate" || name == "enabled" || name == "keep-all") {
      out.push_back(PBool(name));
    } else if (StartsWith(name, "keep-")) {
      out.push_back(PInt(name, 0));
    } else {
      out.push_back(MaxLen(PString(name), 4096));
    }
  }
  return out;
}

ParamSpec IdParam() {
  return Required(MaxLen(PString("id", "The schedule's id: a letter, then letters, digits, '-' or '_'."),
                         kMaxScheduleIdLength));
}

}  // namespace

void RegisterSnapshotScheduleRoutes(Router& r, ApiServices& s) {
  std::string one = std::string(kBase) + "/{id}";

  r.Add({"GET", kBase, {}, false, "VM.Audit", "/vms", true, true, false,
         [&s](ApiContext&) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(SnapshotScheduler * sched, Scheduler(s));
           nlohmann::json out = nlohmann::json::array();
           for (const auto& e : sched->List()) out.push_back(Entry(e));
           return Data(out);
         },
         "List snapshot schedules."});

  std::vector<ParamSpec> create = FieldSpecs(true);
  create.push_back(IdParam());
  r.Add({"POST", kBase, create, false, "VM.Snapshot", "/vms", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(SnapshotScheduler * sched, Scheduler(s));
           HEARTH_ASSIGN_OR_RETURN(SnapshotSchedule made, MakeSnapshotSchedule(Fields(c.params, true)));
           HEARTH_TRY(sched->Create(std::move(made)));
           return Data(nullptr);
         },
         "Create a snapshot schedule."});

  r.Add({"GET", one, {IdParam()}, false, "VM.Audit", "/vms", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(SnapshotScheduler * sched, Scheduler(s));
           std::string id = *c.params.Get("id");
           auto e = sched->Get(id);
           if (!e) return Fail(Internal("snapshot schedule '" + id + "' does not exist"));
           return Data(Entry(*e));
         },
         "Read a snapshot schedule."});

  std::vector<ParamSpec> update = FieldSpecs(false);
  update.push_back(IdParam());
  update.push_back(MaxLen(PString("delete", "A list of settings you want to delete."), 4096));
  r.Add({"PUT", one, update, false, "VM.Snapshot", "/vms", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(SnapshotScheduler * sched, Scheduler(s));
           std::vector<std::string> remove;
           for (auto k : SplitAny(c.params.GetOr("delete", ""), ",; \t"))
             if (!k.empty()) remove.emplace_back(k);
           HEARTH_TRY(sched->Update(*c.params.Get("id"), Fields(c.params, false), remove));
           return Data(nullptr);
         },
         "Update a snapshot schedule."});

  r.Add({"DELETE", one, {IdParam()}, false, "VM.Snapshot", "/vms", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(SnapshotScheduler * sched, Scheduler(s));
           HEARTH_TRY(sched->Delete(*c.params.Get("id")));
           return Data(nullptr);
         },
         "Delete a snapshot schedule (its snapshots stay)."});

  r.Add({"POST", one + "/run", {IdParam()}, false, "VM.Snapshot", "/vms", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(SnapshotScheduler * sched, Scheduler(s));
           HEARTH_ASSIGN_OR_RETURN(std::string upid, sched->RunNow(*c.params.Get("id"), c.who->AuthId()));
           return Data(upid);
         },
         "Run a snapshot schedule now (it counts as its last run); returns the task's UPID."});
}

}  // namespace hearth

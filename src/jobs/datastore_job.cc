#include "jobs/datastore_job.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "core/strings.h"
#include "jobs/backup_job.h"
#include "model/calendar_event.h"
#include "model/property_string.h"
#include "model/retention.h"
#include "model/volume_id.h"
#include "vms/vzdump_options.h"

namespace hearth {
namespace {

const std::vector<std::string> kTypes = {"verify", "gc", "sync", "prune", "drill"};
constexpr size_t kMaxMarkerLength = 128;
constexpr size_t kMaxCommentLength = 512;
constexpr int kMaxOutdatedAfterDays = 36500;

// The fields each type takes besides the common ones (id, type, storage, schedule, enabled,
// repeat-missed, comment, node).
const std::map<std::string, std::set<std::string>>& TypeFields() {
  static const std::map<std::string, std::set<std::string>> m = {
      {"verify", {"vmid", "ignore-verified", "outdated-after"}},
      {"gc", {}},
      {"sync", {"vmid", "target", "remote", "remote-store", "prune-backups"}},
      {"prune", {"vmid", "prune-backups"}},
      {"drill", {"vmid", "scratch-vmid", "marker", "timeout"}},
  };
  return m;
}

Error Missing(const std::string& field) { return FieldError(field, "property is missing and it is not optional"); }

Result<bool> Bool(const std::string& field, const std::string& v) {
  auto b = ParseBooleanWord(v);
  if (!b) return Fail(FieldError(field, "type check ('boolean') failed - got '" + v + "'"));
  return *b;
}

Result<int64_t> Int(const std::string& field, const std::string& v, int64_t min, int64_t max) {
  auto n = ParseInt(v);
  if (!n) return Fail(FieldError(field, "type check ('integer') failed - got '" + v + "'"));
  if (*n < min) return Fail(FieldError(field, "value must have a minimum value of " + std::to_string(min)));
  if (*n > max) return Fail(FieldError(field, "value must have a maximum value of " + std::to_string(max)));
  return *n;
}

Status CheckStorageId(const std::string& field, const std::string& v) {
  if (!IsValidStorageId(v)) return Fail(FieldError(field, "invalid format - storage ID '" + v + "' contains illegal characters"));
  return Ok();
}

// The job's fields as the API names them, only those set (the inverse of MakeDatastoreJob).
std::map<std::string, std::string> FieldsOf(const DatastoreJob& j) {
  std::map<std::string, std::string> f = {
      {"id", j.id}, {"type", j.type}, {"storage", j.storage}, {"schedule", j.schedule}, {"enabled", j.enabled ? "1" : "0"}};
  if (j.repeat_missed) f["repeat-missed"] = "1";
  if (!j.comment.empty()) f["comment"] = j.comment;
  if (!j.node.empty()) f["node"] = j.node;
  if (j.vmid) f["vmid"] = std::to_string(j.vmid);
  if (j.type == "verify") f["ignore-verified"] = j.ignore_verified ? "1" : "0";
  if (j.outdated_after) f["outdated-after"] = std::to_string(*j.outdated_after);
  if (!j.target.empty()) f["target"] = j.target;
  if (!j.remote.empty()) f["remote"] = j.remote;
  if (!j.remote_store.empty()) f["remote-store"] = j.remote_store;
  if (!j.prune_backups.empty()) f["prune-backups"] = j.prune_backups;
  if (j.scratch_vmid) f["scratch-vmid"] = std::to_string(j.scratch_vmid);
  if (!j.marker.empty()) f["marker"] = j.marker;
  if (j.type == "drill") f["timeout"] = std::to_string(j.timeout);
  return f;
}

}  // namespace

const std::vector<std::string>& DatastoreJobFields() {
  static const std::vector<std::string> f = {"id",   "type",  "storage",         "schedule",       "enabled",
                                             "repeat-missed", "comment", "node", "vmid", "ignore-verified",
                                             "outdated-after", "target", "remote", "remote-store", "prune-backups",
                                             "scratch-vmid", "marker", "timeout"};
  return f;
}

Result<DatastoreJob> MakeDatastoreJob(const std::map<std::string, std::string>& fields) {
  auto get = [&](const std::string& k) -> std::optional<std::string> {
    auto it = fields.find(k);
    if (it == fields.end()) return std::nullopt;
    return it->second;
  };
  for (const auto& [k, v] : fields)
    if (std::find(DatastoreJobFields().begin(), DatastoreJobFields().end(), k) == DatastoreJobFields().end())
      return Fail(FieldError(k, "property is not defined in schema and the schema does not allow additional properties"));

  DatastoreJob job;
  auto id = get("id");
  if (!id) return Fail(Missing("id"));
  if (id->size() > kMaxBackupJobIdLength || !IsBackupJobId(*id))
    return Fail(FieldError("id", "invalid format - invalid configuration ID '" + *id + "'"));
  job.id = *id;

  auto type = get("type");
  if (!type) return Fail(Missing("type"));
  if (std::find(kTypes.begin(), kTypes.end(), *type) == kTypes.end())
    return Fail(FieldError("type", "value '" + *type + "' does not have a value in the enumeration '" + Join(kTypes, ", ") + "'"));
  job.type = *type;
  const auto& own = TypeFields().at(job.type);
  for (const auto& [k, v] : fields) {
    bool common = k == "id" || k == "type" || k == "storage" || k == "schedule" || k == "enabled" ||
                  k == "repeat-missed" || k == "comment" || k == "node";
    if (!common && !own.count(k)) return Fail(FieldError(k, "property is not allowed for type '" + job.type + "'"));
  }

  auto storage = get("storage");
  if (!storage) return Fail(Missing("storage"));
  HEARTH_TRY(CheckStorageId("storage", *storage));
  job.storage = *storage;

  auto schedule = get("schedule");
  if (!schedule) return Fail(Missing("schedule"));
  HEARTH_TRY(CheckJobSchedule(*schedule));
  job.schedule = *schedule;

  if (auto v = get("enabled")) {
    HEARTH_ASSIGN_OR_RETURN(job.enabled, Bool("enabled", *v));
  }
  if (auto v = get("repeat-missed")) {
    HEARTH_ASSIGN_OR_RETURN(job.repeat_missed, Bool("repeat-missed", *v));
  }
  if (auto v = get("comment")) {
    if (v->size() > kMaxCommentLength)
      return Fail(FieldError("comment", "value may only be " + std::to_string(kMaxCommentLength) + " characters long"));
    if (!IsValidUtf8(*v) || v->find_first_of("\r\n") != std::string::npos)
      return Fail(FieldError("comment", "value must be one line of UTF-8 text"));
    job.comment = *v;
  }
  if (auto v = get("node")) {
    if (!IsPveNodeName(*v)) return Fail(FieldError("node", "invalid format - value does not look like a valid node name"));
    job.node = *v;
  }
  if (auto v = get("vmid")) {
    HEARTH_ASSIGN_OR_RETURN(int64_t n, Int("vmid", *v, 100, 999999999));
    job.vmid = static_cast<int>(n);
  }
  if (job.type == "drill" && !job.vmid) return Fail(Missing("vmid"));
  if (auto v = get("scratch-vmid")) {
    HEARTH_ASSIGN_OR_RETURN(int64_t n, Int("scratch-vmid", *v, 100, 999999999));
    if (n == job.vmid) return Fail(FieldError("scratch-vmid", "the scratch VM must be another VM than 'vmid'"));
    job.scratch_vmid = static_cast<int>(n);
  }
  if (auto v = get("marker")) {
    if (v->empty() || v->size() > kMaxMarkerLength ||
        !std::all_of(v->begin(), v->end(), [](unsigned char c) { return c >= 0x20 && c < 0x7f; }) ||
        v->find_first_not_of(' ') == std::string::npos)
      return Fail(FieldError("marker", "value must be 1 to " + std::to_string(kMaxMarkerLength) +
                                           " printable ASCII characters, not only spaces"));
    job.marker = *v;
  }
  if (auto v = get("timeout")) {
    HEARTH_ASSIGN_OR_RETURN(int64_t n, Int("timeout", *v, 10, 86400));
    job.timeout = static_cast<int>(n);
  }
  if (auto v = get("ignore-verified")) {
    HEARTH_ASSIGN_OR_RETURN(job.ignore_verified, Bool("ignore-verified", *v));
  }
  if (auto v = get("outdated-after")) {
    HEARTH_ASSIGN_OR_RETURN(int64_t n, Int("outdated-after", *v, 0, kMaxOutdatedAfterDays));
    job.outdated_after = static_cast<int>(n);
  }
  if (auto v = get("remote")) {
    // A node of /cluster/hearth/replication-remotes (its name: a DNS label).
    if (v->empty() || v->size() > 63 ||
        !std::all_of(v->begin(), v->end(), [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '.'; }))
      return Fail(FieldError("remote", "invalid format - value does not look like a valid node name"));
    if (get("target")) return Fail(FieldError("target", "property is not allowed with 'remote'"));
    auto store = get("remote-store");
    if (!store) return Fail(Missing("remote-store"));
    HEARTH_TRY(CheckStorageId("remote-store", *store));
    job.remote = *v;
    job.remote_store = *store;
  } else if (get("remote-store")) {
    return Fail(FieldError("remote-store", "property is only allowed with 'remote'"));
  } else if (auto v = get("target")) {
    HEARTH_TRY(CheckStorageId("target", *v));
    if (*v == job.storage) return Fail(FieldError("target", "the target must be another storage than 'storage'"));
    job.target = *v;
  } else if (job.type == "sync") {
    return Fail(Missing("target"));
  }
  if (auto v = get("prune-backups")) {
    HEARTH_ASSIGN_OR_RETURN(KeepOptions keep, ParseKeepOptionsParam("prune-backups", *v));
    job.prune_backups = keep.Print();
  } else if (job.type == "prune") {
    return Fail(Missing("prune-backups"));
  }
  return job;
}

Result<DatastoreJob> UpdateDatastoreJob(const DatastoreJob& current, const std::map<std::string, std::string>& set,
                                        const std::vector<std::string>& remove) {
  std::map<std::string, std::string> fields = FieldsOf(current);
  for (const auto& [k, v] : set) {
    if (k == "id" && v != current.id) return Fail(FieldError("id", "the id of a job cannot change"));
    if (k == "type" && v != current.type) return Fail(FieldError("type", "the type of a job cannot change"));
    fields[k] = v;
  }
  for (const auto& k : remove) {
    if (std::find(DatastoreJobFields().begin(), DatastoreJobFields().end(), k) == DatastoreJobFields().end())
      return Fail(FieldError("delete", "unknown option '" + k + "'"));
    if (k == "id" || k == "type" || k == "storage" || k == "schedule")
      return Fail(FieldError("delete", "cannot delete required option '" + k + "'"));
    if (set.count(k)) return Fail(FieldError("delete", "cannot set and delete option '" + k + "' at once"));
    fields.erase(k);
  }
  return MakeDatastoreJob(fields);
}

std::optional<int64_t> DatastoreJob::NextEvent(int64_t after) const {
  auto e = ParseCalendarEvent(schedule);
  if (!e) return std::nullopt;
  return hearth::NextEvent(*e, after);
}

nlohmann::json DatastoreJob::ToApiJson() const {
  nlohmann::json j = {{"id", id}, {"type", type}, {"storage", storage}, {"schedule", schedule}, {"enabled", enabled ? 1 : 0}};
  if (repeat_missed) j["repeat-missed"] = 1;
  if (!comment.empty()) j["comment"] = comment;
  if (!node.empty()) j["node"] = node;
  if (vmid) j["vmid"] = vmid;
  if (type == "verify") j["ignore-verified"] = ignore_verified ? 1 : 0;
  if (outdated_after) j["outdated-after"] = *outdated_after;
  if (!target.empty()) j["target"] = target;
  if (!remote.empty()) j["remote"] = remote;
  if (!remote_store.empty()) j["remote-store"] = remote_store;
  if (scratch_vmid) j["scratch-vmid"] = scratch_vmid;
  if (!marker.empty()) j["marker"] = marker;
  if (type == "drill") j["timeout"] = timeout;
  if (!prune_backups.empty()) {
    nlohmann::json keep = nlohmann::json::object();
    for (auto part : Split(prune_backups, ',')) {
      auto eq = part.find('=');
      if (eq == std::string_view::npos) continue;
      std::string v(part.substr(eq + 1));
      if (auto n = ParseInt(v)) keep[std::string(part.substr(0, eq))] = *n;
    }
    j["prune-backups"] = keep;
  }
  return j;
}

nlohmann::json DatastoreJob::ToStoredJson() const {
  return {{"fields", FieldsOf(*this)}, {"last-run", last_run}, {"last-upid", last_upid}};
}

Result<DatastoreJob> DatastoreJob::FromStoredJson(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("fields") || !j["fields"].is_object())
    return Fail(Internal("a datastore job record is not an object with fields"));
  std::map<std::string, std::string> fields;
  for (const auto& [k, v] : j["fields"].items())
    if (v.is_string()) fields[k] = v.get<std::string>();
  auto job = MakeDatastoreJob(fields);
  if (!job) return Fail(Internal("datastore job '" + fields["id"] + "': " + job.error().message));
  job->last_run = j.value("last-run", int64_t{0});
  job->last_upid = j.value("last-upid", "");
  return job;
}

}  // namespace hearth

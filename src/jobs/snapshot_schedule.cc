#include "jobs/snapshot_schedule.h"

#include <time.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "core/strings.h"

namespace hearth {
namespace {

bool IsScheduleId(const std::string& id) {
  if (id.empty() || id.size() > kMaxScheduleIdLength || !std::islower(static_cast<unsigned char>(id[0]))) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_' ||
           c == '-';
  });
}

// Proxmox's tag characters (pve-tag): letters, digits and - _ + .
bool IsTag(const std::string& t) {
  if (t.empty() || t.size() > 128 || !std::isalnum(static_cast<unsigned char>(t[0]))) return false;
  return std::all_of(t.begin(), t.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '+' || c == '.';
  });
}

Result<bool> Bool(const std::string& field, const std::string& v) {
  std::string l = ToLower(v);
  if (l == "1" || l == "on" || l == "yes" || l == "true") return true;
  if (l == "0" || l == "off" || l == "no" || l == "false") return false;
  return Fail(FieldError(field, "type check ('boolean') failed - got '" + v + "'"));
}

Result<std::vector<int>> VmidList(const std::string& text) {
  std::set<int> ids;
  for (auto part : SplitAny(text, ", ;")) {
    if (part.empty()) continue;
    auto n = ParseInt(part);
    if (!n || *n < 100 || *n > 999999999)
      return Fail(FieldError("vmid", "invalid format - value '" + std::string(part) + "' does not look like a valid VM ID"));
    ids.insert(static_cast<int>(*n));
  }
  return std::vector<int>(ids.begin(), ids.end());
}

// Applies one field; "" for keep-* and optional strings means unset.
Status Apply(SnapshotSchedule& s, const std::string& k, const std::string& v, std::map<std::string, std::string>& keep) {
  if (k == "id") {
    if (!IsScheduleId(v))
      return Fail(FieldError("id", "invalid format - a letter, then lower-case letters, digits, '-' or '_', at most " +
                                       std::to_string(kMaxScheduleIdLength) + " characters"));
    s.id = v;
  } else if (k == "schedule") {
    auto e = ParseCalendarEvent(v);
    if (!e) return Fail(FieldError("schedule", "invalid format - invalid calendar event '" + v + "' - " + e.error().message));
    s.schedule = std::string(Trim(v));
  } else if (k == "vmid") {
    HEARTH_ASSIGN_OR_RETURN(s.vmids, VmidList(v));
  } else if (k == "tag") {
    if (!v.empty() && !IsTag(v)) return Fail(FieldError("tag", "invalid format - value does not match the regex pattern"));
    s.tag = v;
  } else if (k == "vmstate") {
    HEARTH_ASSIGN_OR_RETURN(s.vmstate, Bool(k, v));
  } else if (k == "enabled") {
    HEARTH_ASSIGN_OR_RETURN(s.enabled, Bool(k, v));
  } else if (k == "comment") {
    if (v.size() > 512) return Fail(FieldError("comment", "value may only be 512 characters long"));
    if (v.find('\n') != std::string::npos) return Fail(FieldError("comment", "value must be a single line"));
    s.comment = v;
  } else if (StartsWith(k, "keep-")) {
    keep[k] = v;
  } else {
    return Fail(FieldError(k, "property is not defined in schema and the schema does not allow additional properties"));
  }
  return Ok();
}

Status Finish(SnapshotSchedule& s, const std::map<std::string, std::string>& keep) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : keep)
    if (!v.empty()) parts.push_back(k + "=" + v);
  auto k = ParseKeepOptions(Join(parts, ","));
  if (!k) {
    if (!k.error().fields.empty()) return Fail(k.error());
    return Fail(FieldError("keep-last", k.error().message));
  }
  s.keep = *k;
  if (s.id.empty()) return Fail(FieldError("id", "property is missing and it is not optional"));
  if (s.schedule.empty()) return Fail(FieldError("schedule", "property is missing and it is not optional"));
  if (s.vmids.empty() && s.tag.empty()) return Fail(FieldError("vmid", "set 'vmid' (a list of VMs) or 'tag' (VMs with that tag)"));
  return Ok();
}

std::map<std::string, std::string> KeepFields(const KeepOptions& keep) {
  std::map<std::string, std::string> out;
  if (keep.KeepsAll()) return out;
  for (auto part : Split(keep.Print(), ',')) {
    size_t eq = part.find('=');
    out[std::string(part.substr(0, eq))] = std::string(part.substr(eq + 1));
  }
  return out;
}

}  // namespace

const std::vector<std::string>& SnapshotScheduleFields() {
  static const std::vector<std::string> fields = [] {
    std::vector<std::string> f = {"id", "schedule", "vmid", "tag", "vmstate", "enabled", "comment"};
    for (const auto& k : KeepOptionNames()) f.push_back(k);
    return f;
  }();
  return fields;
}

bool SnapshotSchedule::Utc() const {
  auto e = ParseCalendarEvent(schedule);
  return e && e->utc;
}

std::string SnapshotSchedule::SnapshotName(int64_t when) const {
  time_t t = static_cast<time_t>(when);
  struct tm tm {};
  if (Utc()) gmtime_r(&t, &tm);
  else localtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return "auto-" + id + "-" + buf;
}

bool SnapshotSchedule::Owns(const std::string& snapname) const {
  std::string prefix = "auto-" + id + "-";
  if (!StartsWith(snapname, prefix) || snapname.size() != prefix.size() + 15) return false;
  std::string stamp = snapname.substr(prefix.size());
  for (size_t i = 0; i < stamp.size(); ++i)
    if (i == 8 ? stamp[i] != '-' : !std::isdigit(static_cast<unsigned char>(stamp[i]))) return false;
  return true;
}

std::optional<int64_t> SnapshotSchedule::RunTimeOf(const std::string& snapname) const {
  if (!Owns(snapname)) return std::nullopt;
  std::string stamp = snapname.substr(snapname.size() - 15);
  struct tm tm {};
  if (!strptime(stamp.c_str(), "%Y%m%d-%H%M%S", &tm)) return std::nullopt;
  tm.tm_isdst = -1;
  time_t t = Utc() ? timegm(&tm) : mktime(&tm);
  if (t == static_cast<time_t>(-1)) return std::nullopt;
  return static_cast<int64_t>(t);
}

std::optional<int64_t> SnapshotSchedule::NextRun() const {
  auto e = ParseCalendarEvent(schedule);
  if (!e) return std::nullopt;
  return NextEvent(*e, last_run);
}

nlohmann::json SnapshotSchedule::ToJson() const {
  nlohmann::json j = {{"id", id},           {"schedule", schedule}, {"vmstate", vmstate ? 1 : 0},
                      {"enabled", enabled ? 1 : 0}, {"last-run", last_run}};
  if (!vmids.empty()) {
    std::vector<std::string> ids;
    for (int v : vmids) ids.push_back(std::to_string(v));
    j["vmid"] = Join(ids, ",");
  }
  if (!tag.empty()) j["tag"] = tag;
  if (!comment.empty()) j["comment"] = comment;
  if (!last_upid.empty()) j["last-upid"] = last_upid;
  for (const auto& [k, v] : KeepFields(keep)) j[k] = ParseInt(v).value_or(0);
  if (keep.KeepsAll()) j["keep-all"] = 1;
  return j;
}

Result<SnapshotSchedule> SnapshotSchedule::FromJson(const nlohmann::json& j) {
  if (!j.is_object()) return Fail(Internal("snapshot schedule: not an object"));
  std::map<std::string, std::string> fields;
  for (const auto& [k, v] : j.items()) {
    if (k == "last-run" || k == "last-upid") continue;
    fields[k] = v.is_string() ? v.get<std::string>() : v.dump();
  }
  HEARTH_ASSIGN_OR_RETURN(SnapshotSchedule s, MakeSnapshotSchedule(fields));
  if (auto it = j.find("last-run"); it != j.end() && it->is_number_integer()) s.last_run = it->get<int64_t>();
  if (auto it = j.find("last-upid"); it != j.end() && it->is_string()) s.last_upid = it->get<std::string>();
  return s;
}

Result<SnapshotSchedule> MakeSnapshotSchedule(const std::map<std::string, std::string>& fields) {
  SnapshotSchedule s;
  std::map<std::string, std::string> keep;
  for (const auto& [k, v] : fields) HEARTH_TRY(Apply(s, k, v, keep));
  HEARTH_TRY(Finish(s, keep));
  return s;
}

Result<SnapshotSchedule> UpdateSnapshotSchedule(const SnapshotSchedule& current,
                                                const std::map<std::string, std::string>& set,
                                                const std::vector<std::string>& remove) {
  SnapshotSchedule s = current;
  std::map<std::string, std::string> keep = KeepFields(current.keep);
  for (const auto& k : remove) {
    if (set.count(k)) return Fail(FieldError(k, "cannot set and delete property '" + k + "' at the same time!"));
    if (k == "id" || k == "schedule") return Fail(FieldError(k, "unable to delete required option '" + k + "'"));
    if (k == "vmid") s.vmids.clear();
    else if (k == "tag") s.tag.clear();
    else if (k == "comment") s.comment.clear();
    else if (k == "vmstate") s.vmstate = false;
    else if (k == "enabled") s.enabled = true;
    else if (StartsWith(k, "keep-")) keep.erase(k);
    else return Fail(FieldError("delete", "no such option '" + k + "'"));
  }
  for (const auto& [k, v] : set) {
    if (k == "id" && v != current.id) return Fail(FieldError("id", "can't change the id of a schedule"));
    HEARTH_TRY(Apply(s, k, v, keep));
  }
  HEARTH_TRY(Finish(s, keep));
  return s;
}

}  // namespace hearth

#include "jobs/backup_job.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "core/strings.h"
#include "model/calendar_event.h"
#include "model/property_string.h"

namespace hearth {
namespace {

const std::vector<std::string> kDays = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

Result<bool> Bool(const std::string& field, const std::string& v) {
  auto b = ParseBooleanWord(v);
  if (!b) return Fail(FieldError(field, "type check ('boolean') failed - got '" + v + "'"));
  return *b;
}

// The deprecated starttime ("HH:MM") and dow ("mon,fri") as a schedule, as Backup.pm does:
// "HH:MM" when every day is listed, else "<days> HH:MM".
Result<std::string> ScheduleFromStartTime(const std::string& starttime, const std::optional<std::string>& dow) {
  size_t colon = starttime.find(':');
  auto digits = [](std::string_view s) {
    return !s.empty() && s.size() <= 2 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (colon == std::string::npos || !digits(std::string_view(starttime).substr(0, colon)) ||
      !digits(std::string_view(starttime).substr(colon + 1)))
    return Fail(FieldError("starttime", "value does not match the regex pattern"));
  if (!dow) return starttime;
  std::vector<std::string> days;
  for (auto d : SplitAny(*dow, ",; ")) {
    if (d.empty()) continue;
    if (std::find(kDays.begin(), kDays.end(), d) == kDays.end())
      return Fail(FieldError("dow", "invalid format - invalid day '" + std::string(d) + "'"));
    days.push_back(std::string(d));
  }
  std::string list = Join(days, ",");
  if (list == Join(kDays, ",")) return starttime;
  return list + " " + starttime;
}

// Applies the job's own fields of `fields` (not the vzdump options) to `job`.
Status ApplyJobFields(BackupJob& job, const std::map<std::string, std::string>& fields, bool create) {
  auto get = [&](const std::string& k) -> std::optional<std::string> {
    auto it = fields.find(k);
    if (it == fields.end()) return std::nullopt;
    return it->second;
  };
  auto schedule = get("schedule"), starttime = get("starttime"), dow = get("dow");
  if (schedule && starttime) return Fail(FieldError("starttime", "'starttime' and 'schedule' cannot both be set"));
  if (dow && !starttime) return Fail(FieldError("starttime", "missing property required by 'dow'"));
  if (starttime) {
    HEARTH_ASSIGN_OR_RETURN(std::string made, ScheduleFromStartTime(*starttime, dow));
    schedule = made;
  }
  if (!schedule && create) return Fail(FieldError("schedule", "neither 'starttime' nor 'schedule' were set"));
  if (schedule) {
    HEARTH_TRY(CheckJobSchedule(*schedule));
    job.schedule = std::string(Trim(*schedule));
  }
  if (auto v = get("enabled")) {
    HEARTH_ASSIGN_OR_RETURN(job.enabled, Bool("enabled", *v));
  }
  if (auto v = get("repeat-missed")) {
    HEARTH_ASSIGN_OR_RETURN(job.repeat_missed, Bool("repeat-missed", *v));
  }
  if (auto v = get("comment")) {
    if (v->size() > 512) return Fail(FieldError("comment", "value may only be 512 characters long"));
    if (v->find_first_of("\r\n") != std::string::npos) return Fail(FieldError("comment", "value must be a single line"));
    job.comment = *v;
  }
  return Ok();
}

nlohmann::json OptionJson(const std::string& name, const std::string& value) {
  const VzdumpOptionInfo* info = FindVzdumpOption(name);
  if (!info) return value;
  switch (info->type) {
    case VzdumpOptionType::kBool: return ParseBooleanWord(value).value_or(false) ? 1 : 0;
    case VzdumpOptionType::kInt:
      if (auto n = ParseInt(value)) return *n;
      return value;
    case VzdumpOptionType::kPropertyString: {
      nlohmann::json obj = nlohmann::json::object();
      for (auto part : Split(value, ',')) {
        if (part.empty()) continue;
        auto eq = part.find('=');
        std::string k = eq == std::string_view::npos ? (name == "fleecing" ? "enabled" : std::string(part))
                                                     : std::string(part.substr(0, eq));
        std::string v = eq == std::string_view::npos ? std::string(part) : std::string(part.substr(eq + 1));
        if (auto n = ParseInt(v)) obj[k] = *n;
        else obj[k] = v;
      }
      return obj;
    }
    case VzdumpOptionType::kString: break;
  }
  return value;
}

}  // namespace

bool IsBackupJobId(const std::string& id) {
  if (id.size() < 2 || id.size() > kMaxBackupJobIdLength || !std::isalpha(static_cast<unsigned char>(id[0]))) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

const std::vector<std::string>& BackupJobFields() {
  static const std::vector<std::string> f = {"id", "schedule", "starttime", "dow", "enabled", "repeat-missed", "comment"};
  return f;
}

Status CheckJobSchedule(const std::string& v) {
  if (v.size() > kMaxCalendarEventLength)
    return Fail(FieldError("schedule", "value may only be " + std::to_string(kMaxCalendarEventLength) + " characters long"));
  auto e = ParseCalendarEvent(v);
  if (!e) return Fail(FieldError("schedule", "invalid format - invalid calendar event '" + v + "' - " + e.error().message));
  return Ok();
}

std::optional<int64_t> BackupJob::NextEvent(int64_t after) const {
  auto e = ParseCalendarEvent(schedule);
  if (!e) return std::nullopt;
  return hearth::NextEvent(*e, after);
}

nlohmann::json BackupJob::ToApiJson() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : options) j[k] = OptionJson(k, v);
  j["id"] = id;
  j["type"] = "vzdump";
  j["schedule"] = schedule;
  j["enabled"] = enabled ? 1 : 0;
  if (!comment.empty()) j["comment"] = comment;
  if (repeat_missed) j["repeat-missed"] = 1;
  return j;
}

nlohmann::json BackupJob::ToStoredJson() const {
  nlohmann::json j = {{"id", id},           {"schedule", schedule},   {"enabled", enabled},
                      {"comment", comment}, {"repeat-missed", repeat_missed},
                      {"options", options}, {"last-run", last_run}, {"last-upid", last_upid}};
  return j;
}

Result<BackupJob> BackupJob::FromStoredJson(const nlohmann::json& j) {
  if (!j.is_object()) return Fail(Internal("a backup job record is not an object"));
  BackupJob job;
  job.id = j.value("id", "");
  job.schedule = j.value("schedule", "");
  job.enabled = j.value("enabled", true);
  job.repeat_missed = j.value("repeat-missed", false);
  job.comment = j.value("comment", "");
  job.last_run = j.value("last-run", int64_t{0});
  job.last_upid = j.value("last-upid", "");
  if (auto it = j.find("options"); it != j.end() && it->is_object())
    for (const auto& [k, v] : it->items())
      if (v.is_string()) job.options[k] = v.get<std::string>();
  if (job.id.empty() || job.id.size() > kMaxBackupJobIdLength) return Fail(Internal("a backup job record has no valid id"));
  if (auto st = CheckJobSchedule(job.schedule); !st) return Fail(Internal("backup job '" + job.id + "': " + st.error().message));
  if (auto st = VerifyVzdumpOptions(job.options, true); !st)
    return Fail(Internal("backup job '" + job.id + "': " + st.error().message));
  return job;
}

Result<BackupJob> MakeBackupJob(const std::map<std::string, std::string>& fields) {
  BackupJob job;
  const auto& own = BackupJobFields();
  for (const auto& [k, v] : fields) {
    if (std::find(own.begin(), own.end(), k) != own.end()) continue;
    job.options[k] = v;
  }
  if (auto it = fields.find("id"); it != fields.end()) {
    if (!IsBackupJobId(it->second)) return Fail(FieldError("id", "invalid format - invalid configuration ID '" + it->second + "'"));
    job.id = it->second;
  }
  HEARTH_TRY(ApplyJobFields(job, fields, /*create=*/true));
  HEARTH_TRY(VerifyVzdumpOptions(job.options, true));
  // Proxmox: an exclude list means all (unless a pool selects).
  if (job.options.count("exclude") && !job.options.count("pool")) job.options["all"] = "1";
  return job;
}

Result<BackupJob> UpdateBackupJob(const BackupJob& current, const std::map<std::string, std::string>& set,
                                  const std::vector<std::string>& remove) {
  if (set.empty() && remove.empty()) return Fail(Internal("no options specified"));
  BackupJob job = current;
  for (const auto& k : remove) {
    if (set.count(k)) return Fail(FieldError("delete", "cannot set and delete property '" + k + "' at the same time!"));
    if (k == "comment") job.comment.clear();
    else if (k == "repeat-missed") job.repeat_missed = false;
    else if (FindVzdumpOption(k)) job.options.erase(k);
    else return Fail(FieldError("delete", "unknown option '" + k + "'"));
  }
  if (set.count("id")) return Fail(FieldError("id", "the id of a job cannot be changed"));
  HEARTH_TRY(ApplyJobFields(job, set, /*create=*/false));
  const auto& own = BackupJobFields();
  for (const auto& [k, v] : set)
    if (std::find(own.begin(), own.end(), k) == own.end()) job.options[k] = v;
  if (job.options.count("exclude") && !job.options.count("pool")) job.options["all"] = "1";
  if (set.count("vmid")) {
    job.options.erase("all");
    job.options.erase("exclude");
    job.options.erase("pool");
  } else if (set.count("all")) {
    job.options.erase("vmid");
    job.options.erase("pool");
  } else if (job.options.count("pool")) {
    job.options.erase("vmid");
    job.options.erase("all");
    job.options.erase("exclude");
  }
  HEARTH_TRY(VerifyVzdumpOptions(job.options, true));
  return job;
}

}  // namespace hearth

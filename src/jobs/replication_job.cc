#include "jobs/replication_job.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "core/pattern.h"
#include "core/strings.h"
#include "model/calendar_event.h"
#include "model/property_string.h"

namespace hearth {
namespace {

// pve-node: a host name label (letters, digits, '-', not first or last).
bool IsNodeName(const std::string& s) {
  static const Pattern re("[a-zA-Z0-9]([a-zA-Z0-9\\-]*[a-zA-Z0-9])?");
  return s.size() <= 63 && re.FullMatch(s);
}

Result<bool> Bool(const std::string& field, const std::string& v) {
  if (auto b = ParseBooleanWord(v)) return *b;
  return Fail(FieldError(field, "type check ('boolean') failed - got '" + v + "'"));
}

Status ApplyJob(ReplicationJob& j, const std::string& k, const std::string& v) {
  if (k == "id") {
    HEARTH_ASSIGN_OR_RETURN(auto parts, ParseReplicationJobId(v).map_error([](Error e) {
      return FieldError("id", "invalid format - " + e.message);
    }));
    j.guest = parts.first;
    j.jobnum = parts.second;
    j.id = std::to_string(j.guest) + "-" + std::to_string(j.jobnum);
  } else if (k == "type") {
    if (v != "local") return Fail(FieldError("type", "value '" + v + "' does not have a value in the enumeration 'local'"));
  } else if (k == "target" || k == "source") {
    if (!IsNodeName(v)) return Fail(FieldError(k, "invalid format - value does not look like a valid node name"));
    (k == "target" ? j.target : j.source) = v;
  } else if (k == "schedule") {
    if (v.size() > 128) return Fail(FieldError("schedule", "value may only be 128 characters long"));
    auto e = ParseCalendarEvent(v);
    if (!e) return Fail(FieldError("schedule", "invalid format - " + e.error().message));
    j.schedule = std::string(Trim(v));
  } else if (k == "rate") {
    auto r = ParseDouble(v);
    if (!r) return Fail(FieldError("rate", "type check ('number') failed - got '" + v + "'"));
    if (*r < 1) return Fail(FieldError("rate", "value must have a minimum value of 1"));
    j.rate = *r;
  } else if (k == "comment") {
    if (v.size() > 4096) return Fail(FieldError("comment", "value may only be 4096 characters long"));
    j.comment = v;
  } else if (k == "disable") {
    HEARTH_ASSIGN_OR_RETURN(j.disable, Bool(k, v));
  } else if (k == "remove_job") {
    if (v != "local" && v != "full")
      return Fail(FieldError("remove_job", "value '" + v + "' does not have a value in the enumeration 'local, full'"));
    j.remove_job = v;
  } else {
    return Fail(FieldError(k, "property is not defined in schema and the schema does not allow additional properties"));
  }
  return Ok();
}

}  // namespace

Result<std::pair<int, int>> ParseReplicationJobId(const std::string& id) {
  static const Pattern re("([1-9][0-9]{2,8})-([0-9]{1,9})");
  auto m = re.Capture(id);
  if (!m) {
    // Proxmox checks the format before the pattern: guest IDs below 100 get their own text.
    static const Pattern low("([0-9]{1,2})-([0-9]{1,9})");
    if (low.FullMatch(id)) return Fail(InvalidArgument("invalid replication job id '" + id + "' (guest IDs < 100 are reserved)"));
    return Fail(InvalidArgument("invalid replication job id '" + id + "'"));
  }
  return std::make_pair(static_cast<int>(*ParseInt((*m)[0])), static_cast<int>(*ParseInt((*m)[1])));
}

const std::vector<std::string>& ReplicationJobFields() {
  static const std::vector<std::string> f = {"id",      "type",    "target",     "schedule", "rate",
                                             "comment", "disable", "remove_job", "source"};
  return f;
}

Result<ReplicationJob> MakeReplicationJob(const std::map<std::string, std::string>& fields) {
  ReplicationJob j;
  for (const auto& [k, v] : fields) HEARTH_TRY(ApplyJob(j, k, v));
  for (const char* required : {"id", "type", "target"})
    if (!fields.count(required)) return Fail(FieldError(required, "property is missing and it is not optional"));
  return j;
}

Result<ReplicationJob> UpdateReplicationJob(const ReplicationJob& current, const std::map<std::string, std::string>& set,
                                            const std::vector<std::string>& remove) {
  ReplicationJob j = current;
  for (const auto& k : remove) {
    if (set.count(k)) return Fail(FieldError("delete", "cannot set and delete property '" + k + "' at the same time!"));
    if (k == "target" || k == "type" || k == "id") return Fail(Internal("unable to delete required option '" + k + "'"));
    if (k == "schedule") j.schedule.clear();
    else if (k == "rate") j.rate.reset();
    else if (k == "comment") j.comment.clear();
    else if (k == "disable") j.disable = false;
    else if (k == "remove_job") j.remove_job.clear();
    else if (k == "source") j.source.clear();
    else return Fail(Internal("no such option '" + k + "'"));
  }
  for (const auto& [k, v] : set) {
    if (k == "id" || k == "type" || k == "target")
      return Fail(FieldError(k, "property is not defined in schema and the schema does not allow additional properties"));
    HEARTH_TRY(ApplyJob(j, k, v));
  }
  return j;
}

nlohmann::json ReplicationJob::ToJson() const {
  nlohmann::json j = {{"id", id}, {"type", "local"}, {"guest", guest}, {"jobnum", jobnum}, {"target", target}};
  if (!schedule.empty()) j["schedule"] = schedule;
  if (rate) j["rate"] = *rate;
  if (!comment.empty()) j["comment"] = comment;
  if (disable) j["disable"] = 1;
  if (!remove_job.empty()) j["remove_job"] = remove_job;
  if (!source.empty()) j["source"] = source;
  return j;
}

Result<ReplicationJob> ReplicationJob::FromJson(const nlohmann::json& j) {
  if (!j.is_object()) return Fail(InvalidArgument("replication job: not an object"));
  std::map<std::string, std::string> fields;
  for (const auto& [k, v] : j.items()) {
    if (k == "guest" || k == "jobnum") continue;
    fields[k] = v.is_string() ? v.get<std::string>() : v.dump();
  }
  fields["type"] = "local";
  return MakeReplicationJob(fields);
}

nlohmann::json ReplicationState::ToJson() const {
  nlohmann::json j = {{"last_sync", last_sync}, {"last_try", last_try}, {"fail_count", fail_count}};
  if (duration) j["duration"] = *duration;
  if (!error.empty()) j["error"] = error;
  if (!volumes.empty()) j["volumes"] = volumes;
  if (schedule_now) j["schedule_now"] = 1;
  if (running) j["running"] = 1;  // still set at the next start: the run was cut short
  return j;
}

ReplicationState ReplicationState::FromJson(const nlohmann::json& j) {
  ReplicationState s;
  if (!j.is_object()) return s;
  auto num = [&](const char* k) -> int64_t { return j.contains(k) && j[k].is_number_integer() ? j[k].get<int64_t>() : 0; };
  s.last_sync = num("last_sync");
  s.last_try = num("last_try");
  s.fail_count = static_cast<int>(num("fail_count"));
  if (j.contains("duration") && j["duration"].is_number()) s.duration = j["duration"].get<double>();
  if (j.contains("error") && j["error"].is_string()) s.error = j["error"].get<std::string>();
  if (j.contains("volumes") && j["volumes"].is_array())
    for (const auto& v : j["volumes"])
      if (v.is_string()) s.volumes.push_back(v.get<std::string>());
  s.schedule_now = num("schedule_now") != 0;
  s.running = num("running") != 0;
  return s;
}

int64_t NextSync(const ReplicationJob& job, const ReplicationState& state) {
  if (!job.remove_job.empty()) return 1;
  if (job.disable) return 0;
  if (state.schedule_now) return 1;
  if (state.fail_count > 0) {
    int64_t minutes = state.fail_count <= 3 ? 5 * state.fail_count : 30;
    return state.last_try + 60 * minutes;
  }
  auto e = ParseCalendarEvent(job.Schedule());
  if (!e) return 0;
  return NextEvent(*e, state.last_try).value_or(0);
}

const std::vector<std::string>& ReplicationRemoteFields() {
  static const std::vector<std::string> f = {"node", "host", "port", "fingerprint", "apitoken", "path"};
  return f;
}

Result<ReplicationRemote> MakeReplicationRemote(const std::map<std::string, std::string>& fields) {
  ReplicationRemote r;
  for (const auto& [k, v] : fields) {
    if (k == "node") {
      if (!IsNodeName(v)) return Fail(FieldError("node", "invalid format - value does not look like a valid node name"));
      r.node = v;
    } else if (k == "host") {
      static const Pattern host("[a-zA-Z0-9.:\\-]{1,253}|\\[[0-9a-fA-F:.]{2,45}\\]");
      if (!host.FullMatch(v)) return Fail(FieldError("host", "invalid format - value does not look like a host name or address"));
      r.host = v;
    } else if (k == "port") {
      auto p = ParseInt(v);
      if (!p || *p < 1 || *p > 65535) return Fail(FieldError("port", "value must be a port number (1-65535)"));
      r.port = static_cast<int>(*p);
    } else if (k == "fingerprint") {
      static const Pattern fp("([A-Fa-f0-9]{2}:){31}[A-Fa-f0-9]{2}");
      if (!fp.FullMatch(v)) return Fail(FieldError("fingerprint", "invalid format - value does not match the regex pattern"));
      r.fingerprint = v;
    } else if (k == "apitoken") {
      // PVEAPIToken=user@realm!name=secret, or the part after "PVEAPIToken=".
      std::string t = StartsWith(v, "PVEAPIToken=") ? v.substr(12) : v;
      static const Pattern tok("[^\\s!=@]+@[A-Za-z][A-Za-z0-9.\\-_]*![A-Za-z][A-Za-z0-9.\\-_]*=[A-Za-z0-9\\-]{1,128}");
      if (!tok.FullMatch(t))
        return Fail(FieldError("apitoken", "invalid format - expected 'user@realm!tokenid=secret'"));
      r.apitoken = t;
    } else if (k == "path") {
      if (v.empty() || v[0] != '/' || v.size() > 4096 || v.find("/../") != std::string::npos || EndsWith(v, "/.."))
        return Fail(FieldError("path", "invalid format - an absolute path is needed"));
      r.path = v;
    } else {
      return Fail(FieldError(k, "property is not defined in schema and the schema does not allow additional properties"));
    }
  }
  if (r.node.empty()) return Fail(FieldError("node", "property is missing and it is not optional"));
  if (r.IsPath()) {
    if (!r.host.empty() || !r.apitoken.empty() || !r.fingerprint.empty())
      return Fail(FieldError("path", "a remote is either a directory ('path') or a node ('host', 'apitoken'), not both"));
  } else {
    if (r.host.empty()) return Fail(FieldError("host", "property is missing and it is not optional (or give 'path')"));
    if (r.apitoken.empty()) return Fail(FieldError("apitoken", "property is missing and it is not optional"));
    if (r.fingerprint.empty())
      return Fail(FieldError("fingerprint", "property is missing and it is not optional (the target's TLS certificate "
                                            "SHA-256 fingerprint, as `hearth serve` logs it at start)"));
  }
  return r;
}

nlohmann::json ReplicationRemote::ToJson(bool with_secret) const {
  nlohmann::json j = {{"node", node}};
  if (IsPath()) {
    j["path"] = path;
    return j;
  }
  j["host"] = host;
  j["port"] = port;
  j["fingerprint"] = fingerprint;
  // The token's id is shown, its secret never (as PVE shows token ids, not values).
  j["apitoken"] = with_secret ? apitoken : apitoken.substr(0, apitoken.find('='));
  return j;
}

Result<ReplicationRemote> ReplicationRemote::FromJson(const nlohmann::json& j) {
  if (!j.is_object()) return Fail(InvalidArgument("replication remote: not an object"));
  std::map<std::string, std::string> fields;
  for (const auto& [k, v] : j.items()) fields[k] = v.is_string() ? v.get<std::string>() : v.dump();
  return MakeReplicationRemote(fields);
}

}  // namespace hearth

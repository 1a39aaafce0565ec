#include "access/userid.h"
#include "api/handlers/handlers.h"
#include "core/strings.h"

#include <algorithm>

namespace hearth {
namespace {

nlohmann::json TaskJson(const TaskInfo& t, bool with_status_fields) {
  nlohmann::json j = {{"upid", t.record.upid}, {"node", t.upid.node}, {"pid", t.upid.pid},
                      {"pstart", t.upid.pstart}, {"starttime", t.upid.starttime}, {"type", t.upid.type},
                      {"id", t.upid.id}};
  auto owner = ParseAuthId(t.upid.user);
  if (owner && !owner->token.empty()) {
    j["tokenid"] = owner->token;
    j["user"] = owner->UserId();
  } else {
    j["user"] = t.upid.user;
  }
  if (with_status_fields) {
    j["status"] = t.running ? "running" : "stopped";
    if (!t.running) j["exitstatus"] = t.record.exitstatus;  // absent while running
  } else {
    if (t.running) {
      j["status"] = "RUNNING";
    } else {
      j["status"] = t.record.exitstatus;
      j["endtime"] = t.record.endtime;
    }
  }
  return j;
}

// PVE's check_task_user: a user owns its tasks and its tokens' tasks; a token owns only
// its own.
bool IsOwner(const Identity& who, const TaskInfo& t) {
  if (t.upid.user == who.AuthId()) return true;
  if (!who.tokenid.empty()) return false;
  auto owner = ParseAuthId(t.upid.user);
  return owner && !owner->token.empty() && owner->UserId() == who.userid;
}

// Owners see their tasks; Sys.Audit on the node sees all.
bool MaySee(const ApiServices& s, const Identity& who, const TaskInfo& t) {
  return IsOwner(who, t) || s.access.Allowed(who, "/nodes/" + t.upid.node, "Sys.Audit");
}

ParamSpec UpidParam() { return Required(PString("upid")); }

}  // namespace

void RegisterTaskRoutes(Router& r, ApiServices& s) {
  r.Add({"GET", "/nodes/{node}/tasks",
         {NodeParam(), PInt("start", 0), PInt("limit", 0), PString("userfilter"), PString("typefilter"),
          PInt("vmid", 100, 999999999), PBool("errors"), PEnum("source", {"archive", "active", "all"}),
          PInt("since", 0), PInt("until", 0), PString("statusfilter")},
         false, "", "", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           TaskFilter f;
           f.start = static_cast<size_t>(c.params.Int("start"));
           f.limit = static_cast<size_t>(c.params.Int("limit", 50));
           if (f.limit == 0) f.limit = 50;
           f.vmid = static_cast<int>(c.params.Int("vmid"));
           f.type = c.params.GetOr("typefilter", "");
           f.user = c.params.GetOr("userfilter", "");
           f.errors_only = c.params.Bool("errors");
           f.running_only = c.params.GetOr("source", "archive") == "active";
           f.since = c.params.Int("since");
           f.until = c.params.Int("until");
           if (!s.access.Allowed(*c.who, "/nodes/" + s.facts.node, "Sys.Audit")) f.owner = c.who->AuthId();
           HEARTH_ASSIGN_OR_RETURN(auto page, s.tasks.List(f));
           nlohmann::json out = nlohmann::json::array();
           for (const auto& t : page.first) out.push_back(TaskJson(t, false));
           ApiReply reply = Data(out);
           reply.total = static_cast<int64_t>(page.second);
           return reply;
         },
         "Tasks of this node, newest first."});

  r.Add({"GET", "/nodes/{node}/tasks/{upid}", {NodeParam(), UpidParam()}, false, "", "", true, true, false,
         [](ApiContext&) -> Result<ApiReply> {
           return Data(nlohmann::json::array({{{"name", "log"}}, {{"name", "status"}}}));
         },
         "Task index."});

  r.Add({"GET", "/nodes/{node}/tasks/{upid}/status", {NodeParam(), UpidParam()}, false, "", "", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(TaskInfo t, s.tasks.Get(*c.params.Get("upid")));
           if (!MaySee(s, *c.who, t)) return Fail(PermissionDenied("Permission check failed (/nodes/" + s.facts.node + ", Sys.Audit)"));
           return Data(TaskJson(t, true));
         },
         "Task status; `exitstatus` appears once it has stopped."});

  r.Add({"GET", "/nodes/{node}/tasks/{upid}/log",
         {NodeParam(), UpidParam(), PInt("start", 0), PInt("limit", 0), PBool("download")}, false, "", "", true, true,
         false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(TaskInfo t, s.tasks.Get(*c.params.Get("upid")));
           if (!MaySee(s, *c.who, t)) return Fail(PermissionDenied("Permission check failed (/nodes/" + s.facts.node + ", Sys.Audit)"));
           size_t start = static_cast<size_t>(c.params.Int("start"));
           size_t limit = c.params.Has("limit") ? static_cast<size_t>(c.params.Int("limit")) : 50;
           HEARTH_ASSIGN_OR_RETURN(auto lines, s.tasks.ReadLog(t.record.upid, start, limit));
           nlohmann::json out = nlohmann::json::array();
           size_t n = start;
           for (const auto& l : lines.first) out.push_back({{"n", ++n}, {"t", l}});
           // PVE's dump_logfile adds this line for ExtJS and counts it in the total.
           if (lines.second == 0) out.push_back({{"n", 1}, {"t", "no content"}});
           ApiReply reply = Data(out);
           reply.total = static_cast<int64_t>(std::max<size_t>(lines.second, 1));
           return reply;
         },
         "Task log lines {n, t}."});

  r.Add({"DELETE", "/nodes/{node}/tasks/{upid}", {NodeParam(), UpidParam()}, false, "", "", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           std::string upid = *c.params.Get("upid");
           HEARTH_ASSIGN_OR_RETURN(TaskInfo t, s.tasks.Get(upid));
           // PVE (Tasks.pm stop_task): your own task, or Sys.Modify on the node for anyone's.
           if (!IsOwner(*c.who, t) && !s.access.Allowed(*c.who, "/nodes/" + t.upid.node, "Sys.Modify"))
             return Fail(PermissionDenied("Permission check failed (/nodes/" + t.upid.node + ", Sys.Modify)"));
           HEARTH_TRY(s.tasks.Cancel(upid));
           return Data(nullptr);
         },
         "Stop a task: your own, or any with Sys.Modify on the node (a finished task is fine)."});
}

}  // namespace hearth

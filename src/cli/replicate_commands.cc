// `hearth replicate`: replication jobs and their targets, through the API
// (/cluster/replication, /nodes/{node}/replication, /cluster/hearth/replication-remotes).
#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <thread>

#include "cli/client_context.h"
#include "cli/output.h"
#include "sys/console.h"

namespace hearth {
namespace {

// Prints the log lines after `shown`; the new count.
size_t PrintNewLogLines(ApiClient& api, const std::string& path, size_t shown) {
  auto r = api.Call("GET", path, {{"start", std::to_string(shown)}, {"limit", "0"}});
  if (!r || !r->is_array()) return shown;
  for (const auto& l : *r) {
    if (!l.contains("n") || !l.contains("t")) continue;
    size_t n = l["n"].get<size_t>();
    std::string t = l["t"].get<std::string>();
    if (n <= shown || t == "no content" || t.rfind("unable to open file", 0) == 0) continue;
    std::cout << t << "\n" << std::flush;
    shown = n;
  }
  return shown;
}

}  // namespace

void AddReplicateCommands(CLI::App& app, const ClientContext& ctx) {
  static int vmid = 0;
  static std::string id, target, node_name;
  static bool keep = false, force = false;
  static std::vector<std::string> kvs;

  auto* rep = app.add_subcommand("replicate", "Storage replication of VM disks to another node or a directory");
  rep->require_subcommand(1);

  rep->add_subcommand("list", "Replication jobs of this node and their state")->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      auto r = api.Call("GET", "/nodes/" + node + "/replication");
      if (!r) return ReportError(r.error());
      PrintList(*r, {{"id", "JOBID"}, {"target"}, {"schedule"}, {"last_sync", "LAST SYNC", CellFormat::kTime},
                     {"next_sync", "NEXT SYNC", CellFormat::kTime}, {"duration", "DURATION", CellFormat::kDuration},
                     {"fail_count", "FAILS"}, {"error"}});
      return 0;
    });
  });

  auto* add = rep->add_subcommand(
      "add", "Replicate a VM: hearth replicate add 101 nodeb [schedule=*/15] [rate=50] [comment=...]");
  add->add_option("vmid", vmid)->required();
  add->add_option("target", target, "The target's node name (a replication remote)")->required();
  add->add_option("params", kvs, "schedule=, rate= (MB/s), comment=, disable=");
  add->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string&) {
      auto p = ParseKeyValues(kvs);
      if (!p) return ReportError(p.error());
      // The next free job number of the guest, as the GUI picks it.
      auto jobs = api.Call("GET", "/cluster/replication");
      if (!jobs) return ReportError(jobs.error());
      int next = 0;
      for (const auto& j : *jobs)
        if (j.value("guest", 0) == vmid) next = std::max(next, j.value("jobnum", 0) + 1);
      std::string jobid = std::to_string(vmid) + "-" + std::to_string(next);
      p->emplace_back("id", jobid);
      p->emplace_back("type", "local");
      p->emplace_back("target", target);
      auto r = api.Call("POST", "/cluster/replication", *p);
      if (!r) return ReportError(r.error());
      std::cout << "replication job " << jobid << " created; its first run starts now (hearth replicate log "
                << jobid << ")\n";
      return 0;
    });
  });

  auto* set = rep->add_subcommand("set", "Change a job: hearth replicate set 101-0 schedule='*/5' [delete=rate]");
  set->add_option("id", id)->required();
  set->add_option("params", kvs)->required();
  set->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string&) {
      auto p = ParseKeyValues(kvs);
      if (!p) return ReportError(p.error());
      auto r = api.Call("PUT", "/cluster/replication/" + id, *p);
      return r ? 0 : ReportError(r.error());
    });
  });

  auto* remove = rep->add_subcommand("remove", "Remove a job and (unless --keep) its copies on the target");
  remove->add_option("id", id)->required();
  remove->add_flag("--keep", keep, "Keep the replicated data on the target");
  remove->add_flag("--force", force, "Drop the job at once, cleaning up nothing");
  remove->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string&) {
      KeyValues p;
      if (keep) p.emplace_back("keep", "1");
      if (force) p.emplace_back("force", "1");
      auto r = api.Call("DELETE", "/cluster/replication/" + id, p);
      if (!r) return ReportError(r.error());
      if (!force) std::cout << "Replication job removal is a background task and will take some time.\n";
      return 0;
    });
  });

  auto* run = rep->add_subcommand("run", "Run a job now and follow its log to the end");
  run->add_option("id", id)->required();
  run->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      std::string base = "/nodes/" + node + "/replication/" + id;
      auto before = api.Call("GET", base + "/status");
      if (!before) return ReportError(before.error());
      int64_t last_try = before->value("last_try", int64_t{0});
      auto r = api.Call("POST", base + "/schedule_now");
      if (!r) return ReportError(r.error());
      // The run shows as a newer last_try without a pid; its log is written as it goes.
      size_t shown = 0;
      bool started = false;
      for (;;) {
        auto s = api.Call("GET", base + "/status");
        if (!s) return ReportError(s.error());
        bool running = s->contains("pid");
        bool newer = s->value("last_try", int64_t{0}) > last_try;
        if (newer || running) started = true;
        if (started) shown = PrintNewLogLines(api, base + "/log", shown);
        if (started && newer && !running) {
          if (s->contains("error")) {
            std::cerr << "replication failed: " << (*s)["error"].get<std::string>() << "\n";
            return 1;
          }
          return 0;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
    });
  });

  auto* log = rep->add_subcommand("log", "The log of a job's last run");
  log->add_option("id", id)->required();
  log->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      auto r = api.Call("GET", "/nodes/" + node + "/replication/" + id + "/log", {{"limit", "0"}});
      if (!r) return ReportError(r.error());
      for (const auto& l : *r) std::cout << l.value("t", "") << "\n";
      return 0;
    });
  });

  auto* status = rep->add_subcommand("status", "A job's state");
  status->add_option("id", id)->required();
  status->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      auto r = api.Call("GET", "/nodes/" + node + "/replication/" + id + "/status");
      if (!r) return ReportError(r.error());
      PrintKeyValues(*r);
      return 0;
    });
  });

  // ---- targets
  static const std::string remotes = "/cluster/hearth/replication-remotes";
  auto* remote = rep->add_subcommand("remote", "The nodes and directories jobs may target");
  remote->require_subcommand(1);
  remote->add_subcommand("list", "List targets")->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string&) {
      auto r = api.Call("GET", remotes);
      if (!r) return ReportError(r.error());
      PrintList(*r, {{"node"}, {"host"}, {"port"}, {"path"}, {"apitoken", "TOKEN"}});
      return 0;
    });
  });
  auto* radd = remote->add_subcommand(
      "add", "Add one: hearth replicate remote add nodeb host=10.0.0.2 fingerprint=AB:.. apitoken='repl@pve!b=SECRET' "
             "(or path=/mnt/usb for a btrfs directory)");
  radd->add_option("node", node_name)->required();
  radd->add_option("params", kvs, "host=, port=, fingerprint=, apitoken=, or path=")->required();
  radd->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string&) {
      auto p = ParseKeyValues(kvs);
      if (!p) return ReportError(p.error());
      p->emplace_back("node", node_name);
      auto r = api.Call("POST", remotes, *p);
      return r ? 0 : ReportError(r.error());
    });
  });
  auto* rdel = remote->add_subcommand("remove", "Remove a target (no job may use it)");
  rdel->add_option("node", node_name)->required();
  rdel->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string&) {
      auto r = api.Call("DELETE", remotes + "/" + node_name);
      return r ? 0 : ReportError(r.error());
    });
  });
}

}  // namespace hearth

// `hearth snapshot`: VM snapshots (with RAM too) and snapshot schedules, through the API
// (/nodes/{node}/qemu/{vmid}/snapshot and /cluster/hearth/snapshot-schedules).
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/client_context.h"
#include "cli/output.h"
#include "sys/console.h"

namespace hearth {

void AddSnapshotCommands(CLI::App& app, const ClientContext& ctx) {
  // Option storage must outlive this function: CLI11 fills it during parse.
  static int vmid = 0;
  static std::string name, description;
  static bool ram = false, start = false, force = false;
  auto vm_path = [](const std::string& node) { return "/nodes/" + node + "/qemu/" + std::to_string(vmid) + "/snapshot"; };

  auto* snap = app.add_subcommand("snapshot", "VM snapshots and snapshot schedules");
  snap->require_subcommand(1);

  auto* list = snap->add_subcommand("list", "List a VM's snapshots: hearth snapshot list 101");
  list->add_option("vmid", vmid)->required();
  list->callback([ctx, vm_path] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      auto r = api.Call("GET", vm_path(node));
      if (!r) return ReportError(r.error());
      PrintList(*r, {{"name"}, {"snaptime", "TAKEN", CellFormat::kTime}, {"vmstate", "RAM"}, {"parent"},
                     {"description"}});
      return 0;
    });
  });

  auto* create = snap->add_subcommand("create", "Take a snapshot: hearth snapshot create 101 before-upgrade [--ram]");
  create->add_option("vmid", vmid)->required();
  create->add_option("name", name)->required();
  create->add_flag("--ram", ram, "Save the RAM too (a running VM resumes from it after a rollback)");
  create->add_option("--description", description);
  create->callback([ctx, vm_path] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      KeyValues p = {{"snapname", name}, {"vmstate", ram ? "1" : "0"}};
      if (!description.empty()) p.emplace_back("description", description);
      return ctx.task_or_print(api, api.Call("POST", vm_path(node), p));
    });
  });

  auto* rollback = snap->add_subcommand("rollback", "Roll a VM back: hearth snapshot rollback 101 before-upgrade [--start]");
  rollback->add_option("vmid", vmid)->required();
  rollback->add_option("name", name)->required();
  rollback->add_flag("--start", start, "Start the VM afterwards (a snapshot with RAM always resumes it)");
  rollback->callback([ctx, vm_path] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      return ctx.task_or_print(
          api, api.Call("POST", vm_path(node) + "/" + name + "/rollback", {{"start", start ? "1" : "0"}}));
    });
  });

  auto* del = snap->add_subcommand("delete", "Delete a snapshot: hearth snapshot delete 101 before-upgrade [--force]");
  del->add_option("vmid", vmid)->required();
  del->add_option("name", name)->required();
  del->add_flag("--force", force, "Remove it from the config even if a volume's snapshot cannot be removed");
  del->callback([ctx, vm_path] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      KeyValues p;
      if (force) p.emplace_back("force", "1");
      return ctx.task_or_print(api, api.Call("DELETE", vm_path(node) + "/" + name, p));
    });
  });

  // ---- schedules
  auto* sched = snap->add_subcommand("schedule", "Snapshot schedules with retention");
  sched->require_subcommand(1);
  AddJobVerbs(sched, ctx,
              {"/cluster/hearth/snapshot-schedules", "schedules",
               {{"id"}, {"schedule"}, {"vmid"}, {"tag"}, {"enabled"}, {"next-run", "NEXT RUN", CellFormat::kTime},
                {"last-run", "LAST RUN", CellFormat::kTime}},
               "Add one: hearth snapshot schedule add nightly schedule='mon..fri 02:00' tag=k8s keep-daily=7 [vmstate=1]",
               "schedule=, vmid=, tag=, keep-last=, keep-hourly=, keep-daily=, keep-weekly=, keep-monthly=, "
               "keep-yearly=, vmstate=, enabled=, comment=",
               "Change one: hearth snapshot schedule set nightly keep-daily=14 [delete=tag]",
               "Remove a schedule (its snapshots stay)"});
}

}  // namespace hearth

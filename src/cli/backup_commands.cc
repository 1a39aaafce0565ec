// `hearth backup`: backups, restores, retention and backup jobs, through Proxmox's API
// (/nodes/{node}/vzdump, .../storage/{storage}/content and prunebackups, /cluster/backup,
// /cluster/backup-info/not-backed-up).
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/client_context.h"
#include "cli/output.h"
#include "sys/console.h"

namespace hearth {

void AddBackupCommands(CLI::App& app, const ClientContext& ctx) {
  // Option storage must outlive this function: CLI11 fills it during parse.
  static std::vector<int> vmids;
  static int vmid = 0;
  static std::string storage = "local", restore_storage, mode, volid;
  static bool all = false, start = false, unique = false, live = false, dry_run = false, ignore_verified = false;
  static int outdated_after = -1;
  static int64_t restore_bwlimit = 0;
  static bool restore_force = false;
  static std::vector<std::string> kvs;
  auto content = [](const std::string& node) { return "/nodes/" + node + "/storage/" + storage + "/content"; };

  auto* bk = app.add_subcommand("backup", "Backups, restores, retention and backup jobs");
  bk->require_subcommand(1);

  auto* now = bk->add_subcommand("now", "Back up VMs now: hearth backup now 101 102 [--storage S] [--mode stop] "
                                        "[--set prune-backups=keep-last=3 ...]; --all for every VM");
  now->add_option("vmid", vmids, "VM ids");
  now->add_flag("--all", all, "Every VM (the ones you may back up)");
  now->add_option("--storage", storage, "Target storage (content 'backup')");
  now->add_option("--mode", mode, "snapshot (default), suspend or stop");
  now->add_option("--set", kvs, "More vzdump options as key=value (notes-template=, protected=1, remove=0, ...)");
  now->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      auto p = ParseKeyValues(kvs);
      if (!p) return ReportError(p.error());
      std::string list;
      for (int v : vmids) list += (list.empty() ? "" : ",") + std::to_string(v);
      if (!list.empty()) p->emplace_back("vmid", list);
      if (all) p->emplace_back("all", "1");
      p->emplace_back("storage", storage);
      if (!mode.empty()) p->emplace_back("mode", mode);
      return ctx.task_or_print(api, api.Call("POST", "/nodes/" + node + "/vzdump", *p));
    });
  });

  auto* list = bk->add_subcommand("list", "List backups: hearth backup list [--vmid 101] [--storage S]");
  list->add_option("--vmid", vmid);
  list->add_option("--storage", storage);
  list->callback([ctx, content] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      KeyValues p = {{"content", "backup"}};
      if (vmid) p.emplace_back("vmid", std::to_string(vmid));
      auto r = api.Call("GET", content(node), p);
      if (!r) return ReportError(r.error());
      PrintList(*r, {{"volid"}, {"vmid"}, {"ctime", "TAKEN", CellFormat::kTime}, {"size", "", CellFormat::kBytes},
                     {"protected"}, {"notes"}});
      return 0;
    });
  });

  auto* restore = bk->add_subcommand(
      "restore", "Restore a backup as a new VM: hearth backup restore local:backup/vm/101/<time> 201 [--storage S] [--start|--live] [--force]");
  restore->add_option("volid", volid)->required();
  restore->add_option("vmid", vmid)->required();
  restore->add_option("--storage", restore_storage, "Where the disks go (default: each disk's original storage)");
  restore->add_flag("--start", start, "Start the VM once restored");
  restore->add_flag("--unique", unique, "New MAC addresses and SMBIOS UUID (for a copy beside the original)");
  restore->add_flag("--live", live, "Start the VM at once; its disks (qcow2) fill in from the backup while it runs");
  restore->add_option("--bwlimit", restore_bwlimit, "Read at most this many KiB/s (a live restore's stream)");
  restore->add_flag("--force", restore_force, "Restore over the existing (stopped) VM <vmid>");
  restore->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      KeyValues p = {{"vmid", std::to_string(vmid)}, {"archive", volid}};
      if (!restore_storage.empty()) p.emplace_back("storage", restore_storage);
      if (start) p.emplace_back("start", "1");
      if (unique) p.emplace_back("unique", "1");
      if (live) p.emplace_back("live-restore", "1");
      if (restore_bwlimit > 0) p.emplace_back("bwlimit", std::to_string(restore_bwlimit));
      if (restore_force) p.emplace_back("force", "1");
      return ctx.task_or_print(api, api.Call("POST", "/nodes/" + node + "/qemu", p));
    });
  });

  auto storage_of = [](const std::string& v) { return v.substr(0, v.find(':')); };
  auto* set = bk->add_subcommand("set", "Change a backup: hearth backup set <volid> protected=1 notes='before upgrade'");
  set->add_option("volid", volid)->required();
  set->add_option("params", kvs, "protected=0|1, notes=")->required();
  set->callback([ctx, storage_of] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      auto p = ParseKeyValues(kvs);
      if (!p) return ReportError(p.error());
      auto r = api.Call("PUT", "/nodes/" + node + "/storage/" + storage_of(volid) + "/content/" + volid, *p);
      return r ? 0 : ReportError(r.error());
    });
  });

  auto* remove = bk->add_subcommand("remove", "Delete a backup (not a protected one): hearth backup remove <volid>");
  remove->add_option("volid", volid)->required();
  remove->callback([ctx, storage_of] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      return ctx.task_or_print(api, api.Call("DELETE", "/nodes/" + node + "/storage/" + storage_of(volid) + "/content/" + volid));
    });
  });

  auto* prune = bk->add_subcommand(
      "prune", "Apply a retention: hearth backup prune keep-last=3 keep-daily=7 [--vmid 101] [--storage S] [--dry-run]");
  prune->add_option("keep", kvs, "keep-last=, keep-hourly=, keep-daily=, keep-weekly=, keep-monthly=, keep-yearly= "
                                 "(default: the storage's prune-backups)");
  prune->add_option("--vmid", vmid);
  prune->add_option("--storage", storage);
  prune->add_flag("--dry-run", dry_run, "Only show what would be kept and removed");
  prune->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      auto keep = ParseKeyValues(kvs);
      if (!keep) return ReportError(keep.error());
      std::string text;
      for (const auto& [k, v] : *keep) text += (text.empty() ? "" : ",") + k + "=" + v;
      KeyValues p;
      if (!text.empty()) p.emplace_back("prune-backups", text);
      if (vmid) p.emplace_back("vmid", std::to_string(vmid));
      std::string path = "/nodes/" + node + "/storage/" + storage + "/prunebackups";
      if (dry_run) {
        auto r = api.Call("GET", path, p);
        if (!r) return ReportError(r.error());
        PrintList(*r, {{"volid"}, {"vmid"}, {"ctime", "TAKEN", CellFormat::kTime}, {"mark"}});
        return 0;
      }
      return ctx.task_or_print(api, api.Call("DELETE", path, p));
    });
  });

  auto* verify = bk->add_subcommand(
      "verify", "Re-read every chunk and record the result: hearth backup verify [<volid>] [--vmid 101] [--storage S]");
  verify->add_option("volid", volid);
  verify->add_option("--vmid", vmid);
  verify->add_option("--storage", storage);
  verify->add_flag("--ignore-verified", ignore_verified, "Skip backups verified before (see --outdated-after)");
  verify->add_option("--outdated-after", outdated_after, "With --ignore-verified: re-read those verified over N days ago");
  verify->callback([ctx, storage_of] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      KeyValues p;
      std::string sid = volid.empty() ? storage : storage_of(volid);
      if (!volid.empty()) p.emplace_back("volume", volid);
      if (vmid) p.emplace_back("vmid", std::to_string(vmid));
      if (ignore_verified) p.emplace_back("ignore-verified", "1");
      if (outdated_after >= 0) p.emplace_back("outdated-after", std::to_string(outdated_after));
      return ctx.task_or_print(api, api.Call("POST", "/nodes/" + node + "/storage/" + sid + "/hearth/verify", p));
    });
  });
  auto* gc = bk->add_subcommand("gc", "Remove chunks no backup uses any more: hearth backup gc [--storage S]");
  gc->add_option("--storage", storage);
  gc->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      return ctx.task_or_print(api, api.Call("POST", "/nodes/" + node + "/storage/" + storage + "/hearth/gc"));
    });
  });

  static int scratch_vmid = 0, drill_timeout = 0;
  static std::string marker;
  auto* drill = bk->add_subcommand(
      "drill", "Prove a VM's newest backup comes back: restore it to a scratch VM with its network links down, "
               "boot it, wait for the guest agent or a serial line, destroy the copy: hearth backup drill 101 "
               "[--marker 'login:'] [--storage S] [--timeout 900] [--scratch-vmid N]");
  drill->add_option("vmid", vmid, "The VM whose newest backup is drilled")->required();
  drill->add_option("--storage", storage, "Where the backup is (default local)");
  drill->add_option("--marker", marker, "A line the guest prints on serial0 once up (needed without the guest agent)");
  drill->add_option("--timeout", drill_timeout, "Seconds to wait for the sign of life (default 900)");
  drill->add_option("--scratch-vmid", scratch_vmid, "The copy's VMID (default the first free from 999900000)");
  drill->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      KeyValues p = {{"vmid", std::to_string(vmid)}};
      if (!marker.empty()) p.emplace_back("marker", marker);
      if (drill_timeout) p.emplace_back("timeout", std::to_string(drill_timeout));
      if (scratch_vmid) p.emplace_back("scratch-vmid", std::to_string(scratch_vmid));
      return ctx.task_or_print(api, api.Call("POST", "/nodes/" + node + "/storage/" + storage + "/hearth/drill", p));
    });
  });

  static std::string target, prune_text;
  auto* sync = bk->add_subcommand(
      "sync", "Copy backups to another storage, only what it lacks: hearth backup sync nas [--vmid 101] "
              "[--storage S] [--prune keep-daily=7,keep-monthly=12]");
  sync->add_option("target", target, "A storage with content 'backup' (a NAS share, a USB disk)")->required();
  sync->add_option("--storage", storage, "The source (default local)");
  sync->add_option("--vmid", vmid);
  sync->add_option("--prune", prune_text, "Retention on the target after the copy");
  sync->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      KeyValues p = {{"target", target}};
      if (vmid) p.emplace_back("vmid", std::to_string(vmid));
      if (!prune_text.empty()) p.emplace_back("prune-backups", prune_text);
      return ctx.task_or_print(api, api.Call("POST", "/nodes/" + node + "/storage/" + storage + "/hearth/sync", p));
    });
  });

  static std::string remote, remote_store;
  auto* pull = bk->add_subcommand(
      "pull", "Pull another hearth node's backups into a storage here, only what it lacks: hearth backup pull nodea "
              "local [--storage offsite] [--vmid 101] [--prune keep-daily=7]");
  pull->add_option("remote", remote, "A node added with `hearth replicate remote add` (host, fingerprint, API token)")->required();
  pull->add_option("remote-store", remote_store, "Its storage holding the backups")->required();
  pull->add_option("--storage", storage, "Where the copies go here (default local)");
  pull->add_option("--vmid", vmid);
  pull->add_option("--prune", prune_text, "Retention on --storage after the copy");
  pull->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      KeyValues p = {{"remote", remote}, {"remote-store", remote_store}};
      if (vmid) p.emplace_back("vmid", std::to_string(vmid));
      if (!prune_text.empty()) p.emplace_back("prune-backups", prune_text);
      return ctx.task_or_print(api, api.Call("POST", "/nodes/" + node + "/storage/" + storage + "/hearth/sync", p));
    });
  });

  bk->add_subcommand("not-backed-up", "VMs that no backup job covers")->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string&) {
      auto r = api.Call("GET", "/cluster/backup-info/not-backed-up");
      if (!r) return ReportError(r.error());
      PrintList(*r, {{"vmid"}, {"name"}});
      return 0;
    });
  });

  AddBackupKeyCommands(bk, ctx);

  // ---- jobs
  auto* job = bk->add_subcommand("job", "Scheduled backup jobs (Proxmox's Datacenter > Backup)");
  job->require_subcommand(1);
  AddJobVerbs(job, ctx,
              {"/cluster/backup", "backup jobs",
               {{"id"}, {"schedule"}, {"vmid"}, {"all"}, {"storage"}, {"enabled"},
                {"next-run", "NEXT RUN", CellFormat::kTime}, {"comment"}},
               "Add one: hearth backup job add nightly schedule=02:00 all=1 storage=local prune-backups=keep-daily=7",
               "schedule=, vmid= or all=1 [exclude=], storage=, mode=, prune-backups=, notes-template=, enabled=, "
               "repeat-missed=, comment=, ...",
               "Change one: hearth backup job set nightly schedule='sat 03:00' [delete=comment]",
               "Remove a job (its backups stay)"});

  // ---- datastore jobs (hearth's, as Proxmox Backup Server's verify/sync/prune jobs and GC schedule)
  auto* ds = bk->add_subcommand("datastore-job",
                                "Scheduled verify, garbage collection, offsite sync, prune and restore drills");
  ds->require_subcommand(1);
  AddJobVerbs(ds, ctx,
              {"/cluster/hearth/datastore-jobs", "datastore jobs",
               {{"id"}, {"type"}, {"storage"}, {"target"}, {"schedule"}, {"enabled"},
                {"next-run", "NEXT RUN", CellFormat::kTime}, {"comment"}},
               "Add one: hearth backup datastore-job add weekly type=verify storage=local schedule=sun",
               "type=verify|gc|sync|prune|drill storage= schedule=, and by type: vmid=, ignore-verified=, "
               "outdated-after= (days), target=, prune-backups=, marker=, timeout=, scratch-vmid=; enabled=, "
               "repeat-missed=, comment=, node=",
               "Change one: hearth backup datastore-job set weekly outdated-after=30 [delete=comment]",
               "Remove a job (the backups stay)"});
}

}  // namespace hearth

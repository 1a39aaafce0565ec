// Live restore (POST /nodes/{node}/qemu with archive= and live-restore=1): the restored VM
// starts at once and its disks' data streams in behind it. Facts and plan:
// docs/reference/live-restore.md; design: docs/design/backup.md ("Live restore").
//
// How: each disk is a new qcow2 volume whose backing is an NBD export of the backup, served
// by hearth (backup/nbd_server.h) on an abstract socket. QEMU starts paused with those
// backings; one block-stream job per disk copies what the guest has not written yet into the
// qcow2 (and whatever the guest reads meanwhile, through the job's copy-on-read filter); a
// finished job drops the backing, so the disk stands on its own. Then the lock 'create' goes.
//
// The state is in QEMU and on disk, not in memory: each step reads it back (which jobs
// exist and how far they are), so the same loop resumes after a hearth
// restart (QEMU reconnects to the new server within kReconnectDelay) or restarts the VM
// live when its QEMU is gone (the qcow2 volumes keep what was copied and written).
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "backup/nbd_server.h"
#include "core/strings.h"
#include "core/units.h"
#include "sys/crash_point.h"
#include "vms/vm_service.h"

namespace hearth {
namespace {

using Steady = std::chrono::steady_clock;
// How long QEMU keeps a guest's reads waiting for the server to come back (hearth restarting).
constexpr int kReconnectDelay = 120;
constexpr auto kProgressEvery = std::chrono::seconds(5);

std::string JobId(const std::string& key) { return "restore-drive-" + key; }
std::string NbdNode(const std::string& key) { return "drive-" + key + "-nbd"; }  // inline: gone with the backing
std::string ExportName(const std::string& key) { return "drive-" + key; }

std::string Percent(uint64_t done, uint64_t len) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", len ? 100.0 * static_cast<double>(done) / static_cast<double>(len) : 100.0);
  return buf;
}

}  // namespace

std::string VmService::LiveRestoreMetaKey(int vmid) { return "live-restore:" + std::to_string(vmid); }

Status VmService::RunLiveRestore(TaskContext& ctx, int vmid, std::shared_ptr<BackupDatastore> store,
                                 const std::string& archive, const std::map<std::string, FixedIndex>& disks,
                                 int64_t bwlimit_kib, bool resuming) {
  std::vector<std::string> keys;
  for (const auto& [k, idx] : disks) keys.push_back(k);
  // The record that makes a restart resume rather than remove the locked VM (Init).
  nlohmann::json meta = {{"archive", archive}, {"disks", keys}, {"bwlimit", bwlimit_kib}};
  HEARTH_TRY(store_.PutMeta(LiveRestoreMetaKey(vmid), meta.dump()));

  NbdExportTable exports;
  auto cache = std::make_shared<ChunkCache>(16);
  std::shared_ptr<const ChunkStore> chunks(store, &store->chunks());
  for (const auto& [k, idx] : disks)
    exports[ExportName(k)] = std::make_shared<BackupImageExport>(chunks, idx, cache, ExportName(k));
  NbdServer::Options sopt;
  sopt.abstract_name = LiveRestoreSocketName(qemu_.run_dir(), vmid);
  // QEMU opens its disks as root, before it drops to its -runas user; after that only its
  // own process is served (RestrictToPeer below).
  sopt.uids = {0, ::geteuid()};
  auto pid = qemu_.Pid(vmid);
  if (pid) sopt.peer = *pid;  // resuming: QEMU reconnects as its -runas user
  std::unique_ptr<NbdServer> server;

  auto fail = [&](const Error& e) -> Status {
    Status st = AbortLiveRestore(ctx, vmid, keys, e);
    server.reset();  // after QEMU is gone: it disconnects properly
    return st;
  };

  auto made = NbdServer::Start(std::move(exports), sopt, [&ctx](const std::string& line) { ctx.Warn(line); });
  if (!made) return fail(made.error());
  server = std::move(*made);

  bool launched = false;
  if (!pid) {
    if (resuming) ctx.Log("VM " + std::to_string(vmid) + " is not running: starting it again to go on with the restore");
    ctx.Log("starting VM for live-restore");
    ctx.Log("repository: '" + store->chunks().root() + "', snapshot: '" + archive + "'");
    StartExtras extras;
    for (const auto& k : keys) {
      ctx.Log("restoring '" + ExportName(k) + "'");
      extras.backing[k] = {{"driver", "nbd"},
                           {"node-name", NbdNode(k)},
                           {"read-only", true},
                           {"server", {{"type", "unix"}, {"path", sopt.abstract_name}, {"abstract", true}}},
                           {"export", ExportName(k)},
                           {"reconnect-delay", kReconnectDelay}};
    }
    if (auto st = DoStartWith(ctx, vmid, 0, extras); !st) return fail(st.error());
    pid = qemu_.Pid(vmid);
    if (!pid) return fail(Internal("QEMU exited right after it started"));
    launched = true;
  } else {
    ctx.Log("resuming the live restore of VM " + std::to_string(vmid) + " (QEMU pid " + std::to_string(*pid) + ")");
    // Cut short before its first `cont`: the guest has not run yet.
    if (auto s = qemu_.QueryRunState(vmid); s && *s == "prelaunch") launched = true;
  }
  server->RestrictToPeer(*pid);
  CrashPoint("live-restore.started");

  // One step of the loop: each disk's job started, followed, or found finished. Whether a
  // disk still has its backing is not asked: QEMU 7.2 crashes on query-named-block-nodes
  // while a finished stream job waits to be dismissed (checked by hand). A stream of a disk
  // without a backing (done before a restart) simply completes at once.
  std::set<std::string> done;
  auto begin = Steady::now();
  auto last_progress = Steady::time_point{};
  auto step = [&]() -> Status {
    HEARTH_ASSIGN_OR_RETURN(nlohmann::json jobs, qemu_.Execute(vmid, "query-block-jobs"));
    bool log_progress = Steady::now() - last_progress >= kProgressEvery;
    if (log_progress) last_progress = Steady::now();
    for (const auto& k : keys) {
      if (done.count(k)) continue;
      const nlohmann::json* job = nullptr;
      for (const auto& j : jobs)
        if (j.is_object() && j.value("device", "") == JobId(k)) job = &j;
      if (!job) {
        nlohmann::json args = {{"job-id", JobId(k)}, {"device", "drive-" + k}, {"auto-dismiss", false}};
        if (bwlimit_kib > 0) args["speed"] = bwlimit_kib * 1024;
        HEARTH_TRY(qemu_.Execute(vmid, "block-stream", args).map_error([&](Error e) { return e.WithContext(JobId(k)); }));
        continue;
      }
      std::string status = job->value("status", "");
      if (status == "concluded") {
        std::string error = job->value("error", "");
        (void)qemu_.Execute(vmid, "job-dismiss", {{"id", JobId(k)}});
        if (!error.empty()) return Fail(Internal(JobId(k) + ": " + error));
        ctx.Log(JobId(k) + ": stream-job finished");
        done.insert(k);
        continue;
      }
      if (log_progress) {
        uint64_t len = job->value("len", uint64_t{0}), off = job->value("offset", uint64_t{0});
        auto secs = std::chrono::duration_cast<std::chrono::seconds>(Steady::now() - begin).count();
        ctx.Log(JobId(k) + ": transferred " + HumanBytes(off) + " of " + HumanBytes(len) + " (" + Percent(off, len) +
                ") in " + std::to_string(secs) + "s");
      }
    }
    return Ok();
  };

  // The jobs exist before the guest runs, so its first reads are copied too.
  if (auto st = step(); !st) return fail(st.error());
  if (launched) {
    if (auto st = qemu_.Cont(vmid); !st) return fail(st.error());
    SetRuntime(vmid, [](Runtime& rt) { rt.qmpstatus = "running"; });
  }
  CrashPoint("live-restore.streaming");
  while (done.size() < keys.size()) {
    if (ctx.cancelled()) return fail(Aborted("received interrupt"));
    if (!qemu_.Pid(vmid)) return fail(Unavailable("QEMU exited"));
    if (auto st = step(); !st) return fail(st.error());
    if (done.size() < keys.size()) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  CrashPoint("live-restore.finishing");
  ctx.Log("restore-drive jobs finished successfully, removing all tracking block devices to disconnect from the backup server");
  server.reset();
  HEARTH_TRY(Mutate(vmid, [](VmConfig& c) -> Status {
    if (c.Lock() == "create") c.values.erase("lock");
    return Ok();
  }));
  (void)store_.PutMeta(LiveRestoreMetaKey(vmid), "");
  // From now on a guest poweroff ends QEMU again, as at any other start (-no-shutdown was
  // for the jobs); if it powered off meanwhile, QEMU waits in "shutdown": stop it.
  if (auto st = qemu_.Execute(vmid, "set-action", {{"shutdown", "poweroff"}}); !st)
    ctx.Warn("could not restore the guest's poweroff action: " + st.error().message);
  if (auto s = qemu_.QueryRunState(vmid); s && *s == "shutdown") {
    ctx.Log("the guest powered off during the restore: stopping VM " + std::to_string(vmid));
    if (auto p = qemu_.Pid(vmid)) {
      (void)qemu_.Quit(vmid);
      if (!qemu_.WaitExit(*p, std::chrono::seconds(30))) qemu_.Kill(*p);
    }
    CleanupAfterExit(vmid);
  }
  ctx.Log("live-restore of VM " + std::to_string(vmid) + " from '" + archive + "' finished");
  return Ok();
}

Status VmService::AbortLiveRestore(TaskContext& ctx, int vmid, const std::vector<std::string>& keys, const Error& e) {
  ctx.Warn("An error occurred during live-restore: " + e.message);
  for (const auto& k : keys) (void)qemu_.Execute(vmid, "block-job-cancel", {{"device", JobId(k)}, {"force", true}});
  if (auto p = qemu_.Pid(vmid)) {
    if (!qemu_.Quit(vmid) || !qemu_.WaitExit(*p, std::chrono::seconds(10))) {
      qemu_.Kill(*p);
      qemu_.WaitExit(*p, std::chrono::seconds(10));
    }
  }
  CleanupAfterExit(vmid);
  (void)store_.PutMeta(LiveRestoreMetaKey(vmid), "");
  (void)Mutate(vmid, [](VmConfig& c) -> Status {
    if (c.Lock() == "create") c.values.erase("lock");
    return Ok();
  });
  ctx.Warn("error before or during data restore, some or all disks were not completely restored. VM " +
           std::to_string(vmid) + " state is NOT cleaned up.");
  return Fail(Internal("live-restore failed"));
}

bool VmService::LiveRestoreRunning(int vmid) {
  auto raw = store_.GetMeta(LiveRestoreMetaKey(vmid));
  return raw && *raw && !(*raw)->empty();
}

std::optional<int> VmService::LiveRestoreUsing(const std::string& volid) {
  for (int vmid : registry_.Ids()) {
    auto raw = store_.GetMeta(LiveRestoreMetaKey(vmid));
    if (!raw || !*raw || (*raw)->empty()) continue;
    auto meta = nlohmann::json::parse(**raw, nullptr, false);
    if (meta.is_object() && meta.value("archive", "") == volid) return vmid;
  }
  return std::nullopt;
}

void VmService::ResumeLiveRestore(int vmid) {
  auto raw = store_.GetMeta(LiveRestoreMetaKey(vmid));
  if (!raw || !*raw || (*raw)->empty()) return;
  auto meta = nlohmann::json::parse(**raw, nullptr, false);
  auto fail = [&](const std::string& why) {
    spdlog::error("VM {}: cannot resume its live restore ({}); the VM stays locked: check its disks, then 'qm unlock {}'",
                  vmid, why, vmid);
  };
  if (!meta.is_object() || !meta["archive"].is_string() || !meta["disks"].is_array()) return fail("bad record");
  std::string archive = meta["archive"].get<std::string>();
  int64_t bwlimit = meta.value("bwlimit", int64_t{0});
  std::vector<std::string> keys;
  for (const auto& k : meta["disks"])
    if (k.is_string()) keys.push_back(k.get<std::string>());
  spdlog::warn("VM {}: resuming the live restore a restart interrupted", vmid);
  auto upid = StartTask("qmrestore", vmid, "root@pam", [this, vmid, archive, keys, bwlimit](TaskContext& ctx) -> Status {
    // The backup must still be there, readable with its key (the storage may be gone, the key
    // removed): otherwise the VM is stopped and unlocked as for any other failure.
    std::map<std::string, FixedIndex> disks;
    std::shared_ptr<BackupDatastore> store;
    Status opened = [&]() -> Status {
      HEARTH_ASSIGN_OR_RETURN(auto parsed, ParseBackupVolid(archive));
      HEARTH_ASSIGN_OR_RETURN(auto ds, OpenDatastoreFor(parsed.first, parsed.second));
      store = std::move(ds);
      for (const auto& k : keys) {
        HEARTH_ASSIGN_OR_RETURN(disks[k], store->ReadIndex(parsed.second, "drive-" + k));
      }
      return Ok();
    }();
    if (!opened) return AbortLiveRestore(ctx, vmid, keys, opened.error().WithContext("cannot resume from '" + archive + "'"));
    return RunLiveRestore(ctx, vmid, store, archive, disks, bwlimit, true);
  });
  if (!upid) fail(upid.error().message);
}

}  // namespace hearth

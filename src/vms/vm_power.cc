// Starting and stopping VMs.
#include <spdlog/spdlog.h>

#include "core/reverter.h"
#include "core/strings.h"
#include "model/drive.h"
#include "model/netdev.h"
#include "model/volume_id.h"
#include "sys/files.h"
#include "vms/vm_service.h"
#include "sys/crash_point.h"

namespace hearth {
namespace {

std::string NotRunning(int vmid) { return "VM " + std::to_string(vmid) + " not running"; }

}  // namespace

Result<std::string> VmService::Start(int vmid, const std::string& user, int timeout, bool skiplock) {
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(vmid));
  HEARTH_TRY(CheckLock(cfg, skiplock));
  if (cfg.IsTemplate()) return Fail(FailedPrecondition("you can't start a vm if it's a template"));
  return StartTask("qmstart", vmid, user, [this, vmid, timeout](TaskContext& ctx) { return DoStart(ctx, vmid, timeout); });
}

Status VmService::DoStart(TaskContext& ctx, int vmid, int timeout, const SavedState* state) {
  StartExtras extras;
  extras.state = state;
  return DoStartWith(ctx, vmid, timeout, extras);
}

Status VmService::DoStartWith(TaskContext& ctx, int vmid, int timeout, const StartExtras& extras) {
  const SavedState* state = extras.state;
  bool live = !extras.backing.empty();
  if (qemu_.Pid(vmid)) return Fail(FailedPrecondition("VM " + std::to_string(vmid) + " already running"));
  HEARTH_ASSIGN_OR_RETURN(VmConfig before, GetConfig(vmid));
  // A live restore starts the VM it holds locked ('create') itself.
  if (!live || before.Lock() != "create") HEARTH_TRY(CheckLock(before, false));
  if (before.IsTemplate()) return Fail(FailedPrecondition("you can't start a vm if it's a template"));

  // Pending changes take effect now (not when resuming saved RAM: the devices must be the
  // ones that saved it).
  if (!state) HEARTH_TRY(ApplyPending(vmid, &ctx));
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(vmid));
  if (!CloudInitDriveKey(cfg.values).empty()) HEARTH_TRY(WriteSeed(vmid, cfg.values, &ctx));

  SetRuntime(vmid, [](Runtime& rt) { rt.starting = true; });
  Reverter undo;
  undo.Add([&] {
    CleanupAfterExit(vmid);
  });

  QemuLaunch launch;
  launch.vmid = vmid;
  launch.config = cfg.values;
  if (state) {
    launch.incoming = true;
    launch.force_machine = state->machine;
  }
  launch.paused = launch.no_shutdown = live;
  for (const auto& [k, v] : cfg.values) {
    auto dk = DriveKey::Parse(k);
    if (!dk || dk->bus == DriveBus::kUnused) continue;
    std::string vol = DriveVolume(k, v);
    if (vol.empty()) continue;
    auto info = storage_.InfoOf(vol);
    if (!info) return Fail(Internal(k + ": volume '" + vol + "' does not exist"));
    // An LVM thin LV is inactive until asked; a zvol's link may still be on its way.
    if (auto id = ParseVolumeId(vol); id && !StartsWith(vol, "/"))
      if (auto st = storage_.Get(id->storage); st)
        HEARTH_TRY((*st)->ActivateVolume(id->volname).map_error([&](Error e) { return e.WithContext(k); }));
    HEARTH_ASSIGN_OR_RETURN(VolumeBlockdev bd, storage_.BlockdevOf(vol).map_error([&](Error e) { return e.WithContext(k); }));
    launch.drives[k] = DriveBinding{bd.format, bd.protocol, bd.path};
    if (auto b = extras.backing.find(k); b != extras.backing.end()) launch.drives[k].backing = b->second;
  }
  for (const auto& [k, v] : cfg.values) {
    if (!StartsWith(k, "net")) continue;
    auto idx = ParseInt(k.substr(3));
    if (!idx) continue;
    HEARTH_ASSIGN_OR_RETURN(NetDev nic, ParseNetDev(v));
    if (nic.Bridge().empty()) {
      // User-mode networking: no tap to put a VLAN or a rate on (Proxmox ignores them).
      for (const char* o : {"tag", "trunks", "rate"})
        if (nic.opts.count(o)) ctx.Warn(k + ": " + o + "=" + nic.opts[o] + " has no effect without a bridge");
      continue;
    }
    TapSpec tap = NicTapSpec(vmid, static_cast<int>(*idx), nic);
    HEARTH_TRY(net_.CreateTap(tap).map_error([&](Error e) { return e.WithContext(k); }));
    ctx.Log(k + ": " + tap.name + " attached to bridge " + tap.bridge + (tap.tag ? ", VLAN " + std::to_string(tap.tag) : "") +
            (tap.rate > 0 ? ", rate limit " + nic.opts["rate"] + " MB/s" : ""));
    launch.taps[static_cast<int>(*idx)] = tap.name;
  }

  // Host devices for serial and parallel ports: where they point now (a symlink may have
  // changed since the config was written) must still be a character device under /dev.
  for (const auto& [k, v] : cfg.values) {
    if ((StartsWith(k, "serial") || StartsWith(k, "parallel")) && StartsWith(v, "/dev/")) {
      HEARTH_ASSIGN_OR_RETURN(std::string dev, ResolveCharDevice(v).map_error([&](Error e) { return e.WithContext(k); }));
      launch.config[k] = dev;
    }
  }

  // OVMF without an EFI disk: a throw-away copy of the firmware's variable store, as PVE
  // does, with its warning (the task ends "WARNINGS: 1").
  if (cfg.Get("bios").value_or("seabios") == "ovmf" && !launch.drives.count("efidisk0") && !options_.host.ovmf_dir.empty()) {
    std::string vars = qemu_.run_dir() + "/" + std::to_string(vmid) + ".efivars";
    HEARTH_ASSIGN_OR_RETURN(std::string data, ReadFile(options_.host.ovmf_dir + "/" + OvmfVarsFile("2m", false)));
    HEARTH_TRY(WriteFileAtomic(fs_, vars, data, 0600));
    launch.drives["efidisk0"] = HostPathBinding(vars, "raw");
    ctx.Warn("no efidisk configured! Using temporary efivars disk.");
  }

  QemuHostInfo host = options_.host;
  host.kvm = accel_.WaitKvm();
  if (!host.kvm) ctx.Log("KVM is not usable on this node, running under TCG (software emulation)");
  std::vector<std::string> warnings;
  HEARTH_ASSIGN_OR_RETURN(std::vector<std::string> argv, BuildQemuArgv(launch, host, &warnings));
  for (const auto& w : warnings) ctx.Warn(w);
  auto launch_timeout = std::chrono::seconds(timeout > 0 ? timeout : 120);
  HEARTH_ASSIGN_OR_RETURN(int pid, qemu_.Launch(vmid, argv, launch_timeout));
  CrashPoint("start.launched");
  if (state) {
    ctx.Log("loading VM state and RAM from " + state->volid);
    Status loaded = states_.Load(vmid, state->volid, VmStateVolumes::Deadline(CurrentMemoryMiB(cfg)));
    if (loaded) loaded = qemu_.Cont(vmid);
    if (!loaded) {
      qemu_.Kill(pid);
      qemu_.WaitExit(pid, std::chrono::seconds(10));
      return loaded;
    }
    ctx.Log("VM state and RAM loaded; the guest continues from the snapshot");
  }

  for (const auto& [k, v] : cfg.values) {
    if (!StartsWith(k, "net")) continue;
    auto nic = ParseNetDev(v);
    if (nic && nic->LinkDown()) {
      auto r = qemu_.SetLink(vmid, k, false);
      if (!r) ctx.Warn(k + ": could not set link down: " + r.error().message);
    }
  }
  undo.Commit();
  SetRuntime(vmid, [&](Runtime& rt) {
    rt = Runtime{};
    rt.pid = pid;
    rt.qmpstatus = !state && (live || cfg.Get("freeze").value_or("0") == "1") ? "prelaunch" : "running";
    rt.started_at = clock_.UnixSeconds();
  });
  ctx.Log("VM " + std::to_string(vmid) + " started with pid " + std::to_string(pid));
  return Ok();
}

Result<std::string> VmService::Stop(const StopRequest& req) {
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(req.vmid));
  HEARTH_TRY(CheckLock(cfg, req.skiplock));
  // `overrule-shutdown` aborts shutdown tasks still waiting for the guest.
  if (req.overrule_shutdown) tasks_.CancelWhere(req.vmid, {"qmshutdown", "qmreboot"});
  int timeout = req.timeout;
  return StartTask("qmstop", req.vmid, req.user, [this, vmid = req.vmid, timeout](TaskContext& ctx) {
    return DoStop(ctx, vmid, timeout);
  });
}

Status VmService::ApplyPending(int vmid, TaskContext* ctx) {
  CommitResult committed;
  HEARTH_TRY(Mutate(vmid, [&](VmConfig& c) -> Status {
    committed = CommitPending(c, vmid, [](const std::string&) { return true; });
    return Ok();
  }));
  // Detached cloud-init drives and forced deletes go; other disks became unusedN.
  for (const auto& v : committed.destroy_volumes) {
    if (ctx) ctx->Log("removing volume " + v);
    if (auto st = storage_.Free(v); !st && ctx) ctx->Warn("could not remove " + v + ": " + st.error().message);
  }
  return Ok();
}

Status VmService::DoStop(TaskContext& ctx, int vmid, int timeout_seconds) {
  auto pid = qemu_.Pid(vmid);
  if (!pid) {
    // PVE: stopping a stopped VM is not an error and does nothing.
    CleanupAfterExit(vmid);
    return Ok();
  }
  auto wait = std::chrono::seconds(timeout_seconds > 0 ? timeout_seconds : 60);
  if (auto r = qemu_.Quit(vmid); !r)
    ctx.Log("QMP quit failed (" + r.error().message + "), killing QEMU");
  if (!qemu_.WaitExit(*pid, wait)) {
    ctx.Log("QEMU did not exit within " + std::to_string(wait.count()) + " s, killing it");
    qemu_.Kill(*pid);
    qemu_.WaitExit(*pid, std::chrono::seconds(10));
  }
  CleanupAfterExit(vmid);
  ctx.Log("VM " + std::to_string(vmid) + " stopped");
  // As PVE's stop/shutdown/reboot (vm_stop_cleanup): pending changes apply once it is down.
  return ApplyPending(vmid, &ctx);
}

Result<std::string> VmService::Shutdown(const StopRequest& req) {
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(req.vmid));
  HEARTH_TRY(CheckLock(cfg, req.skiplock));
  // A paused guest cannot react to ACPI (PVE checks this before the task).
  bool paused = false;
  if (IsRunning(req.vmid))
    if (auto st = CurrentStatus(req.vmid); st && st->qmpstatus == "paused") paused = true;
  if (paused && !req.force_stop) return Fail(Internal("VM is paused - cannot shutdown"));
  return StartTask("qmshutdown", req.vmid, req.user, [this, req, paused](TaskContext& ctx) -> Status {
    if (paused) {
      ctx.Warn("VM is paused - stop instead of shutdown");
      return DoStop(ctx, req.vmid, req.timeout);
    }
    return DoShutdown(ctx, req);
  });
}

Status VmService::DoShutdown(TaskContext& ctx, const StopRequest& req) {
  int vmid = req.vmid;
  auto pid = qemu_.Pid(vmid);
  if (!pid) {
    CleanupAfterExit(vmid);
    return Ok();  // PVE: nothing to do
  }
  // PVE's default: the `down` of the VM's startup option, else 60 s.
  int timeout = req.timeout > 0 ? req.timeout : 60;
  if (req.timeout <= 0) {
    if (auto cfg = GetConfig(vmid); cfg && cfg->Has("startup")) {
      for (const auto& part : Split(*cfg->Get("startup"), ','))
        if (StartsWith(part, "down=")) timeout = static_cast<int>(ParseInt(part.substr(5)).value_or(60));
    }
  }
  // With an agent configured, ask it (like PVE); if it does not answer, fall back to ACPI.
  bool asked = false;
  if (auto st = CurrentStatus(vmid); st && st->agent) {
    auto r = AgentCommand(vmid, "guest-shutdown", nullptr, std::chrono::seconds(5), /*expect_reply=*/false);
    if (r) {
      ctx.Log("asked the guest agent to shut down, waiting up to " + std::to_string(timeout) + " s");
      asked = true;
    } else {
      ctx.Log("guest agent: " + r.error().message + "; using ACPI");
    }
  }
  if (!asked) {
    ctx.Log("asking the guest to power off (ACPI), waiting up to " + std::to_string(timeout) + " s");
    if (auto r = qemu_.SystemPowerdown(vmid); !r) return Fail(r.error().WithContext("shutdown"));
  }
  // Real time, as clock.h says for waits on the kernel: a fake clock would never end this.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
  while (std::chrono::steady_clock::now() < deadline) {
    if (qemu_.WaitExit(*pid, std::chrono::milliseconds(250))) {
      CleanupAfterExit(vmid);
      ctx.Log("VM " + std::to_string(vmid) + " shut down");
      return ApplyPending(vmid, &ctx);
    }
    if (ctx.cancelled()) return Fail(Aborted("shutdown overruled by a stop request"));
  }
  if (!req.force_stop) return Fail(Unavailable("VM quit/powerdown failed - got timeout"));
  ctx.Log("VM still running - terminating now");
  return DoStop(ctx, vmid, 10);
}

Result<std::string> VmService::Reboot(const StopRequest& req) {
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(req.vmid));
  HEARTH_TRY(CheckLock(cfg, req.skiplock));
  if (!IsRunning(req.vmid)) return Fail(FailedPrecondition(NotRunning(req.vmid)));
  return StartTask("qmreboot", req.vmid, req.user, [this, req](TaskContext& ctx) -> Status {
    // Like PVE: a clean shutdown and a fresh start, so pending changes apply.
    StopRequest r = req;
    r.force_stop = true;
    HEARTH_TRY(DoShutdown(ctx, r));
    return DoStart(ctx, req.vmid, 0);
  });
}

Result<std::string> VmService::Reset(int vmid, const std::string& user, bool skiplock) {
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(vmid));
  HEARTH_TRY(CheckLock(cfg, skiplock));
  return StartTask("qmreset", vmid, user, [this, vmid](TaskContext& ctx) -> Status {
    if (!qemu_.Pid(vmid)) return Fail(FailedPrecondition(NotRunning(vmid)));
    HEARTH_TRY(qemu_.SystemReset(vmid));
    ctx.Log("VM " + std::to_string(vmid) + " reset");
    return Ok();
  });
}

Result<std::string> VmService::Suspend(int vmid, const std::string& user, bool todisk, bool skiplock) {
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(vmid));
  HEARTH_TRY(CheckLock(cfg, skiplock));
  if (todisk) return Fail(FieldError("todisk", "suspend to disk is not supported yet"));
  return StartTask("qmpause", vmid, user, [this, vmid](TaskContext& ctx) -> Status {
    if (!qemu_.Pid(vmid)) return Fail(FailedPrecondition(NotRunning(vmid)));
    HEARTH_TRY(qemu_.Stop(vmid));
    SetRuntime(vmid, [](Runtime& rt) { rt.qmpstatus = "paused"; });
    ctx.Log("VM " + std::to_string(vmid) + " paused");
    return Ok();
  });
}

Result<std::string> VmService::Resume(int vmid, const std::string& user, bool skiplock) {
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(vmid));
  HEARTH_TRY(CheckLock(cfg, skiplock));
  return StartTask("qmresume", vmid, user, [this, vmid](TaskContext& ctx) -> Status {
    if (!qemu_.Pid(vmid)) return Fail(FailedPrecondition(NotRunning(vmid)));
    HEARTH_TRY(qemu_.Cont(vmid));
    SetRuntime(vmid, [](Runtime& rt) { rt.qmpstatus = "running"; });
    ctx.Log("VM " + std::to_string(vmid) + " resumed");
    return Ok();
  });
}

}  // namespace hearth

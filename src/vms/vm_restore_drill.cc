// Restore drills (beyond Proxmox and its Backup Server): prove that the newest backup of a VM
// comes back. The drill restores it to a scratch VMID with every NIC's link down (the copy
// must not meet the original's network), starts it, waits for a sign of life from the guest
// (the guest agent's ping, or a line on its first serial port), then stops and destroys the
// copy, whatever happened. Each step is the task a user would start by hand (qmrestore,
// qmstart, qmstop, qmdestroy), waited for, with timings in the drill's own log.
#include <algorithm>
#include <chrono>
#include <thread>

#include "core/strings.h"
#include "model/vm_schema.h"
#include "vms/vm_service.h"

namespace hearth {
namespace {

constexpr int kScratchVmidFrom = 999900000;  // far from the ids people give their VMs
constexpr std::chrono::minutes kStepTimeout{60};

std::string Seconds(std::chrono::steady_clock::duration d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return std::to_string(ms / 1000) + "." + std::to_string(ms % 1000 / 100) + " s";
}

// The NIC cut off: link down, and no MAC (the restore gives it a new one, so the copy never
// shares the original's).
std::string IsolatedNic(const std::string& value) {
  std::vector<std::string> parts;
  bool first = true;
  for (auto part : Split(value, ',')) {
    std::string p(part);
    if (first) {
      first = false;
      p = p.substr(0, p.find('='));  // "virtio=AA:BB:..." -> "virtio"
    } else if (StartsWith(p, "link_down=") || StartsWith(p, "macaddr=")) {
      continue;
    }
    parts.push_back(p);
  }
  parts.push_back("link_down=1");
  return Join(parts, ",");
}

bool ValidMarker(const std::string& m) {
  return !m.empty() && m.size() <= 128 &&
         std::all_of(m.begin(), m.end(), [](unsigned char c) { return c >= 0x20 && c < 0x7f; }) &&
         m.find_first_not_of(' ') != std::string::npos;
}

}  // namespace

std::string VmService::DrillMetaKey(int vmid) { return "restore-drill:" + std::to_string(vmid); }

Result<std::string> VmService::RestoreDrill(const RestoreDrillRequest& req) {
  // The marker is logged and searched for: one line of printable ASCII, not only spaces (a
  // space shows on any console long before the guest is up).
  if (!req.marker.empty() && !ValidMarker(req.marker))
    return Fail(FieldError("marker", "value must be 1 to 128 printable ASCII characters, not only spaces"));
  if (auto st = storage_.Get(req.storage); !st) return Fail(FieldError("storage", st.error().message));
  HEARTH_ASSIGN_OR_RETURN(auto backups, ListBackups(req.storage, req.vmid));
  if (backups.empty())
    return Fail(FieldError("vmid", "no backup of VM " + std::to_string(req.vmid) + " on storage '" + req.storage + "'"));
  const BackupSnapshotInfo* newest = &backups.front();
  for (const auto& b : backups)
    if (newest->id.time < b.id.time) newest = &b;
  std::string volid = BackupVolid(req.storage, newest->id);
  HEARTH_ASSIGN_OR_RETURN(std::string conf_text, BackupConfig(volid));
  HEARTH_ASSIGN_OR_RETURN(VmConfig conf, ParseConfFile(conf_text));
  // A marker, when given, is what the drill waits for (an agent configured but not installed
  // must not make the drill fail); else the guest agent's answer.
  bool agent = req.marker.empty() && conf.values.count("agent") && AgentEnabled(conf.values.at("agent"));
  if (!agent && req.marker.empty())
    return Fail(FieldError("marker", "the backup's config has no guest agent: give a serial console line to wait for"));
  if (!agent && !conf.values.count("serial0"))
    return Fail(FieldError("marker", "the backup's config has no serial0 to read the marker from"));
  if (!agent && conf.values.at("serial0") != "socket")
    return Fail(FieldError("marker", "the backup's serial0 is not 'socket': the marker is read from a socket serial port"));

  int scratch = req.scratch_vmid;
  if (scratch) {
    if (!NextId(scratch))
      return Fail(FieldError("scratch-vmid", "VM " + std::to_string(scratch) + " already exists"));
  } else {
    for (int id = kScratchVmidFrom; id < kScratchVmidFrom + 1000 && !scratch; ++id)
      if (NextId(id)) scratch = id;
    if (!scratch) return Fail(Internal("no free scratch VMID at or above " + std::to_string(kScratchVmidFrom)));
  }

  RestoreRequest restore;
  restore.vmid = scratch;
  restore.archive = volid;
  restore.unique = true;
  restore.user = req.user;
  restore.override_conf["name"] = "drill-" + std::to_string(req.vmid);
  restore.override_conf["onboot"] = "0";
  restore.override_conf["protection"] = "0";  // or the copy could not be destroyed
  restore.override_conf["template"] = "0";    // a template's copy boots too
  for (const auto& [k, v] : conf.values)
    if (StartsWith(k, "net") && ParseInt(k.substr(3))) restore.override_conf[k] = IsolatedNic(v);

  TaskSpec spec;
  spec.type = "restoredrill";
  spec.id = std::to_string(req.vmid) + "@" + req.storage;
  spec.user = req.user;
  return tasks_.Start(spec, [this, req, restore, volid, agent, scratch](TaskContext& ctx) mutable -> Status {
    using Clock = std::chrono::steady_clock;
    auto step = [&](const std::string& what, Result<std::string> upid) -> Status {
      if (!upid) return Fail(Internal(what + ": " + upid.error().message));
      ctx.Log(what + ": " + *upid);
      auto status = tasks_.WaitFinished(*upid, kStepTimeout);
      if (!status) return Fail(Internal(what + ": " + status.error().message));
      if (*status != "OK" && !StartsWith(*status, "WARNINGS")) return Fail(Internal(what + " failed: " + *status));
      return Ok();
    };
    // The restore reserves the VMID; another drill may have taken a default one since the
    // request: then the next free one.
    Result<std::string> started = Fail(Internal("no restore"));
    for (int tries = 0;; ++tries) {
      restore.vmid = scratch;
      started = Restore(restore);
      if (started || req.scratch_vmid || !Exists(scratch) || tries >= 100) break;
      while (scratch < kScratchVmidFrom + 1000 && !NextId(scratch)) ++scratch;
    }
    // Marked at once: a restart while the copy exists removes it (VmService::Init).
    if (started) (void)store_.PutMeta(DrillMetaKey(scratch), "1");
    ctx.Log("restore drill of VM " + std::to_string(req.vmid) + ": " + volid + " as VM " + std::to_string(scratch) +
            " (network links down)");
    const auto t0 = Clock::now();
    // Only a restore that started made the VM this drill may destroy (a failed one forgets it).
    const bool restored = started.has_value();
    Status result = step("restore", std::move(started));
    const auto t_restored = Clock::now();
    if (result) {
      ctx.Log("restored in " + Seconds(t_restored - t0));
      result = step("start", Start(scratch, req.user, 0, false));
    }
    if (result) {
      // A sign of life: the agent's ping, or the marker on serial0.
      const auto deadline = Clock::now() + std::chrono::seconds(req.timeout);
      uint64_t offset = 0;
      std::string seen;
      bool alive = false;
      ctx.Log(agent ? "waiting for the guest agent" : "waiting for '" + req.marker + "' on serial0");
      while (!alive && Clock::now() < deadline && !ctx.cancelled()) {
        if (agent) {
          alive = AgentCommand(scratch, "guest-ping", nullptr, std::chrono::seconds(5)).has_value();
        } else if (auto log = SerialLog(scratch, 0, offset)) {
          seen += log->first;
          offset = log->second;
          alive = seen.find(req.marker) != std::string::npos;
          if (seen.size() > 2 * req.marker.size() + 65536) seen.erase(0, seen.size() - req.marker.size());
        }
        if (!alive) std::this_thread::sleep_for(std::chrono::seconds(1));
      }
      if (ctx.cancelled()) {
        result = Fail(Aborted("restore drill cancelled"));
      } else if (alive) {
        ctx.Log(std::string(agent ? "the guest agent answered" : "the marker appeared") + " " +
                Seconds(Clock::now() - t_restored) + " after the restore");
      } else {
        result = Fail(Internal(std::string(agent ? "the guest agent did not answer" : "the marker did not appear") +
                               " within " + std::to_string(req.timeout) + " s"));
      }
    }
    // The copy goes, whatever happened.
    if (restored && Exists(scratch)) {
      StopRequest stop;
      stop.vmid = scratch;
      stop.user = req.user;
      if (IsRunning(scratch))
        if (auto st = step("stop", Stop(stop)); !st) ctx.Warn(st.error().message);
      if (auto st = step("destroy", Destroy(scratch, req.user, /*purge=*/true, /*destroy_unreferenced=*/true, false)); !st)
        ctx.Warn(st.error().message + " - remove VM " + std::to_string(scratch) + " by hand");
    }
    if (restored && !Exists(scratch)) (void)store_.PutMeta(DrillMetaKey(scratch), "");
    if (!result) return result;
    ctx.Log("restore drill passed in " + Seconds(Clock::now() - t0));
    return Ok();
  });
}

}  // namespace hearth

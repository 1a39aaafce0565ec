// VM snapshots (qmsnapshot, qmrollback, qmdelsnapshot), after pve-guest-common
// AbstractConfig.pm and qemu-server QemuConfig.pm / QemuServer.pm (qemu_volume_snapshot);
// docs/reference/pve-snapshots.md. The config steps are model/vm_snapshot.h; this file runs
// the volume operations between them.
//
// While the VM runs, it is paused for the disk snapshots (Proxmox's savevm-start without a
// state file pauses it the same way), after a guest-agent fsfreeze when an agent is
// configured and no RAM is saved: qcow2 volumes are snapshotted by QEMU
// (blockdev-snapshot-internal-sync), others by their storage (btrfs: a read-only subvolume
// snapshot). With RAM (vmstate), the state is written to its volume (vm_state.h) while the
// VM is still paused, so RAM and disks are of the same instant.
#include <spdlog/spdlog.h>

#include "core/strings.h"
#include "core/units.h"
#include "model/vm_snapshot.h"
#include "sys/crash_point.h"
#include "vms/vm_service.h"

namespace hearth {

Result<VmConfig> VmService::FullConfig(int vmid) { return GetConfig(vmid); }

Result<bool> VmService::HasFeature(int vmid, const std::string& feature, const std::string& snapname) {
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(vmid));
  const std::map<std::string, std::string>* values = &cfg.values;
  if (!snapname.empty()) {
    auto it = cfg.snapshots.find(snapname);
    if (it == cfg.snapshots.end()) return Fail(Internal("snapshot '" + snapname + "' does not exist"));
    values = &it->second;
  }
  for (const auto& [key, volid] : SnapshotDrives(*values)) {
    auto id = ParseVolumeId(volid);
    if (!id) return false;
    auto st = storage_.Get(id->storage);
    if (!st) return false;
    if (feature == "snapshot") {
      if (!(*st)->CanSnapshot(id->volname)) return false;
    } else if (feature == "copy") {
      if (!snapname.empty() && !(*st)->SnapshotImageOf(id->volname, snapname)) return false;
    } else if (feature == "clone") {
      // Linked clones share a template's base images, or a btrfs snapshot's subvolume.
      std::string file = id->volname.substr(id->volname.rfind('/') + 1);
      if (snapname.empty() ? !StartsWith(file, "base-")
                           : ((*st)->type() != "btrfs" || !EndsWith(file, ".raw")))
        return false;
    } else {
      return Fail(FieldError("feature", "value '" + feature + "' does not have a value in the enumeration 'snapshot, clone, copy'"));
    }
  }
  return true;
}

Result<std::string> VmService::Snapshot(int vmid, const std::string& name, const std::string& description, bool vmstate,
                                        const std::string& user) {
  HEARTH_TRY(CheckNewSnapshotName(name));
  if (!Exists(vmid)) return Fail(Internal(ConfigNotFound(vmid)));
  return StartTask("qmsnapshot", vmid, user, [this, vmid, name, description, vmstate](TaskContext& ctx) {
    return DoSnapshot(ctx, vmid, name, description, vmstate);
  });
}

Status VmService::SnapshotVolumes(TaskContext& ctx, int vmid, const std::string& name,
                                  const std::vector<std::pair<std::string, std::string>>& drives,
                                  std::vector<std::pair<std::string, std::string>>& done) {
  bool running = qemu_.Pid(vmid).has_value();
  for (const auto& [key, volid] : drives) {
    HEARTH_ASSIGN_OR_RETURN(VolumeId id, ParseVolumeId(volid));
    HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, storage_.Get(id.storage));
    if (running && st->SnapshotByQemu(id.volname)) {
      ctx.Log(key + ": internal qemu snapshot of " + volid);
      // The node a move_disk mirror switched the device to, else "drive-<key>".
      HEARTH_ASSIGN_OR_RETURN(std::string node, qemu_.BlockNodeName(vmid, key));
      HEARTH_TRY(qemu_.SnapshotInternal(vmid, node, name).map_error([&](Error e) { return e.WithContext(key); }));
    } else {
      ctx.Log(key + ": snapshot of " + volid + " on storage '" + id.storage + "'");
      HEARTH_TRY(st->VolumeSnapshot(id.volname, name).map_error([&](Error e) { return e.WithContext(key); }));
    }
    done.emplace_back(key, volid);
    CrashPoint("snapshot.volume");
  }
  return Ok();
}

Status VmService::DeleteVolumeSnapshots(TaskContext* ctx, int vmid, const std::string& name,
                                        const std::vector<std::pair<std::string, std::string>>& drives, bool force) {
  auto cfg = GetConfig(vmid);
  bool running = qemu_.Pid(vmid).has_value();
  for (const auto& [key, volid] : drives) {
    auto one = [&]() -> Status {
      HEARTH_ASSIGN_OR_RETURN(VolumeId id, ParseVolumeId(volid));
      HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, storage_.Get(id.storage));
      // QEMU holds an attached qcow2 open: it deletes the internal snapshot itself.
      std::string attached;
      if (running && cfg)
        for (const auto& [k, v] : SnapshotDrives(cfg->values))
          if (v == volid) attached = k;
      if (!attached.empty() && st->SnapshotByQemu(id.volname)) {
        HEARTH_ASSIGN_OR_RETURN(std::string node, qemu_.BlockNodeName(vmid, attached));
        return qemu_.DeleteInternalSnapshot(vmid, node, name);
      }
      return st->VolumeSnapshotDelete(id.volname, name);
    };
    if (ctx) ctx->Log(key + ": deleting snapshot '" + name + "' of " + volid);
    if (auto st = one(); !st) {
      if (!force) return Fail(std::move(st.error()).WithContext(key));
      std::string w = key + ": " + st.error().message;
      if (ctx) ctx->Warn(w);
      else spdlog::warn("VM {}: {}", vmid, w);
    }
  }
  return Ok();
}

Status VmService::FreeStateVolume(TaskContext* ctx, int vmid, const std::string& volid, bool force) {
  if (ctx) ctx->Log("removing the RAM state volume " + volid);
  Status st = storage_.Free(volid);
  if (st || !force) return st;
  std::string w = "vmstate: " + st.error().message;
  if (ctx) ctx->Warn(w);
  else spdlog::warn("VM {}: {}", vmid, w);
  return Ok();
}

Status VmService::DoSnapshot(TaskContext& ctx, int vmid, const std::string& name, const std::string& description,
                             bool vmstate) {
  std::vector<std::string> warnings;
  std::vector<std::pair<std::string, std::string>> drives;
  HEARTH_TRY(Mutate(vmid, [&](VmConfig& c) -> Status {
    HEARTH_TRY(PrepareSnapshot(c, name, description, clock_.UnixSeconds(), &warnings));
    drives = SnapshotDrives(c.snapshots.at(name));
    for (const auto& [key, volid] : drives) {  // has_feature('snapshot'), before anything is written
      auto id = ParseVolumeId(volid);
      auto st = id ? storage_.Get(id->storage) : Result<std::shared_ptr<StoragePlugin>>(Fail(id.error()));
      if (!st) return Fail(st.error());
      if (!(*st)->CanSnapshot(id->volname)) return Fail(Internal("snapshot feature is not available"));
    }
    return Ok();
  }));
  for (const auto& w : warnings) ctx.Warn(w);
  CrashPoint("snapshot.prepared");
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(vmid));
  bool running = qemu_.Pid(vmid).has_value();
  // RAM is saved only from a running VM; for a stopped one vmstate is ignored, as Proxmox.
  bool save_state = vmstate && running;
  std::string state_volid;
  bool state_allocated = false, frozen = false, paused = false;
  std::vector<std::pair<std::string, std::string>> done;

  // Whatever was made goes again, and the config is as before (snapshot_create's cleanup).
  auto undo = [&](Status failed) -> Status {
    ctx.Warn("snapshot create failed: starting cleanup");
    (void)DeleteVolumeSnapshots(&ctx, vmid, name, done, /*force=*/true);
    if (state_allocated) (void)FreeStateVolume(&ctx, vmid, state_volid, /*force=*/true);
    if (auto st = Mutate(vmid, [&](VmConfig& c) -> Status {
          AbandonSnapshot(c, name);
          return Ok();
        });
        !st)
      ctx.Warn("cleanup: " + st.error().message);
    return failed;
  };

  if (save_state) {
    state_volid = VmStateVolumes::VolumeIdFor(states_.ChooseStorage(cfg), vmid, name);
    auto machine = qemu_.CurrentMachine(vmid);
    if (!machine) return undo(Fail(machine.error().WithContext("vmstate")));
    // Recorded before the volume exists: a crash in between leaves a name to clean up, never
    // a volume nobody knows.
    if (auto st = Mutate(vmid, [&](VmConfig& c) -> Status {
          auto& section = c.snapshots.at(name);
          section["vmstate"] = state_volid;
          section["runningmachine"] = *machine;
          return Ok();
        });
        !st)
      return undo(st);
    ctx.Log("allocating the RAM state volume " + state_volid);
    if (auto st = states_.Allocate(state_volid, vmid, CurrentMemoryMiB(cfg)); !st) return undo(st);
    state_allocated = true;
    CrashPoint("snapshot.vmstate-allocated");
  }

  if (running && !save_state && WantsFsFreeze(cfg)) {
    if (auto r = AgentCommand(vmid, "guest-fsfreeze-freeze", nullptr, std::chrono::seconds(60)); r) {
      frozen = true;
      ctx.Log("guest file systems frozen");
    } else {
      ctx.Warn("skipping guest filesystem freeze - " + r.error().message);
    }
  }
  if (running) {
    auto state = qemu_.QueryRunState(vmid);
    if (state && *state == "running") {
      // Remembered, so that a crash while it is paused resumes it at the next start.
      (void)store_.PutMeta(PausedMetaKey(vmid), "1");
      if (auto st = qemu_.Stop(vmid); st) paused = true;
      else ctx.Warn("could not pause the VM for the snapshot: " + st.error().message);
    }
  }
  Status made = SnapshotVolumes(ctx, vmid, name, drives, done);
  if (made && save_state) {
    // After the disk snapshots: a finished save leaves QEMU's block nodes inactive until
    // the VM continues, and QEMU's own qcow2 snapshots need them active.
    ctx.Log("saving VM state and RAM to " + state_volid);
    auto saved = states_.Save(vmid, state_volid, VmStateVolumes::Deadline(CurrentMemoryMiB(cfg)));
    if (saved) ctx.Log("VM state and RAM saved (" + FormatSize(*saved) + ")");
    else made = Fail(saved.error());
    CrashPoint("snapshot.vmstate-saved");
  }
  if (paused) {
    if (auto st = qemu_.Cont(vmid); !st) ctx.Warn("resuming the VM failed: " + st.error().message);
    (void)store_.PutMeta(PausedMetaKey(vmid), "");
  }
  if (frozen)
    if (auto r = AgentCommand(vmid, "guest-fsfreeze-thaw", nullptr, std::chrono::seconds(60)); !r)
      ctx.Warn("guest-fsfreeze-thaw problems - " + r.error().message);
  if (!made) return undo(made);
  HEARTH_TRY(Mutate(vmid, [&](VmConfig& c) { return CommitSnapshot(c, name); }));
  ctx.Log("snapshot '" + name + "' of VM " + std::to_string(vmid) + " created (" + std::to_string(drives.size()) +
          " disk(s)" + (save_state ? ", with RAM" : "") + ")");
  return Ok();
}

Result<std::string> VmService::DeleteSnapshot(int vmid, const std::string& name, bool force, const std::string& user) {
  if (!Exists(vmid)) return Fail(Internal(ConfigNotFound(vmid)));
  return StartTask("qmdelsnapshot", vmid, user, [this, vmid, name, force](TaskContext& ctx) -> Status {
    std::vector<std::pair<std::string, std::string>> drives;
    std::string state;
    HEARTH_TRY(Mutate(vmid, [&](VmConfig& c) -> Status {
      HEARTH_TRY(PrepareSnapshotDelete(c, name, force));
      drives = SnapshotDrives(c.snapshots.at(name));
      auto& section = c.snapshots.at(name);
      if (auto it = section.find("vmstate"); it != section.end()) state = it->second;
      return Ok();
    }));
    CrashPoint("delsnapshot.prepared");
    // The RAM state first, then the key (AbstractConfig snapshot_delete): a failure without
    // force leaves both, and the lock, for a retry.
    if (!state.empty()) {
      HEARTH_TRY(FreeStateVolume(&ctx, vmid, state, force));
      HEARTH_TRY(Mutate(vmid, [&](VmConfig& c) -> Status {
        c.snapshots.at(name).erase("vmstate");
        return Ok();
      }));
    }
    // Without force, a failure leaves `lock: snapshot-delete` (as Proxmox): the snapshot is
    // half gone and must not be rolled back to; a delete with force finishes it.
    HEARTH_TRY(DeleteVolumeSnapshots(&ctx, vmid, name, drives, force));
    HEARTH_TRY(Mutate(vmid, [&](VmConfig& c) { return FinishSnapshotDelete(c, name); }));
    ctx.Log("snapshot '" + name + "' deleted");
    return Ok();
  });
}

Result<std::string> VmService::Rollback(int vmid, const std::string& name, bool start, const std::string& user) {
  if (!Exists(vmid)) return Fail(Internal(ConfigNotFound(vmid)));
  return StartTask("qmrollback", vmid, user, [this, vmid, name, start, user](TaskContext& ctx) -> Status {
    HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(vmid));
    HEARTH_TRY(CheckRollback(cfg, name));
    // Every volume's storage must be usable and the volume there before anything happens
    // (Proxmox's __snapshot_activate_storages and volume_rollback_is_possible run before the
    // stop): a rollback that cannot finish must not stop the VM or leave it half rolled back.
    for (const auto& [key, volid] : SnapshotDrives(cfg.snapshots.at(name))) {
      auto info = storage_.InfoOf(volid);
      if (!info) return Fail(std::move(info.error()).WithContext(key));
      HEARTH_ASSIGN_OR_RETURN(VolumeId id, ParseVolumeId(volid));
      HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, storage_.Get(id.storage));
      if (!st->CanSnapshot(id.volname)) return Fail(Internal(key + ": snapshot feature is not available"));
    }
    const auto& snap = cfg.snapshots.at(name);
    SavedState state;
    if (auto it = snap.find("vmstate"); it != snap.end()) {
      state.volid = it->second;
      if (auto info = storage_.InfoOf(state.volid); !info) return Fail(std::move(info.error()).WithContext("vmstate"));
      if (auto m = snap.find("runningmachine"); m != snap.end()) state.machine = m->second;
    }
    if (qemu_.Pid(vmid)) {
      ctx.Log("stopping VM " + std::to_string(vmid) + " for the rollback");
      HEARTH_TRY(DoStop(ctx, vmid, 5));  // a hard stop, as Proxmox's vm_stop(timeout 5)
    }
    // The target is remembered beside the lock (Proxmox's `lock: rollback` does not say
    // which snapshot), so that a rollback cut short is finished at the next start.
    HEARTH_TRY(store_.PutMeta(RollbackMetaKey(vmid), name));
    HEARTH_TRY(Mutate(vmid, [&](VmConfig& c) -> Status {
      HEARTH_TRY(CheckRollback(c, name));
      c.values["lock"] = "rollback";
      return Ok();
    }));
    CrashPoint("rollback.locked");
    HEARTH_TRY(FinishRollback(&ctx, vmid, name));
    ctx.Log("VM " + std::to_string(vmid) + " rolled back to '" + name + "'");
    if (!state.volid.empty()) {
      // The snapshot has RAM: the VM goes on from that instant (start= has no effect).
      ctx.Log("starting the VM from the RAM state in " + state.volid);
      return DoStart(ctx, vmid, 0, &state);
    }
    if (start) {
      auto upid = Start(vmid, user, 0, false);
      if (!upid) return Fail(upid.error().WithContext("start after rollback"));
      ctx.Log("starting the VM: " + *upid);
    }
    return Ok();
  });
}

std::string VmService::RollbackMetaKey(int vmid) { return "rollback-target:" + std::to_string(vmid); }
std::string VmService::PausedMetaKey(int vmid) { return "snapshot-paused:" + std::to_string(vmid); }

Status VmService::FinishRollback(TaskContext* ctx, int vmid, const std::string& name) {
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(vmid));
  auto it = cfg.snapshots.find(name);
  if (it == cfg.snapshots.end()) return Fail(Internal("snapshot '" + name + "' does not exist"));
  // Rolling a volume back twice gives the same disk: safe to repeat after a crash.
  for (const auto& [key, volid] : SnapshotDrives(it->second)) {
    HEARTH_ASSIGN_OR_RETURN(VolumeId id, ParseVolumeId(volid));
    HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, storage_.Get(id.storage));
    if (ctx) ctx->Log(key + ": rolling " + volid + " back to '" + name + "'");
    HEARTH_TRY(st->VolumeSnapshotRollback(id.volname, name).map_error([&](Error e) { return e.WithContext(key); }));
    CrashPoint("rollback.volume");
  }
  HEARTH_TRY(Mutate(vmid, [&](VmConfig& c) -> Status {
    HEARTH_TRY(ApplyRollback(c, name));
    // The guest must see that it went back in time (qemu-server __snapshot_rollback_hook):
    // Windows and AD domain controllers rely on a new VM generation id.
    if (c.values.count("vmgenid")) c.values["vmgenid"] = NewUuid();
    return Ok();
  }));
  (void)store_.PutMeta(RollbackMetaKey(vmid), "");
  return Ok();
}

Status VmService::SetSnapshotDescription(int vmid, const std::string& name, const std::string& description) {
  HEARTH_ASSIGN_OR_RETURN(auto guard, LockForCall(vmid));
  return Mutate(vmid, [&](VmConfig& c) -> Status {
    HEARTH_TRY(CheckLock(c, false));
    auto it = c.snapshots.find(name);
    if (it == c.snapshots.end()) return Fail(Internal("snapshot '" + name + "' does not exist"));
    if (description.empty()) it->second.erase("description");
    else it->second["description"] = description;
    return Ok();
  });
}

void VmService::RepairInterruptedSnapshot(int vmid) {
  auto cfg = GetConfig(vmid);
  if (!cfg) return;
  if (auto paused = store_.GetMeta(PausedMetaKey(vmid)); paused && *paused && **paused == "1") {
    // hearth paused it for the disk snapshots and then died: the guest runs on.
    if (qemu_.Pid(vmid)) {
      spdlog::warn("VM {}: resuming the guest that a cut-short snapshot or backup had paused", vmid);
      (void)qemu_.Cont(vmid);
      SetRuntime(vmid, [](Runtime& rt) { rt.qmpstatus = "running"; });
    }
    (void)store_.PutMeta(PausedMetaKey(vmid), "");
  }
  std::string lock = cfg->Lock();
  if (lock == "rollback") {
    auto target = store_.GetMeta(RollbackMetaKey(vmid));
    std::string name = target && *target ? **target : "";
    if (name.empty() || qemu_.Pid(vmid)) {
      spdlog::warn("VM {}: a snapshot rollback was interrupted and cannot be finished here; its disks may be partly "
                   "rolled back. Unlock it (PUT config delete=lock skiplock=1, as root@pam) and roll back again",
                   vmid);
      return;
    }
    spdlog::warn("VM {}: finishing the rollback to snapshot '{}' that was interrupted by a restart", vmid, name);
    if (auto st = FinishRollback(nullptr, vmid, name); !st)
      spdlog::error("VM {}: the interrupted rollback failed again: {}", vmid, st.error().message);
    return;
  }
  for (const auto& [name, section] : cfg->snapshots) {
    auto state = section.find("snapstate");
    if (state == section.end()) continue;
    auto drives = SnapshotDrives(section);
    if (lock == "snapshot" && state->second == "prepare") {
      // Cut short while the disks were being snapshotted: undone, as a failed create is.
      spdlog::warn("VM {}: undoing snapshot '{}' that was interrupted by a restart", vmid, name);
      (void)DeleteVolumeSnapshots(nullptr, vmid, name, drives, /*force=*/true);
      if (auto vs = section.find("vmstate"); vs != section.end() && storage_.InfoOf(vs->second))
        (void)FreeStateVolume(nullptr, vmid, vs->second, /*force=*/true);
      (void)Mutate(vmid, [&](VmConfig& c) -> Status {
        AbandonSnapshot(c, name);
        return Ok();
      });
      return;
    }
    if (lock == "snapshot-delete" && state->second == "delete") {
      spdlog::warn("VM {}: finishing the deletion of snapshot '{}' that was interrupted by a restart", vmid, name);
      if (auto vs = section.find("vmstate"); vs != section.end() && storage_.InfoOf(vs->second))
        (void)FreeStateVolume(nullptr, vmid, vs->second, /*force=*/true);
      (void)DeleteVolumeSnapshots(nullptr, vmid, name, drives, /*force=*/true);
      (void)Mutate(vmid, [&](VmConfig& c) { return FinishSnapshotDelete(c, name); });
      return;
    }
  }
}

}  // namespace hearth

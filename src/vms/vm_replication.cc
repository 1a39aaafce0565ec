// The guest side of storage replication (pve-guest-common Replication.pm, qemu-server
// QemuConfig.pm get_replicatable_volumes; docs/reference/pve-replication.md §4, §6): which
// volumes a job copies, and their snapshots of one instant. The job runner is jobs/replicator.h.
#include <set>

#include "core/strings.h"
#include "model/volume_id.h"
#include "model/drive.h"
#include "model/vm_snapshot.h"
#include "sys/crash_point.h"
#include "vms/vm_service.h"

namespace hearth {

Result<std::vector<std::string>> VmService::ReplicatableVolumes(int vmid, bool cleanup) {
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(vmid));
  std::set<std::string> out;
  auto scan = [&](const std::map<std::string, std::string>& section) -> Status {
    for (const auto& [key, value] : section) {
      auto dk = DriveKey::Parse(key);
      if (!dk) continue;
      std::string volid = value;
      if (dk->IsDisk()) {
        auto d = ParseDrive(dk->bus, value);
        if (!d || d->IsCdrom()) continue;
        if (auto r = d->opts.find("replicate"); !cleanup && r != d->opts.end() && ParseBooleanWord(r->second) == false)
          continue;
        volid = d->file;
      }
      if (!volid.empty() && volid[0] == '/') {
        if (cleanup) continue;
        return Fail(Internal("unable to replicate local file/device '" + volid + "'"));
      }
      auto id = ParseVolumeId(volid);
      if (!id) continue;  // "none" and the like
      auto st = storage_.Get(id->storage);
      if (!st && cleanup) continue;
      if (!st) return Fail(st.error());
      if (auto u = (*st)->Usage(); u && u->shared) continue;  // the other node sees it already
      if (!(*st)->CanReplicate(id->volname)) {
        if (cleanup) continue;
        return Fail(Internal("missing replicate feature on volume '" + volid + "'"));
      }
      out.insert(volid);
    }
    return Ok();
  };
  HEARTH_TRY(scan(cfg.values));
  for (const auto& [name, section] : cfg.snapshots) HEARTH_TRY(scan(section));
  return std::vector<std::string>(out.begin(), out.end());
}

Status VmService::SnapshotForReplication(int vmid, const std::string& snap, const std::vector<std::string>& volids,
                                         const std::function<void(const std::string&)>& log) {
  auto guard = tasks_.vm_locks().AcquireFor(vmid, kSyncLockWait);
  if (!guard) return Fail(Unavailable("can't lock VM " + std::to_string(vmid) + " for the replication snapshot - got timeout"));
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(vmid));
  bool running = qemu_.Pid(vmid).has_value();
  bool frozen = false, paused = false;
  if (running && WantsFsFreeze(cfg)) {
    log("freeze guest filesystem");
    if (auto r = AgentCommand(vmid, "guest-fsfreeze-freeze", nullptr, std::chrono::seconds(60)); r) frozen = true;
    else log("skipping guest filesystem freeze - " + r.error().message);
  }
  if (running) {
    auto state = qemu_.QueryRunState(vmid);
    if (state && *state == "running") {
      (void)store_.PutMeta(PausedMetaKey(vmid), "1");  // a crash while paused resumes it at the next start
      if (qemu_.Stop(vmid)) paused = true;
    }
  }
  std::vector<std::pair<std::string, std::shared_ptr<StoragePlugin>>> done;
  Status made = Ok();
  for (const auto& volid : volids) {
    log("create snapshot '" + snap + "' on " + volid);
    auto id = ParseVolumeId(volid);
    auto st = id ? storage_.Get(id->storage) : Result<std::shared_ptr<StoragePlugin>>(Fail(id.error()));
    if (!st) {
      made = Fail(st.error());
      break;
    }
    if (auto r = (*st)->VolumeSnapshot(id->volname, snap); !r) {
      made = Fail(std::move(r.error()).WithContext(volid));
      break;
    }
    done.emplace_back(id->volname, *st);
    CrashPoint("replicate.snapshot");  // the VM is paused here
  }
  if (paused) {
    (void)qemu_.Cont(vmid);
    (void)store_.PutMeta(PausedMetaKey(vmid), "");
  }
  if (frozen) {
    log("thaw guest filesystem");
    if (auto r = AgentCommand(vmid, "guest-fsfreeze-thaw", nullptr, std::chrono::seconds(60)); !r)
      log("guest-fsfreeze-thaw problems - " + r.error().message);
  }
  if (!made)
    for (const auto& [volname, st] : done) (void)st->VolumeSnapshotDelete(volname, snap);
  return made;
}

}  // namespace hearth

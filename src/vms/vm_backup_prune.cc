// Pruning a storage's backups by retention (pve-storage PVE/API2/Storage/PruneBackups.pm,
// PVE::Storage::prune_backups and prune_mark_backup_group; docs/reference/pve-backup-jobs.md
// section 3): the preview of GET .../prunebackups and the task of DELETE on the same path.
#include <map>

#include "model/retention.h"
#include "vms/vm_service.h"

namespace hearth {

Result<std::vector<BackupPruneEntry>> VmService::PruneBackupsPreview(const std::string& storage, const KeepOptions& keep,
                                                                     int vmid) {
  HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, storage_.Get(storage));
  if (!st->Supports(ContentType::kBackup)) return Fail(Internal("storage '" + storage + "' does not support backups"));
  HEARTH_ASSIGN_OR_RETURN(auto store, OpenDatastore(storage, /*need_key=*/false));
  HEARTH_ASSIGN_OR_RETURN(auto all, store->List(vmid));
  // One group per VM (all of hearth's backups have standard names, so none is "renamed"),
  // listed as Proxmox lists archive files: by VM, then oldest first.
  std::map<int, std::vector<const BackupSnapshotInfo*>> groups;
  for (const auto& b : all) groups[b.id.vmid].push_back(&b);
  std::vector<BackupPruneEntry> out;
  for (auto& [id, group] : groups) {
    std::sort(group.begin(), group.end(), [](auto* a, auto* b) { return a->id.time < b->id.time; });
    std::vector<PruneItem> items;
    for (const auto* b : group) items.push_back({b->id.time, b->is_protected});
    std::vector<PruneMark> marks = MarkForPrune(items, keep);
    for (size_t i = 0; i < group.size(); ++i)
      out.push_back({BackupVolid(storage, group[i]->id), group[i]->id.time, id, marks[i]});
  }
  return out;
}

Result<std::string> VmService::PruneBackups(const std::string& storage, const KeepOptions& keep, int vmid,
                                            const std::string& user) {
  TaskSpec spec;
  spec.type = "prunebackups";
  spec.id = vmid ? std::to_string(vmid) + "@" + storage : storage;
  spec.user = user;
  return tasks_.Start(spec, [this, storage, keep, vmid](TaskContext& ctx) -> Status {
    HEARTH_ASSIGN_OR_RETURN(auto entries, PruneBackupsPreview(storage, keep, vmid));
    bool failed = false;
    for (const auto& e : entries) {
      if (e.mark != PruneMark::kRemove) continue;
      ctx.Log("removing backup '" + e.volid + "'");
      if (auto st = RemoveBackup(e.volid); !st) {
        ctx.Log("error when removing backup '" + e.volid + "' - " + st.error().message);
        failed = true;
      }
    }
    if (failed) return Fail(Internal("error pruning backups - check log"));
    return Ok();
  });
}

}  // namespace hearth

// One run of a replication job on the source node (pve-guest-common Replication.pm
// run_replication_nolock and replicate; docs/reference/pve-replication.md §4), step by step
// as Proxmox logs it:
//   1. the guest's replicatable volumes; the target prepares (drops its stale snapshots, says
//      which of the job's snapshots it holds); this node drops its own stale ones;
//   2. snapshot __replicate_<jobid>_<start>__ of every volume, of one instant (VmService);
//   3. per volume, a stream of the changes since the last synced snapshot when both sides
//      hold it ("incremental sync"), else of everything ("full sync"), written to a temporary
//      file beside the volume and sent to the target, which swaps it in only when whole;
//   4. the new last_sync is recorded (`synced`), the previous snapshot deleted here, and the
//      target finalizes (its old snapshots go, the guest's config is kept there).
// A failure in 2 or 3 deletes the new snapshots here; the target's leftovers go at its next
// prepare. A crash leaves the same: the next run cleans up and sends from the last sync.
// Thread-safety: one run at a time per job (the scheduler runs jobs one after another).
#pragma once

#include <functional>

#include "jobs/replication_job.h"
#include "jobs/replication_target.h"
#include "storage/storage_manager.h"
#include "sys/clock.h"
#include "vms/vm_service.h"

namespace hearth {

struct ReplicationRunStats {
  uint64_t bytes = 0;  // stream bytes sent
  int full = 0, incremental = 0;
};

class Replicator {
 public:
  Replicator(VmService& vms, StorageManager& storage, const Clock& clock, std::string node)
      : vms_(vms), storage_(storage), clock_(clock), node_(std::move(node)) {}

  // Runs the job; `state` gets volumes and, on success, last_sync (the caller records the
  // rest). `synced(state)` is called as soon as the transfer finished, before old snapshots
  // are deleted (Proxmox's record_sync_end), so a crash after it never resends everything.
  Result<ReplicationRunStats> Run(const ReplicationJob& job, ReplicationState& state, ReplicationTarget& target,
                                  const ReplicationLog& log,
                                  const std::function<void(const ReplicationState&)>& synced);
  // A job marked for removal: with remove_job=full the target frees its copies (needs the
  // target); here, the job's snapshots are deleted.
  Status Remove(const ReplicationJob& job, const ReplicationState& state, ReplicationTarget* target,
                const ReplicationLog& log);

 private:
  // Deletes the job's snapshots on the volumes: all of them, or all but `keep`.
  void DropSnapshots(const std::string& jobid, const std::vector<std::string>& volids, const std::string& keep,
                     const ReplicationLog& log);

  VmService& vms_;
  StorageManager& storage_;
  const Clock& clock_;
  std::string node_;
};

}  // namespace hearth

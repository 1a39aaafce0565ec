// Replication jobs on this node: their configuration (Proxmox's /cluster/replication), their
// state, the remotes they send to, and the thread that runs them when due (as pvescheduler
// runs pvesr: one job at a time, the most overdue first, failures backed off by
// replication_job.h NextSync). Each run writes its log to <data_dir>/replicate/<jobid>,
// truncated at the start of the run, lines "YYYY-MM-DD HH:MM:SS <jobid>: <msg>" (local time),
// as Proxmox's /var/log/pve/replicate/<jobid>; runs are not tasks, as in Proxmox.
//
// Stored in the store's meta table as JSON: "replication-jobs" (cluster config),
// "replication-state" (this node's), "replication-remotes" (with the tokens; the API never
// returns them). A job's state is written when its run starts and as soon as its transfer
// finished, so a crash at any point repeats at most the transfer, and the next run removes
// what a cut-short one left (replicator.h).
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "jobs/replication_job.h"
#include "jobs/replication_target.h"
#include "jobs/replicator.h"
#include "state/store.h"
#include "sys/clock.h"
#include "sys/file_system.h"
#include "vms/vm_service.h"

namespace hearth {

class ReplicationScheduler {
 public:
  ReplicationScheduler(Store& store, VmService& vms, StorageManager& storage, FileSystem& fs, const Clock& clock,
                       std::string node, std::string data_dir, MakeStorageFn make_storage);
  ~ReplicationScheduler() { Stop(); }

  Status Load();
  void Start();
  void Stop();

  // --- jobs (/cluster/replication)
  std::vector<ReplicationJob> List() const;
  // "no such replication job '<id>'"
  Result<ReplicationJob> Get(const std::string& id) const;
  // Proxmox's checks in its order (docs/reference/pve-replication.md §5).
  Status Create(ReplicationJob job);
  // "no such job '<id>'"
  Status Update(const std::string& id, const std::map<std::string, std::string>& set,
                const std::vector<std::string>& remove);
  // Marks the job for removal (keep: the target's copies stay); force: gone at once, nothing
  // cleaned up.
  Status Delete(const std::string& id, bool keep, bool force);

  // Before guest `vmid` is destroyed (VmService::SetDestroyCheck): refused while it has jobs
  // ("There is a replication job '<id>' for guest '<vmid>' - Please remove that first."), or
  // with `purge` its jobs are dropped (their copies stay on the targets), as Proxmox.
  Status GuestDestroy(int vmid, bool purge);

  // --- this node's view (/nodes/{node}/replication)
  // The status objects of the jobs of this node's guests (all, or `guest`'s), sorted by id.
  nlohmann::json StatusList(std::optional<int> guest) const;
  Result<nlohmann::json> StatusOf(const std::string& id) const;
  std::string LogPath(const std::string& id) const;
  // Due at once (the loop is woken).
  Status ScheduleNow(const std::string& id);

  // --- remotes (/cluster/hearth/replication-remotes)
  std::vector<ReplicationRemote> Remotes() const;
  Result<ReplicationRemote> GetRemote(const std::string& node) const;
  Status PutRemote(ReplicationRemote remote, bool create);
  // Refused while a job targets it.
  Status DeleteRemote(const std::string& node);

  static constexpr char kJobsKey[] = "replication-jobs";
  static constexpr char kStateKey[] = "replication-state";
  static constexpr char kRemotesKey[] = "replication-remotes";

 private:
  Status PersistJobsLocked();
  Status PersistStateLocked();
  Status PersistRemotesLocked();
  nlohmann::json StatusJsonLocked(const ReplicationJob& job) const;
  Result<std::unique_ptr<ReplicationTarget>> TargetFor(const std::string& node);
  // A directory target must not be, hold or lie in a storage of this node or the data dir.
  Status CheckPathTarget(const std::string& path) const;
  void RunOne(const ReplicationJob& job);
  void Loop();

  Store& store_;
  VmService& vms_;
  StorageManager& storage_;
  FileSystem& fs_;
  const Clock& clock_;
  std::string node_, data_dir_;
  MakeStorageFn make_storage_;
  Replicator replicator_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, ReplicationJob> jobs_;         // GUARDED_BY(mu_)
  std::map<std::string, ReplicationState> state_;      // GUARDED_BY(mu_)
  std::map<std::string, ReplicationRemote> remotes_;   // GUARDED_BY(mu_)
  bool stop_ = false;                                  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace hearth

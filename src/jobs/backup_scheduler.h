// The backup jobs of /cluster/backup (backup_job.h) and the thread that runs them, as
// Proxmox's pvescheduler does (pve-manager PVE/Jobs.pm, PVE/Jobs/VZDump.pm): a job runs once
// the time reaches the first event of its schedule after its last run; runs missed while the
// daemon was down are skipped unless the job has repeat-missed=1, then caught up once. A run
// is a `vzdump` task owned by root@pam with the job's options (and job-id=<id>), started by
// the `runner` the daemon supplies. Jobs naming another node (`node=`) are not run here.
//
// Jobs are cluster state: one JSON document in the store (meta key "backup-jobs", in
// creation order); a run is recorded before it starts, so a crash never repeats it.
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "jobs/backup_job.h"
#include "jobs/job_loop.h"
#include "state/store.h"
#include "sys/clock.h"

namespace hearth {

class BackupScheduler {
 public:
  // Starts one run of a job; returns the task's UPID.
  using Runner = std::function<Result<std::string>(const BackupJob& job)>;
  // Whether the task a run started is still going: a job is not started again meanwhile
  // (Proxmox's starting_job); it runs once the last run ends, if an event passed meanwhile.
  using TaskRunning = std::function<bool(const std::string& upid)>;
  BackupScheduler(Store& store, const Clock& clock, std::string node, Runner runner, TaskRunning running)
      : store_(store), clock_(clock), node_(std::move(node)), runner_(std::move(runner)), running_(std::move(running)),
        loop_(clock, [this](int64_t now) { return Tick(now); }) {}
  ~BackupScheduler() { Stop(); }

  // Reads the stored jobs (a record that no longer parses is skipped with a warning).
  Status Load();
  void Start() { loop_.Start(); }
  void Stop() { loop_.Stop(); }

  std::vector<BackupJob> List() const;  // creation order
  std::optional<BackupJob> Get(const std::string& id) const;
  // Errors in Proxmox's words: "Job '<id>' already exists" (500), "no such vzdump job" (500).
  Status Create(BackupJob job);
  Status Update(const std::string& id, const std::map<std::string, std::string>& set,
                const std::vector<std::string>& remove);
  // "No such job '<id>'" on `id` (400).
  Status Delete(const std::string& id);
  // Starts a run now (hearth's "run now"; it counts as the last run); the UPID. Refused while
  // the last run is still going, and for a job of another node.
  Result<std::string> RunNow(const std::string& id);
  // A VM destroyed with purge=1 leaves every job (pve-manager PVE/VZDump.pm
  // remove_vmid_from_backup_jobs): it goes from `vmid` and `exclude` lists; a job whose vmid
  // list becomes empty is removed.
  Status RemoveVmid(int vmid);

  // Runs the jobs due at the clock's now; the next time one is due. The thread calls it;
  // tests call it with a fake clock. The first call after a start skips runs missed while
  // the daemon was down (unless repeat-missed=1).
  std::optional<int64_t> RunDue() { return Tick(clock_.UnixSeconds()); }
  int64_t Now() const { return clock_.UnixSeconds(); }  // the scheduler's wall clock

  static constexpr char kStoreKey[] = "backup-jobs";

 private:
  Status PersistLocked();  // caller holds mu_
  std::optional<int64_t> Tick(int64_t now);
  std::vector<BackupJob>::iterator FindLocked(const std::string& id);
  void Launch(const BackupJob& job);

  Store& store_;
  const Clock& clock_;
  const std::string node_;
  Runner runner_;
  TaskRunning running_;
  mutable std::mutex mu_;
  std::vector<BackupJob> jobs_;  // GUARDED_BY(mu_)
  bool first_tick_ = true;       // GUARDED_BY(mu_)
  JobLoop loop_;                 // last: its thread calls Tick, which uses the members above
};

class VmService;
class StorageManager;
// The daemon's runner: the job's options as a vzdump call by root@pam over the guests they
// cover (all of this node's VMs for all=1), with job-id=<id> in the first log line.
BackupScheduler::Runner VzdumpJobRunner(VmService& vms, StorageManager& storage, std::string node);
class TaskManager;
BackupScheduler::TaskRunning TaskRunningIn(TaskManager& tasks);

}  // namespace hearth

// The backup jobs of /cluster/backup (backup_job.h) and the thread that runs them, as
// Proxmox's pvescheduler does (pve-manager PVE/Jobs.pm, PVE/Jobs/VZDump.pm; the common
// behaviour is scheduled_jobs.h). A run is a `vzdump` task owned by root@pam with the job's
// options (and job-id=<id>), started by the `runner` the daemon supplies. Jobs naming another
// node (`node=`) are not run here. Stored under the meta key "backup-jobs".
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "jobs/backup_job.h"
#include "jobs/scheduled_jobs.h"

namespace hearth {

class BackupScheduler : public ScheduledJobs<BackupJob> {
 public:
  BackupScheduler(Store& store, const Clock& clock, std::string node, Runner runner, TaskRunning running)
      : ScheduledJobs(store, clock, std::move(node), {"backup job", kStoreKey, "no such vzdump job"}, std::move(runner),
                      std::move(running)) {}
  ~BackupScheduler() override { Stop(); }

  // PUT /cluster/backup/{id} (UpdateBackupJob); "no such vzdump job" (500) for an unknown id.
  Status Update(const std::string& id, const std::map<std::string, std::string>& set,
                const std::vector<std::string>& remove) {
    return UpdateWith(id, [&](const BackupJob& current) { return UpdateBackupJob(current, set, remove); });
  }
  // A VM destroyed with purge=1 leaves every job (pve-manager PVE/VZDump.pm
  // remove_vmid_from_backup_jobs): it goes from `vmid` and `exclude` lists; a job whose vmid
  // list becomes empty is removed.
  Status RemoveVmid(int vmid);

  static constexpr char kStoreKey[] = "backup-jobs";
};

class VmService;
class StorageManager;
// The daemon's runner: the job's options as a vzdump call by root@pam over the guests they
// cover (all of this node's VMs for all=1), with job-id=<id> in the first log line.
BackupScheduler::Runner VzdumpJobRunner(VmService& vms, StorageManager& storage, std::string node);
class TaskManager;
// Whether a task is still running (the schedulers' TaskRunning).
std::function<bool(const std::string& upid)> TaskRunningIn(TaskManager& tasks);
// A task of `type` and `id` by root@pam that logs "<what> could not start" and ends with
// `error` as its status: a scheduled run that failed before its own task began (the
// schedulers' LaunchFailed). Returns its UPID.
Result<std::string> StartFailedRunTask(TaskManager& tasks, const std::string& type, const std::string& id,
                                       const std::string& what, const std::string& error);

}  // namespace hearth

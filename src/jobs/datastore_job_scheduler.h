// The datastore jobs (datastore_job.h) and the thread that runs them (scheduled_jobs.h: as
// Proxmox's pvescheduler, missed runs skipped at start unless repeat-missed=1, a job not
// started again while its last task runs). A run is one task by root@pam: "verify",
// "garbage_collection", "syncjob", "prunebackups" or "restoredrill" (VmService). Stored under the meta key
// "datastore-jobs". Thread-safety: all methods may be called from any thread.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "jobs/datastore_job.h"
#include "jobs/replication_job.h"
#include "jobs/scheduled_jobs.h"

namespace hearth {

class DatastoreJobScheduler : public ScheduledJobs<DatastoreJob> {
 public:
  DatastoreJobScheduler(Store& store, const Clock& clock, std::string node, Runner runner, TaskRunning running)
      : ScheduledJobs(store, clock, std::move(node), {"datastore job", kStoreKey, ""}, std::move(runner),
                      std::move(running)) {}
  ~DatastoreJobScheduler() override { Stop(); }

  // PUT (UpdateDatastoreJob); "No such job '<id>'" on `id` for an unknown id.
  Status Update(const std::string& id, const std::map<std::string, std::string>& set,
                const std::vector<std::string>& remove) {
    return UpdateWith(id, [&](const DatastoreJob& current) { return UpdateDatastoreJob(current, set, remove); });
  }

  static constexpr char kStoreKey[] = "datastore-jobs";
};

// The task type a run of a datastore job of `type` starts ("verify", "garbage_collection",
// "syncjob", "prunebackups", "restoredrill").
std::string DatastoreJobTaskType(const std::string& type);

class VmService;
// The remote a sync job pulls from, by name (ReplicationScheduler::GetRemote).
using RemoteLookup = std::function<Result<ReplicationRemote>(const std::string& name)>;
// The daemon's runner: the job as the VmService call its type names, by root@pam.
DatastoreJobScheduler::Runner DatastoreJobRunner(VmService& vms, RemoteLookup remotes = nullptr);

}  // namespace hearth

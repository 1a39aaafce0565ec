#include "jobs/datastore_job_scheduler.h"

#include "jobs/remote_backup_source.h"
#include "model/retention.h"
#include "vms/vm_service.h"

namespace hearth {

std::string DatastoreJobTaskType(const std::string& type) {
  if (type == "gc") return "garbage_collection";
  if (type == "sync") return "syncjob";
  if (type == "prune") return "prunebackups";
  if (type == "drill") return "restoredrill";
  return type;  // verify
}

DatastoreJobScheduler::Runner DatastoreJobRunner(VmService& vms, RemoteLookup remotes) {
  return [&vms, remotes](const DatastoreJob& job) -> Result<std::string> {
    const std::string user = "root@pam";
    if (job.type == "verify") {
      BackupVerifyFilter filter;
      filter.ignore_verified = job.ignore_verified;
      filter.outdated_after = job.outdated_after;
      return vms.VerifyBackups(job.storage, job.vmid, "", user, filter);
    }
    if (job.type == "gc") return vms.GarbageCollectBackups(job.storage, user);
    if (job.type == "drill") {
      RestoreDrillRequest drill;
      drill.storage = job.storage;
      drill.vmid = job.vmid;
      drill.scratch_vmid = job.scratch_vmid;
      drill.marker = job.marker;
      drill.timeout = job.timeout;
      drill.user = user;
      return vms.RestoreDrill(drill);
    }
    std::optional<KeepOptions> keep;
    if (!job.prune_backups.empty()) {
      HEARTH_ASSIGN_OR_RETURN(keep, ParseKeepOptions(job.prune_backups));
    }
    if (job.type == "sync" && !job.remote.empty()) {
      if (!remotes) return Fail(Internal("remotes are not available on this node"));
      HEARTH_ASSIGN_OR_RETURN(ReplicationRemote remote, remotes(job.remote));
      HEARTH_ASSIGN_OR_RETURN(auto source, MakeRemoteBackupSource(remote, job.remote_store));
      return vms.PullBackups(job.storage, std::shared_ptr<BackupSource>(std::move(source)), job.vmid, keep, user);
    }
    if (job.type == "sync") return vms.SyncBackups(job.storage, job.target, job.vmid, keep, user);
    if (job.type == "prune" && keep) return vms.PruneBackups(job.storage, *keep, job.vmid, user);
    return Fail(Internal("datastore job '" + job.id + "' has an unknown type '" + job.type + "'"));
  };
}

}  // namespace hearth

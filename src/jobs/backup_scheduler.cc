#include "jobs/backup_scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/strings.h"
#include "storage/storage_manager.h"
#include "tasks/task_manager.h"
#include "vms/vm_service.h"

namespace hearth {

BackupScheduler::Runner VzdumpJobRunner(VmService& vms, StorageManager& storage, std::string node) {
  return [&vms, &storage, node](const BackupJob& job) -> Result<std::string> {
    VzdumpOptions opts = job.options;
    opts.erase("node");
    std::vector<int> existing;
    for (const auto& vm : vms.List()) existing.push_back(vm.vmid);
    std::vector<int> guests = IncludedGuests(opts, existing);
    std::string storage_prune;
    if (auto st = storage.Find(opts.count("storage") ? opts.at("storage") : "local"))
      storage_prune = st->config.Get("prune-backups");
    HEARTH_ASSIGN_OR_RETURN(VzdumpRequest req, MakeVzdumpRequest(opts, guests, storage_prune));
    opts["job-id"] = job.id;
    opts["quiet"] = "1";
    opts["node"] = node;
    req.command_line = VzdumpCommandLine(opts, req.vmids);
    req.user = "root@pam";
    return vms.Vzdump(req);
  };
}

std::function<bool(const std::string& upid)> TaskRunningIn(TaskManager& tasks) {
  return [&tasks](const std::string& upid) {
    auto info = tasks.Get(upid);
    return info && info->running;
  };
}

Result<std::string> StartFailedRunTask(TaskManager& tasks, const std::string& type, const std::string& id,
                                       const std::string& what, const std::string& error) {
  TaskSpec spec;
  spec.type = type;
  spec.id = id;
  spec.user = "root@pam";
  return tasks.Start(spec, [what, error](TaskContext& ctx) -> Status {
    ctx.Log(what + " could not start");
    return Fail(Internal(error));
  });
}

Status BackupScheduler::RemoveVmid(int vmid) {
  std::string id = std::to_string(vmid);
  auto without = [&](const std::string& list) {
    std::vector<std::string> kept;
    for (auto& v : SplitAny(list, ",; \t\n"))
      if (!v.empty() && v != id) kept.push_back(v);
    return Join(kept, ",");
  };
  return Mutate([&](std::vector<BackupJob>& jobs) {
    bool changed = false;
    for (auto it = jobs.begin(); it != jobs.end();) {
      auto& o = it->options;
      if (auto v = o.find("exclude"); v != o.end() && without(v->second) != v->second) {
        v->second = without(v->second);
        changed = true;
      }
      if (auto v = o.find("vmid"); v != o.end() && without(v->second) != v->second) {
        changed = true;
        v->second = without(v->second);
        if (v->second.empty()) {
          spdlog::info("backup job '{}' removed: VM {} was its last guest", it->id, vmid);
          it = jobs.erase(it);
          continue;
        }
      }
      ++it;
    }
    return changed;
  });
}

}  // namespace hearth

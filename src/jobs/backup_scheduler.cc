#include "jobs/backup_scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/strings.h"
#include "storage/storage_manager.h"
#include "tasks/task_manager.h"
#include "vms/vm_service.h"

namespace hearth {

Status BackupScheduler::Load() {
  HEARTH_ASSIGN_OR_RETURN(auto text, store_.GetMeta(kStoreKey));
  std::lock_guard lock(mu_);
  jobs_.clear();
  if (!text || text->empty()) return Ok();
  auto doc = nlohmann::json::parse(*text, nullptr, false);
  if (!doc.is_array()) return Fail(Internal("stored backup jobs are not a JSON list"));
  for (const auto& j : doc) {
    auto job = BackupJob::FromStoredJson(j);
    if (!job) {
      spdlog::warn("skipping a stored backup job that no longer parses: {}", job.error().message);
      continue;
    }
    jobs_.push_back(std::move(*job));
  }
  return Ok();
}

Status BackupScheduler::PersistLocked() {
  nlohmann::json doc = nlohmann::json::array();
  for (const auto& j : jobs_) doc.push_back(j.ToStoredJson());
  return store_.PutMeta(kStoreKey, doc.dump());
}

std::vector<BackupJob>::iterator BackupScheduler::FindLocked(const std::string& id) {
  return std::find_if(jobs_.begin(), jobs_.end(), [&](const BackupJob& j) { return j.id == id; });
}

std::vector<BackupJob> BackupScheduler::List() const {
  std::lock_guard lock(mu_);
  return jobs_;
}

std::optional<BackupJob> BackupScheduler::Get(const std::string& id) const {
  std::lock_guard lock(mu_);
  for (const auto& j : jobs_)
    if (j.id == id) return j;
  return std::nullopt;
}

Status BackupScheduler::Create(BackupJob job) {
  {
    std::lock_guard lock(mu_);
    if (FindLocked(job.id) != jobs_.end()) return Fail(Internal("Job '" + job.id + "' already exists"));
    // The first run is the first event after now, not a catch-up of the past.
    job.last_run = clock_.UnixSeconds();
    jobs_.push_back(std::move(job));
    if (auto st = PersistLocked(); !st) {
      jobs_.pop_back();
      return st;
    }
  }
  loop_.Wake();
  return Ok();
}

Status BackupScheduler::Update(const std::string& id, const std::map<std::string, std::string>& set,
                               const std::vector<std::string>& remove) {
  {
    std::lock_guard lock(mu_);
    auto it = FindLocked(id);
    if (it == jobs_.end()) return Fail(Internal("no such vzdump job"));
    HEARTH_ASSIGN_OR_RETURN(BackupJob updated, UpdateBackupJob(*it, set, remove));
    // A new schedule or a re-enabled job counts from now (Proxmox's detect_changed_runtime_props).
    if (updated.schedule != it->schedule || (updated.enabled && !it->enabled)) updated.last_run = clock_.UnixSeconds();
    BackupJob before = *it;
    *it = std::move(updated);
    if (auto st = PersistLocked(); !st) {
      *it = std::move(before);
      return st;
    }
  }
  loop_.Wake();
  return Ok();
}

Status BackupScheduler::Delete(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = FindLocked(id);
  if (it == jobs_.end()) return Fail(FieldError("id", "No such job '" + id + "'"));
  BackupJob before = *it;
  size_t at = static_cast<size_t>(it - jobs_.begin());
  jobs_.erase(it);
  if (auto st = PersistLocked(); !st) {
    jobs_.insert(jobs_.begin() + static_cast<std::ptrdiff_t>(at), std::move(before));
    return st;
  }
  return Ok();
}

Result<std::string> BackupScheduler::RunNow(const std::string& id) {
  BackupJob job;
  {
    std::lock_guard lock(mu_);
    auto it = FindLocked(id);
    if (it == jobs_.end()) return Fail(FieldError("id", "No such job '" + id + "'"));
    if (auto node = it->options.find("node"); node != it->options.end() && node->second != node_)
      return Fail(Internal("backup job '" + id + "' runs on node '" + node->second + "', not on '" + node_ + "'"));
    if (!it->last_upid.empty() && running_ && running_(it->last_upid))
      return Fail(Internal("backup job '" + id + "' is still running (" + it->last_upid + ")"));
    it->last_run = clock_.UnixSeconds();
    HEARTH_TRY(PersistLocked());
    job = *it;
  }
  HEARTH_ASSIGN_OR_RETURN(std::string upid, runner_(job));
  std::lock_guard lock(mu_);
  if (auto it = FindLocked(id); it != jobs_.end()) {
    it->last_upid = upid;
    (void)PersistLocked();
  }
  return upid;
}

void BackupScheduler::Launch(const BackupJob& job) {
  auto upid = runner_(job);
  if (!upid) {
    spdlog::error("backup job '{}': {}", job.id, upid.error().message);
    return;
  }
  spdlog::info("backup job '{}' started: {}", job.id, *upid);
  std::lock_guard lock(mu_);
  if (auto it = FindLocked(job.id); it != jobs_.end()) {
    it->last_upid = *upid;
    (void)PersistLocked();
  }
}

std::optional<int64_t> BackupScheduler::Tick(int64_t now) {
  std::vector<BackupJob> due;
  std::optional<int64_t> earliest;
  {
    std::lock_guard lock(mu_);
    bool changed = false;
    for (auto& job : jobs_) {
      auto node = job.options.find("node");
      if (node != job.options.end() && node->second != node_) continue;
      // pvescheduler's first run after a start: missed runs are skipped, not caught up.
      if (first_tick_ && !job.repeat_missed && job.last_run < now) {
        auto missed = job.NextEvent(job.last_run);
        if (missed && *missed <= now) {
          spdlog::info("backup job '{}': skipping the run missed while hearth was down (repeat-missed=0)", job.id);
          job.last_run = now;
          changed = true;
        }
      }
      if (!job.enabled) continue;
      auto next = job.NextEvent(job.last_run);
      if (!next) continue;
      bool busy = !job.last_upid.empty() && running_ && running_(job.last_upid);
      if (*next <= now && busy) {
        // Looked at again in a while (there is no wake-up when a task ends).
        if (!earliest || now + 10 < *earliest) earliest = now + 10;
        continue;
      }
      if (*next <= now) {
        job.last_run = now;
        changed = true;
        due.push_back(job);
        next = job.NextEvent(now);
        if (!next) continue;
      }
      if (!earliest || *next < *earliest) earliest = next;
    }
    first_tick_ = false;
    // Recorded before the runs start: a crash during a run does not run it again.
    if (changed)
      if (auto st = PersistLocked(); !st) spdlog::error("backup jobs: {}", st.error().message);
  }
  for (const auto& job : due) Launch(job);
  return earliest;
}

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

BackupScheduler::TaskRunning TaskRunningIn(TaskManager& tasks) {
  return [&tasks](const std::string& upid) {
    auto info = tasks.Get(upid);
    return info && info->running;
  };
}

Status BackupScheduler::RemoveVmid(int vmid) {
  std::lock_guard lock(mu_);
  std::vector<BackupJob> before = jobs_;
  std::string id = std::to_string(vmid);
  auto without = [&](const std::string& list) {
    std::vector<std::string> kept;
    for (auto& v : SplitAny(list, ",; \t\n"))
      if (!v.empty() && v != id) kept.push_back(v);
    return Join(kept, ",");
  };
  bool changed = false;
  for (auto it = jobs_.begin(); it != jobs_.end();) {
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
        it = jobs_.erase(it);
        continue;
      }
    }
    ++it;
  }
  if (!changed) return Ok();
  if (auto st = PersistLocked(); !st) {
    jobs_ = std::move(before);
    return st;
  }
  return Ok();
}

}  // namespace hearth

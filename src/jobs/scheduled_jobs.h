// A table of scheduled jobs and the thread that runs them, shared by the backup jobs
// (backup_scheduler.h) and the datastore jobs (datastore_job_scheduler.h). It behaves as
// Proxmox's pvescheduler (pve-manager PVE/Jobs.pm): a job runs once the time reaches the
// first event of its schedule after its last run; runs missed while the daemon was down are
// skipped at the next start unless the job has repeat-missed=1, then caught up once; a job
// whose last task is still running is not started again (Proxmox's starting_job) and runs once
// that task ended if an event passed meanwhile. A run starts one task through `runner`;
// jobs naming another node are not run here.
//
// The table is cluster state: one JSON list in the store (meta key Texts::store_key, in
// creation order); a run is recorded before it starts, so a crash never repeats it.
//
// `Job` provides: id, schedule, enabled, repeat_missed, last_run (unix seconds: the last run,
// or the creation or re-enabling), last_upid; std::optional<int64_t> NextEvent(int64_t after)
// (the first event strictly after); std::string Node() ("" for any node); ToStoredJson() and
// static Result<Job> FromStoredJson(const nlohmann::json&).
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "jobs/job_loop.h"
#include "state/store.h"
#include "sys/clock.h"

namespace hearth {

template <typename Job>
class ScheduledJobs {
 public:
  // Starts one run of a job; returns the task's UPID.
  using Runner = std::function<Result<std::string>(const Job& job)>;
  // Whether the task a run started is still going.
  using TaskRunning = std::function<bool(const std::string& upid)>;
  // A scheduled run whose runner refused to start (a VMID taken, a storage gone): makes the
  // failure visible as a task ending with `error` at once; its UPID becomes the job's
  // last-upid. Without it the failure is only in the daemon's log.
  using LaunchFailed = std::function<Result<std::string>(const Job& job, const std::string& error)>;
  struct Texts {
    std::string kind;       // "backup job": in logs and in RunNow's errors
    std::string store_key;  // the store's meta key
    // Update's error for an unknown id; empty: FieldError("id", "No such job '<id>'").
    std::string no_such_on_update;
  };

  ScheduledJobs(Store& store, const Clock& clock, std::string node, Texts texts, Runner runner, TaskRunning running)
      : store_(store), clock_(clock), node_(std::move(node)), texts_(std::move(texts)), runner_(std::move(runner)),
        running_(std::move(running)), loop_(clock, [this](int64_t now) { return Tick(now); }) {}
  virtual ~ScheduledJobs() { Stop(); }
  ScheduledJobs(const ScheduledJobs&) = delete;
  ScheduledJobs& operator=(const ScheduledJobs&) = delete;

  // Set before Start(): what a scheduled run that could not start leaves behind.
  void OnLaunchFailed(LaunchFailed f) {
    std::lock_guard lock(mu_);
    launch_failed_ = std::move(f);
  }

  // Reads the stored jobs (a record that no longer parses is skipped with a warning).
  Status Load() {
    HEARTH_ASSIGN_OR_RETURN(auto text, store_.GetMeta(texts_.store_key));
    std::lock_guard lock(mu_);
    jobs_.clear();
    if (!text || text->empty()) return Ok();
    auto doc = nlohmann::json::parse(*text, nullptr, false);
    if (!doc.is_array()) return Fail(Internal("stored " + texts_.kind + "s are not a JSON list"));
    for (const auto& j : doc) {
      auto job = Job::FromStoredJson(j);
      if (!job) {
        spdlog::warn("skipping a stored {} that no longer parses: {}", texts_.kind, job.error().message);
        continue;
      }
      jobs_.push_back(std::move(*job));
    }
    return Ok();
  }
  void Start() { loop_.Start(); }
  void Stop() { loop_.Stop(); }

  std::vector<Job> List() const {  // creation order
    std::lock_guard lock(mu_);
    return jobs_;
  }
  std::optional<Job> Get(const std::string& id) const {
    std::lock_guard lock(mu_);
    for (const auto& j : jobs_)
      if (j.id == id) return j;
    return std::nullopt;
  }

  // "Job '<id>' already exists" (500, pve-common PVE/Job/Registry.pm's words).
  Status Create(Job job) {
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

  // Replaces a job by `change(current)`. A new schedule or a re-enabled job counts from now
  // (Proxmox's detect_changed_runtime_props).
  Status UpdateWith(const std::string& id, const std::function<Result<Job>(const Job&)>& change) {
    {
      std::lock_guard lock(mu_);
      auto it = FindLocked(id);
      if (it == jobs_.end()) {
        if (!texts_.no_such_on_update.empty()) return Fail(Internal(texts_.no_such_on_update));
        return Fail(FieldError("id", "No such job '" + id + "'"));
      }
      HEARTH_ASSIGN_OR_RETURN(Job updated, change(*it));
      updated.id = it->id;
      updated.last_upid = it->last_upid;
      if (updated.schedule != it->schedule || (updated.enabled && !it->enabled))
        updated.last_run = clock_.UnixSeconds();
      else
        updated.last_run = it->last_run;
      Job before = *it;
      *it = std::move(updated);
      if (auto st = PersistLocked(); !st) {
        *it = std::move(before);
        return st;
      }
    }
    loop_.Wake();
    return Ok();
  }

  // "No such job '<id>'" on `id` (400).
  Status Delete(const std::string& id) {
    std::lock_guard lock(mu_);
    auto it = FindLocked(id);
    if (it == jobs_.end()) return Fail(FieldError("id", "No such job '" + id + "'"));
    Job before = *it;
    auto at = it - jobs_.begin();
    jobs_.erase(it);
    if (auto st = PersistLocked(); !st) {
      jobs_.insert(jobs_.begin() + at, std::move(before));
      return st;
    }
    return Ok();
  }

  // Starts a run now (it counts as the last run); the UPID. Refused while the last run is
  // still going, and for a job of another node.
  Result<std::string> RunNow(const std::string& id) {
    Job job;
    {
      std::lock_guard lock(mu_);
      auto it = FindLocked(id);
      if (it == jobs_.end()) return Fail(FieldError("id", "No such job '" + id + "'"));
      if (std::string node = it->Node(); !node.empty() && node != node_)
        return Fail(Internal(texts_.kind + " '" + id + "' runs on node '" + node + "', not on '" + node_ + "'"));
      if (!it->last_upid.empty() && running_ && running_(it->last_upid))
        return Fail(Internal(texts_.kind + " '" + id + "' is still running (" + it->last_upid + ")"));
      it->last_run = clock_.UnixSeconds();
      HEARTH_TRY(PersistLocked());
      job = *it;
    }
    HEARTH_ASSIGN_OR_RETURN(std::string upid, runner_(job));
    RecordUpid(id, upid);
    return upid;
  }

  // Runs the jobs due at the clock's now; the next time one is due. The thread calls it;
  // tests call it with a fake clock. The first call after a start skips runs missed while
  // the daemon was down (unless repeat-missed=1).
  std::optional<int64_t> RunDue() { return Tick(clock_.UnixSeconds()); }
  int64_t Now() const { return clock_.UnixSeconds(); }  // the scheduler's wall clock

 protected:
  // Changes the jobs under the lock: `change` returns whether it changed anything; a change
  // is persisted, or rolled back when the write fails.
  Status Mutate(const std::function<bool(std::vector<Job>&)>& change) {
    std::lock_guard lock(mu_);
    std::vector<Job> before = jobs_;
    if (!change(jobs_)) return Ok();
    if (auto st = PersistLocked(); !st) {
      jobs_ = std::move(before);
      return st;
    }
    return Ok();
  }

 private:
  Status PersistLocked() {  // caller holds mu_
    nlohmann::json doc = nlohmann::json::array();
    for (const auto& j : jobs_) doc.push_back(j.ToStoredJson());
    return store_.PutMeta(texts_.store_key, doc.dump());
  }
  typename std::vector<Job>::iterator FindLocked(const std::string& id) {
    return std::find_if(jobs_.begin(), jobs_.end(), [&](const Job& j) { return j.id == id; });
  }
  void RecordUpid(const std::string& id, const std::string& upid) {
    std::lock_guard lock(mu_);
    if (auto it = FindLocked(id); it != jobs_.end()) {
      it->last_upid = upid;
      (void)PersistLocked();
    }
  }
  void Launch(const Job& job) {
    auto upid = runner_(job);
    if (!upid) {
      spdlog::error("{} '{}': {}", texts_.kind, job.id, upid.error().message);
      LaunchFailed failed;
      {
        std::lock_guard lock(mu_);
        failed = launch_failed_;
      }
      if (!failed) return;
      // A parameter error's own words are in its fields ("vmid: no backup of VM 101 ...").
      std::string text;
      for (const auto& [field, message] : upid.error().fields) text += (text.empty() ? "" : "; ") + field + ": " + message;
      upid = failed(job, text.empty() ? upid.error().message : text);
      if (!upid) {
        spdlog::error("{} '{}': recording the failed run: {}", texts_.kind, job.id, upid.error().message);
        return;
      }
    }
    spdlog::info("{} '{}' started: {}", texts_.kind, job.id, *upid);
    RecordUpid(job.id, *upid);
  }

  std::optional<int64_t> Tick(int64_t now) {
    std::vector<Job> due;
    std::optional<int64_t> earliest;
    {
      std::lock_guard lock(mu_);
      bool changed = false;
      for (auto& job : jobs_) {
        if (std::string node = job.Node(); !node.empty() && node != node_) continue;
        // pvescheduler's first run after a start: missed runs are skipped, not caught up.
        if (first_tick_ && !job.repeat_missed && job.last_run < now) {
          auto missed = job.NextEvent(job.last_run);
          if (missed && *missed <= now) {
            spdlog::info("{} '{}': skipping the run missed while hearth was down (repeat-missed=0)", texts_.kind, job.id);
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
        if (auto st = PersistLocked(); !st) spdlog::error("{}s: {}", texts_.kind, st.error().message);
    }
    for (const auto& job : due) Launch(job);
    return earliest;
  }

  Store& store_;
  const Clock& clock_;
  const std::string node_;
  const Texts texts_;
  Runner runner_;
  TaskRunning running_;
  mutable std::mutex mu_;
  LaunchFailed launch_failed_;  // GUARDED_BY(mu_)
  std::vector<Job> jobs_;  // GUARDED_BY(mu_)
  bool first_tick_ = true;  // GUARDED_BY(mu_)
  JobLoop loop_;            // last: its thread calls Tick, which uses the members above
};

}  // namespace hearth

#include "tasks/task_manager.h"

#include <algorithm>
#include <optional>
#include <thread>

#include "core/strings.h"

namespace hearth {

TaskContext::~TaskContext() {
  if (log_) (void)log_->Close();
}

void TaskContext::Log(const std::string& line) {
  std::lock_guard lock(mu_);
  if (!log_ || log_truncated_) return;
  std::string_view text = line;
  if (text.size() > kMaxTaskLogLine) text = text.substr(0, kMaxTaskLogLine);
  if (log_bytes_ + text.size() + 1 > max_log_bytes_) {
    log_truncated_ = true;
    Write("task log truncated: it reached " + std::to_string(max_log_bytes_ >> 10) +
          " KiB; further output is dropped");
    return;
  }
  log_bytes_ += text.size() + 1;
  Write(std::string(text));
}

void TaskContext::LogFinal(const std::string& line) {
  std::lock_guard lock(mu_);
  if (log_) Write(line.substr(0, kMaxTaskLogLine));
}

void TaskContext::Write(const std::string& line) {
  // After a failed write (a full disk) part of the line may be in the file without its
  // newline: start on a fresh line so the next one, the verdict above all, is not glued to it.
  Status st = TaskLogDir::AppendTo(*log_, line, log_torn_);
  log_torn_ = !st;
}

void TaskContext::Warn(const std::string& line) {
  {
    std::lock_guard lock(mu_);
    ++warnings_;
  }
  Log("WARN: " + line);
}

TaskManager::TaskManager(Store& store, FileSystem& fs, const Clock& clock, std::string node, std::string log_root,
                         uint64_t pstart)
    : store_(store), clock_(clock), node_(std::move(node)), logs_(fs, std::move(log_root)), pstart_(pstart) {}

TaskManager::~TaskManager() {
  WaitIdle();
  std::unique_lock lock(pool_mu_);
  pool_stopping_ = true;
  pool_cv_.notify_all();
  pool_gone_cv_.wait(lock, [&] { return pool_threads_ == 0; });
}

void TaskManager::Dispatch(std::function<void()> job) {
  std::lock_guard lock(pool_mu_);
  pool_jobs_.push_back(std::move(job));
  // Every queued job needs its own idle thread: a woken thread counts as idle until it runs,
  // so comparing with the queue (not just idle_ > 0) keeps two quick Starts from sharing
  // one thread, where the second would wait for the first task to end.
  if (pool_jobs_.size() <= pool_idle_) {
    pool_cv_.notify_one();
    return;
  }
  ++pool_threads_;
  std::thread(&TaskManager::ThreadLoop, this).detach();
}

void TaskManager::ThreadLoop() {
  std::unique_lock lock(pool_mu_);
  while (true) {
    if (pool_jobs_.empty()) {
      ++pool_idle_;
      bool got = pool_cv_.wait_for(lock, std::chrono::seconds(30),
                                   [&] { return !pool_jobs_.empty() || pool_stopping_; });
      --pool_idle_;
      if (!got || pool_jobs_.empty()) break;  // idle long enough, or stopping
    }
    auto job = std::move(pool_jobs_.front());
    pool_jobs_.pop_front();
    lock.unlock();
    job();
    job = nullptr;
    lock.lock();
  }
  --pool_threads_;
  pool_gone_cv_.notify_all();
}

Result<std::string> TaskManager::Start(const TaskSpec& spec, Work work) {
  uint64_t seq = 0;
  {
    // Task numbers are reserved from the store 256 at a time (one write, not one per task).
    std::lock_guard lock(seq_mu_);
    if (seq_next_ == seq_end_) {
      HEARTH_ASSIGN_OR_RETURN(seq_next_, store_.NextSequence("task", 256));
      seq_end_ = seq_next_ + 256;
    }
    seq = seq_next_++;
  }
  Upid u{node_, seq, pstart_, clock_.UnixSeconds(), spec.type, spec.id, spec.user};
  std::string upid = u.ToString();
  HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<WritableFile> log, logs_.Create(upid));
  TaskRecord rec{upid, node_, spec.type, spec.id, spec.user, u.starttime, 0, "", spec.vmid};
  if (auto st = store_.InsertTask(rec); !st) {
    (void)log->Close();
    return Fail(st.error());
  }
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  {
    std::lock_guard lock(mu_);
    active_[upid] = Active{spec, cancelled};
  }
  ++running_;
  Dispatch([this, upid, log, spec, work = std::move(work), cancelled]() mutable {
    Run(upid, std::move(log), spec, std::move(work), cancelled);
  });
  return upid;
}

void TaskManager::Run(std::string upid, std::shared_ptr<WritableFile> log, TaskSpec spec, Work work,
                      std::shared_ptr<std::atomic<bool>> cancelled) {
  TaskContext ctx(std::move(log), upid, *cancelled, max_log_bytes_);
  Status result = Ok();
  {
    std::set<int> vmids(spec.also_lock.begin(), spec.also_lock.end());
    if (spec.vmid > 0) vmids.insert(spec.vmid);
    vmids.erase(0);
    std::vector<std::unique_ptr<VmLocks::Guard>> held;
    for (int id : vmids) {  // ascending: two tasks never wait on each other
      if (locks_.Busy(id)) ctx.Log("waiting for other operations on VM " + std::to_string(id));
      held.push_back(locks_.Acquire(id));
    }
    if (*cancelled) {
      result = Fail(Aborted("task cancelled before it started"));
    } else {
      try {
        result = work(ctx);
      } catch (const std::exception& e) {
        result = Fail(Internal(std::string("unexpected exception: ") + e.what()));
      }
    }
  }
  std::string exitstatus;
  if (result) {
    if (ctx.warnings() > 0) {
      exitstatus = "WARNINGS: " + std::to_string(ctx.warnings());
      ctx.LogFinal("TASK WARNINGS: " + std::to_string(ctx.warnings()));
    } else {
      exitstatus = "OK";
      ctx.LogFinal("TASK OK");
    }
  } else {
    // A field-level error (from validation inside the work) names the field in the log.
    std::string msg(Trim(result.error().message));
    if (!result.error().fields.empty()) {
      std::vector<std::string> parts;
      for (const auto& [field, text] : result.error().fields) parts.push_back(field + ": " + text);
      msg = Join(parts, "; ");
    }
    for (char& c : msg)
      if (c == '\n') c = ' ';
    exitstatus = msg;
    ctx.LogFinal("TASK ERROR: " + msg);
  }
  (void)store_.FinishTask(upid, clock_.UnixSeconds(), exitstatus);
  std::lock_guard lock(mu_);
  active_.erase(upid);
  --running_;
  idle_cv_.notify_all();
}

Result<TaskInfo> TaskManager::Get(const std::string& upid) {
  HEARTH_ASSIGN_OR_RETURN(Upid u, ParseUpid(upid));
  HEARTH_ASSIGN_OR_RETURN(auto rec, store_.GetTask(upid));
  if (!rec) return Fail(FieldError("upid", "no such task"));
  return TaskInfo{*rec, u, rec->endtime == 0};
}

Result<std::pair<std::vector<std::string>, size_t>> TaskManager::ReadLog(const std::string& upid, size_t start,
                                                                         size_t limit) {
  HEARTH_TRY(Get(upid));
  return logs_.Read(upid, start, limit);
}

Result<std::pair<std::vector<TaskInfo>, size_t>> TaskManager::List(const TaskFilter& filter) {
  HEARTH_ASSIGN_OR_RETURN(auto page, store_.ListTasks(filter));
  std::vector<TaskInfo> out;
  for (auto& rec : page.first) {
    auto u = ParseUpid(rec.upid);
    if (!u) continue;
    out.push_back({rec, *u, rec.endtime == 0});
  }
  return std::make_pair(std::move(out), page.second);
}

Status TaskManager::Cancel(const std::string& upid) {
  HEARTH_TRY(ParseUpid(upid));
  std::lock_guard lock(mu_);
  if (auto it = active_.find(upid); it != active_.end()) *it->second.cancelled = true;
  return Ok();
}

void TaskManager::CancelWhere(int vmid, const std::vector<std::string>& types) {
  std::lock_guard lock(mu_);
  for (auto& [upid, a] : active_)
    if (a.spec.vmid == vmid && std::find(types.begin(), types.end(), a.spec.type) != types.end()) *a.cancelled = true;
}

Status TaskManager::RecoverUnfinished() {
  HEARTH_ASSIGN_OR_RETURN(auto tasks, store_.UnfinishedTasks());
  for (const auto& t : tasks) {
    (void)logs_.Append(t.upid, "TASK ERROR: unexpected status (hearth stopped while the task ran)");
    HEARTH_TRY(store_.FinishTask(t.upid, clock_.UnixSeconds(), "unexpected status"));
  }
  return Ok();
}

Result<size_t> TaskManager::Prune(int64_t max_age_seconds, size_t keep) {
  HEARTH_ASSIGN_OR_RETURN(auto gone, store_.PruneTasks(clock_.UnixSeconds() - max_age_seconds, keep));
  for (const auto& upid : gone) logs_.Remove(upid);
  return gone.size();
}

Result<std::string> TaskManager::WaitFinished(const std::string& upid, std::chrono::milliseconds timeout) {
  {
    std::unique_lock lock(mu_);
    // idle_cv_ is notified whenever any task ends.
    if (!idle_cv_.wait_for(lock, timeout, [&] { return active_.count(upid) == 0; }))
      return Fail(Unavailable("task " + upid + " did not end within " + std::to_string(timeout.count() / 1000) + " s"));
  }
  HEARTH_ASSIGN_OR_RETURN(TaskInfo info, Get(upid));
  return info.record.exitstatus;
}

bool TaskManager::WaitIdleFor(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return idle_cv_.wait_for(lock, timeout, [&] { return running_ == 0; });
}

void TaskManager::WaitIdle() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return running_ == 0; });
}

}  // namespace hearth

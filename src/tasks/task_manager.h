// TaskManager: runs slow work in the background and records it as a Proxmox task.
//
// Start() validates nothing (handlers do that), records the task in the store and creates
// its log before returning the UPID — so the task is queryable the moment a client sees
// the id — then runs the work on its own thread. Work on a VM first waits its turn in
// VmLocks (FIFO, no timeout). A task ends with "TASK OK" or "TASK ERROR: <message>" as the
// last log line and its exitstatus recorded in the store.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/result.h"
#include "model/upid.h"
#include "state/store.h"
#include "sys/clock.h"
#include "tasks/task_log.h"
#include "tasks/vm_locks.h"

namespace hearth {

// A task log holds at most this much: a task with runaway output (a tool printing progress
// forever, a guest's output echoed line by line) cannot fill the disk. Past it, one line says
// so and further lines are dropped; the final TASK line is always written. Lines are cut
// at kMaxTaskLogLine bytes.
constexpr size_t kMaxTaskLogBytes = 16 << 20;
constexpr size_t kMaxTaskLogLine = 16 << 10;

class TaskContext {
 public:
  // `log`: the task log, open for appending (null: no log). A line that cannot be written
  // (a full disk) is lost; the task goes on and its status is still recorded.
  TaskContext(std::shared_ptr<WritableFile> log, std::string upid, std::atomic<bool>& cancelled,
              size_t max_log_bytes = kMaxTaskLogBytes)
      : log_(std::move(log)), upid_(std::move(upid)), cancelled_(cancelled), max_log_bytes_(max_log_bytes) {}
  ~TaskContext();
  TaskContext(const TaskContext&) = delete;
  TaskContext& operator=(const TaskContext&) = delete;
  // Appends one line to the task log (newlines are flattened; bounded as above). Thread-safe.
  void Log(const std::string& line);
  // The task's last line (TASK OK / TASK ERROR: ...), written even past the size bound.
  void LogFinal(const std::string& line);
  void Warn(const std::string& line);
  int warnings() const { return warnings_; }
  const std::string& upid() const { return upid_; }
  // Set by DELETE /nodes/{node}/tasks/{upid}; long work should check it and stop.
  bool cancelled() const { return cancelled_; }

 private:
  void Write(const std::string& line);  // mu_ held
  std::shared_ptr<WritableFile> log_;
  std::string upid_;
  std::atomic<bool>& cancelled_;
  size_t max_log_bytes_;
  std::mutex mu_;
  int warnings_ = 0;          // GUARDED_BY(mu_)
  size_t log_bytes_ = 0;      // GUARDED_BY(mu_)
  bool log_truncated_ = false;  // GUARDED_BY(mu_)
  bool log_torn_ = false;       // GUARDED_BY(mu_): the last write failed
};

struct TaskSpec {
  std::string type;  // qmstart, qmcreate, ...
  std::string id;    // usually the vmid
  std::string user;  // authenticated id, "root@pam" or "root@pam!token"
  int vmid = 0;      // >0: take the VM's operation lock before running
  // Other VMs whose config or volumes the work reads or changes (a clone's source, an
  // import's source VM). All locks are taken in ascending vmid order.
  std::vector<int> also_lock;
};

struct TaskInfo {
  TaskRecord record;
  Upid upid;
  bool running = false;
};

class TaskManager {
 public:
  using Work = std::function<Status(TaskContext&)>;

  TaskManager(Store& store, FileSystem& fs, const Clock& clock, std::string node, std::string log_root,
              uint64_t pstart);
  ~TaskManager();

  Result<std::string> Start(const TaskSpec& spec, Work work);
  Result<TaskInfo> Get(const std::string& upid);
  Result<std::pair<std::vector<std::string>, size_t>> ReadLog(const std::string& upid, size_t start, size_t limit);
  Result<std::pair<std::vector<TaskInfo>, size_t>> List(const TaskFilter& filter);
  // Asks a running task to stop; a finished or unknown task is not an error (bpg relies on it).
  Status Cancel(const std::string& upid);
  // Asks running tasks on `vmid` of the given types to stop (stop's overrule-shutdown).
  void CancelWhere(int vmid, const std::vector<std::string>& types);
  // Tasks that were running when the daemon died end as "unexpected status".
  Status RecoverUnfinished();
  // Forgets finished tasks older than `max_age_seconds` beyond the newest `keep`, with their
  // logs. Returns how many went.
  Result<size_t> Prune(int64_t max_age_seconds, size_t keep);
  // Blocks until task `upid` (started here) has ended and returns its exitstatus ("OK",
  // "WARNINGS: n" or the error); Unavailable after `timeout`.
  Result<std::string> WaitFinished(const std::string& upid, std::chrono::milliseconds timeout);
  // Blocks until no task runs (daemon shutdown, tests).
  void WaitIdle();
  // Like WaitIdle, but gives up after `timeout`; returns true if idle.
  bool WaitIdleFor(std::chrono::milliseconds timeout);
  size_t running() const { return running_; }
  VmLocks& vm_locks() { return locks_; }
  // For tests: a smaller task log bound than kMaxTaskLogBytes. Call before starting tasks.
  void set_max_log_bytes(size_t n) { max_log_bytes_ = n; }

 private:
  void Run(std::string upid, std::shared_ptr<WritableFile> log, TaskSpec spec, Work work, std::shared_ptr<std::atomic<bool>> cancelled);
  // Task threads are reused: an ended task's thread waits a while for the next one, so a
  // burst of short tasks (creates, clones) does not create and destroy a thread each.
  void Dispatch(std::function<void()> job);
  void ThreadLoop();

  Store& store_;
  const Clock& clock_;
  std::string node_;
  TaskLogDir logs_;
  uint64_t pstart_;
  size_t max_log_bytes_ = kMaxTaskLogBytes;
  VmLocks locks_;
  std::atomic<size_t> running_{0};
  std::mutex mu_;
  std::condition_variable idle_cv_;
  struct Active {
    TaskSpec spec;
    std::shared_ptr<std::atomic<bool>> cancelled;
  };
  std::map<std::string, Active> active_;  // GUARDED_BY(mu_), by UPID
  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::deque<std::function<void()>> pool_jobs_;  // GUARDED_BY(pool_mu_)
  size_t pool_idle_ = 0;                         // GUARDED_BY(pool_mu_)
  size_t pool_threads_ = 0;                      // GUARDED_BY(pool_mu_)
  bool pool_stopping_ = false;                   // GUARDED_BY(pool_mu_)
  std::condition_variable pool_gone_cv_;
  std::mutex seq_mu_;
  uint64_t seq_next_ = 0, seq_end_ = 0;          // GUARDED_BY(seq_mu_): reserved task numbers
};

}  // namespace hearth

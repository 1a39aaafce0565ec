// Runs snapshot schedules (snapshot_schedule.h): a thread sleeps until the next schedule is
// due, then starts its run as a task (type "snapsched", id = the schedule): one qmsnapshot
// task per VM, waited for, then the schedule's own old snapshots beyond its retention are
// deleted (qmdelsnapshot tasks). As Proxmox's job scheduler, a schedule runs once the time
// reaches the next event after its last run, so runs missed while the daemon was down are
// caught up once at start, not once per missed event.
//
// Schedules are cluster state: one JSON document in the store (meta key
// "snapshot-schedules"), written before a run starts so a crash never repeats it.
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "jobs/job_loop.h"
#include "jobs/snapshot_schedule.h"
#include "state/store.h"
#include "sys/clock.h"
#include "tasks/task_manager.h"
#include "vms/vm_service.h"

namespace hearth {

class SnapshotScheduler {
 public:
  SnapshotScheduler(Store& store, TaskManager& tasks, VmService& vms, const Clock& clock)
      : store_(store), tasks_(tasks), vms_(vms), clock_(clock), loop_(clock, [this](int64_t now) { return Tick(now); }) {}
  ~SnapshotScheduler() { Stop(); }

  // Reads the stored schedules (a record that no longer parses is skipped with a warning).
  Status Load();
  void Start() { loop_.Start(); }
  void Stop() { loop_.Stop(); }

  std::vector<SnapshotSchedule> List() const;
  std::optional<SnapshotSchedule> Get(const std::string& id) const;
  // "snapshot schedule 'x' already exists" / "... does not exist" (500, as Proxmox's jobs).
  Status Create(SnapshotSchedule schedule);
  Status Update(const std::string& id, const std::map<std::string, std::string>& set,
                const std::vector<std::string>& remove);
  Status Delete(const std::string& id);
  // Starts a run now, whatever the schedule says (it counts as the last run); the UPID.
  Result<std::string> RunNow(const std::string& id, const std::string& user);

  static constexpr char kStoreKey[] = "snapshot-schedules";

 private:
  Status PersistLocked();  // caller holds mu_
  Result<std::string> Launch(const SnapshotSchedule& s, const std::string& user);
  Status Run(TaskContext& ctx, const SnapshotSchedule& s, int64_t when, const std::string& user);
  std::vector<int> Targets(const SnapshotSchedule& s);
  std::optional<int64_t> Tick(int64_t now);  // runs what is due; the next due time

  Store& store_;
  TaskManager& tasks_;
  VmService& vms_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::map<std::string, SnapshotSchedule> schedules_;  // GUARDED_BY(mu_)
  JobLoop loop_;  // last: its thread calls Tick, which uses the members above
};

}  // namespace hearth

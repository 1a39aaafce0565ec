#include "jobs/snapshot_scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "core/strings.h"
#include "model/retention.h"

namespace hearth {
namespace {

constexpr auto kTaskWait = std::chrono::hours(6);  // one VM's snapshot or delete, RAM included

bool HasTag(const std::string& tags, const std::string& tag) {
  for (auto t : SplitAny(tags, ";, "))
    if (t == tag) return true;
  return false;
}

bool Succeeded(const std::string& exitstatus) { return exitstatus == "OK" || StartsWith(exitstatus, "WARNINGS"); }

}  // namespace

Status SnapshotScheduler::Load() {
  HEARTH_ASSIGN_OR_RETURN(auto text, store_.GetMeta(kStoreKey));
  std::lock_guard lock(mu_);
  schedules_.clear();
  if (!text || text->empty()) return Ok();
  auto doc = nlohmann::json::parse(*text, nullptr, false);
  if (!doc.is_array()) return Fail(Internal("stored snapshot schedules are not a JSON list"));
  for (const auto& j : doc) {
    auto s = SnapshotSchedule::FromJson(j);
    if (!s) {
      spdlog::warn("skipping a stored snapshot schedule that no longer parses: {}", s.error().message);
      continue;
    }
    schedules_[s->id] = std::move(*s);
  }
  return Ok();
}

Status SnapshotScheduler::PersistLocked() {
  nlohmann::json doc = nlohmann::json::array();
  for (const auto& [id, s] : schedules_) doc.push_back(s.ToJson());
  return store_.PutMeta(kStoreKey, doc.dump());
}

std::vector<SnapshotSchedule> SnapshotScheduler::List() const {
  std::lock_guard lock(mu_);
  std::vector<SnapshotSchedule> out;
  for (const auto& [id, s] : schedules_) out.push_back(s);
  return out;
}

std::optional<SnapshotSchedule> SnapshotScheduler::Get(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = schedules_.find(id);
  if (it == schedules_.end()) return std::nullopt;
  return it->second;
}

Status SnapshotScheduler::Create(SnapshotSchedule schedule) {
  std::lock_guard lock(mu_);
  if (schedules_.count(schedule.id)) return Fail(Internal("snapshot schedule '" + schedule.id + "' already exists"));
  // The first run is the first event after now, not a catch-up of the past.
  schedule.last_run = clock_.UnixSeconds();
  std::string id = schedule.id;
  schedules_[id] = std::move(schedule);
  if (auto st = PersistLocked(); !st) {
    schedules_.erase(id);
    return st;
  }
  loop_.Wake();
  return Ok();
}

Status SnapshotScheduler::Update(const std::string& id, const std::map<std::string, std::string>& set,
                                 const std::vector<std::string>& remove) {
  std::lock_guard lock(mu_);
  auto it = schedules_.find(id);
  if (it == schedules_.end()) return Fail(Internal("snapshot schedule '" + id + "' does not exist"));
  HEARTH_ASSIGN_OR_RETURN(SnapshotSchedule updated, UpdateSnapshotSchedule(it->second, set, remove));
  SnapshotSchedule before = it->second;
  it->second = std::move(updated);
  if (auto st = PersistLocked(); !st) {
    it->second = std::move(before);
    return st;
  }
  loop_.Wake();
  return Ok();
}

Status SnapshotScheduler::Delete(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = schedules_.find(id);
  if (it == schedules_.end()) return Fail(Internal("snapshot schedule '" + id + "' does not exist"));
  SnapshotSchedule before = it->second;
  schedules_.erase(it);
  if (auto st = PersistLocked(); !st) {
    schedules_[id] = std::move(before);
    return st;
  }
  loop_.Wake();
  return Ok();
}

Result<std::string> SnapshotScheduler::RunNow(const std::string& id, const std::string& user) {
  SnapshotSchedule s;
  {
    std::lock_guard lock(mu_);
    auto it = schedules_.find(id);
    if (it == schedules_.end()) return Fail(Internal("snapshot schedule '" + id + "' does not exist"));
    // A second apart at least: the snapshot name has the run's time to the second.
    it->second.last_run = std::max(clock_.UnixSeconds(), it->second.last_run + 1);
    HEARTH_TRY(PersistLocked());
    s = it->second;
  }
  HEARTH_ASSIGN_OR_RETURN(std::string upid, Launch(s, user));
  std::lock_guard lock(mu_);
  if (auto it = schedules_.find(id); it != schedules_.end()) {
    it->second.last_upid = upid;
    (void)PersistLocked();
  }
  return upid;
}

std::vector<int> SnapshotScheduler::Targets(const SnapshotSchedule& s) {
  std::set<int> ids(s.vmids.begin(), s.vmids.end());
  if (!s.tag.empty())
    for (const auto& vm : vms_.List())
      if (HasTag(vm.tags, s.tag)) ids.insert(vm.vmid);
  return {ids.begin(), ids.end()};
}

Result<std::string> SnapshotScheduler::Launch(const SnapshotSchedule& s, const std::string& user) {
  TaskSpec spec;
  spec.type = "snapsched";
  spec.id = s.id;
  spec.user = user;
  int64_t when = s.last_run;
  return tasks_.Start(spec, [this, s, when, user](TaskContext& ctx) { return Run(ctx, s, when, user); });
}

Status SnapshotScheduler::Run(TaskContext& ctx, const SnapshotSchedule& s, int64_t when, const std::string& user) {
  std::string name = s.SnapshotName(when);
  std::vector<int> targets = Targets(s);
  ctx.Log("snapshot schedule '" + s.id + "' (" + s.schedule + "): snapshot '" + name + "' of " +
          std::to_string(targets.size()) + " VM(s), retention " + s.keep.Print());
  int failed = 0;
  for (int vmid : targets) {
    std::string vm = "VM " + std::to_string(vmid);
    auto status = vms_.CurrentStatus(vmid);
    if (!status) {
      ctx.Warn(vm + ": " + status.error().message);
      ++failed;
      continue;
    }
    if (status->is_template) {
      ctx.Log(vm + " is a template: skipped");
      continue;
    }
    auto upid = vms_.Snapshot(vmid, name, "taken by snapshot schedule '" + s.id + "'", s.vmstate, user);
    std::string exit = upid ? tasks_.WaitFinished(*upid, kTaskWait).value_or("no end seen") : upid.error().message;
    if (!Succeeded(exit)) {
      ctx.Warn(vm + ": snapshot '" + name + "' failed: " + exit);
      ++failed;
      continue;
    }
    ctx.Log(vm + ": snapshot '" + name + "' created" + (upid ? " (" + *upid + ")" : ""));
    // Retention over this schedule's own snapshots only; never a manual one.
    auto cfg = vms_.FullConfig(vmid);
    if (!cfg) continue;
    std::vector<std::string> names;
    std::vector<PruneItem> items;
    for (const auto& [snap, section] : cfg->snapshots) {
      auto run = s.RunTimeOf(snap);
      if (!run || section.count("snapstate")) continue;
      names.push_back(snap);
      items.push_back({*run, false});
    }
    auto marks = MarkForPrune(items, s.keep, s.Utc());
    for (size_t i = 0; i < names.size(); ++i) {
      if (marks[i] != PruneMark::kRemove) continue;
      auto del = vms_.DeleteSnapshot(vmid, names[i], false, user);
      std::string done = del ? tasks_.WaitFinished(*del, kTaskWait).value_or("no end seen") : del.error().message;
      if (Succeeded(done)) ctx.Log(vm + ": removed snapshot '" + names[i] + "' (retention)");
      else ctx.Warn(vm + ": removing snapshot '" + names[i] + "' failed: " + done);
    }
  }
  if (targets.empty()) ctx.Warn("no VM matches this schedule");
  if (failed > 0 && failed == static_cast<int>(targets.size()))
    return Fail(Internal("snapshot schedule '" + s.id + "': no VM was snapshotted"));
  return Ok();
}

std::optional<int64_t> SnapshotScheduler::Tick(int64_t now) {
  std::vector<SnapshotSchedule> due;
  std::optional<int64_t> earliest;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, s] : schedules_) {
      if (!s.enabled) continue;
      auto next = s.NextRun();
      if (!next) continue;
      if (*next <= now) {
        s.last_run = now;
        due.push_back(s);
        next = s.NextRun();
        if (!next) continue;
      }
      if (!earliest || *next < *earliest) earliest = next;
    }
    // Recorded before the runs start: a crash during a run does not run it again.
    if (!due.empty())
      if (auto st = PersistLocked(); !st) spdlog::error("snapshot schedules: {}", st.error().message);
  }
  for (const auto& s : due) {
    auto upid = Launch(s, "root@pam");
    if (!upid) {
      spdlog::error("snapshot schedule '{}': {}", s.id, upid.error().message);
      continue;
    }
    spdlog::info("snapshot schedule '{}' started: {}", s.id, *upid);
    std::lock_guard lock(mu_);
    if (auto it = schedules_.find(s.id); it != schedules_.end()) {
      it->second.last_upid = *upid;
      (void)PersistLocked();
    }
  }
  return earliest;
}

}  // namespace hearth

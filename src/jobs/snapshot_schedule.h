// A snapshot schedule (hearth's own, beyond Proxmox; API under
// /cluster/hearth/snapshot-schedules): which VMs (a vmid list, a tag, or both), when (a
// Proxmox calendar event), how many of its snapshots to keep (Proxmox's keep-* retention),
// and whether RAM is saved too. Pure: the fields from the API, checks with errors naming the
// field, and the stored JSON form. The scheduler is snapshot_scheduler.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "model/calendar_event.h"
#include "model/retention.h"

namespace hearth {

struct SnapshotSchedule {
  std::string id;        // [a-z][a-z0-9_-]*, at most kMaxScheduleIdLength
  std::string schedule;  // calendar event text, as given
  std::vector<int> vmids;
  std::string tag;       // VMs whose `tags` include it
  KeepOptions keep;      // applies only to this schedule's own snapshots
  bool vmstate = false;
  bool enabled = true;
  std::string comment;
  int64_t last_run = 0;  // unix seconds: when it was created, or its last run began
  std::string last_upid;

  // The snapshot name of a run at `when`: "auto-<id>-YYYYMMDD-HHMMSS" (in UTC if the
  // schedule says UTC, else local time). At most 40 characters, Proxmox's limit.
  std::string SnapshotName(int64_t when) const;
  // Names SnapshotName gives (and only those: manual snapshots are never pruned).
  bool Owns(const std::string& snapname) const;
  // The run time a name of Owns() stands for (unique per run, unlike snaptime, which two
  // quick runs can share); nullopt for other names.
  std::optional<int64_t> RunTimeOf(const std::string& snapname) const;
  bool Utc() const;
  std::optional<int64_t> NextRun() const;  // after last_run; nullopt when it never runs again
  nlohmann::json ToJson() const;           // stored form and the API's entry (without next-run)
  static Result<SnapshotSchedule> FromJson(const nlohmann::json& j);
};

constexpr size_t kMaxScheduleIdLength = 16;

// The API's fields: id, schedule, vmid (comma list), tag, keep-all/keep-last/.../keep-yearly,
// vmstate, enabled, comment. Create needs id, schedule and one of vmid/tag.
Result<SnapshotSchedule> MakeSnapshotSchedule(const std::map<std::string, std::string>& fields);
// An update: `set` over `current`, `remove` (the `delete` list) back to defaults; the same
// checks as a create afterwards ("cannot set and delete property 'k' at the same time!").
Result<SnapshotSchedule> UpdateSnapshotSchedule(const SnapshotSchedule& current,
                                                const std::map<std::string, std::string>& set,
                                                const std::vector<std::string>& remove);
// The names MakeSnapshotSchedule takes, for the API's parameter list.
const std::vector<std::string>& SnapshotScheduleFields();

}  // namespace hearth

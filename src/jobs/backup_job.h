// A backup job of /cluster/backup (pve-manager PVE/API2/Backup.pm, pve-guest-common
// PVE/VZDump/JobBase.pm, pve-common PVE/Job/Registry.pm; facts in
// docs/reference/pve-backup-jobs.md): an id, a calendar `schedule`, `enabled`, `comment`,
// `repeat-missed` and the vzdump options it runs with (vms/vzdump_options.h). Pure: the
// fields from the API, the checks (errors name the field, in Proxmox's words) and the JSON
// form. The scheduler is backup_scheduler.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "vms/vzdump_options.h"

namespace hearth {

struct BackupJob {
  std::string id;
  std::string schedule;  // calendar event text, as given (or made from starttime/dow)
  bool enabled = true;
  bool repeat_missed = false;
  std::string comment;
  VzdumpOptions options;  // as given: vmid, all, exclude, storage, mode, prune-backups, ...
  // State (not part of the API's entry): when the job last ran or was created or
  // re-enabled (unix seconds), and the task it started.
  int64_t last_run = 0;
  std::string last_upid;

  // The first event of `schedule` strictly after `after`; nullopt if none.
  std::optional<int64_t> NextEvent(int64_t after) const;
  // The node the job runs on (its `node` option), "" for every node.
  std::string Node() const {
    auto it = options.find("node");
    return it == options.end() ? std::string() : it->second;
  }
  // The API's entry: {"id","type":"vzdump","schedule","enabled":1, options...}, booleans and
  // integers as numbers and property strings (prune-backups, ...) as objects, as Proxmox.
  nlohmann::json ToApiJson() const;
  nlohmann::json ToStoredJson() const;  // the entry plus the state
  static Result<BackupJob> FromStoredJson(const nlohmann::json& j);
};

// POST /cluster/backup's fields: `id` (pve-configid; the caller makes one when absent),
// `schedule` or the deprecated `starttime` (+ `dow`), `enabled`, `repeat-missed`, `comment`
// and the vzdump options. "'starttime' and 'schedule' cannot both be set", "neither
// 'starttime' nor 'schedule' were set", the vzdump conflicts, "vmid: property is missing".
Result<BackupJob> MakeBackupJob(const std::map<std::string, std::string>& fields);
// PUT /cluster/backup/{id}: `set` over `current`, `remove` (the `delete` list: vzdump
// options, comment, repeat-missed; else "delete: unknown option 'x'"). Choosing one guest
// selection clears the others (vmid drops all/exclude/pool; all drops vmid/pool).
Result<BackupJob> UpdateBackupJob(const BackupJob& current, const std::map<std::string, std::string>& set,
                                  const std::vector<std::string>& remove);
// The names MakeBackupJob takes besides the vzdump options.
const std::vector<std::string>& BackupJobFields();

// A job's `schedule`: a Proxmox calendar event; errors name `schedule` ("invalid format -
// invalid calendar event 'x' - ...").
Status CheckJobSchedule(const std::string& schedule);
// pve-configid: ^[a-z][a-z0-9_-]+$ (case-insensitive).
bool IsBackupJobId(const std::string& id);
constexpr size_t kMaxBackupJobIdLength = 50;  // pve-backup-jobid's maxLength

}  // namespace hearth

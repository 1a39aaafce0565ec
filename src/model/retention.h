// Retention ("prune-backups": keep-all, keep-last, keep-hourly, keep-daily, keep-weekly,
// keep-monthly, keep-yearly) and which items it keeps, after pve-storage Plugin.pm
// (validate_prune_backups) and Storage.pm (prune_mark_backup_group);
// docs/reference/pve-calendar-and-prune.md section 2. Used for backups and for hearth's
// scheduled snapshots. Pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace hearth {

struct KeepOptions {
  bool keep_all = false;
  int last = 0, hourly = 0, daily = 0, weekly = 0, monthly = 0, yearly = 0;
  // Nothing is ever removed: keep-all, or no keep-* above 0.
  bool KeepsAll() const;
  // "keep-last=3,keep-daily=7" (keys with a value above 0, in Proxmox's order), or "keep-all=1".
  std::string Print() const;
};

// The property string. Errors name the key ("keep-last: type check ('integer') failed - got
// 'x'") or are Proxmox's ("keep-all cannot be set together with other options.",
// "invalid key in comma-separated list property: k").
Result<KeepOptions> ParseKeepOptions(std::string_view text);
// The same for an API parameter (`prune-backups`): errors name `field`, "invalid format - " and
// then the problem ("keep-last: type check ('integer') failed - got 'x'").
Result<KeepOptions> ParseKeepOptionsParam(const std::string& field, std::string_view text);
// The option names, for APIs that take them as separate parameters.
const std::vector<std::string>& KeepOptionNames();

enum class PruneMark { kKeep, kRemove, kProtected };
const char* PruneMarkName(PruneMark m);  // "keep", "remove", "protected"

struct PruneItem {
  int64_t ctime = 0;  // unix seconds
  bool is_protected = false;
};

// One mark per item of one group (a VM's backups, a schedule's snapshots), in the items'
// order. Buckets (hour, day, ISO week, month, year) are in the local time zone unless `utc`.
std::vector<PruneMark> MarkForPrune(const std::vector<PruneItem>& items, const KeepOptions& keep, bool utc = false);

}  // namespace hearth

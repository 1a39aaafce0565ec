// Prune marking: which backups of one group (one VM) a retention policy keeps, exactly as
// Proxmox's prune_mark_backup_group (pve-storage PVE/Storage.pm; docs/reference/pve-prune.md
// section 1, whose worked examples are the unit tests).
//
// Passes run newest first in the order last, hourly, daily, weekly, monthly, yearly; each
// keeps the newest backup of up to N new time buckets (local time; ISO weeks; calendar
// years), marks older backups in a bucket it took "remove", and stops at the N+1-th new
// bucket, leaving older backups to the next pass. Protected backups are marked before and
// never count. Whatever no pass kept is removed. No positive option (or keep-all) keeps all.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

namespace hearth {

struct KeepOptions {
  bool keep_all = false;
  int64_t last = 0, hourly = 0, daily = 0, weekly = 0, monthly = 0, yearly = 0;
  // The `prune-backups` property string of the options that are set ("keep-daily=7,keep-last=3"),
  // sorted by key as vzdump's "prune older backups with retention: ..." line.
  std::string Describe() const;
};

struct PruneEntry {
  int64_t ctime = 0;
  std::string mark;  // in: "" or "protected"; out: "keep", "remove" or "protected"
};

// Marks every entry of `group` (any order). `local_time` converts a unix time to the broken-
// down local time the buckets use (default: localtime_r, the node's time zone).
void PruneMarkGroup(std::vector<PruneEntry>& group, const KeepOptions& keep,
                    const std::function<std::tm(int64_t)>& local_time = nullptr);

}  // namespace hearth

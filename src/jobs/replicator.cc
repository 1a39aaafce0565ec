#include "jobs/replicator.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>

#include "core/strings.h"
#include "core/units.h"
#include "model/vm_snapshot.h"
#include "model/volume_id.h"
#include "sys/crash_point.h"
#include "sys/files.h"

namespace hearth {
namespace {

bool Holds(const std::vector<std::string>& snaps, const std::string& s) {
  return std::find(snaps.begin(), snaps.end(), s) != snaps.end();
}

std::string Rate(const ReplicationJob& job) {
  if (!job.rate) return "none";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g MByte/s", *job.rate);
  return buf;
}

std::string Seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", s);
  return buf;
}

// The storage ids of the volumes, sorted and once each.
std::vector<std::string> StoragesOf(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::set<std::string> ids;
  for (const auto* list : {&a, &b})
    for (const auto& v : *list)
      if (auto id = ParseVolumeId(v)) ids.insert(id->storage);
  return std::vector<std::string>(ids.begin(), ids.end());
}

bool HasJobSnapshot(const std::vector<std::string>& snaps, const std::string& jobid) {
  for (const auto& s : snaps)
    if (auto p = ParseReplicationSnapshotName(s); p && p->first == jobid) return true;
  return false;
}

}  // namespace

void Replicator::DropSnapshots(const std::string& jobid, const std::vector<std::string>& volids,
                               const std::string& keep, const ReplicationLog& log) {
  for (const auto& volid : volids) {
    auto id = ParseVolumeId(volid);
    auto st = id ? storage_.Get(id->storage) : Result<std::shared_ptr<StoragePlugin>>(Fail(id.error()));
    if (!st) continue;
    auto snaps = (*st)->VolumeSnapshotNames(id->volname);
    if (!snaps) continue;
    for (const auto& s : *snaps) {
      auto p = ParseReplicationSnapshotName(s);
      if (!p || p->first != jobid || s == keep) continue;
      log("delete previous replication snapshot '" + s + "' on " + volid);
      if (auto r = (*st)->VolumeSnapshotDelete(id->volname, s); !r) log("delete replication snapshot error: " + r.error().message);
    }
  }
}

Result<ReplicationRunStats> Replicator::Run(const ReplicationJob& job, ReplicationState& state,
                                            ReplicationTarget& target, const ReplicationLog& log,
                                            const std::function<void(const ReplicationState&)>& synced) {
  int64_t start = clock_.UnixSeconds();
  if (start <= state.last_sync)
    return Fail(Internal("start time before last sync (" + std::to_string(start) + " <= " +
                         std::to_string(state.last_sync) + ") - abort sync"));
  if (!vms_.Exists(job.guest)) return Fail(NotFound("guest '" + std::to_string(job.guest) + "' does not exist"));
  HEARTH_ASSIGN_OR_RETURN(std::vector<std::string> volids, vms_.ReplicatableVolumes(job.guest));
  auto status = vms_.CurrentStatus(job.guest);
  bool running = status && status->status == "running";
  log("guest => VM " + std::to_string(job.guest) + ", running => " + (running ? "1" : "0"));
  log("volumes => " + Join(volids, ","));
  if (volids.empty()) return Fail(Internal("No replicatable volumes found"));

  // 1. What both sides hold; stale snapshots of failed runs go on both. The target scans
  // the storages of this run and the last one (a disk moved to another storage).
  std::string last = state.last_sync > 0 ? ReplicationSnapshotName(job.id, state.last_sync) : "";
  std::vector<std::string> previous = state.volumes;
  state.volumes = volids;
  log("prepare " + target.Describe());
  HEARTH_ASSIGN_OR_RETURN(auto remote, target.Prepare(job.id, volids, StoragesOf(volids, previous), state.last_sync,
                                                      false, node_, log));
  std::map<std::string, std::string> bases;  // volid -> the snapshot both sides hold ("" = full)
  std::vector<std::string> no_base;
  for (const auto& volid : volids) {
    HEARTH_ASSIGN_OR_RETURN(VolumeId id, ParseVolumeId(volid));
    HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, storage_.Get(id.storage));
    HEARTH_ASSIGN_OR_RETURN(auto snaps, st->VolumeSnapshotNames(id.volname));
    bool has_last = !last.empty() && Holds(snaps, last);
    if (has_last) {
      DropSnapshots(job.id, {volid}, last, log);
    } else if (!last.empty() && HasJobSnapshot(snaps, job.id)) {
      log("expected snapshot " + last + " not present for " + volid + ", not removing others");
    }
    auto it = remote.find(volid);
    if (it == remote.end()) continue;  // not there yet: a full stream
    // The last synced snapshot, else the newest of the job's that both hold (a run whose
    // transfer finished but was not recorded: Proxmox's find_common_replication_snapshot).
    if (has_last && Holds(it->second, last)) {
      bases[volid] = last;
      continue;
    }
    std::string common;
    int64_t newest = 0;
    for (const auto& s : it->second)
      if (auto p = ParseReplicationSnapshotName(s); p && p->first == job.id && p->second > newest && Holds(snaps, s)) {
        newest = p->second;
        common = s;
      }
    // On the target without a common snapshot: a full stream cannot replace it.
    if (common.empty()) no_base.push_back(volid);
    else bases[volid] = common;
  }
  if (!no_base.empty())
    return Fail(Internal("No common base snapshot on volume(s) " + Join(no_base, ",") +
                         "\nPlease remove the problematic volume(s) from the replication target or delete and "
                         "re-create the whole job " + job.id));
  // Disks the job no longer sends (replicate=0, detached): its snapshots on them go.
  if (auto all = vms_.ReplicatableVolumes(job.guest, /*cleanup=*/true)) {
    std::vector<std::string> dropped;
    for (const auto& v : *all)
      if (!Holds(volids, v)) dropped.push_back(v);
    for (const auto& v : previous)
      if (!Holds(volids, v) && !Holds(dropped, v)) dropped.push_back(v);
    DropSnapshots(job.id, dropped, "", log);
  }

  // 2. The snapshots of this run.
  std::string snap = ReplicationSnapshotName(job.id, start);
  HEARTH_TRY(vms_.SnapshotForReplication(job.guest, snap, volids, log));
  auto undo = [&](Error e) -> Result<ReplicationRunStats> {
    for (const auto& volid : volids) {
      auto id = ParseVolumeId(volid);
      auto st = id ? storage_.Get(id->storage) : Result<std::shared_ptr<StoragePlugin>>(Fail(id.error()));
      if (!st) continue;
      log("delete previous replication snapshot '" + snap + "' on " + volid);
      (void)(*st)->VolumeSnapshotDelete(id->volname, snap);
    }
    return Fail(std::move(e));
  };

  // 3. The streams.
  ReplicationRunStats stats;
  uint64_t rate_bps = target.Remote() && job.rate ? static_cast<uint64_t>(*job.rate * 1e6) : 0;
  log(target.Remote() ? "using secure transmission, rate limit: " + Rate(job) : "sending to " + target.Describe());
  for (const auto& volid : volids) {
    auto id = ParseVolumeId(volid);
    if (!id) return undo(id.error());
    auto st = storage_.Get(id->storage);
    if (!st) return undo(st.error());
    std::string base = bases.count(volid) ? bases[volid] : "";
    log(base.empty() ? "full sync '" + volid + "' (" + snap + ")"
                     : "incremental sync '" + volid + "' (" + base + " => " + snap + ")");
    std::string dir = (*st)->TempDir();
    if (auto mk = MakeDirs(dir); !mk) return undo(mk.error());
    std::string stream = dir + "/replicate-" + job.id + "-" + std::to_string(start) + ".stream";
    auto size = (*st)->ExportVolume(id->volname, snap, base, stream);
    if (!size) return undo(std::move(size.error()).WithContext("export of " + volid));
    log("send " + volid + ": " + HumanBytes(*size) + " stream (" + std::to_string(*size) + " bytes)");
    int next_tenth = 1;
    auto t0 = std::chrono::steady_clock::now();
    auto progress = [&](uint64_t sent) {
      if (*size < (64u << 20)) return;
      while (next_tenth <= 9 && sent * 10 >= *size * static_cast<uint64_t>(next_tenth)) {
        log(volid + ": " + HumanBytes(sent) + " of " + HumanBytes(*size) + " sent (" + std::to_string(next_tenth * 10) +
            "%)");
        ++next_tenth;
      }
    };
    Status got = target.Receive(job.guest, volid, snap, base, stream, rate_bps, progress);
    ::unlink(stream.c_str());
    if (!got) return undo(std::move(got.error()).WithContext("transfer of " + volid));
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    log("received " + volid + " (" + HumanBytes(*size) + " in " + Seconds(secs) + ")");
    stats.bytes += *size;
    ++(base.empty() ? stats.full : stats.incremental);
  }

  // 4. Recorded, then the old snapshots go on both sides.
  CrashPoint("replicate.sent");
  state.last_sync = start;
  if (synced) synced(state);
  CrashPoint("replicate.synced");
  DropSnapshots(job.id, volids, snap, log);
  auto cfg = vms_.FullConfig(job.guest);
  std::string conf = cfg ? FormatConfFile(*cfg) : "";
  if (auto r = target.Finalize(job.id, volids, start, node_, conf, log); !r)
    log("delete stale replication snapshot error: " + r.error().message);
  return stats;
}

Status Replicator::Remove(const ReplicationJob& job, const ReplicationState& state, ReplicationTarget* target,
                          const ReplicationLog& log) {
  log("start job removal - mode '" + job.remove_job + "'");
  std::vector<std::string> volids = state.volumes;
  if (vms_.Exists(job.guest))
    if (auto now = vms_.ReplicatableVolumes(job.guest, /*cleanup=*/true))
      for (const auto& v : *now)
        if (!Holds(volids, v)) volids.push_back(v);
  if (job.remove_job == "full" && !volids.empty()) {
    if (!target) return Fail(Unavailable("the target of job '" + job.id + "' is unknown: cannot remove its copies"));
    HEARTH_TRY(target->Prepare(job.id, volids, StoragesOf(volids, {}), 1, true, node_, log));
  }
  DropSnapshots(job.id, volids, "", log);
  log("job removed");
  return Ok();
}

}  // namespace hearth

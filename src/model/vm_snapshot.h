// VM snapshots as config changes, after pve-guest-common AbstractConfig.pm (snapshot_create,
// snapshot_delete, snapshot_rollback) and qemu-server QemuConfig.pm; docs/reference/
// pve-snapshots.md sections 3 and 4. Pure functions over a VmConfig: the VM service runs the
// volume operations between them and writes the config after each step, so a crash leaves a
// `lock` (snapshot, snapshot-delete, rollback) and a `snapstate` that say what was going on.
// Errors use Proxmox's texts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "model/vm_config.h"

namespace hearth {

// pve-snapshot-name for a new snapshot: the format (field "snapname"), then the reserved
// names "current" and "pending" ("unable to use snapshot name 'current' (reserved name)").
Status CheckNewSnapshotName(const std::string& name);

// Volume snapshots a replication job makes: "__replicate_<jobid>_<time>__" (pve-guest-common
// ReplicationState.pm replication_snapshot_name). They are storage snapshots only, never
// config sections, so they never clash with pve-snapshot-name (a letter first).
std::string ReplicationSnapshotName(const std::string& jobid, int64_t time);
// The job id and time of a name ReplicationSnapshotName makes, else nullopt.
std::optional<std::pair<std::string, int64_t>> ParseReplicationSnapshotName(const std::string& name);

// A running VM's file systems are frozen through its guest agent around a disk-only
// snapshot: `agent` enabled, unless freeze-fs=0 (qemu-server Agent.pm guest_fs_freeze_applicable).
bool WantsFsFreeze(const VmConfig& cfg);

// The drive keys and volumes a snapshot section holds (cdroms and unusedN left out).
std::vector<std::pair<std::string, std::string>> SnapshotDrives(const std::map<std::string, std::string>& section);

// snapshot_create's prepare step: template and lock checks, the duplicate check, the stale
// parent guard (returns its warnings in `warnings`), then `lock: snapshot` and a section with
// the applied values, snapstate "prepare", snaptime and the description.
Status PrepareSnapshot(VmConfig& config, const std::string& name, const std::string& description, int64_t now,
                       std::vector<std::string>* warnings);
// The commit step: lock and state checked, snapstate and lock removed, parent = name.
Status CommitSnapshot(VmConfig& config, const std::string& name);
// Drops a snapshot that `PrepareSnapshot` made (create failed): the config as before.
void AbandonSnapshot(VmConfig& config, const std::string& name);

// snapshot_delete's first step: lock checks, then `lock: snapshot-delete`, snapstate "delete".
// With `force`, a delete of the same snapshot that failed half-way is taken up again.
Status PrepareSnapshotDelete(VmConfig& config, const std::string& name, bool force = false);
// The last step: children re-parented, section and lock removed; a disk only this snapshot
// held becomes unusedN.
Status FinishSnapshotDelete(VmConfig& config, const std::string& name);

// snapshot_rollback's prepare checks (template, existence, snapstate, lock); the caller then
// stops the VM and sets `lock: rollback`.
Status CheckRollback(const VmConfig& config, const std::string& name);
// The commit: the snapshot's values become the config (description and unusedN kept, disks
// only the current config names become unusedN, pending dropped), parent = name, no lock.
Status ApplyRollback(VmConfig& config, const std::string& name);

}  // namespace hearth

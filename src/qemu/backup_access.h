// Point-in-time reads of a running VM's disks, for a backup that does not pause the guest
// (vzdump's mode=snapshot), and the dirty bitmaps that make the next backup incremental.
//
// The sequence is "variant B" of docs/reference/qemu-fleecing.md (checked on QEMU 7.2), the
// fleecing of QEMU's iotest image-fleecing:
//   1. AttachFleecing: per disk, a qcow2 overlay ("hearth-fleece-<key>") whose backing is the
//      drive's node; the file is made by the caller and passed as a descriptor.
//   2. TakePointInTime: ONE transaction for all disks: a new dirty bitmap starts recording,
//      the bitmap being exported is frozen (disabled), and a blockdev-backup sync=none job per
//      disk copies each cluster the guest is about to overwrite into the overlay. From here
//      the overlay reads as the disk was at that instant, while the guest writes on.
//   3. ExportFleecing: the VM's NBD server on a unix socket, one read-only export per disk
//      (named by the drive key), carrying the frozen bitmap as "qemu:dirty-bitmap:<name>".
//   4. DetachFleecing: exports, server, jobs and overlays go (discovery-based: it also
//      clears what a hearth killed mid-backup left in a QEMU that kept running).
//   5. CommitBitmaps (the backup is stored) or RollbackBitmaps (it failed: the frozen
//      bitmap absorbs the new one, so the next backup still reads everything changed since
//      the last one that was stored).
// Proxmox does the same inside its patched QEMU (pve-qemu's fleecing and backup-access
// patches); upstream 7.2 needs these steps.
//
// Names: overlays and jobs "hearth-fleece-<key>", exports "hearth-backup-<key>", bitmaps
// "hearth-backup-<generation>" (kBitmapPrefix), so leftovers are recognised as hearth's.
// Errors carry QEMU's text, prefixed with the drive key. Thread-safety: the functions hold no
// state; one backup per VM at a time (the caller's VM lock).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "qemu/qemu_control.h"

namespace hearth {

inline constexpr const char* kBitmapPrefix = "hearth-backup-";

struct DirtyBitmapState {
  std::string name;
  uint64_t granularity = 0, count = 0;  // count: dirty bytes
  bool recording = false, persistent = false, busy = false;
  bool inconsistent = false;  // not stored cleanly (QEMU was killed): only removable
};
struct BlockNodeState {
  std::string node_name, driver;  // "drive-scsi0", "qcow2"
  uint64_t virtual_size = 0;
  std::vector<DirtyBitmapState> bitmaps;
};
// query-named-block-nodes {flat: true}: the named nodes, for any reply shape (members of the
// wrong type are skipped). Pure; tested and fuzzable.
std::vector<BlockNodeState> ReadNamedBlockNodes(const nlohmann::json& ret);
Result<std::vector<BlockNodeState>> QueryBlockNodes(QemuControl& qemu, int vmid);

struct FleeceDisk {
  std::string drive_key;      // "scsi0": also the NBD export's name
  std::string node;           // the drive's block node now ("drive-scsi0")
  std::string fleece_path;    // a new empty qcow2 of the node's virtual size, no backing file
  std::string export_bitmap;  // frozen at the point in time and exported; "" for a full read
  // Starts recording at the point in time; "" for none. Kept in QEMU's memory only
  // (backup_fleece.cc says why it is not stored in the image).
  std::string new_bitmap;
};

Status AttachFleecing(QemuControl& qemu, int vmid, const std::vector<FleeceDisk>& disks);
Status TakePointInTime(QemuControl& qemu, int vmid, const std::vector<FleeceDisk>& disks);
Status ExportFleecing(QemuControl& qemu, int vmid, const std::vector<FleeceDisk>& disks, const std::string& socket);
// Removes every hearth export, the NBD server, every hearth-fleece job and node; waits (up
// to 60 s each) for the exports and jobs to be gone. Safe to call when nothing is there.
Status DetachFleecing(QemuControl& qemu, int vmid);
// After a stored backup: the exported (frozen) bitmaps go; the new ones record on.
Status CommitBitmaps(QemuControl& qemu, int vmid, const std::vector<FleeceDisk>& disks);
// After a failed one: new merged into exported, exported enabled, new removed (one
// transaction). A disk without an exported bitmap keeps its new one (a later full read).
Status RollbackBitmaps(QemuControl& qemu, int vmid, const std::vector<FleeceDisk>& disks);
// Removes hearth's bitmaps on `node` other than `keep` (a bitmap that cannot be trusted).
Status RemoveBitmaps(QemuControl& qemu, int vmid, const BlockNodeState& node, const std::string& keep = "");

}  // namespace hearth

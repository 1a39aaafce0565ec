// Copying backups from one datastore to another (offsite: a NAS share or a USB disk mounted
// as a storage with content `backup`), as Proxmox Backup Server's sync jobs do: only the
// snapshots the target lacks, and of those only the chunks it lacks. Each chunk is checked
// as it is read (a damaged one stops the copy of that snapshot, naming it); a snapshot is
// published on the target last, by its manifest, so an interrupted sync leaves no partial
// backup and the next one resumes with the chunks already there. Chunks and files are copied
// as stored: an encrypted backup stays encrypted under its key, and the target needs none.
// Facts: proxmox-backup src/server/pull.rs (pull_group); docs/reference/hearth-sync.md A2.
// Thread-safety: as the datastores; one source per run (one sync per target at a time is the caller's choice).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "backup/backup_source.h"
#include "backup/datastore.h"
#include "core/result.h"

namespace hearth {

struct SyncStats {
  uint64_t snapshots_copied = 0, snapshots_present = 0, snapshots_failed = 0;
  uint64_t snapshots_skipped = 0;  // older than the newest the target holds of their VM
  uint64_t chunks_copied = 0, chunks_present = 0;
  uint64_t bytes_stored = 0;       // on the target (compressed)
  uint64_t bytes_transferred = 0;  // chunk blobs read from the source (what a pull downloads)
};

using SyncLog = std::function<void(const std::string&)>;

// Copies the snapshots of `from` (of `vmid`, or all when 0) that `to` lacks and that are not
// older than the newest `to` holds of the same VM (PBS's pull rule: a backup the target's
// retention removed is not copied again), with their notes and protection. A VM stops at its
// first failed snapshot (logged and counted; the next run starts from it), the other VMs go
// on; errors of the stores themselves (listing, a full target) end the sync.
// `from` may be another node's (a pull): every file and chunk it sends is checked before it is
// stored, and a backup appears on `to` only once all of it is there.
Result<SyncStats> SyncDatastore(BackupSource& from, BackupDatastore& to, int vmid, const SyncLog& log,
                                const std::function<bool()>& cancelled);

// Between two datastores of this node.
inline Result<SyncStats> SyncDatastore(BackupDatastore& from, BackupDatastore& to, int vmid, const SyncLog& log,
                                       const std::function<bool()>& cancelled) {
  LocalBackupSource source(std::shared_ptr<BackupDatastore>(std::shared_ptr<void>(), &from), from.root());
  return SyncDatastore(source, to, vmid, log, cancelled);
}

}  // namespace hearth

#include "backup/datastore_sync.h"

#include "core/strings.h"
#include "core/units.h"

namespace hearth {
namespace {

Status CopySnapshot(BackupDatastore& from, BackupDatastore& to, const BackupSnapshotInfo& snap, SyncStats& stats,
                    const std::function<bool()>& cancelled) {
  HEARTH_ASSIGN_OR_RETURN(BackupManifest m, from.Manifest(snap.id));
  HEARTH_ASSIGN_OR_RETURN(auto writer, to.Begin(snap.id.vmid, snap.id.time));
  writer->SetKeyFingerprint(m.key_fingerprint);
  writer->SetSignature(m.signature);
  // Encrypted chunks are checked in full only with the key they were made with; without it,
  // their frame (the target never needs the key).
  const BackupKey* key = from.CheckKey(m) ? from.chunks().key() : nullptr;
  for (const auto& f : m.files) {
    if (EndsWith(f.filename, ".img.fidx")) {
      std::string drive = f.filename.substr(0, f.filename.size() - 9);
      HEARTH_ASSIGN_OR_RETURN(FixedIndex index, from.ReadIndex(snap.id, drive));
      for (const auto& digest : index.digests) {
        if (cancelled && cancelled()) return Fail(Aborted("sync cancelled"));
        if (to.chunks().Contains(digest)) {
          (void)to.chunks().Touch(digest);  // in use again: a GC on the target keeps it
          ++stats.chunks_present;
          continue;
        }
        HEARTH_ASSIGN_OR_RETURN(std::string blob, from.chunks().ReadBlob(digest, key).map_error([&](Error e) {
          return e.WithContext(drive);
        }));
        HEARTH_ASSIGN_OR_RETURN(ChunkStore::Inserted in, to.chunks().InsertBlob(digest, blob));
        stats.bytes_stored += in.stored_bytes;
        ++stats.chunks_copied;
      }
    }
    // Every file as stored (a sealed config stays sealed), after the chunks an index names.
    HEARTH_ASSIGN_OR_RETURN(std::string bytes, from.ReadFile(snap.id, f.filename));
    HEARTH_TRY(writer->CopyFile(f, bytes));
  }
  HEARTH_TRY(writer->Finish().map([](auto&&) {}));
  if (!snap.notes.empty()) HEARTH_TRY(to.SetNotes(snap.id, snap.notes));
  if (snap.is_protected) HEARTH_TRY(to.SetProtected(snap.id, true));
  return Ok();
}

}  // namespace

Result<SyncStats> SyncDatastore(BackupDatastore& from, BackupDatastore& to, int vmid, const SyncLog& log,
                                const std::function<bool()>& cancelled) {
  SyncStats stats;
  HEARTH_ASSIGN_OR_RETURN(auto source, from.List(vmid));
  HEARTH_ASSIGN_OR_RETURN(auto present, to.List(vmid));
  auto have = [&](const BackupSnapshotId& id) {
    for (const auto& p : present)
      if (p.id.vmid == id.vmid && p.id.time == id.time) return true;
    return false;
  };
  for (const auto& snap : source) {
    if (have(snap.id)) {
      ++stats.snapshots_present;
      continue;
    }
    uint64_t before = stats.chunks_copied;
    Status st = CopySnapshot(from, to, snap, stats, cancelled);
    if (!st) {
      if (st.error().code == ErrorCode::kAborted) return Fail(st.error());
      ++stats.snapshots_failed;
      if (log) log("sync of " + snap.id.Name() + " failed: " + st.error().message);
      continue;
    }
    ++stats.snapshots_copied;
    if (log && to.chunks().key() && snap.key_fingerprint.empty())
      log("note: " + snap.id.Name() + " is not encrypted: copied as it is to a storage with a key");
    if (log)
      log("synced " + snap.id.Name() + " (" + FormatSize(snap.size) + ", " + std::to_string(stats.chunks_copied - before) +
          " new chunk(s))");
  }
  return stats;
}

}  // namespace hearth

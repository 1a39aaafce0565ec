#include "backup/datastore_sync.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <set>
#include <tuple>
#include <vector>

#include "core/strings.h"
#include "core/units.h"
#include "sys/crash_point.h"

namespace hearth {
namespace {

constexpr int64_t kMaxClockSkew = 86400;

Status CopySnapshot(BackupSource& from, BackupDatastore& to, const BackupSnapshotInfo& snap, SyncStats& stats,
                    const std::function<bool()>& cancelled) {
  HEARTH_ASSIGN_OR_RETURN(BackupCopyInfo info, from.CopyInfo(snap.id));
  const BackupManifest& m = info.manifest;
  if (!(m.id == snap.id)) return Fail(Internal("the source answered with the manifest of " + m.id.Name()));
  HEARTH_ASSIGN_OR_RETURN(auto writer, to.Begin(snap.id.vmid, snap.id.time));
  writer->SetKeyFingerprint(m.key_fingerprint);
  writer->SetSignature(m.signature);
  bool encrypted = !m.key_fingerprint.empty();
  // A digest is fetched once per backup even when an image repeats it (zeroes); every place
  // that names it must agree on its length.
  std::map<ChunkDigest, uint64_t> done;
  for (const auto& f : m.files) {
    // Every file as stored (a sealed config stays sealed); an index's chunks before it.
    HEARTH_ASSIGN_OR_RETURN(std::string bytes, from.ReadFile(m, f.filename));
    if (EndsWith(f.filename, ".img.fidx")) {
      std::string drive = f.filename.substr(0, f.filename.size() - 9);
      HEARTH_ASSIGN_OR_RETURN(FixedIndex index, DecodeFixedIndex(bytes).map_error([&](Error e) {
        return e.WithContext(drive);
      }));
      if (index.size != f.image_size)
        return Fail(Internal(drive + ": the index describes " + std::to_string(index.size) + " bytes, the manifest " +
                             std::to_string(f.image_size)));
      for (size_t i = 0; i < index.digests.size(); ++i) {
        const ChunkDigest& digest = index.digests[i];
        if (cancelled && cancelled()) return Fail(Aborted("sync cancelled"));
        auto [seen, first] = done.emplace(digest, index.ChunkBytes(i));
        if (!first) {
          if (seen->second != index.ChunkBytes(i))
            return Fail(Internal(drive + ": chunk " + DigestHex(digest) + " is named with two lengths"));
          continue;
        }
        // Present in the same crypt mode, and touched (a GC here keeps it); a chunk a GC
        // removed in between is fetched again.
        if (to.chunks().ContainsAs(digest, encrypted) && to.chunks().Touch(digest)) {
          ++stats.chunks_present;
          continue;
        }
        HEARTH_ASSIGN_OR_RETURN(std::string blob, from.ReadChunk(snap.id, digest, encrypted).map_error([&](Error e) {
          return e.WithContext(drive);
        }));
        // Checked here whatever the source (another node's answer is hostile input): the
        // content hashes to its digest (plain) or the frame and checksum hold (encrypted),
        // and it is as long as the index says.
        HEARTH_ASSIGN_OR_RETURN(uint32_t length, ChunkStore::CheckBlob(digest, blob, encrypted).map_error([&](Error e) {
          return e.WithContext(drive);
        }));
        if (length != index.ChunkBytes(i))
          return Fail(Internal(drive + ": chunk " + DigestHex(digest) + " has " + std::to_string(length) +
                               " bytes, the index says " + std::to_string(index.ChunkBytes(i))));
        HEARTH_ASSIGN_OR_RETURN(ChunkStore::Inserted in, to.chunks().InsertBlob(digest, blob).map_error([&](Error e) {
          return e.WithContext(drive);
        }));
        stats.bytes_stored += in.stored_bytes;
        stats.bytes_transferred += blob.size();
        ++stats.chunks_copied;
        CrashPoint("sync.chunk-stored");
      }
    }
    HEARTH_TRY(writer->CopyFile(f, bytes));
  }
  // Published with the copy, so a crash right after cannot leave it unprotected.
  HEARTH_TRY(writer->SetNotes(info.notes));
  HEARTH_TRY(writer->SetProtected(info.is_protected));
  // The chunks are durable before the manifest that names them is.
  HEARTH_TRY(to.chunks().Sync());
  HEARTH_TRY(writer->Finish().map([](auto&&) {}));
  return Ok();
}

}  // namespace

Result<SyncStats> SyncDatastore(BackupSource& from, BackupDatastore& to, int vmid, const SyncLog& log,
                                const std::function<bool()>& cancelled) {
  SyncStats stats;
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  HEARTH_ASSIGN_OR_RETURN(auto source, from.List(vmid));
  HEARTH_ASSIGN_OR_RETURN(auto present, to.List(vmid));
  std::sort(source.begin(), source.end(), [](const auto& a, const auto& b) {
    return std::tie(a.id.vmid, a.id.time) < std::tie(b.id.vmid, b.id.time);
  });
  // The newest backup of each VM the target holds: older source backups are not copied, as
  // Proxmox Backup Server's pull (src/server/pull.rs, pull_group): what the target's own
  // retention pruned stays pruned instead of coming back at every run.
  std::map<int, int64_t> newest;
  std::set<std::pair<int, int64_t>> have;
  for (const auto& p : present) {
    have.insert({p.id.vmid, p.id.time});
    newest[p.id.vmid] = std::max(newest[p.id.vmid], p.id.time);
  }
  std::map<int, std::vector<const BackupSnapshotInfo*>> skipped;
  std::set<int> failed_vms;
  for (const auto& snap : source) {
    if (have.count({snap.id.vmid, snap.id.time})) {
      ++stats.snapshots_present;
      continue;
    }
    if (auto n = newest.find(snap.id.vmid); n != newest.end() && snap.id.time < n->second) {
      skipped[snap.id.vmid].push_back(&snap);
      ++stats.snapshots_skipped;
      continue;
    }
    // A VM stops at its first failure (PBS: "stop on error"), so the rule above never skips
    // a backup that failed: the next run starts from it again.
    if (failed_vms.count(snap.id.vmid)) continue;
    // A backup from the future (a wrong clock, or a source lying) would become the VM's
    // newest here: every real one after it skipped, and a keep-daily prune fooled.
    if (snap.id.time > now + kMaxClockSkew) {
      ++stats.snapshots_failed;
      failed_vms.insert(snap.id.vmid);
      if (log) log("sync of " + snap.id.Name() + " failed: it is dated more than a day ahead of this node's clock");
      continue;
    }
    uint64_t before = stats.chunks_copied;
    Status st = CopySnapshot(from, to, snap, stats, cancelled);
    if (!st) {
      if (st.error().code == ErrorCode::kAborted) return Fail(st.error());
      ++stats.snapshots_failed;
      failed_vms.insert(snap.id.vmid);
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
  if (log)
    for (const auto& [id, list] : skipped)
      log("vm/" + std::to_string(id) + ": skipped: " + std::to_string(list.size()) + " snapshot(s) (" +
          list.front()->id.Name().substr(list.front()->id.Name().rfind('/') + 1) + " .. " +
          list.back()->id.Name().substr(list.back()->id.Name().rfind('/') + 1) + ") - older than the newest local snapshot");
  return stats;
}

}  // namespace hearth

// Keeping a backup datastore healthy: verify (re-read every chunk of a backup and record the
// result, as Proxmox Backup Server's verify) and garbage collection (remove the chunks no
// backup references any more), each as a task. Design: docs/design/backup.md.
#include <chrono>
#include <map>
#include <memory>
#include <mutex>

#include "backup/datastore_sync.h"
#include "core/units.h"
#include "model/retention.h"
#include "model/upid.h"
#include "vms/vm_service.h"

namespace hearth {
namespace {

// One sync at a time into a datastore: two runs copying the same backup would share its
// staging directory (a scheduled pull and one by hand, or two jobs).
std::shared_ptr<std::mutex> SyncLockFor(const std::string& root) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<std::mutex>> locks;  // GUARDED_BY(mu)
  std::lock_guard lock(mu);
  auto& l = locks[root];
  if (!l) l = std::make_shared<std::mutex>();
  return l;
}

}  // namespace

bool BackupVerifyFilter::Includes(const std::string& verify_state, const std::string& verify_upid, int64_t now) const {
  if (!ignore_verified || verify_state.empty()) return true;
  if (!outdated_after) return false;
  auto upid = ParseUpid(verify_upid);
  if (!upid) return true;  // a state that cannot be dated is re-checked
  return *outdated_after == 0 || (now - upid->starttime) / 86400 > *outdated_after;
}

Result<std::string> VmService::VerifyBackups(const std::string& storage, int vmid, const std::string& volid,
                                             const std::string& user, const BackupVerifyFilter& filter) {
  HEARTH_ASSIGN_OR_RETURN(auto store, OpenDatastore(storage, /*need_key=*/false));
  std::vector<BackupSnapshotId> targets;
  size_t skipped = 0;  // verified recently enough (filter)
  if (!volid.empty()) {
    std::string prefix = storage + ":backup/";
    auto id = volid.rfind(prefix, 0) == 0 ? BackupSnapshotId::Parse(volid.substr(prefix.size())) : std::nullopt;
    if (!id) return Fail(FieldError("volume", "no backup '" + volid + "' on storage '" + storage + "'"));
    HEARTH_TRY(store->Info(*id));
    targets.push_back(*id);
  } else {
    HEARTH_ASSIGN_OR_RETURN(auto all, store->List(vmid));
    int64_t now = clock_.UnixSeconds();
    for (const auto& b : all)
      if (filter.Includes(b.verify_state, b.verify_upid, now)) targets.push_back(b.id);
      else ++skipped;
  }
  TaskSpec spec;
  spec.type = "verify";
  spec.id = vmid ? std::to_string(vmid) + "@" + storage : storage;
  spec.user = user;
  auto shared = std::shared_ptr<BackupDatastore>(std::move(store));
  return tasks_.Start(spec, [this, shared, storage, targets, skipped](TaskContext& ctx) -> Status {
    ctx.Log("verify datastore '" + storage + "': " + std::to_string(targets.size()) + " backup(s)");
    if (skipped) ctx.Log("skipped " + std::to_string(skipped) + " backup(s) verified recently (ignore-verified)");
    size_t failed = 0;
    for (const auto& id : targets) {
      std::string name = BackupVolid(storage, id);
      ctx.Log("verify " + name);
      auto started = clock_.Monotonic();
      // Each backup with the key it was made with, when this storage keeps it.
      std::shared_ptr<BackupDatastore> ds = shared;
      if (auto m = shared->Manifest(id); m && !m->key_fingerprint.empty())
        if (auto keyed = OpenDatastore(storage, /*need_key=*/false, m->key_fingerprint)) ds = std::move(*keyed);
      bool without_key = false;
      auto problems = ds->Verify(id, ctx.upid(), &without_key);
      if (problems && without_key)
        ctx.Log("  encrypted with a key this storage does not have: checked the files and the chunks' checksums");
      if (!problems) {
        ctx.Log("  ERROR: " + problems.error().message);
        ++failed;
        continue;
      }
      for (const auto& p : *problems) ctx.Log("  ERROR: " + name + ": " + p);
      if (!problems->empty()) {
        ++failed;
        continue;
      }
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Monotonic() - started).count();
      auto info = ds->Info(id);
      ctx.Log("  verified " + (info ? HumanBytes(info->size) : std::string("?")) + " in " + std::to_string(ms / 1000) + "." +
              std::to_string(ms % 1000 / 100) + " s: ok");
    }
    if (failed) {
      ctx.Log("Failed to verify the following backups: " + std::to_string(failed) + " of " + std::to_string(targets.size()));
      return Fail(Internal("verification failed - please check the log for details"));
    }
    return Ok();
  });
}

Result<std::string> VmService::GarbageCollectBackups(const std::string& storage, const std::string& user) {
  HEARTH_ASSIGN_OR_RETURN(auto store, OpenDatastore(storage, /*need_key=*/false));
  TaskSpec spec;
  spec.type = "garbage_collection";
  spec.id = storage;
  spec.user = user;
  auto shared = std::shared_ptr<BackupDatastore>(std::move(store));
  return tasks_.Start(spec, [shared, storage](TaskContext& ctx) -> Status {
    ctx.Log("starting garbage collection on datastore '" + storage + "'");
    ctx.Log("marking the chunks of every backup, then removing chunks unused for " +
            std::to_string(ChunkStore::kGcGrace.count()) + " hours");
    HEARTH_ASSIGN_OR_RETURN(auto stats, shared->GarbageCollect(std::chrono::system_clock::now()));
    ctx.Log("indexes marked: " + std::to_string(stats.indexes));
    ctx.Log("removed garbage: " + HumanBytes(stats.sweep.removed_bytes) + " in " + std::to_string(stats.sweep.removed) +
            " chunk(s)");
    ctx.Log("chunks in use or within the grace period: " + std::to_string(stats.sweep.kept) + " (" +
            HumanBytes(stats.sweep.kept_bytes) + ")");
    return Ok();
  });
}

Result<std::shared_ptr<BackupDatastore>> VmService::BackupStoreForSync(const std::string& storage) {
  HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, storage_.Get(storage));
  if (!st->Supports(ContentType::kBackup)) return Fail(Internal("storage '" + storage + "' does not support backups"));
  HEARTH_ASSIGN_OR_RETURN(auto store, OpenDatastore(storage, /*need_key=*/false));
  return std::shared_ptr<BackupDatastore>(std::move(store));
}

Result<std::string> VmService::SyncBackups(const std::string& storage, const std::string& target, int vmid,
                                           const std::optional<KeepOptions>& prune, const std::string& user) {
  if (storage == target) return Fail(FieldError("target", "the target must be another storage than the source"));
  // Neither side needs a key: encrypted backups are copied as they are stored.
  HEARTH_ASSIGN_OR_RETURN(auto from, OpenDatastore(storage, /*need_key=*/false));
  auto source = std::make_shared<LocalBackupSource>(std::shared_ptr<BackupDatastore>(std::move(from)), storage);
  return StartSync(target, std::move(source), vmid, prune, user,
                   "sync backups" + (vmid ? " of VM " + std::to_string(vmid) : std::string()) + " from '" + storage +
                       "' to '" + target + "'");
}

Result<std::string> VmService::PullBackups(const std::string& storage, std::shared_ptr<BackupSource> source, int vmid,
                                           const std::optional<KeepOptions>& prune, const std::string& user) {
  std::string first = "sync datastore '" + storage + "' from " + source->Describe() +
                      (vmid ? " (VM " + std::to_string(vmid) + ")" : std::string());
  return StartSync(storage, std::move(source), vmid, prune, user, first);
}

Result<std::string> VmService::StartSync(const std::string& target, std::shared_ptr<BackupSource> source, int vmid,
                                         const std::optional<KeepOptions>& prune, const std::string& user,
                                         const std::string& first_line) {
  HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<BackupDatastore> dst, BackupStoreForSync(target));
  TaskSpec spec;
  spec.type = "syncjob";
  spec.id = vmid ? std::to_string(vmid) + "@" + target : target;
  spec.user = user;
  return tasks_.Start(spec, [this, source, dst, target, vmid, prune, first_line](TaskContext& ctx) -> Status {
    ctx.Log(first_line);
    auto sync_lock = SyncLockFor(dst->root());
    std::unique_lock held(*sync_lock, std::try_to_lock);
    if (!held) {
      ctx.Log("waiting for another sync into '" + target + "' to finish");
      held.lock();
    }
    auto log = [&](const std::string& l) { ctx.Log(l); };
    auto started = clock_.Monotonic();
    HEARTH_ASSIGN_OR_RETURN(SyncStats stats, SyncDatastore(*source, *dst, vmid, log, [&] { return ctx.cancelled(); }));
    ctx.Log("copied " + std::to_string(stats.snapshots_copied) + " backup(s), " + std::to_string(stats.snapshots_present) +
            " already there" +
            (stats.snapshots_skipped ? ", " + std::to_string(stats.snapshots_skipped) + " older than the target's newest"
                                     : std::string()) +
            "; " + std::to_string(stats.chunks_copied) + " chunk(s) copied (" + HumanBytes(stats.bytes_stored) +
            " stored), " + std::to_string(stats.chunks_present) + " already there");
    // Proxmox Backup Server's closing line (src/server/pull.rs).
    double secs = std::chrono::duration<double>(clock_.Monotonic() - started).count();
    if (stats.chunks_copied == 0) {
      ctx.Log("Summary: sync job found no new data to pull");
    } else {
      auto rate = static_cast<uint64_t>(static_cast<double>(stats.bytes_transferred) / std::max(secs, 0.001));
      ctx.Log("Summary: sync job pulled " + HumanBytes(stats.bytes_transferred) + " in " + std::to_string(stats.chunks_copied) +
              " chunks (average rate: " + HumanBytes(rate) + "/s)");
    }
    if (prune && !prune->KeepsAll()) {
      ctx.Log("prune '" + target + "' with retention: " + prune->Print());
      HEARTH_ASSIGN_OR_RETURN(auto entries, PruneBackupsPreview(target, *prune, vmid));
      for (const auto& e : entries) {
        if (e.mark != PruneMark::kRemove) continue;
        if (auto st = RemoveBackup(e.volid); !st) ctx.Warn("removing backup '" + e.volid + "' failed: " + st.error().message);
        else ctx.Log("removing backup '" + e.volid + "'");
      }
    }
    if (stats.snapshots_failed)
      return Fail(Internal(std::to_string(stats.snapshots_failed) + " backup(s) could not be synced - please check the log"));
    return Ok();
  });
}

}  // namespace hearth

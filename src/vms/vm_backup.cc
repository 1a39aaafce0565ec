// Backups of VMs into a storage's backup datastore (Proxmox's vzdump with a PBS-like target);
// restores are in vm_restore.cc. Facts: docs/reference/pve-vzdump.md; design:
// docs/design/backup.md.
#include <spdlog/spdlog.h>

#include <ctime>
#include <thread>
#include <utility>

#include "backup/datastore.h"
#include "backup/image_backup.h"
#include "backup/image_export.h"
#include "backup/nbd_image.h"
#include "vms/backup_fleece.h"
#include "core/reverter.h"
#include "core/strings.h"
#include "core/time_format.h"
#include "core/units.h"
#include "model/cloudinit.h"
#include "model/drive.h"
#include "model/vm_snapshot.h"
#include "model/volume_id.h"
#include "model/vm_schema.h"
#include "vms/vm_service.h"

namespace hearth {
namespace {

constexpr auto kExportStart = std::chrono::seconds(60);

std::string LocalTime(int64_t t) { return FormatUnixTime(t, "%Y-%m-%d %H:%M:%S", /*utc=*/false); }

std::string Duration(int64_t s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return buf;
}

// The disks a backup includes: every drive with a volume except CD-ROMs and the cloud-init
// drive (generated), and except `backup=0` ones, which are logged as excluded.
struct BackupDisk {
  std::string key, volid;
  bool iothread = false;
};
std::vector<BackupDisk> BackupDisks(const VmConfig& cfg, const std::function<void(const std::string&)>& log) {
  std::vector<BackupDisk> out;
  std::string ci = CloudInitDriveKey(cfg.values);
  for (const auto& [k, v] : cfg.values) {
    auto dk = DriveKey::Parse(k);
    if (!dk || dk->bus == DriveBus::kUnused || k == ci) continue;
    auto d = ParseDrive(dk->bus, v);
    if (!d || d->IsCdrom()) continue;
    std::string vol = DriveVolume(k, v);
    if (vol.empty()) continue;
    if (d->opts.count("backup") && d->opts.at("backup") == "0") {
      log("INFO: exclude disk '" + k + "' '" + vol + "' (backup=no)");
      continue;
    }
    out.push_back({k, vol, d->opts.count("iothread") && d->opts.at("iothread") == "1"});
  }
  return out;
}


}  // namespace

std::string BackupVolid(const std::string& storage, const BackupSnapshotId& id) {
  return storage + ":backup/" + id.Name();
}

Result<std::pair<std::string, BackupSnapshotId>> ParseBackupVolid(const std::string& volid) {
  auto colon = volid.find(':');
  std::string prefix = "backup/";
  if (colon == std::string::npos || volid.compare(colon + 1, prefix.size(), prefix) != 0)
    return Fail(FieldError("archive", "unable to parse backup volume id '" + volid + "'"));
  auto id = BackupSnapshotId::Parse(volid.substr(colon + 1 + prefix.size()));
  if (!id) return Fail(FieldError("archive", "unable to parse backup volume id '" + volid + "'"));
  return std::make_pair(volid.substr(0, colon), *id);
}

void VmService::StopStaleExports() {
  // Backups and restores cut short by a crash leave their qemu-storage-daemon running.
  for (const char* prefix : {"backup-", "restore-"})
    if (int n = ImageExport::StopStale(qemu_.run_dir(), prefix))
      spdlog::warn("stopped {} disk export(s) left by a backup or restore that a restart interrupted", n);
}

Result<std::unique_ptr<BackupDatastore>> VmService::OpenDatastore(const std::string& storage, bool need_key,
                                                                 const std::string& fingerprint) {
  HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, storage_.Get(storage));
  HEARTH_ASSIGN_OR_RETURN(std::string dir, st->BackupDir());
  ChunkStoreOptions options;
  if (auto entry = storage_.Find(storage)) {
    auto keys = backup_keys_.Load(entry->config);
    if (!keys && need_key) return Fail(keys.error());
    if (keys) options.key = keys->current;
    if (keys && !fingerprint.empty())
      if (auto k = keys->Find(fingerprint)) options.key = k;  // a retired key reads its backups
  }
  return std::make_unique<BackupDatastore>(fs_, dir, options);
}

Result<std::unique_ptr<BackupDatastore>> VmService::OpenDatastoreFor(const std::string& storage,
                                                                    const BackupSnapshotId& id) {
  HEARTH_ASSIGN_OR_RETURN(auto store, OpenDatastore(storage, /*need_key=*/false));
  auto m = store->Manifest(id);
  if (!m || m->key_fingerprint.empty()) return store;
  return OpenDatastore(storage, /*need_key=*/false, m->key_fingerprint);
}

Result<std::string> VmService::Vzdump(const VzdumpRequest& req) {
  std::vector<int> vmids = req.vmids;
  std::sort(vmids.begin(), vmids.end());
  vmids.erase(std::unique(vmids.begin(), vmids.end()), vmids.end());
  TaskSpec spec;
  spec.type = "vzdump";
  spec.id = vmids.size() == 1 ? std::to_string(vmids[0]) : "";
  spec.user = req.user;
  // Each VM's lock is taken in turn inside the task (a job over many VMs holds one at a time).
  return tasks_.Start(spec, [this, req, vmids](TaskContext& ctx) -> Status {
    ctx.Log("INFO: starting new backup job: " + req.command_line);
    auto store = OpenDatastore(req.storage);
    if (!store)
      return Fail(Internal("could not get storage information for '" + req.storage + "': " + store.error().message));
    int failed = 0;
    for (int vmid : vmids) {
      int64_t started = clock_.UnixSeconds();
      Status st = BackupOne(ctx, **store, req, vmid);
      if (!st) {
        ++failed;
        ctx.Log("ERROR: Backup of VM " + std::to_string(vmid) + " failed - " + st.error().message);
        ctx.Log("INFO: Failed at " + LocalTime(clock_.UnixSeconds()));
        continue;
      }
      ctx.Log("INFO: Finished Backup of VM " + std::to_string(vmid) + " (" + Duration(clock_.UnixSeconds() - started) + ")");
      ctx.Log("INFO: Backup finished at " + LocalTime(clock_.UnixSeconds()));
    }
    if (failed) {
      ctx.Log("INFO: Backup job finished with errors");
      return Fail(Internal("job errors"));
    }
    ctx.Log("INFO: Backup job finished successfully");
    return Ok();
  });
}

Status VmService::BackupOne(TaskContext& ctx, BackupDatastore& store, const VzdumpRequest& req, int vmid) {
  if (!Exists(vmid)) return Fail(Internal("unable to find VM '" + std::to_string(vmid) + "'"));
  ctx.Log("INFO: Starting Backup of VM " + std::to_string(vmid) + " (qemu)");
  HEARTH_ASSIGN_OR_RETURN(auto guard, LockForCall(vmid));
  // Named by the second it starts (after the lock, as Proxmox), and never the name of an
  // earlier backup of this VM (two backups within one second).
  int64_t time = clock_.UnixSeconds();
  HEARTH_ASSIGN_OR_RETURN(auto existing, store.List(vmid));
  if (!existing.empty()) time = std::max(time, existing.back().id.time + 1);
  ctx.Log("INFO: Backup started at " + LocalTime(time));
  // remove=0 with a retention: the retention is a limit (Proxmox's "max backup limit").
  if (!req.remove && req.prune && !req.prune->KeepsAll()) {
    const KeepOptions& k = *req.prune;
    int64_t limit = int64_t{k.last} + k.hourly + k.daily + k.weekly + k.monthly + k.yearly;
    int64_t count = 0;
    for (const auto& b : existing) count += b.is_protected ? 0 : 1;
    if (count >= limit)
      return Fail(Internal("There is a max backup limit of " + std::to_string(limit) +
                           " enforced by the target storage or the vzdump parameters. Either increase the limit or "
                           "delete old backups."));
  }
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(vmid));
  HEARTH_TRY(CheckLock(cfg, false));
  // lock: backup while it runs, as Proxmox (cleared at the next start after a crash).
  HEARTH_TRY(Mutate(vmid, [](VmConfig& c) -> Status {
    if (!c.Lock().empty()) return Fail(FailedPrecondition("VM is locked (" + c.Lock() + ")"));
    c.values["lock"] = "backup";
    return Ok();
  }));
  auto clear_lock = [this, vmid] {
    (void)Mutate(vmid, [](VmConfig& c) -> Status {
      if (c.Lock() == "backup") c.values.erase("lock");
      return Ok();
    });
  };
  Reverter unlock;
  unlock.Add(clear_lock);
  if (cfg.IsTemplate()) ctx.Log("INFO: VM is a template: only its disks are read");
  bool running = qemu_.Pid(vmid).has_value();
  ctx.Log(std::string("INFO: status = ") + (running ? "running" : "stopped"));
  ctx.Log("INFO: VM Name: " + cfg.Get("name").value_or("VM " + std::to_string(vmid)));
  auto log = [&](const std::string& l) { ctx.Log(StartsWith(l, "INFO: ") ? l : "INFO: " + l); };
  std::vector<BackupDisk> disks = BackupDisks(cfg, log);
  for (const auto& d : disks) {
    auto info = storage_.InfoOf(d.volid);
    if (!info) return Fail(info.error().WithContext(d.key));
    ctx.Log("INFO: include disk '" + d.key + "' '" + d.volid + "' " + FormatSize(info->size));
  }
  // The disks of a running VM are read as they were at one instant: while the guest runs on
  // ("snapshot": QEMU keeps the old data of what the guest overwrites; backup_fleece.h), while
  // it is paused ("suspend"), or shut down and started again afterwards ("stop").
  std::string mode = running ? req.mode : "stop";
  ctx.Log("INFO: backup mode: " + mode);
  std::unique_ptr<FleecedRead> fleece;
  // QEMU 7.2 aborts when a client of an NBD export whose disk runs in an iothread disconnects
  // (blockdev-nbd.c nbd_blockdev_client_closed: "qemu_in_main_thread() && nbd_server"), so
  // such a VM is paused for the read instead.
  std::string iothread_disk;
  for (const auto& d : disks)
    if (d.iothread && iothread_disk.empty()) iothread_disk = d.key;
  if (running && mode == "snapshot" && !iothread_disk.empty()) {
    ctx.Warn("backup mode 'snapshot' is not available for disks with iothread=1 on this QEMU (" + iothread_disk +
             ") - trying 'suspend' mode instead");
    mode = "suspend";
  }
  if (running && mode == "snapshot" && !disks.empty()) {
    bool frozen = false;
    auto freeze = [&] {
      if (!WantsFsFreeze(cfg)) return;
      ctx.Log("INFO: issuing guest-agent 'fs-freeze' command");
      if (auto r = AgentCommand(vmid, "guest-fsfreeze-freeze", nullptr, std::chrono::seconds(60)); r) frozen = true;
      else ctx.Warn("guest-agent 'fs-freeze' failed - " + r.error().message + " (the backup is crash-consistent)");
    };
    auto thaw = [&] {
      if (!frozen) return;
      ctx.Log("INFO: issuing guest-agent 'fs-thaw' command");
      if (auto r = AgentCommand(vmid, "guest-fsfreeze-thaw", nullptr, std::chrono::seconds(60)); !r)
        ctx.Warn("guest-agent 'fs-thaw' failed - " + r.error().message);
    };
    FleecedRead::Options fo;
    fo.vmid = vmid;
    fo.storage = req.storage;
    fo.time = time;
    fo.run_dir = qemu_.run_dir();
    fo.fleecing_dir = options_.fleecing_dir.empty() ? qemu_.run_dir() + "/fleecing" : options_.fleecing_dir;
    if (!existing.empty()) fo.newest = existing.back().id;
    std::vector<std::string> keys;
    for (const auto& d : disks) keys.push_back(d.key);
    auto opened = FleecedRead::Open(qemu_, runner_, store_, store, fo, keys, freeze, thaw, log);
    if (!opened && opened.error().code == ErrorCode::kNotImplemented) {
      ctx.Warn("backup mode 'snapshot' is not available (" + opened.error().message + ") - trying 'suspend' mode instead");
      mode = "suspend";
    } else if (!opened) {
      return Fail(opened.error());
    } else {
      fleece = std::move(*opened);
    }
  }
  if (req.bwlimit_kib > 0) ctx.Log("INFO: bandwidth limit: " + std::to_string(req.bwlimit_kib) + " KiB/s");
  bool paused = false;
  std::function<void()> resume_fn;
  auto resume = [&] {
    if (resume_fn) std::exchange(resume_fn, nullptr)();
  };
  Reverter on_exit;  // whatever happens, the guest goes on
  on_exit.Add(resume);
  // A guest its user paused stays paused: it is read as it is, and not resumed afterwards.
  bool user_paused = false;
  if (running && mode == "suspend")
    if (auto state = qemu_.QueryRunState(vmid); state && *state != "running") user_paused = true;
  if (running && mode == "suspend" && user_paused) {
    ctx.Log("INFO: the guest is paused already (" + qemu_.QueryRunState(vmid).value_or("?") + ")");
    paused = true;
  } else if (running && mode == "suspend") {
    bool frozen = false;
    if (WantsFsFreeze(cfg))
      if (auto r = AgentCommand(vmid, "guest-fsfreeze-freeze", nullptr, std::chrono::seconds(60)); r) frozen = true;
    // Remembered, so that a crash while it is paused resumes it at the next start.
    (void)store_.PutMeta(PausedMetaKey(vmid), "1");
    HEARTH_TRY(qemu_.Stop(vmid));  // stop also flushes QEMU's caches to the images
    paused = true;
    ctx.Log("INFO: suspending guest");
    if (frozen) (void)AgentCommand(vmid, "guest-fsfreeze-thaw", nullptr, std::chrono::seconds(60));
    resume_fn = [&] {
      if (auto st = qemu_.Cont(vmid); !st) ctx.Warn("resuming the VM failed: " + st.error().message);
      else ctx.Log("INFO: resuming guest");
      (void)store_.PutMeta(PausedMetaKey(vmid), "");
    };
  } else if (running && mode == "stop") {
    StopRequest stop;
    stop.vmid = vmid;
    stop.timeout = req.stopwait_minutes * 60;
    ctx.Log("INFO: stopping virtual guest");
    HEARTH_TRY(DoShutdown(ctx, stop));
    resume_fn = [&] {
      clear_lock();  // its disks are read; the start refuses a locked VM
      ctx.Log("INFO: restarting the guest");
      if (auto st = DoStart(ctx, vmid, 0); !st) ctx.Warn("starting the VM again failed: " + st.error().message);
    };
  }

  std::string volid = BackupVolid(req.storage, BackupSnapshotId{vmid, time});
  ctx.Log("INFO: creating backup archive '" + volid + "'");
  HEARTH_ASSIGN_OR_RETURN(auto writer, store.Begin(vmid, time));
  uint64_t read = 0, stored = 0, reused = 0, chunks = 0, unchanged = 0;
  for (const auto& d : disks) {
    std::unique_ptr<ImageExport> exp;
    std::unique_ptr<NbdImage> nbd;
    FleecedRead::DiskRead fleeced;
    std::optional<IncrementalBase> base;
    if (fleece && fleece->Covers(d.key)) {
      HEARTH_ASSIGN_OR_RETURN(fleeced, fleece->Connect(d.key).map_error([&](Error e) { return e.WithContext(d.key); }));
      nbd = std::move(fleeced.nbd);
      if (fleeced.dirty) {
        uint64_t dirty = 0;
        for (size_t i = 0; i < fleeced.dirty->size(); ++i) dirty += (*fleeced.dirty)[i] ? fleeced.previous->ChunkBytes(i) : 0;
        ctx.Log("INFO: " + d.key + ": dirty-bitmap status: OK (" + HumanBytes(dirty) + " of " + HumanBytes(nbd->size()) +
                " dirty)");
        base = IncrementalBase{&*fleeced.previous, &*fleeced.dirty};
      } else {
        ctx.Log("INFO: " + d.key + ": dirty-bitmap status: created new");
      }
    } else {
      HEARTH_ASSIGN_OR_RETURN(VolumeInfo info, storage_.InfoOf(d.volid));
      if (auto id = ParseVolumeId(d.volid))
        if (auto st = storage_.Get(id->storage); st) HEARTH_TRY((*st)->ActivateVolume(id->volname));
      std::string socket = qemu_.run_dir() + "/backup-" + std::to_string(vmid) + "-" + d.key + ".nbd";
      ImageExport::Options opt;
      // QEMU holds the image: it is paused and flushed, or (snapshot mode) does not write it.
      opt.force_share = paused || fleece != nullptr;
      HEARTH_ASSIGN_OR_RETURN(exp, ImageExport::Start(runner_, info.path, info.format, socket, kExportStart, opt)
                                       .map_error([&](Error e) { return e.WithContext(d.key); }));
      HEARTH_ASSIGN_OR_RETURN(nbd, NbdImage::ConnectUnix(socket, ImageExport::kExportName, kExportStart));
    }
    ImageBackupStats s;
    // bwlimit (KiB/s, vzdump's): each read waits until the bytes read so far fit the rate.
    const auto began = std::chrono::steady_clock::now();
    uint64_t bytes_so_far = 0;
    auto reader = [&](uint64_t off, size_t len) {
      if (req.bwlimit_kib > 0) {
        // In floating point: any KiB/s the API lets through (up to 2^63) neither wraps nor divides by 0.
        auto due = began + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(
                               static_cast<double>(bytes_so_far) / (static_cast<double>(req.bwlimit_kib) * 1024.0)));
        while (std::chrono::steady_clock::now() < due && !ctx.cancelled())
          std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(due - std::chrono::steady_clock::now(),
                                                                                   std::chrono::milliseconds(100)));
      }
      if (ctx.cancelled()) return Result<std::string>(Fail(Aborted("backup cancelled")));
      bytes_so_far += len;
      return nbd->Read(off, len);
    };
    HEARTH_ASSIGN_OR_RETURN(FixedIndex idx, BackupImage(store.chunks(), nbd->size(), reader, "drive-" + d.key, log, &s,
                                                        base ? &*base : nullptr));
    HEARTH_TRY(writer->AddImage("drive-" + d.key, idx));
    read += s.bytes_read;
    stored += s.bytes_stored;
    reused += s.reused;
    chunks += s.chunks;
    unchanged += s.unchanged;
  }
  resume();  // the guest goes on as soon as its disks are read
  // ... and its writes stop being copied aside.
  if (fleece) {
    if (auto st = fleece->Release(); !st) {
      if (!qemu_.Pid(vmid))
        return Fail(Internal("VM " + std::to_string(vmid) + "'s QEMU exited during the backup (" + st.error().message +
                             "); its log: " + qemu_.Paths(vmid).log));
      ctx.Warn("removing the point-in-time view failed: " + st.error().message);
    }
  }
  // A cancel that came after the last read still stops the backup before it is published.
  if (ctx.cancelled()) return Fail(Aborted("backup cancelled"));
  VmConfig saved;
  saved.values = cfg.values;
  saved.values.erase("lock");
  HEARTH_TRY(writer->AddBlob("qemu-server.conf", FormatConfFile(saved)));
  HEARTH_ASSIGN_OR_RETURN(BackupSnapshotInfo made, writer->Finish());
  if (fleece) {
    auto m = store.Manifest(made.id);
    Status st = m ? fleece->Commit(*m) : Status(Fail(m.error()));
    if (!st) ctx.Warn("keeping the dirty bitmaps failed (" + st.error().message + "): the next backup reads every disk whole");
  }
  ctx.Log("INFO: backup read " + HumanBytes(read) + " in " + std::to_string(chunks) + " chunks, " +
          std::to_string(chunks - reused) + " new, " + HumanBytes(stored) + " written (deduplicated and compressed)" +
          (unchanged ? "; " + std::to_string(unchanged) + " unchanged chunks were not read" : ""));
  if (!req.notes_template.empty()) {
    ctx.Log("INFO: adding notes to backup");
    // Proxmox's generate_notes: "\\" and "\n" escapes first, then the variables.
    std::string notes;
    for (size_t i = 0; i < req.notes_template.size(); ++i) {
      char ch = req.notes_template[i];
      if (ch == '\\' && i + 1 < req.notes_template.size() && (req.notes_template[i + 1] == '\\' || req.notes_template[i + 1] == 'n')) {
        notes += req.notes_template[++i] == 'n' ? '\n' : '\\';
        continue;
      }
      notes += ch;
    }
    for (auto [var, val] : {std::pair<std::string, std::string>{"{{cluster}}", "standalone node"},
                            {"{{guestname}}", cfg.Get("name").value_or("VM " + std::to_string(vmid))},
                            {"{{node}}", options_.node}, {"{{vmid}}", std::to_string(vmid)}})
      for (size_t at; (at = notes.find(var)) != std::string::npos;) notes.replace(at, var.size(), val);
    if (auto st = store.SetNotes(made.id, notes); !st) ctx.Warn("unable to add notes - " + st.error().message);
  }
  if (req.is_protected) {
    ctx.Log("INFO: marking backup as protected");
    HEARTH_TRY(store.SetProtected(made.id, true).map_error([](Error e) { return e.WithContext("unable to set protected flag"); }));
  }
  if (req.remove && req.prune && !req.prune->KeepsAll()) {
    ctx.Log("INFO: prune older backups with retention: " + req.prune->Print());
    HEARTH_ASSIGN_OR_RETURN(auto all, store.List(vmid));
    std::vector<PruneItem> group;
    for (const auto& b : all) group.push_back({b.id.time, b.is_protected});
    std::vector<PruneMark> marks = MarkForPrune(group, *req.prune);
    int pruned = 0;
    for (size_t i = 0; i < all.size(); ++i) {
      if (marks[i] != PruneMark::kRemove) continue;
      std::string volid = BackupVolid(req.storage, all[i].id);
      if (auto user = LiveRestoreUsing(volid)) {  // kept (and so are its chunks, for GC) until it is done
        ctx.Log("INFO: keeping backup '" + volid + "': in use by the live restore of VM " + std::to_string(*user));
        continue;
      }
      HEARTH_TRY(store.Remove(all[i].id));
      ctx.Log("INFO: removing backup '" + BackupVolid(req.storage, all[i].id) + "'");
      ++pruned;
    }
    ctx.Log("INFO: pruned " + std::to_string(pruned) + " backup(s)" + (pruned ? " not covered by keep-retention policy" : ""));
  }
  return Ok();
}

Result<std::vector<BackupSnapshotInfo>> VmService::ListBackups(const std::string& storage, int vmid) {
  auto store = OpenDatastore(storage, /*need_key=*/false);
  if (!store) return std::vector<BackupSnapshotInfo>{};  // a storage without backups lists none
  return (*store)->List(vmid);
}

Status VmService::RemoveBackup(const std::string& volid) {
  HEARTH_ASSIGN_OR_RETURN(auto parsed, ParseBackupVolid(volid));
  if (auto user = LiveRestoreUsing(volid))
    return Fail(FailedPrecondition("backup '" + volid + "' is in use by the live restore of VM " + std::to_string(*user)));
  HEARTH_ASSIGN_OR_RETURN(auto store, OpenDatastore(parsed.first, /*need_key=*/false));
  auto st = store->Remove(parsed.second);
  if (!st && st.error().code == ErrorCode::kFailedPrecondition)
    return Fail(Internal("cannot remove protected volume 'backup/" + parsed.second.Name() + "' on '" + parsed.first + "'"));
  return st;
}

Result<std::string> VmService::BackupConfig(const std::string& volid) {
  HEARTH_ASSIGN_OR_RETURN(auto parsed, ParseBackupVolid(volid));
  HEARTH_ASSIGN_OR_RETURN(auto store, OpenDatastoreFor(parsed.first, parsed.second));
  return store->ReadBlob(parsed.second, "qemu-server.conf");
}

Status VmService::UpdateBackup(const std::string& volid, const std::optional<std::string>& notes,
                               std::optional<bool> is_protected) {
  HEARTH_ASSIGN_OR_RETURN(auto parsed, ParseBackupVolid(volid));
  HEARTH_ASSIGN_OR_RETURN(auto store, OpenDatastore(parsed.first, /*need_key=*/false));
  if (notes) HEARTH_TRY(store->SetNotes(parsed.second, *notes));
  if (is_protected) HEARTH_TRY(store->SetProtected(parsed.second, *is_protected));
  return Ok();
}

}  // namespace hearth

// Keyboard input (sendkey) and moving a disk to another storage or format (move_disk).
#include <limits.h>
#include <stdlib.h>

#include <atomic>
#include <cstdio>

#include <spdlog/spdlog.h>

#include "core/pattern.h"
#include "core/reverter.h"
#include "core/strings.h"
#include "model/drive.h"
#include "model/volume_id.h"
#include "qemu/blockdev.h"
#include "sys/crash_point.h"
#include "vms/vm_service.h"

namespace hearth {

Status VmService::SendKey(int vmid, const std::string& key) {
  // "ctrl-alt-delete", "shift-a", "ret", "kp_enter", "0x1d": QEMU key names joined by '-'.
  // Sent as QMP send-key with one qcode per name, so the value never reaches a monitor
  // command line (PVE passes it to HMP `sendkey` verbatim).
  static const Pattern name("[a-z0-9_]{1,32}|0x[0-9a-fA-F]{1,4}");
  if (key.empty() || key.size() > 128) return Fail(FieldError("key", "invalid key '" + key.substr(0, 64) + "'"));
  std::vector<std::string> keys = Split(key, '-');
  for (const auto& part : keys)
    if (!name.FullMatch(part)) return Fail(Internal("invalid parameter: " + part));
  HEARTH_ASSIGN_OR_RETURN(auto guard, LockForCall(vmid));
  if (!Exists(vmid)) return Fail(Internal(ConfigNotFound(vmid)));
  if (!qemu_.Pid(vmid)) return Fail(Internal("VM " + std::to_string(vmid) + " not running"));
  auto r = qemu_.SendKey(vmid, keys);
  if (!r) {
    // QEMU: "Parameter 'keys.0.data' does not accept value 'xyz'" -> PVE's HMP wording.
    if (r.error().message.find("does not accept value") != std::string::npos)
      return Fail(Internal("invalid parameter: " + key));
    return Fail(r.error());
  }
  return Ok();
}

Result<std::string> VmService::CheckMoveSource(const VmConfig& cfg, const MoveDiskRequest& req, bool running) {
  auto value = cfg.Get(req.disk);
  if (!value) return Fail(Internal("disk '" + req.disk + "' does not exist"));
  auto dk = DriveKey::Parse(req.disk);
  auto drive = dk ? ParseDrive(dk->bus, *value) : Fail(Internal("bad disk"));
  // A cloud-init drive may move; other cdrom media may not (an empty drive is a cdrom too).
  if (drive && drive->IsCdrom() && CloudInitDriveKey(cfg.values) != req.disk)
    return Fail(Internal("you can't move a cdrom"));
  std::string volid = drive ? DriveVolume(req.disk, *value) : "";
  if (!drive || volid.empty()) return Fail(Internal("disk '" + req.disk + "' has no associated volume"));
  // A snapshot still needs the source (qemu-server: is_volume_in_use with snapshots).
  if (req.delete_source)
    for (const auto& [name, section] : cfg.snapshots)
      for (const auto& [k, v] : section)
        if (DriveKey::Parse(k) && DriveVolume(k, v) == volid)
          return Fail(Internal("you can't move a disk with snapshots and delete the source"));
  if (running) {
    // The firmware's flash (efidisk0, tpmstate0) is not a guest disk QEMU mirrors and switches;
    // a read-only disk's node cannot be a mirror's source and stay read-only afterwards.
    if (dk->bus == DriveBus::kEfidisk || dk->bus == DriveBus::kTpmstate)
      return Fail(FailedPrecondition("cannot move '" + req.disk + "' of a running VM; stop VM " +
                                     std::to_string(req.vmid) + " first"));
    if (drive->opts.count("ro") && drive->opts.at("ro") == "1")
      return Fail(FailedPrecondition("cannot move the read-only disk '" + req.disk + "' of a running VM; stop VM " +
                                     std::to_string(req.vmid) + " first"));
  }
  return volid;
}

Result<std::string> VmService::MoveDisk(const MoveDiskRequest& req) {
  // PVE's order (API2/Qemu.pm move_vm_disk, $load_and_check_move); the words are PVE's.
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(req.vmid));
  HEARTH_TRY(CheckLock(cfg, false));
  if (!req.digest.empty() && req.digest != ConfDigest(FormatConfFile(cfg)))
    return Fail(FailedPrecondition("detected modified configuration - file changed by other user? Try again."));
  HEARTH_ASSIGN_OR_RETURN(std::string old_volid, CheckMoveSource(cfg, req, IsRunning(req.vmid)));
  HEARTH_ASSIGN_OR_RETURN(VolumeId old_id, ParseVolumeId(old_volid));
  HEARTH_ASSIGN_OR_RETURN(VolumeInfo old_info, storage_.InfoOf(old_volid));
  if (old_id.storage == req.storage && (req.format.empty() || req.format == old_info.format))
    return Fail(Internal("you can't move to the same storage with same format"));
  HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> target, storage_.Get(req.storage));
  if (!target->Supports(ContentType::kImages))
    return Fail(FieldError("storage", "storage '" + req.storage + "' does not support vm images"));
  // One move per disk at a time: a second mirror would take the first one's job id.
  auto key = std::make_pair(req.vmid, req.disk);
  {
    std::lock_guard lock(moving_mu_);
    if (!moving_.insert(key).second)
      return Fail(FailedPrecondition("disk '" + req.disk + "' of VM " + std::to_string(req.vmid) +
                                     " is being moved already; wait for that task"));
  }
  auto release = std::make_shared<Reverter>();
  release->Add([this, key] {
    std::lock_guard lock(moving_mu_);
    moving_.erase(key);
  });
  return StartTask("qmmove", req.vmid, req.user, [this, req, old_volid, old_info, release](TaskContext& ctx) -> Status {
    // Again under the VM's lock: a snapshot or a start may have come in while the move waited.
    HEARTH_ASSIGN_OR_RETURN(VmConfig now, GetConfig(req.vmid));
    bool running = qemu_.Pid(req.vmid).has_value();
    HEARTH_ASSIGN_OR_RETURN(std::string volid_now, CheckMoveSource(now, req, running));
    if (volid_now != old_volid) return Fail(Internal("disk '" + req.disk + "' changed while the move waited; try again"));
    HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> target, storage_.Get(req.storage));
    // qemu-server's resolve_dst_disk_format: the source's format where the target takes it,
    // else the target's default (qcow2 on dir -> raw on btrfs).
    std::string format = req.format;
    if (format.empty()) {
      format = old_info.format == "img" ? "raw" : old_info.format;
      if (!target->SupportsFormat(format)) format = target->DefaultFormat();
    }
    // An unused volume is not attached: it is copied, as a stopped VM's disks are.
    bool online = running && !StartsWith(req.disk, "unused");
    HEARTH_ASSIGN_OR_RETURN(std::string new_volid,
                            online ? MirrorDisk(ctx, req, *now.Get(req.disk), old_info, *target, format)
                                   : CopyDiskOffline(ctx, req, old_info, *target, format));
    // A template's disk stays a base image (qemu-server: vdisk_create_base after the copy).
    if (now.IsTemplate()) {
      auto id = ParseVolumeId(new_volid);
      auto based = id ? target->RenameToBase(id->volname) : Fail(id.error());
      if (!based) {
        (void)storage_.Free(new_volid);
        return Fail(based.error());
      }
      new_volid = req.storage + ":" + *based;
    }
    // Online, the guest writes to the new volume from here on: it must not be freed.
    Reverter undo;
    if (!online) undo.Add([&] { (void)storage_.Free(new_volid); });
    CrashPoint("move.copied");
    HEARTH_TRY(Mutate(req.vmid, [&](VmConfig& c) -> Status {
      auto dk = DriveKey::Parse(req.disk);
      auto cur = c.Get(req.disk);
      if (!cur || DriveVolume(req.disk, *cur) != old_volid)
        return Fail(Internal("disk '" + req.disk + "' changed during the move; '" + new_volid + "' is left as an unused disk"));
      HEARTH_ASSIGN_OR_RETURN(Drive d, ParseDrive(dk->bus, *cur));
      d.file = new_volid;
      d.opts.erase("format");
      c.values[req.disk] = PrintDrive(dk->bus, d);
      if (!req.delete_source) {
        std::string unused = NextUnusedKey(c);
        if (unused.empty()) return Fail(Internal("Too many unused volumes - please delete them first."));
        c.values[unused] = old_volid;
        ctx.Log("adding source volume '" + old_volid + "' as '" + unused + "' to config");
      }
      return Ok();
    }));
    undo.Commit();
    if (req.delete_source) {
      ctx.Log("removing source volume '" + old_volid + "' after successful copy");
      if (auto st = storage_.Free(old_volid); !st) ctx.Warn("could not remove " + old_volid + ": " + st.error().message);
    }
    return Ok();
  });
}

Result<std::string> VmService::CopyDiskOffline(TaskContext& ctx, const MoveDiskRequest& req, const VolumeInfo& src,
                                               StoragePlugin& target, const std::string& format) {
  ctx.Log("copying volume '" + src.volid + "' from current storage to target storage '" + req.storage + "'");
  HEARTH_ASSIGN_OR_RETURN(std::string volname,
                          target.CopyImage(src.path, src.format, req.vmid, format, [&](const std::string& l) { ctx.Log(l); })
                              .map_error([](Error e) { return e.WithContext("storage migration failed"); }));
  // QEMU may have started the VM meanwhile, from the old volume; the copy would be stale (an
  // unused volume is not attached: it cannot change).
  if (!StartsWith(req.disk, "unused") && qemu_.Pid(req.vmid)) {
    (void)target.FreeVolume(volname);
    return Fail(FailedPrecondition("VM " + std::to_string(req.vmid) + " was started during the copy; move the disk again"));
  }
  return req.storage + ":" + volname;
}

Result<std::string> VmService::MirrorDisk(TaskContext& ctx, const MoveDiskRequest& req, const std::string& drive_value,
                                          const VolumeInfo& src, StoragePlugin& target, const std::string& format) {
  // The target has the source's virtual size: QEMU's mirror refuses any other.
  HEARTH_ASSIGN_OR_RETURN(std::string volname,
                          target.AllocImage(req.vmid, format, src.size, "", [&](const std::string& l) { ctx.Log(l); }));
  std::string new_volid = req.storage + ":" + volname;
  Reverter undo;
  undo.Add([&] { (void)target.FreeVolume(volname); });
  ctx.Log("drive mirror is starting for drive-" + req.disk + " to '" + new_volid + "'");
  // QEMU opens it now: an LV must be active, and the storage says how it is opened.
  HEARTH_TRY(target.ActivateVolume(volname));
  HEARTH_ASSIGN_OR_RETURN(VolumeBlockdev target_dev, target.Blockdev(volname));
  auto dk = DriveKey::Parse(req.disk);
  HEARTH_ASSIGN_OR_RETURN(Drive drive, ParseDrive(dk->bus, drive_value));
  // A node name QEMU has not seen in this run: "drive-scsi0-<hex seconds><hex sequence>"
  // (QEMU allows 31 characters; ours are 23 at most).
  static std::atomic<unsigned> sequence{0};
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "-%llx%02x", static_cast<unsigned long long>(clock_.UnixSeconds()) & 0xffffffULL,
                sequence.fetch_add(1) & 0xffu);
  DriveBinding bind{target_dev.format, target_dev.protocol, target_dev.path};
  HEARTH_TRY(qemu_.MirrorDrive(req.vmid, req.disk, DriveBlockdev(drive, bind, "drive-" + req.disk + suffix),
                               [&](const std::string& l) { ctx.Log(l); })
                 .map_error([](Error e) { return e.WithContext("storage migration failed"); }));
  undo.Commit();
  return new_volid;
}

void VmService::RepairInterruptedMove(int vmid, int pid) {
  // A mirror job of ours outlives the daemon that drove it; nothing can complete it now (the
  // config still names the source), so it is cancelled and its target stays an unusedN.
  if (auto jobs = qemu_.Execute(vmid, "query-block-jobs"); jobs && jobs->is_array())
    for (const auto& j : *jobs)
      if (j.is_object() && j.value("device", "").rfind("mirror-", 0) == 0) {
        std::string job = j.value("device", "");
        spdlog::warn("VM {}: cancelling {}, left by a move_disk a restart cut short; its target stays an unused disk",
                     vmid, job);
        (void)qemu_.Execute(vmid, "block-job-cancel", {{"device", job}, {"force", true}});
      }
  auto cfg = GetConfig(vmid);
  auto open = host_.OpenFiles(pid);
  if (!cfg || !open) return;
  bool ovmf = cfg->Get("bios").value_or("seabios") == "ovmf";
  auto path_of = [&](const std::string& volid) -> std::string {
    auto info = storage_.InfoOf(volid);
    if (!info) return std::string();
    // /proc shows resolved paths; a storage under a symbolic link must compare the same.
    char real[PATH_MAX];
    return ::realpath(info->path.c_str(), real) ? std::string(real) : info->path;
  };
  // Disks whose volume QEMU no longer holds, and unused volumes it does hold.
  std::vector<std::string> left, taken;
  for (const auto& [key, value] : cfg->values) {
    auto dk = DriveKey::Parse(key);
    if (!dk) continue;
    std::string volid = DriveVolume(key, value);
    if (volid.empty()) continue;
    std::string path = path_of(volid);
    if (path.empty()) continue;
    if (dk->bus == DriveBus::kUnused) {
      if (open->count(path)) taken.push_back(key);
    } else if (auto d = ParseDrive(dk->bus, value); d && !d->IsCdrom() && !open->count(path)) {
      // Only drives QEMU opens can have been switched: no tpmstate, no efidisk without OVMF.
      if (dk->bus == DriveBus::kTpmstate || (dk->bus == DriveBus::kEfidisk && !ovmf)) continue;
      left.push_back(key);
    }
  }
  // No disk left behind: the unused volumes QEMU holds are targets of cancelled mirrors.
  if (taken.empty() || left.empty()) return;
  if (left.size() != 1 || taken.size() != 1) {
    spdlog::warn("VM {}: QEMU uses unused volume(s) of its config, but which disk each replaces is unclear; "
                 "stop the VM and set its disks by hand", vmid);
    return;
  }
  std::string disk = left[0], unused = taken[0];
  auto st = Mutate(vmid, [&](VmConfig& c) -> Status {
    auto dk = DriveKey::Parse(disk);
    auto cur = c.Get(disk);
    auto now = c.Get(unused);
    if (!cur || !now) return Fail(Internal("the config changed"));
    HEARTH_ASSIGN_OR_RETURN(Drive d, ParseDrive(dk->bus, *cur));
    std::string old_volid = d.file;
    d.file = *now;
    d.opts.erase("format");
    c.values[disk] = PrintDrive(dk->bus, d);
    c.values[unused] = old_volid;
    spdlog::warn("VM {}: finishing a move_disk cut short by a restart: {} is now {} (QEMU already used it), "
                 "the old volume {} is {}", vmid, disk, *now, old_volid, unused);
    return Ok();
  });
  if (!st) spdlog::warn("VM {}: could not finish an interrupted move_disk: {}", vmid, st.error().message);
}

}  // namespace hearth

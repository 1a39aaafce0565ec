// Templates and clones.
#include "core/reverter.h"
#include "core/strings.h"
#include "core/units.h"
#include "model/drive.h"
#include "model/netdev.h"
#include "vms/vm_service.h"
#include "sys/crash_point.h"

namespace hearth {

std::optional<std::pair<std::string, int>> VmService::LinkedCloneUser(int vmid) {
  auto cfg = GetConfig(vmid);
  if (!cfg || !cfg->IsTemplate()) return std::nullopt;
  std::vector<std::string> bases;
  for (const auto& vol : ReferencedVolumes(*cfg))
    if (auto info = storage_.InfoOf(vol); info && info->vmid == vmid) bases.push_back(vol);
  std::optional<std::pair<std::string, int>> user;
  registry_.ForEach([&](int other, const Entry& e) {
    if (other == vmid || user) return;
    for (const auto& vol : ReferencedVolumes(e.config))
      for (const auto& base : bases)
        if (!user && StartsWith(vol, base + "/")) user = std::make_pair(base, other);
  });
  return user;
}

Status VmService::DeleteVolume(const std::string& volid) {
  HEARTH_ASSIGN_OR_RETURN(VolumeInfo info, storage_.InfoOf(volid));
  std::unique_ptr<VmLocks::Guard> guard;
  if (info.vmid && Exists(info.vmid)) {
    HEARTH_ASSIGN_OR_RETURN(guard, LockForCall(info.vmid));
  }
  std::optional<Error> in_use;
  registry_.ForEach([&](int id, const Entry& e) {
    if (in_use) return;
    for (const auto& vol : ReferencedVolumes(e.config, /*include_cdroms=*/true)) {
      if (vol == volid) {
        in_use = FailedPrecondition("volume '" + volid + "' is in use by VM " + std::to_string(id));
        return;
      }
      if (StartsWith(vol, volid + "/")) {
        in_use = FailedPrecondition("base volume '" + volid + "' is still in use by linked cloned VM " +
                                    std::to_string(id));
        return;
      }
    }
  });
  if (in_use) return Fail(*in_use);
  return storage_.Free(volid);
}

void VmService::RepairInterruptedTemplate(int vmid) {
  auto cfg = GetConfig(vmid);
  if (!cfg || cfg->Lock() != "template") return;
  // Disks renamed to base-* while the config still names vm-*: rename them back.
  for (const auto& [k, v] : cfg->values) {
    std::string vol = DriveVolume(k, v);
    if (vol.empty() || storage_.InfoOf(vol)) continue;
    auto id = ParseVolumeId(vol);
    if (!id) continue;
    std::string base = id->volname;
    size_t slash = base.rfind('/');
    if (slash == std::string::npos || base.compare(slash + 1, 3, "vm-") != 0) continue;
    base.replace(slash + 1, 3, "base-");
    auto st = storage_.Get(id->storage);
    if (st && (*st)->Info(base)) (void)(*st)->UndoBase(base);
  }
  (void)Mutate(vmid, [](VmConfig& c) -> Status {
    c.values.erase("lock");
    return Ok();
  });
}

Result<std::string> VmService::Template(int vmid, const std::string& user, const std::string& disk) {
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(vmid));
  HEARTH_TRY(CheckLock(cfg, false));
  if (cfg.IsTemplate()) return Fail(FailedPrecondition("you can't convert a template to a template"));
  if (IsRunning(vmid)) return Fail(FailedPrecondition("you can't convert a VM to template if VM is running"));
  if (!cfg.snapshots.empty()) return Fail(Internal("unable to create template, because VM contains snapshots"));
  if (!disk.empty() && !cfg.Has(disk)) return Fail(FieldError("disk", "no such disk '" + disk + "'"));
  HEARTH_TRY(CheckTemplateDisks(cfg, vmid, disk));
  return StartTask("qmtemplate", vmid, user, [this, vmid, disk](TaskContext& ctx) { return DoTemplate(ctx, vmid, disk); });
}

// "100/base-100-disk-0.qcow2" is one; a linked clone's own disk
// "100/base-100-disk-0.qcow2/101/vm-101-disk-0.qcow2" is not (only its backing file is).
static bool IsBaseImage(const std::string& volname) {
  return volname.compare(volname.rfind('/') + 1, 5, "base-") == 0;
}

// A template's disks must become base images, and only a VM's own disks can: another VM's
// disk attached here would stay writable by its owner under every linked clone (PVE would
// rename it under its owner's feet). Refused, naming the disk and its owner; another
// template's base image is immutable already and fine.
Status VmService::CheckTemplateDisks(const VmConfig& cfg, int vmid, const std::string& only_disk) {
  // Pending values too: a disk change waiting for the next start is applied to the template
  // at its next config write (found by a break-it pass).
  std::vector<std::pair<std::string, std::string>> drives(cfg.values.begin(), cfg.values.end());
  drives.insert(drives.end(), cfg.pending.begin(), cfg.pending.end());
  for (const auto& [k, v] : drives) {
    auto dk = DriveKey::Parse(k);
    if (!dk || !dk->IsDisk() || (!only_disk.empty() && k != only_disk)) continue;
    std::string vol = DriveVolume(k, v);
    auto d = ParseDrive(dk->bus, v);
    if (vol.empty() || !d || d->IsCdrom()) continue;
    auto id = ParseVolumeId(vol);
    auto info = storage_.InfoOf(vol);
    if (!id || !info || info->content != ContentType::kImages) continue;  // checked again in the task
    if (IsBaseImage(id->volname)) continue;
    if (info->vmid == vmid) {
      if (info->parent.empty()) continue;
      return Fail(FailedPrecondition("unable to convert VM " + std::to_string(vmid) + " to a template: disk '" + k +
                                     "' (" + vol + ") is a linked clone of " + info->parent +
                                     "; make a full clone of the VM and convert that"));
    }
    return Fail(FailedPrecondition("unable to convert VM " + std::to_string(vmid) + " to a template: disk '" + k +
                                   "' (" + vol + ") belongs to VM " + std::to_string(info->vmid) +
                                   "; detach it or move it to this VM first"));
  }
  return Ok();
}

Status VmService::DoTemplate(TaskContext& ctx, int vmid, const std::string& only_disk) {
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(vmid));
  if (cfg.IsTemplate()) return Fail(FailedPrecondition("you can't convert a template to a template"));
  if (qemu_.Pid(vmid)) return Fail(FailedPrecondition("you can't convert a VM to template if VM is running"));
  HEARTH_TRY(CheckTemplateDisks(cfg, vmid, only_disk));  // the config may have changed since
  // Intent first: if hearth dies between renaming disks and writing the config, the next
  // start sees lock=template and undoes the renames (see RepairInterruptedTemplate).
  HEARTH_TRY(Mutate(vmid, [](VmConfig& c) -> Status {
    if (!c.Lock().empty()) return Fail(FailedPrecondition("VM is locked (" + c.Lock() + ")"));
    c.values["lock"] = "template";
    return Ok();
  }));
  CrashPoint("template.locked");
  Reverter undo;
  undo.Add([&] { RepairInterruptedTemplate(vmid); });
  std::map<std::string, std::string> renamed;  // drive key -> new value
  for (const auto& [k, v] : cfg.values) {
    auto dk = DriveKey::Parse(k);
    if (!dk || !dk->IsDisk() || (!only_disk.empty() && k != only_disk)) continue;
    std::string vol = DriveVolume(k, v);
    if (vol.empty()) continue;
    auto d = ParseDrive(dk->bus, v);
    if (!d || d->IsCdrom()) continue;
    HEARTH_ASSIGN_OR_RETURN(VolumeId id, ParseVolumeId(vol));
    HEARTH_ASSIGN_OR_RETURN(VolumeInfo info, storage_.InfoOf(vol));
    if (info.vmid != vmid || info.content != ContentType::kImages) continue;  // someone else's volume
    if (IsBaseImage(id.volname)) continue;                                   // already a base image
    HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, storage_.Get(id.storage));
    HEARTH_ASSIGN_OR_RETURN(std::string base, st->RenameToBase(id.volname).map_error([&](Error e) { return e.WithContext(k); }));
    d->file = id.storage + ":" + base;
    renamed[k] = PrintDrive(dk->bus, *d);
    ctx.Log(k + ": " + vol + " is now the base image " + d->file);
    CrashPoint("template.disk-renamed");
  }
  HEARTH_TRY(Mutate(vmid, [&](VmConfig& c) -> Status {
    for (const auto& [k, v] : renamed) c.values[k] = v;
    c.values["template"] = "1";
    c.values.erase("lock");
    return Ok();
  }));
  CrashPoint("template.configured");
  undo.Commit();
  ctx.Log("VM " + std::to_string(vmid) + " is now a template");
  return Ok();
}

Result<std::string> VmService::Clone(const CloneRequest& req) {
  HEARTH_ASSIGN_OR_RETURN(VmConfig src, GetConfig(req.vmid));
  // PVE's order and words (API2/Qemu.pm clone_vm, $load_and_check): storage, lock, then
  // what a linked clone cannot do, all before the task (500s, not parameter errors).
  if (!req.storage.empty()) HEARTH_TRY(storage_.Get(req.storage));
  std::string lock = src.Lock();
  if (!lock.empty()) return Fail(FailedPrecondition("VM is locked (" + lock + ")"));
  if (!req.snapname.empty()) {
    auto snap = src.snapshots.find(req.snapname);
    if (snap == src.snapshots.end()) return Fail(Internal("snapshot '" + req.snapname + "' does not exist"));
    if (snap->second.count("snapstate"))
      return Fail(Internal("snapshot '" + req.snapname + "' is not complete (snapstate = " +
                           snap->second.at("snapstate") + ")"));
  }
  bool full = req.full.value_or(!src.IsTemplate());
  if (!full && !req.storage.empty()) return Fail(Internal("parameter 'storage' not allowed for linked clones"));
  if (!full && !req.format.empty()) return Fail(Internal("parameter 'format' not allowed for linked clones"));
  // From a snapshot, a linked clone is up to each disk's storage (btrfs can); checked per disk.
  if (!full && !src.IsTemplate() && req.snapname.empty()) {
    // Only base images can be shared; the first disk that is not one says so.
    for (const auto& [k, v] : src.values) {
      auto dk = DriveKey::Parse(k);
      if (!dk || dk->bus == DriveBus::kUnused) continue;
      auto d = ParseDrive(dk->bus, v);
      std::string vol = DriveVolume(k, v);
      if (!d || d->IsCdrom() || vol.empty()) continue;
      return Fail(Internal("Linked clone feature is not supported for '" + vol + "' (" + k + ")"));
    }
  }
  // A snapshot does not change while the VM runs (Proxmox copies it offline the same way).
  if (IsRunning(req.vmid) && req.snapname.empty())
    return Fail(FailedPrecondition("VM " + std::to_string(req.vmid) +
                                   " is running: cloning a running VM is not supported yet, stop it first "
                                   "(or clone one of its snapshots: snapname=)"));
  HEARTH_TRY(ReserveVm(req.newid, "clone", "unable to create VM " + std::to_string(req.newid) + ": config file already exists"));
  TaskSpec spec;
  spec.type = "qmclone";
  spec.id = std::to_string(req.vmid);
  spec.user = req.user;
  spec.vmid = req.newid;  // the new VM is the one being built
  spec.also_lock = {req.vmid};  // the source's config and disks must not change while they are read
  auto upid = tasks_.Start(spec, [this, req, full](TaskContext& ctx) { return DoClone(ctx, req, full); });
  if (!upid) ForgetVm(req.newid);
  return upid;
}

Status VmService::DoClone(TaskContext& ctx, const CloneRequest& req, bool full) {
  std::vector<std::string> made;  // before `undo`: its steps read it when they run
  Reverter undo;
  undo.Add([&] { ForgetVm(req.newid); });
  undo.Add([&] {
    for (const auto& v : made) (void)storage_.Free(v);
  });
  HEARTH_ASSIGN_OR_RETURN(VmConfig src, GetConfig(req.vmid));
  ctx.Log(std::string(full ? "full" : "linked") + " clone of VM " + std::to_string(req.vmid) +
          (req.snapname.empty() ? "" : " at snapshot '" + req.snapname + "'") + " as VM " + std::to_string(req.newid));
  // From a snapshot, its section is the source config, without what only a snapshot has.
  std::map<std::string, std::string> values = src.values;
  if (!req.snapname.empty()) {
    auto snap = src.snapshots.find(req.snapname);
    if (snap == src.snapshots.end()) return Fail(Internal("snapshot '" + req.snapname + "' does not exist"));
    values.clear();
    for (const auto& [k, v] : snap->second)
      if (k != "snapstate" && k != "snaptime" && k != "vmstate" && !StartsWith(k, "running")) values[k] = v;
  }
  VmConfig out;
  std::string ci_key = CloudInitDriveKey(values);
  for (const auto& [k, v] : values) {
    if (k == ci_key) {
      // Never share the source's seed: the clone gets its own cloud-init drive.
      HEARTH_ASSIGN_OR_RETURN(VolumeId ci, ParseVolumeId(DriveVolume(k, v)));
      std::vector<std::string> allocated;
      HEARTH_ASSIGN_OR_RETURN(auto drive, AllocateDrives(&ctx, req.newid, {{k, ci.storage + ":cloudinit"}}, "", allocated));
      made.insert(made.end(), allocated.begin(), allocated.end());
      out.values[k] = drive.at(k);
      continue;
    }
    if (k == "template" || k == "lock" || k == "meta" || k == "parent" || StartsWith(k, "unused")) continue;
    auto dk = DriveKey::Parse(k);
    std::string vol = dk ? DriveVolume(k, v) : "";
    auto d = dk ? ParseDrive(dk->bus, v) : Result<Drive>(Fail(Internal("")));
    if (vol.empty() || !d || d->IsCdrom()) {
      out.values[k] = v;  // cdroms, ISOs and non-disk keys are shared as they are
      continue;
    }
    HEARTH_ASSIGN_OR_RETURN(VolumeId id, ParseVolumeId(vol));
    HEARTH_ASSIGN_OR_RETURN(VolumeInfo info, storage_.InfoOf(vol).map_error([&](Error e) { return e.WithContext(k); }));
    std::string volid;
    if (!full) {
      HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, storage_.Get(id.storage));
      auto linked = req.snapname.empty() ? st->CloneLinked(id.volname, req.newid)
                                         : st->CloneLinkedFromSnapshot(id.volname, req.snapname, req.newid);
      HEARTH_ASSIGN_OR_RETURN(std::string vn, std::move(linked).map_error([&](Error e) { return e.WithContext(k); }));
      volid = id.storage + ":" + vn;
      ctx.Log(k + ": linked clone " + volid);
    } else {
      std::string target = req.storage.empty() ? id.storage : req.storage;
      HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, storage_.Get(target));
      // The source's format where the target can hold it, else the target's default.
      std::string format = !req.format.empty()           ? req.format
                           : st->SupportsFormat(info.format) ? info.format
                                                             : st->DefaultFormat();
      StoragePlugin::SnapshotImage from{info.path, info.format, ""};
      if (!req.snapname.empty()) {
        HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> src_st, storage_.Get(id.storage));
        HEARTH_ASSIGN_OR_RETURN(from, src_st->SnapshotImageOf(id.volname, req.snapname).map_error([&](Error e) {
          return e.WithContext(k);
        }));
      }
      ctx.Log(k + ": copying " + vol + (req.snapname.empty() ? "" : " at '" + req.snapname + "'") + " (" +
              FormatSize(info.size) + ") to '" + target + "' as " + format);
      HEARTH_ASSIGN_OR_RETURN(std::string vn, st->CopyImage(from.path, from.format, req.newid, format,
                                                            [&](const std::string& l) { ctx.Log(k + ": " + l); },
                                                            from.internal_snapshot)
                                                  .map_error([&](Error e) { return e.WithContext(k); }));
      volid = target + ":" + vn;
    }
    made.push_back(volid);
    CrashPoint("clone.disk-made");
    d->file = volid;
    d->opts.erase("format");
    out.values[k] = PrintDrive(dk->bus, *d);
  }
  // A clone is a new machine: new MACs, new SMBIOS uuid and generation id.
  for (auto& [k, v] : out.values) {
    if (!StartsWith(k, "net") || !ParseInt(k.substr(3))) continue;
    HEARTH_ASSIGN_OR_RETURN(NetDev nic, ParseNetDev(v));
    nic.macaddr = NewMac();
    v = PrintNetDev(nic);
  }
  out.values["smbios1"] = "uuid=" + NewUuid();
  out.values["vmgenid"] = NewUuid();
  out.values["meta"] = "creation-qemu=7.2.0,ctime=" + std::to_string(clock_.UnixSeconds());
  out.values["name"] = !req.name.empty() ? req.name : "Copy-of-VM-" + src.Get("name").value_or(std::to_string(req.vmid));
  if (!req.description.empty()) out.values["description"] = req.description;
  HEARTH_TRY(Mutate(req.newid, [&](VmConfig& c) -> Status {
    c = out;
    return Ok();
  }));
  CrashPoint("clone.configured");
  undo.Commit();
  ctx.Log("VM " + std::to_string(req.newid) + " created");
  return Ok();
}

}  // namespace hearth

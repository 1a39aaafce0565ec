// Restores of VM backups (Proxmox's qmrestore: POST /nodes/{node}/qemu with archive=): a new
// VM, or over an existing one with force=1. Facts: docs/reference/pve-vzdump.md; design:
// docs/design/backup.md. Backups themselves are in vm_backup.cc.
#include <regex>
#include <set>
#include <utility>

#include "backup/datastore.h"
#include "backup/image_backup.h"
#include "backup/image_export.h"
#include "backup/nbd_image.h"
#include "core/reverter.h"
#include "core/strings.h"
#include "core/units.h"
#include "model/cloudinit.h"
#include "model/drive.h"
#include "model/volume_id.h"
#include "model/vm_schema.h"
#include "vms/vm_service.h"

namespace hearth {
namespace {

constexpr auto kExportStart = std::chrono::seconds(60);

}  // namespace

Result<std::string> VmService::Restore(const RestoreRequest& request) {
  RestoreRequest req = request;
  HEARTH_TRY(AddMissingMacs(req.override_conf, [this] { return NewMac(); }));
  HEARTH_ASSIGN_OR_RETURN(auto parsed, ParseBackupVolid(req.archive));
  HEARTH_ASSIGN_OR_RETURN(auto store, OpenDatastoreFor(parsed.first, parsed.second));
  HEARTH_ASSIGN_OR_RETURN(BackupManifest manifest, store->Manifest(parsed.second).map_error([](Error e) {
    return FieldError("archive", e.message);
  }));
  // The target storage, checked before the task (the disks' own storages are known only from
  // the backup's config, inside it).
  if (!req.storage.empty()) {
    auto target = storage_.Get(req.storage);
    if (!target) return Fail(FieldError("storage", "storage '" + req.storage + "' does not exist"));
    if (req.live_restore && !(*target)->SupportsFormat("qcow2"))
      return Fail(FieldError("storage", "live-restore needs a qcow2 target: storage '" + req.storage +
                                            "' cannot hold qcow2 images"));
  }
  std::string emsg = "unable to restore VM " + std::to_string(req.vmid) + " - ";
  // A key that cannot read the backup stops the restore before anything is written.
  if (auto st = store->CheckKey(manifest); !st) return Fail(FailedPrecondition(emsg + st.error().message));
  std::shared_ptr<BackupDatastore> shared(std::move(store));
  if (Exists(req.vmid)) {
    if (!req.force)
      return Fail(Internal(emsg + "VM " + std::to_string(req.vmid) + " already exists on node '" + options_.node + "'"));
    // Overwrite (force=1): checked now, as qemu-server's restorefn, and locked 'create'.
    HEARTH_ASSIGN_OR_RETURN(VmConfig old, GetConfig(req.vmid));
    if (old.Get("protection").value_or("0") == "1") return Fail(Internal(emsg + "protection mode enabled"));
    if (IsRunning(req.vmid) || qemu_.Pid(req.vmid)) return Fail(Internal(emsg + "vm is running"));
    HEARTH_TRY(Mutate(req.vmid, [&](VmConfig& c) -> Status {
      if (!c.Lock().empty()) return Fail(FailedPrecondition(emsg + "VM is locked (" + c.Lock() + ")"));
      c.values["lock"] = "create";
      return Ok();
    }));
    auto unlock = [this, vmid = req.vmid] {
      (void)Mutate(vmid, [](VmConfig& c) -> Status {
        if (c.Lock() == "create") c.values.erase("lock");
        return Ok();
      });
    };
    auto upid = StartTask("qmrestore", req.vmid, req.user, [this, req, shared, id = parsed.second, old, unlock](TaskContext& ctx) {
      bool written = false;
      Status st = DoRestore(ctx, shared, id, req, &old, &written);
      if (!st && !written) unlock();  // the VM stays as it was
      return st;
    });
    if (!upid) unlock();
    return upid;
  }
  HEARTH_TRY(ReserveVm(req.vmid, "create", emsg + "VM " + std::to_string(req.vmid) + " already exists on node '" + options_.node + "'"));
  auto upid = StartTask("qmrestore", req.vmid, req.user, [this, req, shared, id = parsed.second](TaskContext& ctx) {
    bool written = false;
    Status st = DoRestore(ctx, shared, id, req, nullptr, &written);
    // Once its config is written the VM is kept: a start that failed afterwards, or a live
    // restore that failed (Proxmox keeps that VM for the admin to inspect).
    if (!st && !written) ForgetVm(req.vmid);
    return st;
  });
  if (!upid) ForgetVm(req.vmid);
  return upid;
}

// Beyond Proxmox (whose check_restore_permissions looks at bridges and mappings only): a
// user other than root@pam cannot restore what only root may set, since a backup is a file
// anyone who holds the store (a NAS, a USB disk) can write: args, hookscript, host devices
// and the like reach the host. The keys every backup carries (vmgenid, meta; lock and parent
// are dropped) are fine.
static Status CheckRestoredConfig(const std::map<std::string, std::string>& values, const std::string& user) {
  if (user == "root@pam" || StartsWith(user, "root@pam!")) return Ok();
  for (const auto& [k, v] : values) {
    bool host = ConfigKeyPrivilege(k) == kRootOnly && k != "vmgenid" && k != "meta" && k != "lock" && k != "parent";
    if (StartsWith(k, "serial") && ParseInt(k.substr(6))) host = v != "socket";
    if (StartsWith(k, "hostpci") && ParseInt(k.substr(7))) host = true;
    if (StartsWith(k, "usb") && ParseInt(k.substr(3))) host = v.rfind("spice", 0) != 0 && v.rfind("host=spice", 0) != 0;
    if (host)
      return Fail(PermissionDenied("only root can restore a backup with '" + k + "' config (it reaches the host)"));
  }
  return Ok();
}

Status VmService::DoRestore(TaskContext& ctx, std::shared_ptr<BackupDatastore> shared, const BackupSnapshotId& id,
                            const RestoreRequest& req, const VmConfig* old, bool* written) {
  BackupDatastore& store = *shared;
  ctx.Log("restore backup '" + req.archive + "' to VM " + std::to_string(req.vmid));
  HEARTH_ASSIGN_OR_RETURN(std::string conf, store.ReadBlob(id, "qemu-server.conf"));
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, ParseConfFile(conf));
  HEARTH_TRY(CheckRestoredConfig(cfg.values, req.user));
  // Checked before anything is allocated (Proxmox checks it after).
  auto tmpl = req.override_conf.find("template");
  if (req.live_restore && (cfg.Get("template").value_or("0") == "1" || (tmpl != req.override_conf.end() && tmpl->second == "1")))
    return Fail(Internal("cannot do live-restore for template"));
  std::map<std::string, FixedIndex> live_disks;  // streamed after the start, by drive key
  std::vector<std::string> allocated;
  Reverter undo;
  undo.Add([&] {
    for (const auto& v : allocated) (void)storage_.Free(v);
  });
  auto log = [&](const std::string& l) { ctx.Log(l); };
  std::string ci = CloudInitDriveKey(cfg.values);
  std::map<std::string, std::string> values = cfg.values;
  for (const auto& [k, v] : cfg.values) {
    auto dk = DriveKey::Parse(k);
    if (!dk) continue;
    if (dk->bus == DriveBus::kUnused) {  // the old VM's spare volumes are not part of the backup
      values.erase(k);
      continue;
    }
    std::string vol = DriveVolume(k, v);
    if (vol.empty()) continue;
    HEARTH_ASSIGN_OR_RETURN(Drive d, ParseDrive(dk->bus, v));
    std::string target = req.storage;
    if (target.empty()) {
      auto vid = ParseVolumeId(vol);
      target = vid && storage_.Get(vid->storage) ? vid->storage : "local";
    }
    if (k == ci) {  // generated at the next start
      d.file = target + ":vm-" + std::to_string(req.vmid) + "-cloudinit";
      HEARTH_ASSIGN_OR_RETURN(auto st, storage_.Get(target));
      HEARTH_ASSIGN_OR_RETURN(std::string ci_vol, st->AllocImage(req.vmid, "raw", 4 * kMiB, "vm-" + std::to_string(req.vmid) + "-cloudinit", nullptr));
      allocated.push_back(target + ":" + ci_vol);
      d.file = target + ":" + ci_vol;
      values[k] = PrintDrive(dk->bus, d);
      continue;
    }
    if (d.IsCdrom()) continue;  // not backed up, kept as it was (qemu-server's restore_update_config_line)
    auto idx = store.ReadIndex(id, "drive-" + k);
    if (!idx) {
      if (idx.error().code != ErrorCode::kNotFound) return Fail(idx.error());
      ctx.Log("disk '" + k + "' (" + vol + ") is not in the backup (backup=0): left out of the restored config");
      values.erase(k);
      continue;
    }
    HEARTH_ASSIGN_OR_RETURN(auto st, storage_.Get(target));
    if (!st->Supports(ContentType::kImages))
      return Fail(Internal("Content type 'images' is not available on storage '" + target + "'"));
    // The image format the disk had, where the target holds it; else the target's default.
    std::string format = st->DefaultFormat();
    if (std::string ext = vol.substr(vol.rfind('.') + 1); (ext == "qcow2" || ext == "raw" || ext == "vmdk") &&
                                                         st->SupportsFormat(ext))
      format = ext;
    // Streamed disks are qcow2 overlays over the backup (the EFI vars are read by the
    // firmware as pflash and restored in full first, as Proxmox does).
    bool stream = req.live_restore && k != "efidisk0" && k != "tpmstate0";
    if (stream) {
      if (!st->SupportsFormat("qcow2"))
        return Fail(Internal("live-restore needs a qcow2 target for '" + k + "': storage '" + target +
                             "' cannot hold qcow2 images (choose another with 'storage')"));
      format = "qcow2";
    }
    HEARTH_ASSIGN_OR_RETURN(std::string volname, st->AllocImage(req.vmid, format, idx->size, "", log));
    std::string new_volid = target + ":" + volname;
    allocated.push_back(new_volid);
    ctx.Log("map '" + k + "' to '" + new_volid + "' (" + FormatSize(idx->size) + ")");
    if (stream) {
      live_disks[k] = std::move(*idx);
      d.file = new_volid;
      d.opts.erase("format");
      values[k] = PrintDrive(dk->bus, d);
      continue;
    }
    HEARTH_TRY(st->ActivateVolume(volname));
    HEARTH_ASSIGN_OR_RETURN(VolumeInfo info, st->Info(volname));
    std::string socket = qemu_.run_dir() + "/restore-" + std::to_string(req.vmid) + "-" + k + ".nbd";
    ImageExport::Options opt;
    opt.writable = true;
    HEARTH_ASSIGN_OR_RETURN(auto exp, ImageExport::Start(runner_, info.path, info.format, socket, kExportStart, opt));
    HEARTH_ASSIGN_OR_RETURN(auto nbd, NbdImage::ConnectUnix(socket, ImageExport::kExportName, kExportStart));
    if (nbd->size() < idx->size) return Fail(Internal(k + ": the new volume is smaller than the backed-up disk"));
    auto writer = [&](uint64_t off, std::string_view data) -> Status {
      if (ctx.cancelled()) return Fail(Aborted("restore cancelled"));
      return nbd->Write(off, data);
    };
    HEARTH_TRY(RestoreImage(store.chunks(), *idx, writer, "drive-" + k, log));
    HEARTH_TRY(nbd->Flush());
    d.file = new_volid;
    d.opts.erase("format");  // the new volume's own format (from its name or the storage)
    values[k] = PrintDrive(dk->bus, d);
  }
  // The snapshots were not backed up, so neither is their tree; a lock belongs to the old VM.
  // A live restore keeps its VM locked until every disk is complete ("keep lock during
  // live-restore", qemu-server).
  values.erase("parent");
  values.erase("lock");
  if (!live_disks.empty()) values["lock"] = "create";
  // A copy must not clash with the original: a new generation id always (qemu-server does),
  // new MAC addresses when asked (unique).
  if (auto g = values.find("vmgenid"); g != values.end() && g->second != "0") g->second = NewUuid();
  if (req.unique) {
    static const std::regex mac("([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}");
    for (auto& [k, v] : values)
      if (StartsWith(k, "net")) v = std::regex_replace(v, mac, NewMac(), std::regex_constants::format_first_only);
    if (auto sm = values.find("smbios1"); sm != values.end()) {
      static const std::regex uuid("uuid=[0-9A-Fa-f-]+");
      sm->second = std::regex_replace(sm->second, uuid, "uuid=" + NewUuid());
    }
  }
  // The call's own config keys win over the backup's (qemu-server's restore_merge_config).
  // Keys only in the log: a value may be a secret (cipassword).
  std::vector<std::string> overridden;
  for (const auto& [k, v] : req.override_conf) {
    values[k] = v;
    overridden.push_back(k);
  }
  if (!overridden.empty()) ctx.Log("set from the restore call: " + Join(overridden, ", "));
  bool is_template = values.count("template") && values.at("template") == "1";
  values.erase("template");  // made a template below, its disks turned into base images
  // Overwriting: the old disks the backup replaces go once the new config is in place; the
  // VM's other volumes stay, as unusedN; the old snapshots' RAM states go.
  std::vector<std::string> replaced;
  if (old) {
    std::set<std::string> referenced;
    for (const auto& [k, v] : values)
      if (DriveKey::Parse(k)) referenced.insert(DriveVolume(k, v));
    int next_unused = 0;
    auto add_unused = [&](const std::string& vol) {
      while (values.count("unused" + std::to_string(next_unused))) ++next_unused;
      values["unused" + std::to_string(next_unused)] = vol;
    };
    for (const auto& [k, v] : old->values) {
      auto dk = DriveKey::Parse(k);
      if (!dk) continue;
      if (dk->bus != DriveBus::kUnused) {
        auto d = ParseDrive(dk->bus, v);
        if (!d || d->IsCdrom()) continue;
      }
      std::string vol = DriveVolume(k, v);
      auto vid = ParseVolumeId(vol);
      if (vol.empty() || referenced.count(vol) || !vid || VolumeOwner(*vid) != req.vmid) continue;  // not this VM's own
      if (dk->bus != DriveBus::kUnused && values.count(k) && store.ReadIndex(id, "drive-" + k)) replaced.push_back(vol);
      else add_unused(vol);
    }
    for (const auto& [name, snap] : old->snapshots)
      if (auto st = snap.find("vmstate"); st != snap.end()) replaced.push_back(st->second);
  }
  HEARTH_TRY(Mutate(req.vmid, [&](VmConfig& c) -> Status {
    c.values = values;
    c.pending.clear();
    c.pending_delete.clear();
    c.snapshots.clear();
    return Ok();
  }));
  undo.Commit();
  if (written) *written = true;
  auto free_replaced = [&] {
    for (const auto& vol : replaced) {
      if (auto st = storage_.Free(vol); !st) ctx.Warn("could not free the old volume '" + vol + "': " + st.error().message);
      else ctx.Log("freed the old volume '" + vol + "'");
    }
  };
  if (!live_disks.empty()) {
    // The old disks go only once the new ones are complete: a live restore that fails leaves
    // them to the VM as unusedN, so nothing of the old VM is lost to a failed stream.
    Status st = RunLiveRestore(ctx, req.vmid, shared, req.archive, live_disks, req.bwlimit, false);
    if (st) {
      free_replaced();
    } else if (!replaced.empty()) {
      (void)Mutate(req.vmid, [&](VmConfig& c) -> Status {
        int n = 0;
        for (const auto& vol : replaced) {
          while (c.values.count("unused" + std::to_string(n))) ++n;
          c.values["unused" + std::to_string(n)] = vol;
        }
        return Ok();
      });
      ctx.Warn("the VM's old disks are kept as unused disks: " + Join(replaced, ", "));
    }
    return st;
  }
  free_replaced();
  ctx.Log("restore of VM " + std::to_string(req.vmid) + " from '" + req.archive + "' finished");
  if (is_template) {
    ctx.Log("Convert to template.");
    HEARTH_TRY(DoTemplate(ctx, req.vmid, ""));
  } else if (req.start) {
    HEARTH_TRY(DoStart(ctx, req.vmid, 0));
  }
  return Ok();
}

}  // namespace hearth

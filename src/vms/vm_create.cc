// Creating, reconfiguring and destroying VMs.
#include <spdlog/spdlog.h>

#include <set>

#include <nlohmann/json.hpp>

#include "core/reverter.h"
#include "core/strings.h"
#include "core/units.h"
#include "model/drive.h"
#include "model/netdev.h"
#include "model/vm_schema.h"
#include "vms/vm_service.h"
#include "sys/crash_point.h"

namespace hearth {

Status AddMissingMacs(std::map<std::string, std::string>& values, const std::function<std::string()>& new_mac) {
  for (auto& [k, v] : values) {
    if (!StartsWith(k, "net") || !ParseInt(k.substr(3))) continue;
    HEARTH_ASSIGN_OR_RETURN(NetDev nic, ParseNetDev(v).map_error([&](Error e) { return FieldError(k, e.message); }));
    if (nic.macaddr.empty()) {
      nic.macaddr = new_mac();
      v = PrintNetDev(nic);
    }
  }
  return Ok();
}

namespace {

// PVE's default boot order when none is given: first disk, first cdrom, first NIC.
std::string DefaultBootOrder(const std::map<std::string, std::string>& values) {
  std::string disk, cdrom, net;
  for (const char* bus : {"scsi", "virtio", "sata", "ide"}) {
    for (const auto& [k, v] : values) {
      auto dk = DriveKey::Parse(k);
      if (!dk || !dk->IsDisk() || !StartsWith(k, bus) || dk->bus == DriveBus::kEfidisk || dk->bus == DriveBus::kTpmstate)
        continue;
      auto d = ParseDrive(dk->bus, v);
      if (!d) continue;
      if (d->IsCdrom()) {
        if (cdrom.empty()) cdrom = k;
      } else if (disk.empty()) {
        disk = k;
      }
    }
  }
  for (const auto& [k, v] : values)
    if (StartsWith(k, "net") && net.empty()) net = k;
  std::vector<std::string> order;
  for (const auto& d : {disk, cdrom, net})
    if (!d.empty()) order.push_back(d);
  return "order=" + Join(order, ";");
}

Status CheckDriveVolumes(StorageManager& storage, const std::map<std::string, std::string>& values) {
  for (const auto& [k, v] : values) {
    auto dk = DriveKey::Parse(k);
    if (!dk) continue;
    auto d = ParseDrive(dk->bus, v);
    if (!d) return Fail(FieldError(k, d.error().message));
    if (dk->bus == DriveBus::kTpmstate)
      return Fail(FieldError(k, "TPM state (tpmstate0) needs swtpm, which hearth does not run yet"));
    if (auto alloc = ParseDriveAllocation(d->file)) {
      if (!alloc->storage.empty()) HEARTH_TRY(storage.Get(alloc->storage).map_error([&](Error e) { return FieldError(k, e.message); }));
      continue;
    }
    if (d->file == "none") continue;
    if (d->file == "cdrom") return Fail(FieldError(k, "host cdrom passthrough is not supported"));
    if (d->file[0] == '/') return Fail(FieldError(k, "absolute paths are not supported; use a storage volume"));
    auto info = storage.InfoOf(d->file);
    if (!info) return Fail(FieldError(k, "volume '" + d->file + "' does not exist"));
  }
  return Ok();
}

}  // namespace

Status VmService::ReserveVm(int vmid, const std::string& lock_name, const std::string& taken_message) {
  VmConfig placeholder;
  placeholder.values = {{"lock", lock_name}};
  std::string text = FormatConfFile(placeholder);
  Entry e;
  e.config = placeholder;
  e.conf_text = text;
  // A placeholder: a crash before the task ends removes it anyway, so it need not wait for
  // the disk; the task's final (durable) config write carries it.
  return registry_.Reserve(vmid, std::move(e), taken_message);
}

void VmService::ForgetVm(int vmid) {
  (void)store_.DeleteVm(vmid);
  registry_.Erase(vmid);
}

std::string VmService::NewUuid() {
  unsigned char b[16];
  random_.Fill(b, sizeof b);
  b[6] = (b[6] & 0x0f) | 0x40;  // RFC 4122 version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // and variant
  std::string hex = HexEncode(std::string_view(reinterpret_cast<const char*>(b), sizeof b));
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20, 12);
}

Result<std::map<std::string, std::string>> VmService::AllocateDrives(TaskContext* ctx, int vmid,
                                                                    const std::map<std::string, std::string>& drives,
                                                                    const std::string& default_storage,
                                                                    std::vector<std::string>& allocated,
                                                                    const VmConfig* current) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : drives) {
    auto dk = DriveKey::Parse(k);
    if (!dk) continue;
    HEARTH_ASSIGN_OR_RETURN(Drive d, ParseDrive(dk->bus, v));
    auto alloc = ParseDriveAllocation(d.file);
    if (alloc && d.opts.count("import-from")) {
      // "<storage>:0,import-from=<volume or absolute path>": a copy of an existing image.
      std::string source = d.opts["import-from"];
      std::string src_path, src_format;
      if (!source.empty() && source[0] == '/') {
        src_path = source;
        auto probe = runner_.Run({"qemu-img", "info", "-U", "--output=json", source}, {});
        if (!probe || probe->exit_code != 0) return Fail(FieldError(k, "cannot read image '" + source + "'"));
        auto info = nlohmann::json::parse(probe->out, nullptr, false);
        src_format = info.is_object() ? info.value("format", "raw") : "raw";
      } else {
        HEARTH_ASSIGN_OR_RETURN(VolumeInfo info, storage_.InfoOf(source).map_error([&](Error e) {
          return FieldError(k, "import-from: volume '" + source + "' does not exist");
        }));
        if (info.content != ContentType::kImport && info.content != ContentType::kImages && info.content != ContentType::kIso)
          return Fail(FieldError(k, "import-from: '" + source + "' is not an image"));
        src_path = info.path;
        src_format = info.format == "img" ? "raw" : info.format;
      }
      std::string storage_id = alloc->storage.empty() ? default_storage : alloc->storage;
      if (storage_id.empty()) return Fail(FieldError(k, "no storage given for '" + d.file + "'"));
      HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, storage_.Get(storage_id));
      std::string format = d.opts.count("format") ? d.opts["format"] : st->DefaultFormat();
      if (ctx) ctx->Log(k + ": importing " + source);
      HEARTH_ASSIGN_OR_RETURN(std::string volname,
                              st->CopyImage(src_path, src_format, vmid, format, [&](const std::string& l) {
                                if (ctx) ctx->Log(k + ": " + l);
                              }).map_error([&](Error e) { return e.WithContext(k); }));
      std::string volid = storage_id + ":" + volname;
      allocated.push_back(volid);
      HEARTH_ASSIGN_OR_RETURN(VolumeInfo made, storage_.InfoOf(volid));
      // A size larger than the image grows it (as PVE does for "<storage>:<GiB>,import-from").
      if (alloc->size_bytes > made.size) {
        HEARTH_TRY(st->ResizeImage(volname, alloc->size_bytes));
        made.size = alloc->size_bytes;
      }
      d.file = volid;
      d.opts.erase("import-from");
      d.opts.erase("format");
      d.opts["size"] = FormatSize(made.size);
      out[k] = PrintDrive(dk->bus, d);
      continue;
    }
    if (!alloc) {
      // Existing volume: record its real size as PVE does.
      if (d.file != "none" && d.file.find(':') != std::string::npos) {
        if (auto info = storage_.InfoOf(d.file); info && info->content == ContentType::kImages)
          d.opts["size"] = FormatSize(info->size);
      }
      out[k] = PrintDrive(dk->bus, d);
      continue;
    }
    std::string storage_id = alloc->storage.empty() ? default_storage : alloc->storage;
    if (storage_id.empty()) return Fail(FieldError(k, "no storage given for allocation '" + d.file + "'"));
    HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, storage_.Get(storage_id));
    if (dk->bus == DriveBus::kEfidisk) {
      // UEFI variables: a copy of OVMF's template (the size in the request is ignored, as PVE).
      if (options_.host.ovmf_dir.empty()) return Fail(FieldError(k, "efidisk needs OVMF firmware (install the 'ovmf' package)"));
      std::string efitype = d.opts.count("efitype") ? d.opts["efitype"] : "2m";
      bool keys = d.opts.count("pre-enrolled-keys") && d.opts["pre-enrolled-keys"] == "1";
      std::string vars = options_.host.ovmf_dir + "/" + OvmfVarsFile(efitype, keys);
      // In the storage's default format, as qemu-server's create_efidisk: qcow2 on a dir
      // storage, so that a UEFI VM can be snapshotted; raw on btrfs.
      std::string format = d.opts.count("format") && st->SupportsFormat(d.opts["format"]) ? d.opts["format"]
                                                                                          : st->DefaultFormat();
      HEARTH_ASSIGN_OR_RETURN(std::string volname, st->CopyImage(vars, "raw", vmid, format, nullptr).map_error([&](Error e) {
        return e.WithContext(k);
      }));
      allocated.push_back(storage_id + ":" + volname);
      if (ctx) ctx->Log(k + ": EFI variables from " + vars);
      HEARTH_ASSIGN_OR_RETURN(VolumeInfo info, storage_.InfoOf(storage_id + ":" + volname));
      d.file = storage_id + ":" + volname;
      d.opts.erase("format");
      d.opts["size"] = FormatSize(info.size);
      out[k] = PrintDrive(dk->bus, d);
      continue;
    }
    if (alloc->cloudinit) {
      // The seed is written into it at start (and by PUT …/cloudinit). Like PVE on a file
      // storage, the volume is named after its format: vm-<vmid>-cloudinit.<format>.
      std::string format = d.opts.count("format") ? d.opts["format"] : st->DefaultFormat();
      std::string name = "vm-" + std::to_string(vmid) + "-cloudinit";
      std::string volid = storage_id + ":" + std::to_string(vmid) + "/" + name + "." + format;
      Drive ci = d;
      ci.opts.erase("format");
      ci.opts["media"] = "cdrom";
      // Asking again for the drive this slot already has (Terraform re-sends it on every
      // apply) keeps it: the contents are generated anyway.
      if (current && DriveVolume(k, current->Get(k).value_or("")) == volid) {
        ci.file = volid;
        out[k] = PrintDrive(dk->bus, ci);
        continue;
      }
      HEARTH_ASSIGN_OR_RETURN(std::string volname, st->AllocImage(vmid, format, 4 * kMiB, name, nullptr)
                                                       .map_error([&](Error e) { return e.WithContext(k); }));
      allocated.push_back(storage_id + ":" + volname);
      if (ctx) ctx->Log(k + ": cloud-init drive " + storage_id + ":" + volname);
      ci.file = storage_id + ":" + volname;
      out[k] = PrintDrive(dk->bus, ci);
      continue;
    }
    std::string format = d.opts.count("format") ? d.opts["format"] : st->DefaultFormat();
    uint64_t size = std::max<uint64_t>(alloc->size_bytes, kMiB);
    size = (size + kKiB - 1) / kKiB * kKiB;
    if (ctx) ctx->Log(k + ": allocating " + FormatSize(size) + " " + format + " on '" + storage_id + "'");
    HEARTH_ASSIGN_OR_RETURN(std::string volname,
                            st->AllocImage(vmid, format, size, "", [&](const std::string& l) {
                              if (ctx) ctx->Log(l);
                            }).map_error([&](Error e) { return e.WithContext(k); }));
    std::string volid = storage_id + ":" + volname;
    allocated.push_back(volid);
    CrashPoint("alloc.disk");  // between two disks of one create or config change
    d.file = volid;
    d.opts.erase("format");  // PVE drops format for allocated disks
    d.opts["size"] = FormatSize(size);
    out[k] = PrintDrive(dk->bus, d);
  }
  return out;
}

Result<std::string> VmService::Create(const CreateRequest& req_in) {
  CreateRequest req = req_in;
  if (Exists(req.vmid))
    return Fail(Internal("unable to create VM " + std::to_string(req.vmid) + " - VM " + std::to_string(req.vmid) +
                         " already exists on node '" + options_.node + "'"));
  for (const auto& [k, v] : req.config)
    if (auto spec = FindVmKey(k); spec && spec->internal) return Fail(FieldError(k, "'" + k + "' cannot be set by users"));
  if (!req.storage.empty()) HEARTH_TRY(storage_.Get(req.storage).map_error([](Error e) { return FieldError("storage", e.message); }));
  HEARTH_TRY(CheckDriveVolumes(storage_, req.config));
  HEARTH_TRY(PrepareCloudInitKeys(nullptr, req.config));
  HEARTH_TRY(AddMissingMacs(req.config, [this] { return NewMac(); }));
  if (!req.config.count("boot")) req.config["boot"] = DefaultBootOrder(req.config);
  if (!req.config.count("vmgenid") || req.config["vmgenid"] == "1") req.config["vmgenid"] = NewUuid();
  if (req.config["vmgenid"] == "0") req.config.erase("vmgenid");
  if (!req.config.count("smbios1")) req.config["smbios1"] = "uuid=" + NewUuid();
  req.config["meta"] = "creation-qemu=7.2.0,ctime=" + std::to_string(clock_.UnixSeconds());

  // Record the VM with lock=create first: the id is taken atomically (a concurrent create of
  // the same id fails here), and a crash before the task finishes is undone at restart.
  HEARTH_TRY(ReserveVm(req.vmid, "create",
                       "unable to create VM " + std::to_string(req.vmid) + " - VM " + std::to_string(req.vmid) +
                           " already exists on node '" + options_.node + "'"));
  auto upid = StartTask("qmcreate", req.vmid, req.user, [this, req](TaskContext& ctx) { return DoCreate(ctx, req); });
  if (!upid) ForgetVm(req.vmid);
  return upid;
}

Status VmService::DoCreate(TaskContext& ctx, const CreateRequest& req) {
  std::vector<std::string> allocated;  // before `undo`: its steps read it when they run
  Reverter undo;
  undo.Add([&] { ForgetVm(req.vmid); });
  undo.Add([&] {
    for (const auto& v : allocated) (void)storage_.Free(v);
  });
  std::map<std::string, std::string> drives;
  for (const auto& [k, v] : req.config)
    if (DriveKey::Parse(k)) drives[k] = v;
  CrashPoint("create.reserved");
  HEARTH_ASSIGN_OR_RETURN(auto resolved, AllocateDrives(&ctx, req.vmid, drives, req.storage, allocated));
  CrashPoint("create.disks-allocated");
  VmConfig final_cfg;
  final_cfg.values = req.config;
  for (const auto& [k, v] : resolved) final_cfg.values[k] = v;
  HEARTH_TRY(Mutate(req.vmid, [&](VmConfig& c) -> Status {
    c = final_cfg;
    return Ok();
  }));
  CrashPoint("create.configured");
  ctx.Log("VM " + std::to_string(req.vmid) + " created");
  undo.Commit();
  if (req.start) {
    ctx.Log("starting VM " + std::to_string(req.vmid));
    HEARTH_TRY(DoStart(ctx, req.vmid, 0));
  }
  return Ok();
}

Result<std::optional<std::string>> VmService::Update(const UpdateRequest& req_in, bool async) {
  UpdateRequest req = req_in;
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(req.vmid));
  HEARTH_TRY(CheckLock(cfg, req.skiplock));
  for (auto& k : req.del)
    if (k == "cdrom") k = "ide2";
  for (auto& k : req.revert)
    if (k == "cdrom") k = "ide2";
  for (const auto& [k, v] : req.set)
    if (auto spec = FindVmKey(k); spec && spec->internal) return Fail(FieldError(k, "'" + k + "' cannot be set by users"));
  if (req.set.empty() && req.del.empty() && req.revert.empty()) return Fail(InvalidArgument("no options specified"));
  if (!req.digest.empty() && req.digest != ConfDigest(FormatConfFile(cfg)))
    return Fail(FailedPrecondition("checksum mismatch (file change by other user?)"));
  HEARTH_TRY(CheckDriveVolumes(storage_, req.set));
  HEARTH_TRY(PrepareCloudInitKeys(&cfg, req.set));
  HEARTH_TRY(AddMissingMacs(req.set, [this] { return NewMac(); }));
  if (req.set.count("vmgenid") && req.set["vmgenid"] == "1") req.set.erase("vmgenid");
  if (req.set.count("protection") == 0 && !req.del.empty() && cfg.Get("protection").value_or("0") == "1") {
    for (const auto& k : req.del)
      if (auto dk = DriveKey::Parse(k); dk && req.force)
        return Fail(FailedPrecondition("can't remove drive '" + k + "' - protection mode enabled"));
  }
  for (const auto& k : req.del)
    if (auto spec = FindVmKey(k); spec && spec->internal && k != "lock")
      return Fail(FieldError("delete", "'" + k + "' cannot be deleted by users"));

  auto apply = [this, req](TaskContext* ctx) -> Status {
    std::vector<std::string> allocated;
    Reverter undo;
    undo.Add([&] {
      for (const auto& v : allocated) (void)storage_.Free(v);
    });
    HEARTH_ASSIGN_OR_RETURN(VmConfig now, GetConfig(req.vmid));
    if (req.authorize) HEARTH_TRY(req.authorize(now));
    HEARTH_ASSIGN_OR_RETURN(auto resolved, AllocateDrives(ctx, req.vmid, req.set, "", allocated, &now));
    CrashPoint("update.disks-allocated");
    ConfigChange change;
    change.set = req.set;
    for (const auto& [k, v] : resolved) change.set[k] = v;
    change.del = req.del;
    change.force = req.force;
    change.revert = req.revert;
    bool running = IsRunning(req.vmid);
    // A running VM's NIC changes that need no new device are applied to the tap and the
    // link now, then committed; the others stay pending (qemu-server vmconfig_update_net).
    std::set<std::string> live;
    if (running)
      for (const auto& [k, v] : change.set) {
        if (!StartsWith(k, "net") || !ParseInt(k.substr(3)) || !now.Has(k)) continue;
        auto before = ParseNetDev(*now.Get(k)), after = ParseNetDev(v);
        if (!before || !after) continue;
        NicChange how = ClassifyNicChange(*before, *after);
        if (how == NicChange::kReplace) continue;
        if (how == NicChange::kLive) {
          if (auto done = UpdateNicLive(ctx, req.vmid, k, *before, *after); !done) {
            if (ctx) ctx->Warn(k + ": cannot change the running VM's NIC (" + done.error().message + "); the change is pending");
            continue;
          }
        }
        live.insert(k);
      }
    CommitResult committed;
    HEARTH_TRY(Mutate(
        req.vmid,
        [&](VmConfig& c) -> Status {
          HEARTH_TRY(CheckLock(c, req.skiplock));
          if (auto boot = change.set.find("boot"); boot != change.set.end() && StartsWith(boot->second, "order=")) {
            // PVE (update_vm_api): every device in the order must exist after this change
            // (the stray quote is PVE's), and an explicit order replaces the old bootdisk.
            for (const auto& dev : Split(boot->second.substr(6), ';')) {
              bool deleted = std::find(change.del.begin(), change.del.end(), dev) != change.del.end();
              if (dev.empty()) continue;
              if (deleted || !(c.Has(dev) || c.pending.count(dev) || change.set.count(dev)))
                return Fail(Internal("invalid bootorder: device '" + dev + "' does not exist'"));
            }
            if (c.Has("bootdisk") && std::find(change.del.begin(), change.del.end(), "bootdisk") == change.del.end())
              change.del.push_back("bootdisk");
          }
          HEARTH_TRY(StageChange(c, req.vmid, change));
          committed = CommitPending(c, req.vmid,
                                    [&](const std::string& k) { return !running || IsHotApplicable(k) || live.count(k); });
          if (c.Has("boot") && change.set.count("boot") == 0 && !committed.applied.empty()) {
            // A removed device disappears from the boot order.
            std::string boot = *c.Get("boot");
            if (StartsWith(boot, "order=")) {
              std::vector<std::string> keep;
              for (const auto& d : SplitAny(boot.substr(6), ";"))
                if (c.Has(d)) keep.push_back(d);
              c.values["boot"] = "order=" + Join(keep, ";");
            }
          }
          return Ok();
        },
        req.digest));
    undo.Commit();
    for (const auto& v : committed.destroy_volumes) {
      if (ctx) ctx->Log("removing volume " + v);
      if (auto st = storage_.Free(v); !st) {
        if (ctx) ctx->Warn("could not remove " + v + ": " + st.error().message);
      }
    }
    if (ctx) ctx->Log("update VM " + std::to_string(req.vmid) + ": done");
    return Ok();
  };
  if (!async) {
    HEARTH_ASSIGN_OR_RETURN(auto guard, LockForCall(req.vmid));
    HEARTH_TRY(apply(nullptr));
    return std::optional<std::string>();
  }
  HEARTH_ASSIGN_OR_RETURN(std::string upid,
                          StartTask("qmconfig", req.vmid, req.user, [apply](TaskContext& ctx) { return apply(&ctx); }));
  return std::optional<std::string>(upid);
}

Result<std::string> VmService::Destroy(int vmid, const std::string& user, bool purge, bool destroy_unreferenced,
                                       bool skiplock) {
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(vmid));
  HEARTH_TRY(CheckLock(cfg, skiplock));
  if (IsRunning(vmid)) return Fail(FailedPrecondition("VM " + std::to_string(vmid) + " is running - destroy failed"));
  if (cfg.Get("protection").value_or("0") == "1")
    return Fail(FailedPrecondition("can't remove VM " + std::to_string(vmid) + " - protection mode enabled"));
  if (auto user = LinkedCloneUser(vmid))
    return Fail(FailedPrecondition("base volume '" + user->first + "' is still in use by linked cloned VM " +
                                   std::to_string(user->second)));
  if (destroy_check_) HEARTH_TRY(destroy_check_(vmid, purge));  // replication jobs (pools: later)
  return StartTask("qmdestroy", vmid, user, [this, vmid, destroy_unreferenced, purge](TaskContext& ctx) -> Status {
    HEARTH_TRY(DoDestroy(ctx, vmid, destroy_unreferenced));
    if (destroyed_hook_) destroyed_hook_(ctx, vmid);    // the firewall
    if (purge && purge_hook_) purge_hook_(ctx, vmid);  // backup jobs
    return Ok();
  });
}

Status VmService::DoDestroy(TaskContext& ctx, int vmid, bool destroy_unreferenced) {
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(vmid));
  if (qemu_.Pid(vmid)) return Fail(FailedPrecondition("VM " + std::to_string(vmid) + " is running - destroy failed"));
  // Again under the VM's lock: a linked clone may have been made between the request's
  // check and now (clones lock their source). Found by the chaos test: the template went and
  // left its base images to the clone.
  if (auto user = LinkedCloneUser(vmid))
    return Fail(FailedPrecondition("base volume '" + user->first + "' is still in use by linked cloned VM " +
                                   std::to_string(user->second)));
  // Mark it first so nothing else starts or edits it while the volumes go.
  HEARTH_TRY(Mutate(vmid, [](VmConfig& c) -> Status {
    c.values["lock"] = "destroyed";
    return Ok();
  }));
  CrashPoint("destroy.locked");
  // Own volumes attached as cdroms (the cloud-init drive) go too; ISOs and other VMs'
  // volumes (a shared ISO, a template's base image) are never removed.
  std::vector<std::string> volumes = ReferencedVolumes(cfg, /*include_cdroms=*/true);
  for (const auto& vol : volumes) {
    auto info = storage_.InfoOf(vol);
    if (!info) {
      // Its storage gone, disabled or unmounted: said, not silently left (Proxmox's words).
      std::string id = std::to_string(vmid);
      if (vol.find("/vm-" + id + "-") != std::string::npos || vol.find("/base-" + id + "-") != std::string::npos)
        ctx.Warn("Could not remove disk '" + vol + "', check manually: " + info.error().message);
      continue;
    }
    if (info->content != ContentType::kImages || info->vmid != vmid) continue;
    ctx.Log("removing volume " + vol);
    if (auto st = storage_.Free(vol); !st) ctx.Warn("could not remove " + vol + ": " + st.error().message);
    CrashPoint("destroy.volume-freed");
  }
  if (destroy_unreferenced) {
    for (const auto& st : storage_.All()) {
      auto vols = st->List(ContentType::kImages, vmid);
      if (!vols) continue;
      for (const auto& v : *vols) {
        ctx.Log("removing unreferenced volume " + v.volid);
        (void)storage_.Free(v.volid);
      }
    }
  }
  HEARTH_TRY(store_.DeleteVm(vmid));
  CrashPoint("destroy.deleted");
  registry_.Erase(vmid);
  qemu_.CleanupRuntime(vmid);
  ctx.Log("VM " + std::to_string(vmid) + " destroyed");
  return Ok();
}

}  // namespace hearth

#include "api/api_server.h"
#include "api/handlers/handlers.h"
#include "core/strings.h"
#include "model/vm_schema.h"

namespace hearth {
namespace {

int Vmid(const ApiContext& c) { return static_cast<int>(c.params.Int("vmid")); }
std::string User(const ApiContext& c) { return c.who->AuthId(); }

// The VM config keys in the request (everything the route schema did not claim).
std::map<std::string, std::string> ConfigKeys(const ApiContext& c, const std::vector<std::string>& reserved) {
  std::map<std::string, std::string> out;
  for (const auto& [k, vs] : c.params.all()) {
    if (std::find(reserved.begin(), reserved.end(), k) != reserved.end()) continue;
    if (FindVmKey(k) && !vs.empty()) out[k] = vs[0];
  }
  return out;
}

// qemu-server's valid_drive_names, in its order (the `disk` enum of template and resize).
std::vector<std::string> DriveNames() {
  std::vector<std::string> names;
  const std::pair<const char*, int> buses[] = {{"ide", 4}, {"sata", 6}, {"scsi", 31}, {"virtio", 16}};
  for (const auto& [bus, count] : buses)
    for (int i = 0; i < count; ++i) names.push_back(std::string(bus) + std::to_string(i));
  names.push_back("efidisk0");
  names.push_back("tpmstate0");
  return names;
}

// valid_drive_names_with_unused: move_disk's `disk` enum.
std::vector<std::string> DriveNamesWithUnused() {
  std::vector<std::string> names = DriveNames();
  for (int i = 0; i < 256; ++i) names.push_back("unused" + std::to_string(i));
  return names;
}

ParamSpec OptionalStorageParam() {
  ParamSpec p = StorageParam();
  p.optional = true;
  return p;
}

std::vector<std::string> ListParam(const ApiContext& c, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& v : c.params.GetAll(name))
    for (const auto& k : SplitAny(v, ",; \t")) out.push_back(k);
  return out;
}

Result<ApiReply> UpidReply(Result<std::string> r) {
  if (!r) return Fail(r.error());
  return Data(*r);
}

// import-from copies data: only in tasks (create, POST config), and host paths only for admins.
Status CheckImports(const ApiContext& c, const std::map<std::string, std::string>& config, bool async) {
  for (const auto& [k, v] : config) {
    size_t pos = v.find("import-from=");
    if (pos == std::string::npos) continue;
    if (!async) return Fail(FieldError(k, "import-from needs the asynchronous POST …/config"));
    if (v.compare(pos + 12, 1, "/") == 0 && !c.who->IsRootAtPam())
      return Fail(PermissionDenied("Only root can pass arbitrary filesystem paths."));
  }
  return Ok();
}

Result<ApiReply> UpdateConfig(ApiServices& s, ApiContext& c, bool async) {
  UpdateRequest req;
  req.vmid = Vmid(c);
  req.set = ConfigKeys(c, {"vmid", "node", "delete", "revert", "force", "digest", "skiplock", "background_delay"});
  HEARTH_TRY(CheckImports(c, req.set, async));
  req.del = ListParam(c, "delete");
  req.revert = ListParam(c, "revert");
  req.force = c.params.Bool("force");
  req.digest = c.params.GetOr("digest", "");
  req.skiplock = c.params.Bool("skiplock");
  if (req.skiplock && !c.who->IsRootAtPam()) return Fail(FieldError("skiplock", "Only root may use this option."));
  req.user = User(c);
  if (auto keys = req.set.find("sshkeys"); keys != req.set.end() && !SshKeysValid(keys->second))
    return Fail(Internal("SSH public key validation error"));
  auto current = s.vms.Config(req.vmid, true);
  if (!current) return Fail(current.error());
  HEARTH_TRY(CheckVmConfigPrivileges(s, *c.who, req.vmid, req.set, req.del, &current->values));
  // Again under the lock, against the values the update will see; a reverted key counts as
  // setting its current value again (PVE turns revert into exactly that).
  req.authorize = [&s, who = *c.who, vmid = req.vmid, set = req.set, del = req.del,
                   revert = req.revert](const VmConfig& now) -> Status {
    auto effective = set;
    for (const auto& k : revert)
      if (auto it = now.values.find(k == "cdrom" ? "ide2" : k); it != now.values.end()) effective.emplace(k, it->second);
    return CheckVmConfigPrivileges(s, who, vmid, effective, del, &now.values);
  };
  HEARTH_ASSIGN_OR_RETURN(auto upid, s.vms.Update(req, async));
  if (upid) return Data(*upid);
  return Data(nullptr);
}

// /pending entries with PVE's typing; cipassword masked; no members beyond PVE's (Telmate
// reads any extra member as "reboot needed").
nlohmann::json PendingJson(const std::vector<PendingEntry>& entries, const std::function<bool(const std::string&)>& want) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : entries) {
    if (!want(e.key)) continue;
    auto render = [&](const std::string& v) {
      return e.key == "cipassword" ? nlohmann::json("**********") : ConfigValueJson(e.key, v);
    };
    nlohmann::json j = {{"key", e.key}};
    if (e.value) j["value"] = render(*e.value);
    if (e.pending) j["pending"] = render(*e.pending);
    if (e.del) j["delete"] = e.del;
    out.push_back(j);
  }
  return out;
}

StopRequest MakeStop(const ApiContext& c) {
  StopRequest r;
  r.vmid = Vmid(c);
  r.user = User(c);
  r.timeout = static_cast<int>(c.params.Int("timeout"));
  r.force_stop = c.params.Bool("forceStop", true);
  r.overrule_shutdown = c.params.Bool("overrule-shutdown");
  r.skiplock = c.params.Bool("skiplock");
  return r;
}

}  // namespace

void RegisterVmRoutes(Router& r, ApiServices& s) {
  const std::string vm_path = "/vms/{vmid}";

  r.Add({"GET", "/nodes/{node}/qemu", {NodeParam(), PBool("full")}, false, "", "", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           ApiReply reply;
           std::string key = std::string("qemu|") + (c.who->admin ? "admin" : c.who->AuthId());
           reply.body = s.cache.Get(key, ListingVersion(s), [&] {
             nlohmann::json out = nlohmann::json::array();
             for (const auto& vm : s.vms.List()) {
               if (!s.access.Allowed(*c.who, "/vms/" + std::to_string(vm.vmid), "VM.Audit")) continue;
               nlohmann::json j = {{"vmid", vm.vmid},     {"name", vm.name},       {"status", vm.status},
                                   {"cpus", vm.cpus},     {"cpu", vm.cpu},         {"maxmem", vm.maxmem},
                                   {"mem", vm.mem},       {"maxdisk", vm.maxdisk}, {"disk", 0},
                                   {"uptime", vm.uptime}, {"netin", vm.netin},    {"netout", vm.netout},
                                   {"diskread", vm.diskread}, {"diskwrite", vm.diskwrite}};
               if (vm.pid) j["pid"] = vm.pid;
               if (vm.is_template) j["template"] = 1;
               if (!vm.lock.empty()) j["lock"] = vm.lock;
               if (!vm.tags.empty()) j["tags"] = vm.tags;
               out.push_back(j);
             }
             return SerializeData(out);
           });
           return reply;
         },
         "Virtual machines on this node."});

  r.Add({"POST", "/nodes/{node}/qemu",
         {NodeParam(), VmidParam(), PString("pool"), PString("storage"), PBool("start"), PString("archive"),
          PBool("force"), PBool("unique"), PInt("bwlimit", 0), PBool("live-restore"), PBool("ha-managed"),
          PString("import-working-storage")},
         true, "VM.Allocate", vm_path, true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           if (c.params.Has("force") && !c.params.Has("archive"))
             return Fail(FieldError("force", "missing property - 'archive' is required by 'force'"));
           if (c.params.Has("unique") && !c.params.Has("archive"))
             return Fail(FieldError("unique", "missing property - 'archive' is required by 'unique'"));
           if (auto archive = c.params.Get("archive")) {
             // qmrestore: the backup's config with new volumes, and the other config keys of the
             // call set on it (qemu-server's override_conf, restore_merge_config); a disk cannot
             // be given, as Proxmox says (nor, here, an unusedN: it would adopt a volume).
             auto overrides = ConfigKeys(c, {"vmid", "node"});
             for (const auto& [k, v] : overrides)
               if (DriveKey::Parse(k)) return Fail(FieldError(k, "option conflicts with option 'archive'"));
             HEARTH_TRY(CheckVmConfigPrivileges(s, *c.who, Vmid(c), overrides, {}, nullptr));
             if (c.params.Has("pool")) return Fail(Internal("pool '" + *c.params.Get("pool") + "' does not exist"));
             auto colon = archive->find(':');
             std::string sid = colon == std::string::npos ? "" : archive->substr(0, colon);
             if (!s.access.AllowedAny(*c.who, "/storage/" + sid, "Datastore.Audit,Datastore.AllocateSpace") &&
                 !s.access.Allowed(*c.who, "/vms/" + std::to_string(Vmid(c)), "VM.Backup"))
               return Fail(PermissionDenied("Permission check failed (/storage/" + sid + ", Datastore.Audit)"));
             RestoreRequest rr;
             rr.vmid = Vmid(c);
             rr.archive = *archive;
             rr.storage = c.params.GetOr("storage", "");
             rr.unique = c.params.Bool("unique");
             rr.start = c.params.Bool("start");
             rr.force = c.params.Bool("force");
             rr.live_restore = c.params.Bool("live-restore");
             rr.bwlimit = c.params.Int("bwlimit");
             rr.override_conf = std::move(overrides);
             rr.user = User(c);
             return UpidReply(s.vms.Restore(rr));
           }
           if (c.params.Has("pool")) return Fail(Internal("pool '" + *c.params.Get("pool") + "' does not exist"));
           CreateRequest req;
           req.vmid = Vmid(c);
           req.config = ConfigKeys(c, {"vmid", "node"});
           HEARTH_TRY(CheckImports(c, req.config, true));
           if (auto keys = req.config.find("sshkeys"); keys != req.config.end() && !SshKeysValid(keys->second))
             return Fail(Internal("SSH public key validation error"));
           HEARTH_TRY(CheckVmConfigPrivileges(s, *c.who, req.vmid, req.config, {}, nullptr));
           if (c.params.Bool("start") && !s.access.Allowed(*c.who, "/vms/" + std::to_string(req.vmid), "VM.PowerMgmt"))
             return Fail(PermissionDenied("Permission check failed (/vms/" + std::to_string(req.vmid) + ", VM.PowerMgmt)"));
           req.storage = c.params.GetOr("storage", "");
           req.start = c.params.Bool("start");
           req.user = User(c);
           return UpidReply(s.vms.Create(req));
         },
         "Create a VM. Disks given as <storage>:<GiB> are allocated."});

  r.Add({"GET", "/nodes/{node}/qemu/{vmid}", {NodeParam(), VmidParam()}, false, "VM.Audit", vm_path, true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           if (!s.vms.Exists(Vmid(c))) return Fail(Internal(s.vms.ConfigNotFound(Vmid(c))));
           nlohmann::json out = nlohmann::json::array();
           for (const char* d : {"config", "pending", "status", "serial-log"}) out.push_back({{"subdir", d}});
           return Data(out);
         },
         "VM index."});

  r.Add({"GET", "/nodes/{node}/qemu/{vmid}/config", {NodeParam(), VmidParam(), PBool("current"), PString("snapshot")},
         false, "VM.Audit", vm_path, true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           if (auto name = c.params.Get("snapshot")) {
             // AbstractConfig load_snapshot_config: the section, with the VM config's digest.
             if (c.params.Has("current"))
               return Fail(FieldError("snapshot", "cannot use 'snapshot' parameter with 'current'"));
             HEARTH_ASSIGN_OR_RETURN(VmConfig full, s.vms.FullConfig(Vmid(c)));
             auto it = full.snapshots.find(*name);
             if (it == full.snapshots.end()) return Fail(Internal("snapshot '" + *name + "' does not exist"));
             nlohmann::json out = nlohmann::json::object();
             for (const auto& [k, v] : it->second) out[k] = k == "cipassword" ? "**********" : ConfigValueJson(k, v);
             out["digest"] = ConfDigest(FormatConfFile(full));
             return Data(out);
           }
           HEARTH_ASSIGN_OR_RETURN(ConfigView view, s.vms.Config(Vmid(c), c.params.Bool("current")));
           nlohmann::json out = nlohmann::json::object();
           for (const auto& [k, v] : view.values) {
             if (k == "cipassword") {
               out[k] = "**********";
               continue;
             }
             out[k] = ConfigValueJson(k, v);
           }
           out["digest"] = view.digest;
           return Data(out);
         },
         "VM configuration (pending values applied unless current=1)."});

  std::vector<ParamSpec> update_params = {NodeParam(), VmidParam(), PString("delete"), PString("revert"),
                                          PBool("force"), PString("digest"), PBool("skiplock"),
                                          PInt("background_delay", 1, 30)};
  // Any one VM.Config.* privilege lets the call in; each key is then checked on its own.
  const std::string config_privs =
      "VM.Config.Disk|VM.Config.CDROM|VM.Config.CPU|VM.Config.Memory|VM.Config.Network|VM.Config.HWType|"
      "VM.Config.Options|VM.Config.Cloudinit";
  r.Add({"PUT", "/nodes/{node}/qemu/{vmid}/config", update_params, true, config_privs, vm_path, true, true, false,
         [&s](ApiContext& c) { return UpdateConfig(s, c, false); }, "Change the configuration (synchronous)."})
      .lane = Lane::kWait;  // may wait up to 60 s for the VM's lock: not on the work pool
  r.Add({"POST", "/nodes/{node}/qemu/{vmid}/config", update_params, true, config_privs, vm_path, true, true,
         false, [&s](ApiContext& c) { return UpdateConfig(s, c, true); },
         "Change the configuration (asynchronous, returns a task)."});

  r.Add({"GET", "/nodes/{node}/qemu/{vmid}/pending", {NodeParam(), VmidParam()}, false, "VM.Audit", vm_path, true, true,
         false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(auto entries, s.vms.Pending(Vmid(c)));
           return Data(PendingJson(entries, [](const std::string&) { return true; }));
         },
         "Configuration with pending changes, one entry per key."});

  r.Add({"GET", "/nodes/{node}/qemu/{vmid}/status", {NodeParam(), VmidParam()}, false, "VM.Audit", vm_path, true, true,
         false,
         [](ApiContext&) -> Result<ApiReply> {
           nlohmann::json out = nlohmann::json::array();
           for (const char* d : {"current", "start", "stop", "reset", "shutdown", "suspend", "reboot", "resume"})
             out.push_back({{"subdir", d}});
           return Data(out);
         },
         "Status index."});

  // Asks QEMU for the live run state: a QMP round trip, so on the wait pool.
  r.Add({"GET", "/nodes/{node}/qemu/{vmid}/status/current", {NodeParam(), VmidParam()}, false, "VM.Audit", vm_path, true,
         true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(VmStatusInfo vm, s.vms.CurrentStatus(Vmid(c)));
           nlohmann::json j = {{"vmid", vm.vmid},       {"name", vm.name},       {"status", vm.status},
                               {"qmpstatus", vm.qmpstatus}, {"cpus", vm.cpus},   {"cpu", vm.cpu},
                               {"maxmem", vm.maxmem},   {"mem", vm.mem},         {"memhost", vm.mem},
                               {"maxdisk", vm.maxdisk}, {"disk", 0},             {"uptime", vm.uptime},
                               {"netin", vm.netin},     {"netout", vm.netout},   {"diskread", vm.diskread},
                               {"diskwrite", vm.diskwrite},        {"ha", {{"managed", 0}}}};
           if (vm.pid) j["pid"] = vm.pid;
           if (vm.is_template) j["template"] = 1;
           if (!vm.lock.empty()) j["lock"] = vm.lock;
           if (!vm.tags.empty()) j["tags"] = vm.tags;
           if (vm.agent) j["agent"] = 1;
           if (vm.serial) j["serial"] = 1;
           if (vm.status == "running") j["running-qemu"] = "7.2.0";
           return Data(j);
         },
         "Current status; `lock` only while locked."}).lane = Lane::kWait;

  auto power = [&](const std::string& action, std::vector<ParamSpec> extra, std::function<Result<std::string>(ApiContext&)> fn,
                   std::string description) {
    std::vector<ParamSpec> params = {NodeParam(), VmidParam(), PBool("skiplock")};
    params.insert(params.end(), extra.begin(), extra.end());
    r.Add({"POST", "/nodes/{node}/qemu/{vmid}/status/" + action, params, false, "VM.PowerMgmt", vm_path, true, true,
           false,
           [&s, fn](ApiContext& c) -> Result<ApiReply> {
             // Parameters for migration and internals: root@pam only, as in PVE.
             for (const char* p : {"skiplock", "keepActive", "migratedfrom", "migration_type", "migration_network",
                                   "stateuri", "targetstorage", "force-cpu", "nocheck"})
               if (c.params.Has(p) && !c.who->IsRootAtPam())
                 return Fail(FieldError(p, "Only root may use this option."));
             if (!s.vms.Exists(Vmid(c))) return Fail(Internal(s.vms.ConfigNotFound(Vmid(c))));
             return UpidReply(fn(c));
           },
           std::move(description)});
  };
  power("start",
        {PInt("timeout", 0, 86400), PString("machine"), PString("migratedfrom"), PString("migration_type"),
         PString("migration_network"), PString("stateuri"), PString("targetstorage"), PString("force-cpu")},
        [&s](ApiContext& c) {
          return s.vms.Start(Vmid(c), User(c), static_cast<int>(c.params.Int("timeout")), c.params.Bool("skiplock"));
        },
        "Start the VM.");
  power("stop", {PInt("timeout", 0), PBool("keepActive"), PString("migratedfrom"), PBool("overrule-shutdown")},
        [&s](ApiContext& c) { return s.vms.Stop(MakeStop(c)); }, "Stop the VM immediately (like pulling the plug).");
  power("shutdown", {PInt("timeout", 0), PBool("forceStop"), PBool("keepActive")},
        [&s](ApiContext& c) {
          StopRequest req = MakeStop(c);
          req.force_stop = c.params.Bool("forceStop", false);
          return s.vms.Shutdown(req);
        },
        "Ask the guest to power off (ACPI); with forceStop=1 stop it after the timeout.");
  power("reboot", {PInt("timeout", 0)}, [&s](ApiContext& c) { return s.vms.Reboot(MakeStop(c)); },
        "Shut down and start again, applying pending changes.");
  power("reset", {}, [&s](ApiContext& c) { return s.vms.Reset(Vmid(c), User(c), c.params.Bool("skiplock")); },
        "Hard reset.");
  // Ansible always sends `timeout` to suspend; PVE would reject it, hearth ignores it.
  power("suspend", {PBool("todisk"), PString("statestorage"), PInt("timeout", 0)},
        [&s](ApiContext& c) { return s.vms.Suspend(Vmid(c), User(c), c.params.Bool("todisk"), c.params.Bool("skiplock")); },
        "Pause the VM.");
  power("resume", {PBool("nocheck")},
        [&s](ApiContext& c) { return s.vms.Resume(Vmid(c), User(c), c.params.Bool("skiplock")); }, "Resume the VM.");

  // Packer types its boot_command through this, one key per call.
  r.Add({"PUT", "/nodes/{node}/qemu/{vmid}/sendkey",
         {NodeParam(), VmidParam(), MaxLen(Required(PString("key", "The key (qemu monitor encoding).")), 128),
          PBool("skiplock")},
         false, "VM.Console", vm_path, true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           if (c.params.Has("skiplock") && !c.who->IsRootAtPam())
             return Fail(FieldError("skiplock", "Only root may use this option."));
           HEARTH_TRY(s.vms.SendKey(Vmid(c), *c.params.Get("key")));
           return Data(nullptr);
         },
         "Send a key event to the VM (names joined by '-', e.g. ctrl-alt-delete).", Lane::kWait});

  r.Add({"POST", "/nodes/{node}/qemu/{vmid}/move_disk",
         {NodeParam(), VmidParam(), Required(PEnum("disk", DriveNamesWithUnused())), OptionalStorageParam(),
          PEnum("format", {"raw", "qcow2", "vmdk"}), PBool("delete"), MaxLen(PString("digest"), 40),
          PInt("bwlimit", 0), PInt("target-vmid", 100, 999999999), PString("target-disk"),
          MaxLen(PString("target-digest"), 40)},
         false, "VM.Config.Disk", vm_path, true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           bool has_storage = c.params.Has("storage"), has_target = c.params.Has("target-vmid");
           if (has_storage && has_target) {
             Error e = FieldError("storage", "either set 'storage' or 'target-vmid', but not both");
             e.fields["target-vmid"] = e.fields["storage"];
             return Fail(e);
           }
           if (!has_storage && !has_target) {
             Error e = FieldError("storage", "both 'storage' and 'target-vmid' missing, either needs to be set");
             e.fields["target-vmid"] = e.fields["storage"];
             return Fail(e);
           }
           if (has_target)
             return Fail(MakeError(ErrorCode::kNotImplemented, "moving a disk to another VM (target-vmid) is not supported yet"));
           std::string storage = *c.params.Get("storage");
           if (!s.access.Allowed(*c.who, "/storage/" + storage, "Datastore.AllocateSpace"))
             return Fail(PermissionDenied("Permission check failed (/storage/" + storage + ", Datastore.AllocateSpace)"));
           MoveDiskRequest req;
           req.vmid = Vmid(c);
           req.disk = *c.params.Get("disk");
           req.storage = storage;
           req.format = c.params.GetOr("format", "");
           req.digest = c.params.GetOr("digest", "");
           req.delete_source = c.params.Bool("delete");
           req.user = User(c);
           return UpidReply(s.vms.MoveDisk(req));
         },
         "Move a stopped VM's disk to another storage or format (the old volume becomes unusedN unless delete=1)."});

  // Writes the seed drive (xorriso, qemu-img) under the VM's lock, which it may wait up to
  // 60 s for: the wait pool, so a pile of these on a busy VM never holds up creates.
  r.Add({"PUT", "/nodes/{node}/qemu/{vmid}/cloudinit", {NodeParam(), VmidParam()}, false, "VM.Config.Cloudinit",
         vm_path, true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_TRY(s.vms.RegenerateCloudInit(Vmid(c)));
           return Data(nullptr);
         },
         "Regenerate the cloud-init drive (applies pending cloud-init changes)."})
      .lane = Lane::kWait;

  r.Add({"GET", "/nodes/{node}/qemu/{vmid}/cloudinit/dump",
         {NodeParam(), VmidParam(), Required(PEnum("type", {"user", "network", "meta"}))}, false, "VM.Audit", vm_path,
         true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           bool reveal = s.access.Allowed(*c.who, "/vms/" + std::to_string(Vmid(c)), "VM.Config.Cloudinit");
           HEARTH_ASSIGN_OR_RETURN(std::string doc, s.vms.CloudInitDump(Vmid(c), *c.params.Get("type"), reveal));
           return Data(doc);
         },
         "The generated cloud-init document of one type."});

  r.Add({"GET", "/nodes/{node}/qemu/{vmid}/cloudinit", {NodeParam(), VmidParam()}, false, "VM.Audit", vm_path, true,
         true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(auto entries, s.vms.Pending(Vmid(c)));
           return Data(PendingJson(entries, [](const std::string& k) { return IsCloudInitKey(k); }));
         },
         "Cloud-init settings with their pending changes."});

  r.Add({"PUT", "/nodes/{node}/qemu/{vmid}/resize",
         {NodeParam(), VmidParam(), Required(PString("disk")), Required(PString("size")), PString("digest"),
          PBool("skiplock")},
         false, "VM.Config.Disk", vm_path, true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           if (c.params.Bool("skiplock") && !c.who->IsRootAtPam())
             return Fail(FieldError("skiplock", "Only root may use this option."));
           return UpidReply(s.vms.Resize(Vmid(c), *c.params.Get("disk"), *c.params.Get("size"),
                                         c.params.GetOr("digest", ""), c.params.Bool("skiplock"), User(c)));
         },
         "Grow a disk (returns a task, as PVE 8)."});

  r.Add({"POST", "/nodes/{node}/qemu/{vmid}/template", {NodeParam(), VmidParam(), PEnum("disk", DriveNames())}, false,
         "VM.Allocate", vm_path, true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           return UpidReply(s.vms.Template(Vmid(c), User(c), c.params.GetOr("disk", "")));
         },
         "Convert a stopped VM into a template (its disks become read-only base images)."});

  r.Add({"POST", "/nodes/{node}/qemu/{vmid}/clone",
         {NodeParam(), VmidParam(), Required(PInt("newid", 100, 999999999)), PString("name"), PBool("full"),
          PString("target"), PString("storage"), PEnum("format", {"raw", "qcow2", "vmdk"}), PString("pool"),
          PString("description"), PString("snapname"), PInt("bwlimit", 0)},
         false, "VM.Clone", vm_path, true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           if (auto t = c.params.Get("target"); t && *t != s.facts.node) return Fail(Internal("no such cluster node '" + *t + "'"));
           if (auto p = c.params.Get("pool")) return Fail(Internal("pool '" + *p + "' does not exist"));
           if (auto name = c.params.Get("name"); name && !CanonicalVmValue("name", *name))
             return Fail(FieldError("name", "value does not look like a valid DNS name"));
           if (!s.access.Allowed(*c.who, "/vms/" + c.params.GetOr("newid", ""), "VM.Allocate"))
             return Fail(PermissionDenied("Permission check failed (/vms/" + c.params.GetOr("newid", "") + ", VM.Allocate)"));
           CloneRequest req;
           req.vmid = Vmid(c);
           req.newid = static_cast<int>(c.params.Int("newid"));
           req.name = c.params.GetOr("name", "");
           req.description = c.params.GetOr("description", "");
           if (c.params.Has("full")) req.full = c.params.Bool("full");
           req.snapname = c.params.GetOr("snapname", "");
           req.storage = c.params.GetOr("storage", "");
           req.format = c.params.GetOr("format", "");
           req.user = User(c);
           return UpidReply(s.vms.Clone(req));
         },
         "Clone a VM: linked (copy-on-write, from templates) or full."});

  r.Add({"DELETE", "/nodes/{node}/qemu/{vmid}",
         {NodeParam(), VmidParam(), PBool("purge"), PBool("destroy-unreferenced-disks"), PBool("skiplock")}, false,
         "VM.Allocate", vm_path, true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           if (c.params.Bool("skiplock") && !c.who->IsRootAtPam())
             return Fail(FieldError("skiplock", "Only root may use this option."));
           return UpidReply(s.vms.Destroy(Vmid(c), User(c), c.params.Bool("purge"),
                                     c.params.Bool("destroy-unreferenced-disks", false), c.params.Bool("skiplock")));
         },
         "Destroy the VM and its disks."});

  r.Add({"GET", "/nodes/{node}/qemu/{vmid}/serial-log",
         {NodeParam(), VmidParam(), PInt("port", 0, 3), PInt("offset", 0)}, false, "VM.Console", vm_path, true, true,
         false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(auto log, s.vms.SerialLog(Vmid(c), static_cast<int>(c.params.Int("port")),
                                                             static_cast<uint64_t>(c.params.Int("offset"))));
           return Data({{"text", log.first}, {"offset", log.second}});
         },
         "hearth extension: what the guest wrote to a `serialN: socket` port, from `offset`."});
}

}  // namespace hearth

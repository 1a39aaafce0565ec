// Backups through Proxmox's API: POST /nodes/{node}/vzdump (pve-manager PVE/API2/VZDump.pm,
// docs/reference/pve-vzdump.md section 1). Listing, notes, protection and deletion of backup
// volumes are in storage_routes.cc; restore is POST /nodes/{node}/qemu with `archive`.
#include <algorithm>
#include <set>

#include "api/handlers/handlers.h"
#include "core/strings.h"
#include "model/retention.h"
#include "vms/vzdump_options.h"

namespace hearth {

std::vector<ParamSpec> VzdumpOptionSpecs(bool with_node) {
  std::vector<ParamSpec> out;
  for (const auto& o : VzdumpOptionTable()) {
    if (o.name == "node" && !with_node) continue;
    ParamSpec p;
    switch (o.type) {
      case VzdumpOptionType::kBool: p = PBool(o.name); break;
      case VzdumpOptionType::kInt:
        p = PInt(o.name, static_cast<double>(o.min));
        if (o.max >= 0) p.max = static_cast<double>(o.max);
        break;
      default:
        p = o.choices.empty() ? PString(o.name) : PEnum(o.name, o.choices);
        if (o.max_length) p = MaxLen(p, o.max_length);
    }
    if (o.name == "storage") p = StorageParam(), p.optional = true;
    if (o.name == "notes-template") p.check = NotesTemplateProblem;
    out.push_back(std::move(p));
  }
  return out;
}

VzdumpOptions VzdumpOptionsOf(const Params& params) {
  VzdumpOptions out;
  for (const auto& o : VzdumpOptionTable())
    if (auto v = params.Get(o.name)) out[o.name] = *v;
  return out;
}

void RegisterBackupRoutes(Router& r, ApiServices& s) {
  std::vector<ParamSpec> specs = VzdumpOptionSpecs(/*with_node=*/false);
  specs.push_back(NodeParam());
  r.Add({"POST", "/nodes/{node}/vzdump", specs, false, "", "", true, true, false,
         // Proxmox: any user; VM.Backup and the storage are checked below
         [&s](ApiContext& c) -> Result<ApiReply> {
           const auto& p = c.params;
           VzdumpOptions opts = VzdumpOptionsOf(p);
           HEARTH_TRY(VerifyVzdumpOptions(opts, true));
           if (p.Has("pool")) return Fail(Internal("pool '" + *p.Get("pool") + "' does not exist"));
           if (p.Has("stop")) return Fail(FieldError("stop", "stopping running backup jobs is not supported"));
           std::string storage = p.GetOr("storage", "local");
           if (p.Has("prune-backups") && !s.access.Allowed(*c.who, "/storage/" + storage, "Datastore.Allocate"))
             return Fail(PermissionDenied("Permission check failed (/storage/" + storage + ", Datastore.Allocate)"));
           if (!s.access.Allowed(*c.who, "/storage/" + storage, "Datastore.AllocateSpace"))
             return Fail(PermissionDenied("Permission check failed (/storage/" + storage + ", Datastore.AllocateSpace)"));
           std::vector<int> existing;
           for (const auto& vm : s.vms.List()) existing.push_back(vm.vmid);
           std::vector<int> guests = IncludedGuests(opts, existing);
           if (p.Has("vmid")) {
             for (int id : guests)
               if (!s.access.Allowed(*c.who, "/vms/" + std::to_string(id), "VM.Backup"))
                 return Fail(PermissionDenied("Permission check failed (/vms/" + std::to_string(id) + ", VM.Backup)"));
           } else {  // all: the VMs the user may back up, silently (Proxmox)
             std::erase_if(guests, [&](int id) { return !s.access.Allowed(*c.who, "/vms/" + std::to_string(id), "VM.Backup"); });
           }
           std::string storage_prune;
           if (auto st = s.storage.Find(storage)) storage_prune = st->config.Get("prune-backups");
           opts["node"] = s.facts.node;
           HEARTH_ASSIGN_OR_RETURN(VzdumpRequest req, MakeVzdumpRequest(opts, guests, storage_prune));
           req.user = c.who->AuthId();
           HEARTH_ASSIGN_OR_RETURN(std::string upid, s.vms.Vzdump(req));
           return Data(upid);
         },
         "Create backup."});

  // The VM config a backup holds (the Proxmox UI's restore dialog reads it).
  r.Add({"GET", "/nodes/{node}/vzdump/extractconfig", {NodeParam(), Required(PString("volume"))}, false, "", "", true,
         true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           std::string volid = *c.params.Get("volume");
           auto colon = volid.find(':');
           std::string sid = colon == std::string::npos ? "" : volid.substr(0, colon);
           if (!s.access.AllowedAny(*c.who, "/storage/" + sid, "Datastore.Audit|Datastore.AllocateSpace"))
             return Fail(PermissionDenied("Permission check failed (/storage/" + sid + ", Datastore.Audit)"));
           HEARTH_ASSIGN_OR_RETURN(std::string conf, s.vms.BackupConfig(volid));
           return Data(conf);
         },
         "Extract the VM config from a backup."});

  // Prune by retention (pve-storage PVE/API2/Storage/PruneBackups.pm): the preview and the task.
  auto prune_params = [] {
    ParamSpec vmid = PInt("vmid", 100, 999999999);
    return std::vector<ParamSpec>{NodeParam(), StorageParam(), MaxLen(PString("prune-backups"), 1024),
                                  PEnum("type", {"qemu", "lxc"}), vmid};
  };
  // The retention asked for, else the storage's own, else Proxmox's error.
  auto keep_of = [&s](const Params& p) -> Result<KeepOptions> {
    std::string sid = *p.Get("storage");
    auto st = s.storage.Find(sid);
    if (!st) return Fail(Internal("storage '" + sid + "' does not exist"));
    std::string text = p.GetOr("prune-backups", st->config.Get("prune-backups"));
    if (text.empty()) return Fail(Internal("no prune-backups options configured for storage '" + sid + "'"));
    HEARTH_ASSIGN_OR_RETURN(KeepOptions keep, ParseKeepOptionsParam("prune-backups", text));
    // Only VMs have backups here: a container filter selects nothing.
    if (p.GetOr("type", "qemu") == "lxc") keep.keep_all = true;
    return keep;
  };

  r.Add({"GET", "/nodes/{node}/storage/{storage}/prunebackups", prune_params(), false, "", "", true, true, false,
         [&s, keep_of](ApiContext& c) -> Result<ApiReply> {
           std::string sid = *c.params.Get("storage");
           if (!s.access.AllowedAny(*c.who, "/storage/" + sid, "Datastore.Audit|Datastore.AllocateSpace"))
             return Fail(PermissionDenied("Permission check failed (/storage/" + sid + ", Datastore.Audit|Datastore.AllocateSpace)"));
           HEARTH_ASSIGN_OR_RETURN(KeepOptions keep, keep_of(c.params));
           nlohmann::json out = nlohmann::json::array();
           if (c.params.GetOr("type", "qemu") == "lxc") return Data(out);
           HEARTH_ASSIGN_OR_RETURN(auto entries, s.vms.PruneBackupsPreview(sid, keep, static_cast<int>(c.params.Int("vmid"))));
           for (const auto& e : entries)
             out.push_back({{"volid", e.volid}, {"ctime", e.ctime}, {"mark", PruneMarkName(e.mark)}, {"type", "qemu"}, {"vmid", e.vmid}});
           return Data(out);
         },
         "Get prune information for backups. NOTE: this is only a preview and might not be what a subsequent prune call does if backups are removed/added in the meantime."});

  r.Add({"DELETE", "/nodes/{node}/storage/{storage}/prunebackups", prune_params(), false, "", "", true, true, false,
         [&s, keep_of](ApiContext& c) -> Result<ApiReply> {
           std::string sid = *c.params.Get("storage");
           int vmid = static_cast<int>(c.params.Int("vmid"));
           if (vmid) {
             if (!s.access.Allowed(*c.who, "/storage/" + sid, "Datastore.AllocateSpace"))
               return Fail(PermissionDenied("Permission check failed (/storage/" + sid + ", Datastore.AllocateSpace)"));
             if (!s.access.Allowed(*c.who, "/vms/" + std::to_string(vmid), "VM.Backup"))
               return Fail(PermissionDenied("Permission check failed (/vms/" + std::to_string(vmid) + ", VM.Backup)"));
           } else if (!s.access.Allowed(*c.who, "/storage/" + sid, "Datastore.Allocate")) {
             return Fail(PermissionDenied("Permission check failed (/storage/" + sid + ", Datastore.Allocate)"));
           }
           HEARTH_ASSIGN_OR_RETURN(KeepOptions keep, keep_of(c.params));
           HEARTH_ASSIGN_OR_RETURN(std::string upid, s.vms.PruneBackups(sid, keep, vmid, c.who->AuthId()));
           return Data(upid);
         },
         "Prune backups. Only those using the standard naming scheme are considered."});

  // Beyond Proxmox VE (Proxmox Backup Server's verify and garbage collection, for the
  // datastore hearth keeps inside a storage); documented in the README's Backups section.
  r.Add({"POST", "/nodes/{node}/storage/{storage}/hearth/verify",
         {NodeParam(), StorageParam(), PInt("vmid", 100, 999999999), MaxLen(PString("volume"), 512),
          PBool("ignore-verified"), PInt("outdated-after", 0, 36500)},
         false, "Datastore.AllocateSpace", "/storage/{storage}", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           BackupVerifyFilter filter;
           filter.ignore_verified = c.params.Bool("ignore-verified");
           if (c.params.Has("outdated-after")) filter.outdated_after = static_cast<int>(c.params.Int("outdated-after"));
           HEARTH_ASSIGN_OR_RETURN(std::string upid,
                                   s.vms.VerifyBackups(*c.params.Get("storage"), static_cast<int>(c.params.Int("vmid")),
                                                       c.params.GetOr("volume", ""), c.who->AuthId(), filter));
           return Data(upid);
         },
         "Verify backups: re-read every chunk and record the result (all backups, a VM's, or one volume)."});

  r.Add({"POST", "/nodes/{node}/storage/{storage}/hearth/drill",
         {NodeParam(), StorageParam(), Required(PInt("vmid", 100, 999999999)), PInt("scratch-vmid", 100, 999999999),
          MaxLen(PString("marker"), 128), PInt("timeout", 10, 86400)},
         false, "Datastore.AllocateSpace", "/storage/{storage}", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           if (!s.access.Allowed(*c.who, "/vms", "VM.Allocate"))
             return Fail(PermissionDenied("Permission check failed (/vms, VM.Allocate)"));
           RestoreDrillRequest req;
           req.storage = *c.params.Get("storage");
           req.vmid = static_cast<int>(c.params.Int("vmid"));
           req.scratch_vmid = static_cast<int>(c.params.Int("scratch-vmid"));
           req.marker = c.params.GetOr("marker", "");
           req.timeout = static_cast<int>(c.params.Int("timeout", 900));
           req.user = c.who->AuthId();
           HEARTH_ASSIGN_OR_RETURN(std::string upid, s.vms.RestoreDrill(req));
           return Data(upid);
         },
         "Restore drill: restore the VM's newest backup to a scratch VM with its network links down, boot it, wait "
         "for the guest agent (or a serial marker), then destroy the copy."});

  r.Add({"POST", "/nodes/{node}/storage/{storage}/hearth/gc", {NodeParam(), StorageParam()}, false, "Datastore.Allocate",
         "/storage/{storage}", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(std::string upid, s.vms.GarbageCollectBackups(*c.params.Get("storage"), c.who->AuthId()));
           return Data(upid);
         },
         "Garbage-collect the backup datastore: remove chunks no backup references (after a 25-hour grace period)."});
}

}  // namespace hearth

// Backups through Proxmox's API: POST /nodes/{node}/vzdump (pve-manager PVE/API2/VZDump.pm,
// docs/reference/pve-vzdump.md section 1). Listing, notes, protection and deletion of backup
// volumes are in storage_routes.cc; restore is POST /nodes/{node}/qemu with `archive`.
#include <algorithm>
#include <set>

#include "api/handlers/handlers.h"
#include "core/strings.h"
#include "model/retention.h"

namespace hearth {

namespace {

Result<std::vector<int>> VmidList(const std::string& field, const std::string& text) {
  std::vector<int> out;
  for (const auto& id : SplitAny(text, ",; \t")) {
    auto n = ParseInt(id);
    if (!n || *n < 100 || *n > 999999999) return Fail(FieldError(field, "invalid format - value '" + id + "' does not look like a valid VM ID"));
    out.push_back(static_cast<int>(*n));
  }
  return out;
}

// notes-template: only \\ and \n escapes, only the four variables (VZDump.pm).
std::string CheckNotesTemplate(const std::string& t) {
  if (t.find('\n') != std::string::npos) return "contains a line feed";
  std::vector<std::string> unknown;
  for (size_t i = 0; i < t.size(); ++i) {
    // A backslash with a character after it (a trailing one is left as it is, as Proxmox).
    if (t[i] == '\\' && i + 1 < t.size()) {
      if (t[i + 1] != '\\' && t[i + 1] != 'n')
        unknown.push_back("escape sequence '\\" + std::string(1, t[i + 1]) + "' at char " + std::to_string(i));
      ++i;
    }
  }
  for (size_t at = 0; (at = t.find("{{", at)) != std::string::npos;) {
    size_t end = t.find("}}", at + 2);
    if (end == std::string::npos) break;
    std::string name = t.substr(at + 2, end - at - 2);
    bool plain = !name.empty() && name.find_first_of(" \t{}") == std::string::npos;
    if (plain && name != "cluster" && name != "guestname" && name != "node" && name != "vmid")
      unknown.push_back("variable '" + name + "' at char " + std::to_string(at + 4));  // Proxmox: match end - name length
    at = end + 2;
  }
  if (unknown.empty()) return "";
  return "found unknown: " + Join(unknown, ", ");
}

}  // namespace

void RegisterBackupRoutes(Router& r, ApiServices& s) {
  ParamSpec storage = StorageParam();
  storage.optional = true;
  ParamSpec notes = MaxLen(PString("notes-template"), 1024);
  notes.check = CheckNotesTemplate;
  r.Add({"POST", "/nodes/{node}/vzdump",
         {NodeParam(), PString("vmid"), PBool("all"), PString("exclude"), storage, PEnum("mode", {"snapshot", "suspend", "stop"}),
          PEnum("compress", {"0", "1", "gzip", "lzo", "zstd"}), notes, PBool("protected"), PString("prune-backups"),
          PBool("remove"), PInt("bwlimit", 0), PInt("ionice", 0, 8), PInt("lockwait", 0), PInt("stopwait", 0),
          PInt("pigz", 0), PInt("zstd", 0), PBool("quiet"), PString("mailto"), PEnum("mailnotification", {"always", "failure"}),
          PEnum("notification-mode", {"auto", "legacy-sendmail", "notification-system"}), PString("pool"), PBool("stop")},
         false, "", "", true, true, false,  // Proxmox: any user; VM.Backup and the storage are checked below
         [&s](ApiContext& c) -> Result<ApiReply> {
           const auto& p = c.params;
           if (p.Has("all") && p.Bool("all") && p.Has("vmid")) return Fail(FieldError("all", "option conflicts with option 'vmid'"));
           if (p.Has("exclude") && p.Has("vmid")) return Fail(FieldError("exclude", "option conflicts with option 'vmid'"));
           if (p.Has("pool") && p.Has("vmid")) return Fail(FieldError("pool", "option conflicts with option 'vmid'"));
           if (p.Has("pool")) return Fail(Internal("pool '" + *p.Get("pool") + "' does not exist"));
           if (p.Has("stop")) return Fail(FieldError("stop", "stopping running backup jobs is not supported"));
           if (!p.Has("storage")) {
             if (p.Has("notes-template")) return Fail(FieldError("storage", "missing property required by 'notes-template'"));
             if (p.Has("protected")) return Fail(FieldError("storage", "missing property required by 'protected'"));
           }
           VzdumpRequest req;
           HEARTH_ASSIGN_OR_RETURN(req.vmids, VmidList("vmid", p.GetOr("vmid", "")));
           HEARTH_ASSIGN_OR_RETURN(std::vector<int> exclude, VmidList("exclude", p.GetOr("exclude", "")));
           bool all = p.Bool("all") || p.Has("exclude");
           if (!all && req.vmids.empty()) return Fail(FieldError("vmid", "property is missing"));
           req.storage = p.GetOr("storage", "local");
           req.mode = p.GetOr("mode", "snapshot");
           req.notes_template = p.GetOr("notes-template", "");
           req.is_protected = p.Bool("protected");
           req.remove = !p.Has("remove") || p.Bool("remove");
           req.stopwait_minutes = static_cast<int>(p.Int("stopwait", 10));
           req.bwlimit_kib = p.Int("bwlimit", 0);
           if (auto pb = p.Get("prune-backups")) {
             if (!s.access.Allowed(*c.who, "/storage/" + req.storage, "Datastore.Allocate"))
               return Fail(PermissionDenied("Permission check failed (/storage/" + req.storage + ", Datastore.Allocate)"));
             auto k = ParseKeepOptions(*pb);
             if (!k) {
               const Error& e = k.error();
               std::string why = e.fields.empty() ? e.message : e.fields.begin()->first + ": " + e.fields.begin()->second;
               return Fail(FieldError("prune-backups", "invalid format - " + why));
             }
             req.prune = *k;
           } else if (auto st = s.storage.Find(req.storage); st && !st->config.Get("prune-backups").empty()) {
             if (auto k = ParseKeepOptions(st->config.Get("prune-backups"))) req.prune = *k;
           }
           if (!s.access.Allowed(*c.who, "/storage/" + req.storage, "Datastore.AllocateSpace"))
             return Fail(PermissionDenied("Permission check failed (/storage/" + req.storage + ", Datastore.AllocateSpace)"));
           for (int id : req.vmids)
             if (!s.access.Allowed(*c.who, "/vms/" + std::to_string(id), "VM.Backup"))
               return Fail(PermissionDenied("Permission check failed (/vms/" + std::to_string(id) + ", VM.Backup)"));
           if (all) {  // all: the VMs the user may back up, silently (Proxmox)
             for (const auto& vm : s.vms.List())
               if (std::find(exclude.begin(), exclude.end(), vm.vmid) == exclude.end() &&
                   s.access.Allowed(*c.who, "/vms/" + std::to_string(vm.vmid), "VM.Backup"))
                 req.vmids.push_back(vm.vmid);
           }
           // The first log line: "vzdump 100 101 --mode snapshot --storage local ...".
           std::string cmd = "vzdump";
           for (int id : req.vmids) cmd += " " + std::to_string(id);
           for (const auto& [k, vs] : p.all())
             if (k != "vmid" && k != "node")
               for (const auto& v : vs) cmd += " --" + k + " " + v;
           cmd += " --node " + s.facts.node;
           req.command_line = cmd;
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
}

}  // namespace hearth

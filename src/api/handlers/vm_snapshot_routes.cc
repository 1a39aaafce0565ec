// VM snapshots: /nodes/{node}/qemu/{vmid}/snapshot..., as qemu-server API2/Qemu.pm
// (snapshot_list, snapshot, snapshot_cmd_idx, get/update_snapshot_config, rollback,
// delsnapshot); docs/reference/pve-snapshots.md section 1.
#include "api/handlers/handlers.h"
#include "core/strings.h"
#include "model/vm_snapshot.h"

namespace hearth {
namespace {

int SnapVmid(const ApiContext& c) { return static_cast<int>(c.params.Int("vmid")); }

Result<ApiReply> SnapUpid(Result<std::string> r) {
  if (!r) return Fail(r.error());
  return Data(*r);
}

ParamSpec SnapnameParam() {
  ParamSpec p = Required(MaxLen(PString("snapname", "The name of the snapshot."), 40));
  p.check = [](const std::string& v) -> std::string {
    auto st = CheckNewSnapshotName(v);
    // Only the format here: "current" and "pending" are refused by the create handler.
    if (!st && !st.error().fields.empty()) return st.error().fields.begin()->second;
    return "";
  };
  return p;
}

Result<std::map<std::string, std::string>> SnapshotSection(ApiServices& s, int vmid, const std::string& name) {
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, s.vms.FullConfig(vmid));
  auto it = cfg.snapshots.find(name);
  if (it == cfg.snapshots.end()) return Fail(Internal("snapshot '" + name + "' does not exist"));
  return it->second;
}

}  // namespace

void RegisterVmSnapshotRoutes(Router& r, ApiServices& s) {
  const std::string vm_path = "/vms/{vmid}";

  r.Add({"GET", "/nodes/{node}/qemu/{vmid}/snapshot", {NodeParam(), VmidParam()}, false, "VM.Audit", vm_path, true,
         true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           int vmid = SnapVmid(c);
           HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, s.vms.FullConfig(vmid));
           nlohmann::json out = nlohmann::json::array();
           for (const auto& [name, sec] : cfg.snapshots) {
             nlohmann::json j = {{"name", name},
                                 {"snaptime", sec.count("snaptime") ? ParseInt(sec.at("snaptime")).value_or(0) : 0},
                                 {"vmstate", sec.count("vmstate") ? 1 : 0},
                                 {"description", sec.count("description") ? sec.at("description") : ""}};
             if (sec.count("parent")) j["parent"] = sec.at("parent");
             if (sec.count("snapstate")) j["snapstate"] = sec.at("snapstate");
             out.push_back(j);
           }
           auto status = s.vms.CurrentStatus(vmid);
           nlohmann::json current = {{"name", "current"},
                                     {"description", "You are here!"},
                                     {"digest", ConfDigest(FormatConfFile(cfg))},
                                     {"running", status && status->status == "running" ? 1 : 0}};
           if (cfg.values.count("parent")) current["parent"] = cfg.values.at("parent");
           out.push_back(current);  // always last, as Proxmox
           return Data(out);
         },
         "List all snapshots."});

  r.Add({"GET", "/nodes/{node}/qemu/{vmid}/feature",
         {NodeParam(), VmidParam(), Required(PEnum("feature", {"snapshot", "clone", "copy"})),
          MaxLen(PString("snapname", "The name of the snapshot."), 40)},
         false, "VM.Audit", vm_path, true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(bool has, s.vms.HasFeature(SnapVmid(c), *c.params.Get("feature"),
                                                              c.params.GetOr("snapname", "")));
           return Data({{"hasFeature", has ? 1 : 0}, {"nodes", nlohmann::json::array({s.facts.node})}});
         },
         "Check if feature for virtual machine is available."});

  r.Add({"POST", "/nodes/{node}/qemu/{vmid}/snapshot",
         {NodeParam(), VmidParam(), SnapnameParam(), PBool("vmstate"), MaxLen(PString("description"), 8192)}, false,
         "VM.Snapshot", vm_path, true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           return SnapUpid(s.vms.Snapshot(SnapVmid(c), *c.params.Get("snapname"), c.params.GetOr("description", ""),
                                      c.params.Bool("vmstate"), c.who->AuthId()));
         },
         "Snapshot a VM (its disks; the VM is paused briefly while it runs)."});

  r.Add({"GET", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}", {NodeParam(), VmidParam(), SnapnameParam()}, false,
         "", "", true, true, false,
         [](ApiContext&) -> Result<ApiReply> {
           return Data(nlohmann::json::array({{{"cmd", "rollback"}}, {{"cmd", "config"}}}));
         },
         "Snapshot index (Proxmox does not check that the snapshot exists)."});

  r.Add({"GET", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/config", {NodeParam(), VmidParam(), SnapnameParam()},
         false, "VM.Snapshot|VM.Snapshot.Rollback|VM.Audit", vm_path, true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(auto sec, SnapshotSection(s, SnapVmid(c), *c.params.Get("snapname")));
           nlohmann::json out = nlohmann::json::object();
           for (const auto& [k, v] : sec) out[k] = k == "cipassword" ? "**********" : ConfigValueJson(k, v);
           return Data(out);
         },
         "Get snapshot configuration."});

  r.Add({"PUT", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/config",
         {NodeParam(), VmidParam(), SnapnameParam(), MaxLen(PString("description"), 8192)}, false, "VM.Snapshot", vm_path,
         true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           if (!c.params.Has("description")) return Data(nullptr);  // Proxmox: nothing to do
           HEARTH_TRY(s.vms.SetSnapshotDescription(SnapVmid(c), *c.params.Get("snapname"), *c.params.Get("description")));
           return Data(nullptr);
         },
         "Update snapshot metadata (its description)."})
      .lane = Lane::kWait;

  auto& rollback = r.Add({"POST", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback",
                          {NodeParam(), VmidParam(), SnapnameParam(), PBool("start")}, false,
                          "VM.Snapshot|VM.Snapshot.Rollback", vm_path, true, true, false,
                          [&s](ApiContext& c) -> Result<ApiReply> {
                            return SnapUpid(s.vms.Rollback(SnapVmid(c), *c.params.Get("snapname"), c.params.Bool("start"),
                                                       c.who->AuthId()));
                          },
                          "Roll a VM back to a snapshot (a running VM is stopped first)."});
  rollback.authorize = [&s](const ApiContext& c) -> Status {
    if (c.params.Bool("start") && !s.access.Allowed(*c.who, "/vms/" + std::to_string(SnapVmid(c)), "VM.PowerMgmt"))
      return Fail(PermissionDenied("Permission check failed (/vms/" + std::to_string(SnapVmid(c)) + ", VM.PowerMgmt)"));
    return Ok();
  };

  r.Add({"DELETE", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}",
         {NodeParam(), VmidParam(), SnapnameParam(), PBool("force")}, false, "VM.Snapshot", vm_path, true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           return SnapUpid(s.vms.DeleteSnapshot(SnapVmid(c), *c.params.Get("snapname"), c.params.Bool("force"),
                                            c.who->AuthId()));
         },
         "Delete a VM snapshot."});
}

}  // namespace hearth

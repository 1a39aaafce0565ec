// hearth extension: /nodes/{node}/hearth/images — build cloud-init-ready template images.
#include <chrono>
#include <thread>

#include "api/handlers/handlers.h"
#include "core/strings.h"
#include "core/units.h"
#include "model/vm_schema.h"

namespace hearth {
namespace {

// Runs a sub-task to its end, logging it in the parent task.
Status Await(TaskManager& tasks, TaskContext& ctx, Result<std::string> upid) {
  HEARTH_TRY(upid);
  ctx.Log("running " + *upid);
  while (true) {
    HEARTH_ASSIGN_OR_RETURN(TaskInfo t, tasks.Get(*upid));
    if (!t.running) {
      if (t.record.exitstatus == "OK" || StartsWith(t.record.exitstatus, "WARNINGS")) return Ok();
      return Fail(Internal(t.record.type + " failed: " + t.record.exitstatus));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace

void RegisterImageRoutes(Router& r, ApiServices& s) {
  r.Add({"POST", "/nodes/{node}/hearth/images",
         {NodeParam(), VmidParam(), PString("name"), PEnum("release", {"bookworm"}), PString("packages"),
          PString("locale"), PString("keyboard"), PString("timezone"), PInt("ssh-port", 1, 65535),
          PString("disk-size"), PString("storage"), PInt("memory", 64), PInt("cores", 1, 64), PString("bridge")},
         false, "VM.Allocate", "/vms/{vmid}", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           auto size = ParseSize(c.params.GetOr("disk-size", "2G"));
           if (!size) return Fail(FieldError("disk-size", "unable to parse size"));
           HEARTH_ASSIGN_OR_RETURN(ImageRecipe recipe,
                                   MakeImageRecipe(c.params.GetOr("release", "bookworm"), c.params.GetOr("packages", ""),
                                                   c.params.GetOr("locale", "C.UTF-8"), c.params.GetOr("keyboard", "us"),
                                                   c.params.GetOr("timezone", "Etc/UTC"),
                                                   static_cast<int>(c.params.Int("ssh-port", 22)), *size));
           int vmid = static_cast<int>(c.params.Int("vmid"));
           if (s.vms.Exists(vmid)) return Fail(FieldError("vmid", "VM " + std::to_string(vmid) + " already exists"));
           CreateRequest create;
           create.vmid = vmid;
           std::string storage = c.params.GetOr("storage", "local");
           HEARTH_TRY(s.storage.Get(storage).map_error([](Error e) { return FieldError("storage", e.message); }));
           std::string name = c.params.GetOr("name", "debian12");
           HEARTH_ASSIGN_OR_RETURN(create.config["name"], CanonicalVmValue("name", name));
           create.config["memory"] = std::to_string(c.params.Int("memory", 1024));
           create.config["cores"] = std::to_string(c.params.Int("cores", 1));
           create.config["ostype"] = "l26";
           create.config["scsihw"] = "virtio-scsi-pci";
           create.config["ide2"] = storage + ":cloudinit";
           create.config["serial0"] = "socket";
           create.config["vga"] = "serial0";
           create.config["agent"] = "1";
           create.config["boot"] = "order=scsi0";
           HEARTH_ASSIGN_OR_RETURN(create.config["net0"],
                                   CanonicalVmValue("net0", c.params.Has("bridge") ? "virtio,bridge=" + *c.params.Get("bridge") : "virtio"));
           create.user = c.who->AuthId();
           TaskSpec spec{"imgbuild", std::to_string(vmid), c.who->AuthId()};
           HEARTH_ASSIGN_OR_RETURN(std::string upid, s.tasks.Start(spec, [&s, recipe, create, storage](TaskContext& ctx) mutable -> Status {
             ctx.Log("recipe " + recipe.Hash() + ":");
             for (const auto& line : Split(recipe.Canonical(), '\n'))
               if (!line.empty()) ctx.Log("  " + line);
             HEARTH_ASSIGN_OR_RETURN(std::string image, s.images.Ensure(recipe, [&](const std::string& l) { ctx.Log(l); }));
             create.config["scsi0"] = storage + ":0,import-from=" + image + ",discard=on";
             HEARTH_TRY(Await(s.tasks, ctx, s.vms.Create(create)));
             HEARTH_TRY(Await(s.tasks, ctx, s.vms.Template(create.vmid, create.user, "")));
             ctx.Log("template VM " + std::to_string(create.vmid) + " is ready: clone it with POST /nodes/<node>/qemu/" +
                     std::to_string(create.vmid) + "/clone");
             return Ok();
           }));
           return Data(upid);
         },
         "hearth extension: build a cloud-init-ready Debian image (cached by recipe) as a template VM."});

  r.Add({"GET", "/nodes/{node}/hearth/images", {NodeParam()}, false, "Sys.Audit", "/nodes/{node}", true, true, false,
         [&s](ApiContext&) -> Result<ApiReply> {
           nlohmann::json out = nlohmann::json::array();
           for (const auto& img : s.images.List())
             out.push_back({{"hash", img.hash}, {"size", img.size}, {"ctime", img.created}, {"recipe", img.recipe}});
           return Data(out);
         },
         "hearth extension: the cached images."});
}

}  // namespace hearth

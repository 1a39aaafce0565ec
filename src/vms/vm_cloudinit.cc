// Cloud-init: rendering the NoCloud seed from a VM's config and writing its drive.
#include "cloudinit/seed_writer.h"
#include "core/pattern.h"
#include "core/strings.h"
#include "model/drive.h"
#include "model/vm_schema.h"
#include "sys/crypt_hash.h"
#include "sys/files.h"
#include "vms/vm_service.h"

namespace hearth {
Status VmService::PrepareCloudInitKeys(const VmConfig* current, std::map<std::string, std::string>& set) {
  std::string existing = current ? CloudInitDriveKey(current->WithPending()) : "";
  for (const auto& [k, v] : set) {
    auto dk = DriveKey::Parse(k);
    if (!dk) continue;
    auto d = ParseDrive(dk->bus, v);
    if (!d) continue;
    auto alloc = ParseDriveAllocation(d->file);
    if (!alloc || !alloc->cloudinit) continue;
    if (dk->bus == DriveBus::kVirtio || dk->bus == DriveBus::kUnused)
      return Fail(FieldError(k, "a cloud-init drive must be ide, sata or scsi"));
    if (!existing.empty() && existing != k)
      return Fail(Internal(k + " - cloud-init drive is already attached at '" + existing + "'"));
    existing = k;
  }
  // Already a crypt hash (PVE's test, plus yescrypt): kept. Anything else is a clear-text
  // password and is stored hashed: the clear text never reaches the config, the store or
  // the seed. SHA-512 crypt: the one hash every guest's chpasswd and cloud-init understand.
  static const Pattern hashed("\\$(?:[156]|2[ay]|y|7)(\\$.+){2}");
  if (auto pw = set.find("cipassword"); pw != set.end() && !hashed.FullMatch(pw->second)) {
    auto h = CryptHash(pw->second, "$6$");
    if (!h) return Fail(FieldError("cipassword", "cannot hash this password (" + h.error().message + ")"));
    pw->second = *h;
  }
  return Ok();
}

Result<NoCloudSeed> VmService::RenderSeed(int vmid, const std::map<std::string, std::string>& values) {
  std::map<std::string, std::string> custom;
  if (auto it = values.find("cicustom"); it != values.end()) {
    for (const auto& part : Split(it->second, ',')) {
      size_t eq = part.find('=');
      if (eq == std::string::npos) continue;
      std::string kind = part.substr(0, eq), volid = part.substr(eq + 1);
      HEARTH_ASSIGN_OR_RETURN(VolumeInfo info, storage_.InfoOf(volid).map_error([&](Error e) {
        return FieldError("cicustom", "volume '" + volid + "' does not exist");
      }));
      if (info.content != ContentType::kSnippets)
        return Fail(FieldError("cicustom", "'" + volid + "' is not a snippet (upload it with content=snippets)"));
      HEARTH_ASSIGN_OR_RETURN(custom[kind], ReadFile(info.path));
    }
  }
  return RenderNoCloud(vmid, values, custom);
}

Status VmService::WriteSeed(int vmid, const std::map<std::string, std::string>& values, TaskContext* ctx) {
  std::string key = CloudInitDriveKey(values);
  if (key.empty()) return Fail(FailedPrecondition("VM " + std::to_string(vmid) + " has no cloud-init drive"));
  HEARTH_ASSIGN_OR_RETURN(NoCloudSeed seed, RenderSeed(vmid, values));
  std::string vol = DriveVolume(key, values.at(key));
  HEARTH_ASSIGN_OR_RETURN(VolumeInfo info, storage_.InfoOf(vol).map_error([&](Error e) { return e.WithContext(key); }));
  HEARTH_TRY(WriteNoCloudSeed(runner_, fs_, seed, info.path, info.format, qemu_.run_dir()));
  if (ctx) ctx->Log("cloud-init: wrote the NoCloud seed to " + vol);
  return Ok();
}

Result<std::string> VmService::CloudInitDump(int vmid, const std::string& type, bool reveal_password) {
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(vmid));
  auto values = cfg.WithPending();
  if (!reveal_password && values.count("cipassword")) values["cipassword"] = "**********";
  HEARTH_ASSIGN_OR_RETURN(NoCloudSeed seed, RenderSeed(vmid, values));
  if (type == "user") return seed.user_data;
  if (type == "network") return seed.network_config;
  if (type == "meta") return seed.meta_data;
  return Fail(FieldError("type", "value '" + type + "' does not have a value in the enumeration 'user, network, meta'"));
}

Status VmService::RegenerateCloudInit(int vmid) {
  HEARTH_ASSIGN_OR_RETURN(auto guard, LockForCall(vmid));
  // Pending cloud-init changes apply now (like PVE's PUT …/cloudinit).
  HEARTH_TRY(Mutate(vmid, [vmid](VmConfig& c) -> Status {
    CommitPending(c, vmid, [](const std::string& k) { return IsCloudInitKey(k); });
    return Ok();
  }));
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(vmid));
  return WriteSeed(vmid, cfg.values, nullptr);
}

}  // namespace hearth

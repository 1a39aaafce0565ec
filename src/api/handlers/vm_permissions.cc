// Per-key privileges for VM create and config changes, as qemu-server checks them
// (API2/Qemu.pm check_vm_modify_config_perm and the value-dependent checks for serial
// ports, USB and PCI devices, drives). root@pam skips every check.
#include "access/userid.h"
#include "api/handlers/handlers.h"
#include "core/strings.h"
#include "model/drive.h"
#include "model/property_string.h"
#include "model/vm_schema.h"

namespace hearth {
namespace {

bool IsSocketSerial(const std::optional<std::string>& v) { return !v || *v == "socket"; }

Status Need(const ApiServices& s, const Identity& who, const std::string& vm_path, const std::string& privs) {
  if (s.access.AllowedAny(who, vm_path, privs)) return Ok();
  return Fail(PermissionDenied("Permission check failed (" + vm_path + ", " + privs + ")"));
}

// Drives: what the new value is decides (cloud-init drive, cdrom or disk).
Status CheckDrive(const ApiServices& s, const Identity& who, const std::string& vm_path, const std::string& key,
                  const std::string& value) {
  auto dk = DriveKey::Parse(key == "cdrom" ? "ide2" : key);
  if (!dk) return Ok();
  auto d = ParseDrive(dk->bus, value);
  if (!d) return Ok();  // the schema check reports it
  auto alloc = ParseDriveAllocation(d->file);
  if ((alloc && alloc->cloudinit) || d->file.find("-cloudinit") != std::string::npos) {
    HEARTH_TRY(Need(s, who, vm_path, "VM.Config.Cloudinit"));
    return Need(s, who, vm_path, "VM.Config.CDROM");
  }
  if (d->IsCdrom()) return Need(s, who, vm_path, "VM.Config.CDROM");
  return Need(s, who, vm_path, "VM.Config.Disk");
}

}  // namespace

Status CheckVmConfigPrivileges(const ApiServices& s, const Identity& who, int vmid,
                               const std::map<std::string, std::string>& set, const std::vector<std::string>& del,
                               const std::map<std::string, std::string>* current) {
  if (who.IsRootAtPam()) return Ok();
  std::string vm_path = "/vms/" + std::to_string(vmid);
  auto old_value = [&](const std::string& k) -> std::optional<std::string> {
    if (!current) return std::nullopt;
    auto it = current->find(k);
    return it == current->end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  auto check_key = [&](const std::string& k) -> Status {
    if (!FindVmKey(k) && k != "cdrom") return Ok();  // unknown keys get their 400 from validation
    std::string priv = ConfigKeyPrivilege(k);
    if (priv == kRootOnly) return Fail(Internal("only root can set '" + k + "' config"));
    if (!priv.empty()) {
      HEARTH_TRY(Need(s, who, vm_path, priv));
      // startup changes what the host does at boot.
      if (k == "startup" && !s.access.Allowed(who, "/", "Sys.Modify"))
        return Fail(PermissionDenied("Permission check failed (/, Sys.Modify)"));
    }
    return Ok();
  };
  for (const auto& [k, v] : set) {
    HEARTH_TRY(check_key(k));
    if (StartsWith(k, "serial")) {
      // A real device is a host path QEMU opens as root: root@pam only (PVE's words).
      if (v != "socket")
        return Fail(Internal(std::string("only root can ") + (current ? "modify" : "set") + " '" + k +
                             "' config for real devices"));
      if (!IsSocketSerial(old_value(k))) return Fail(Internal("only root can modify '" + k + "' config for real devices"));
      HEARTH_TRY(Need(s, who, vm_path, "VM.Config.HWType"));
    } else if (StartsWith(k, "usb")) {
      PropertyFormat f;
      f.default_key = "host";
      f.props = {{"host", PropType::kString}, {"mapping", PropType::kString}, {"usb3", PropType::kBoolean}};
      auto m = ParsePropertyString(f, v);
      if (!m || !m->count("host") || ToLower((*m)["host"]) != "spice")
        return Fail(Internal("only root can set '" + k + "' config for real devices"));
      HEARTH_TRY(Need(s, who, vm_path, "VM.Config.HWType"));
    } else if (StartsWith(k, "hostpci")) {
      return Fail(Internal("only root can set '" + k + "' config for non-mapped devices"));
    } else if (StartsWith(k, "virtiofs") || StartsWith(k, "unused")) {
      HEARTH_TRY(Need(s, who, vm_path, "VM.Config.Disk"));
    } else if (k == "tags") {
      HEARTH_TRY(Need(s, who, vm_path, "VM.Config.Options"));
    } else if (DriveKey::Parse(k) || k == "cdrom") {
      HEARTH_TRY(CheckDrive(s, who, vm_path, k, v));
    }
  }
  for (const auto& k : del) {
    HEARTH_TRY(check_key(k));
    if (StartsWith(k, "serial") && !IsSocketSerial(old_value(k)))
      return Fail(Internal("only root can delete '" + k + "' config for real devices"));
    if ((StartsWith(k, "usb") || StartsWith(k, "hostpci")) && old_value(k))
      return Fail(Internal("only root can delete '" + k + "' config for real devices"));
    if (DriveKey::Parse(k) || k == "cdrom") {
      auto old = old_value(k == "cdrom" ? "ide2" : k);
      HEARTH_TRY(old ? CheckDrive(s, who, vm_path, k, *old) : Need(s, who, vm_path, "VM.Config.Disk"));
    } else if (StartsWith(k, "unused") || StartsWith(k, "virtiofs")) {
      HEARTH_TRY(Need(s, who, vm_path, "VM.Config.Disk"));
    } else if (k == "tags") {
      HEARTH_TRY(Need(s, who, vm_path, "VM.Config.Options"));
    }
  }
  return Ok();
}

}  // namespace hearth

// Growing disks.
#include "core/pattern.h"
#include "core/strings.h"
#include "core/units.h"
#include "model/drive.h"
#include "vms/vm_service.h"
#include "sys/crash_point.h"

namespace hearth {

Result<std::string> VmService::Resize(int vmid, const std::string& disk, const std::string& size_text,
                                      const std::string& digest, bool skiplock, const std::string& user) {
  // PVE (API2/Qemu.pm resize_vm) checks only the parameters before the task; the rest,
  // with its words, inside it.
  auto dk = DriveKey::Parse(disk);
  if (!dk || dk->bus == DriveBus::kUnused)
    return Fail(FieldError("disk", "value '" + disk + "' does not have a value in the enumeration of drive names"));
  static const Pattern size_re("\\+?\\d+(\\.\\d+)?[KMGT]?");
  bool relative = StartsWith(size_text, "+");
  auto amount = ParseSize(relative ? size_text.substr(1) : size_text);
  if (!size_re.FullMatch(size_text) || !amount) return Fail(FieldError("size", "value does not match the regex pattern"));
  if (!Exists(vmid)) return Fail(Internal(ConfigNotFound(vmid)));
  return StartTask("resize", vmid, user,
                   [this, vmid, disk, relative, amount = *amount, digest, skiplock](TaskContext& ctx) -> Status {
    HEARTH_ASSIGN_OR_RETURN(VmConfig c, GetConfig(vmid));
    if (!digest.empty() && digest != ConfDigest(FormatConfFile(c)))
      return Fail(FailedPrecondition("checksum mismatch (file change by other user?)"));
    HEARTH_TRY(CheckLock(c, skiplock));
    auto dk = DriveKey::Parse(disk);
    auto value = c.Get(disk);
    if (!value) return Fail(Internal("disk '" + disk + "' does not exist"));
    HEARTH_ASSIGN_OR_RETURN(Drive d, ParseDrive(dk->bus, *value));
    if (d.IsCdrom()) return Fail(InvalidArgument("you can't resize a cdrom"));
    std::string vol = DriveVolume(disk, *value);
    if (vol.empty()) return Fail(InvalidArgument("disk '" + disk + "' has no associated volume"));
    auto info_or = storage_.InfoOf(vol);
    if (!info_or) return Fail(Internal("Could not determine current size of volume '" + vol + "'"));
    VolumeInfo info = *info_or;
    uint64_t target = relative ? info.size + amount : amount;
    target = (target + 511) / 512 * 512;
    if (target < info.size) return Fail(InvalidArgument("shrinking disks is not supported"));
    if (target == info.size) {
      ctx.Log(disk + ": already " + FormatSize(info.size) + ", nothing to do");
      return Ok();
    }
    ctx.Log(disk + ": growing " + vol + " from " + FormatSize(info.size) + " to " + FormatSize(target));
    if (qemu_.Pid(vmid)) {
      HEARTH_ASSIGN_OR_RETURN(std::string node, qemu_.BlockNodeName(vmid, disk));
      HEARTH_TRY(qemu_.BlockResize(vmid, node, target));
    } else {
      HEARTH_ASSIGN_OR_RETURN(VolumeId id, ParseVolumeId(vol));
      HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, storage_.Get(id.storage));
      HEARTH_TRY(st->ResizeImage(id.volname, target));
    }
    CrashPoint("resize.grown");
    return Mutate(vmid, [&](VmConfig& cc) -> Status {
      auto cur = cc.Get(disk);
      if (!cur) return Ok();
      HEARTH_ASSIGN_OR_RETURN(Drive now, ParseDrive(dk->bus, *cur));
      now.opts["size"] = FormatSize(target);
      cc.values[disk] = PrintDrive(dk->bus, now);
      return Ok();
    });
  });
}

}  // namespace hearth

#include "model/vm_device_formats.h"

#include <algorithm>
#include <set>

#include "core/pattern.h"
#include "core/strings.h"
#include "model/drive.h"

namespace hearth {
namespace {

Result<std::string> Bad(std::string msg) { return Fail(InvalidArgument(std::move(msg))); }

// Proxmox's CPU-list pattern for numaN's cpus and hostnodes: "0-3;8;10-11".
std::string CheckCpuList(std::string_view v) {
  static const Pattern re("\\d+(-\\d+)?(;\\d+(-\\d+)?)*");
  return re.FullMatch(v) ? "" : "value does not match the regex pattern";
}

// pve-configid: a letter, then letters, digits, '_' or '-'.
std::string CheckConfigId(std::string_view v) {
  static const Pattern re("[a-zA-Z][a-zA-Z0-9_\\-]+");
  return re.FullMatch(v) ? "" : "invalid configuration ID '" + std::string(v) + "'";
}

std::string CheckHvVendorId(std::string_view v) {
  static const Pattern re("[a-zA-Z0-9]{1,12}");
  return re.FullMatch(v) ? "" : "value does not match the regex pattern";
}

std::string CheckPhysBits(std::string_view v) {
  if (v == "host") return "";
  auto n = ParseUint(v);
  if (v.size() <= 2 && n && *n >= 8 && *n <= 64) return "";
  return "value must be an integer between 8 and 64 or 'host'";
}

// The flags a VM's own config may set (CPUConfig.pm's supported VM-specific flags).
constexpr const char* kVmCpuFlags[] = {"aes",     "amd-no-ssb", "amd-ssbd", "hv-evmcs",  "hv-tlbflush",
                                       "ibpb",    "md-clear",   "nested-virt", "pcid",  "pdpe1gb",
                                       "spec-ctrl", "ssbd",     "virt-ssbd"};

}  // namespace

bool IsKnownCpuModel(std::string_view model) {
  static const std::set<std::string, std::less<>> models = {
      // QEMU 7.2's x86 models (`qemu-system-x86_64 -cpu help`).
    "486", "486-v1", "Broadwell", "Broadwell-IBRS", "Broadwell-noTSX", "Broadwell-noTSX-IBRS", "Broadwell-v1",
    "Broadwell-v2", "Broadwell-v3", "Broadwell-v4", "Cascadelake-Server", "Cascadelake-Server-noTSX",
    "Cascadelake-Server-v1", "Cascadelake-Server-v2", "Cascadelake-Server-v3", "Cascadelake-Server-v4",
    "Cascadelake-Server-v5", "Conroe", "Conroe-v1", "Cooperlake", "Cooperlake-v1", "Cooperlake-v2", "Denverton",
    "Denverton-v1", "Denverton-v2", "Denverton-v3", "Dhyana", "Dhyana-v1", "Dhyana-v2", "EPYC", "EPYC-IBPB",
    "EPYC-Milan", "EPYC-Milan-v1", "EPYC-Rome", "EPYC-Rome-v1", "EPYC-Rome-v2", "EPYC-v1", "EPYC-v2", "EPYC-v3",
    "Haswell", "Haswell-IBRS", "Haswell-noTSX", "Haswell-noTSX-IBRS", "Haswell-v1", "Haswell-v2", "Haswell-v3",
    "Haswell-v4", "Icelake-Server", "Icelake-Server-noTSX", "Icelake-Server-v1", "Icelake-Server-v2",
    "Icelake-Server-v3", "Icelake-Server-v4", "Icelake-Server-v5", "Icelake-Server-v6", "IvyBridge",
    "IvyBridge-IBRS", "IvyBridge-v1", "IvyBridge-v2", "KnightsMill", "KnightsMill-v1", "Nehalem", "Nehalem-IBRS",
    "Nehalem-v1", "Nehalem-v2", "Opteron_G1", "Opteron_G1-v1", "Opteron_G2", "Opteron_G2-v1", "Opteron_G3",
    "Opteron_G3-v1", "Opteron_G4", "Opteron_G4-v1", "Opteron_G5", "Opteron_G5-v1", "Penryn", "Penryn-v1",
    "SandyBridge", "SandyBridge-IBRS", "SandyBridge-v1", "SandyBridge-v2", "Skylake-Client", "Skylake-Client-IBRS",
    "Skylake-Client-noTSX-IBRS", "Skylake-Client-v1", "Skylake-Client-v2", "Skylake-Client-v3", "Skylake-Client-v4",
    "Skylake-Server", "Skylake-Server-IBRS", "Skylake-Server-noTSX-IBRS", "Skylake-Server-v1", "Skylake-Server-v2",
    "Skylake-Server-v3", "Skylake-Server-v4", "Skylake-Server-v5", "Snowridge", "Snowridge-v1", "Snowridge-v2",
    "Snowridge-v3", "Snowridge-v4", "Westmere", "Westmere-IBRS", "Westmere-v1", "Westmere-v2", "athlon", "athlon-v1",
    "core2duo", "core2duo-v1", "coreduo", "coreduo-v1", "kvm32", "kvm32-v1", "kvm64", "kvm64-v1", "n270", "n270-v1",
    "pentium", "pentium-v1", "pentium2", "pentium2-v1", "pentium3", "pentium3-v1", "phenom", "phenom-v1", "qemu32",
    "qemu32-v1", "qemu64", "qemu64-v1", "base", "host", "max",
      // PVE's abstract models (mapped to qemu64 plus flags by the argv builder).
      "x86-64-v2", "x86-64-v2-AES", "x86-64-v3", "x86-64-v4"};
  return models.count(model) > 0;
}

const PropertyFormat& CpuFormat() {
  static const PropertyFormat f = [] {
    PropertyFormat p;
    p.default_key = "cputype";
    p.props = {{"cputype", PropType::kString},
               {"flags", PropType::kString},
               {"hidden", PropType::kBoolean},
               {"hv-vendor-id", PropType::kString, {}, {}, {}, "", CheckHvVendorId},
               {"phys-bits", PropType::kString, {}, {}, {}, "", CheckPhysBits},
               {"guest-phys-bits", PropType::kInteger, {}, 32.0, 64.0},
               {"level", PropType::kInteger, {}, 0.0, 4294967295.0},
               {"reported-model", PropType::kString}};
    return p;
  }();
  return f;
}

const PropertyFormat& RngFormat() {
  static const PropertyFormat f = [] {
    PropertyFormat p;
    p.default_key = "source";
    p.props = {{"source", PropType::kEnum, {"/dev/urandom", "/dev/random", "/dev/hwrng"}},
               {"max_bytes", PropType::kInteger},
               {"period", PropType::kInteger}};
    p.props[0].required = true;
    return p;
  }();
  return f;
}

// validate_vm_cpu_conf, in its order and with its texts.
Result<std::string> CanonCpu(std::string_view v) {
  HEARTH_ASSIGN_OR_RETURN(PropertyMap m, ParsePropertyString(CpuFormat(), v));
  if (!m.count("cputype") || m["cputype"].empty()) return Bad("CPU is missing cputype");
  const std::string& type = m["cputype"];
  if (StartsWith(type, "custom-"))  // hearth has no custom CPU models (cpu-models.conf)
    return Bad("Custom cputype '" + type.substr(7) + "' not found");
  if (!IsKnownCpuModel(type)) return Bad("Built-in cputype '" + type + "' is not defined (missing 'custom-' prefix?)");
  if (m.count("flags")) {
    for (const auto& fl : Split(m["flags"], ';')) {
      bool ok = fl.size() > 1 && (fl[0] == '+' || fl[0] == '-') &&
                std::any_of(std::begin(kVmCpuFlags), std::end(kVmCpuFlags),
                            [&](const char* name) { return fl.substr(1) == name; });
      if (!ok) {
        std::vector<std::string> names(std::begin(kVmCpuFlags), std::end(kVmCpuFlags));
        return Bad("VM-specific CPU flags must be a subset of: " + Join(names, ", "));
      }
    }
  }
  if (m.count("reported-model")) return Bad("Property 'reported-model' not allowed in VM-specific CPU config.");
  return std::string(v);
}

Result<std::string> CanonRng(std::string_view v) {
  HEARTH_TRY(ParsePropertyString(RngFormat(), v));
  return std::string(v);
}

Result<std::string> CanonAudio(std::string_view v) {
  PropertyFormat f;  // no default key: "device=" must be written out
  f.props = {{"device", PropType::kEnum, {"ich9-intel-hda", "intel-hda", "AC97"}},
             {"driver", PropType::kEnum, {"spice", "none"}}};
  f.props[0].required = true;
  HEARTH_TRY(ParsePropertyString(f, v));
  return std::string(v);
}

Result<std::string> CanonWatchdog(std::string_view v) {
  PropertyFormat f;
  f.default_key = "model";
  f.props = {{"model", PropType::kEnum, {"i6300esb", "ib700"}},
             {"action", PropType::kEnum, {"reset", "shutdown", "poweroff", "pause", "debug", "none"}}};
  HEARTH_TRY(ParsePropertyString(f, v));
  return std::string(v);
}

Result<std::string> CanonNuma(std::string_view v) {
  PropertyFormat f;  // no default key
  f.props = {{"cpus", PropType::kString, {}, {}, {}, "", CheckCpuList},
             {"hostnodes", PropType::kString, {}, {}, {}, "", CheckCpuList},
             {"memory", PropType::kNumber},
             {"policy", PropType::kEnum, {"preferred", "bind", "interleave"}}};
  f.props[0].required = true;
  HEARTH_TRY(ParsePropertyString(f, v));
  return std::string(v);
}

Result<std::string> CanonVirtiofs(std::string_view v) {
  PropertyFormat f;
  f.default_key = "dirid";
  f.props = {{"dirid", PropType::kString, {}, {}, {}, "", CheckConfigId},
             {"cache", PropType::kEnum, {"auto", "always", "metadata", "never"}},
             {"direct-io", PropType::kBoolean},
             {"expose-xattr", PropType::kBoolean},
             {"expose-acl", PropType::kBoolean}};
  f.props[0].required = true;
  HEARTH_TRY(ParsePropertyString(f, v));
  return std::string(v);
}

// verify_bootdisk: any drive name in range except unusedN (efidisk0 passes here and fails
// the pattern after it, as in PVE).
Result<std::string> CanonBootdisk(std::string_view v) {
  auto dk = DriveKey::Parse(v);
  if (!dk || !dk->IsDisk()) return Bad("invalid boot disk '" + std::string(v) + "'");
  return std::string(v);
}

// pve-storage-id (parse_id): at least 2 characters, a letter first, no trailing '-', '_', '.'.
Result<std::string> CanonStorageId(std::string_view v) {
  static const Pattern re("[a-zA-Z][a-zA-Z0-9\\-_.]*[a-zA-Z0-9]");
  if (v.size() < 2) return Bad("storage ID '" + std::string(v) + "' cannot be shorter than 2 characters");
  if (!re.FullMatch(v)) return Bad("storage ID '" + std::string(v) + "' contains illegal characters");
  return std::string(v);
}

bool MatchesBootdiskPattern(std::string_view v) {
  static const Pattern re("(ide|sata|scsi|virtio)\\d+");
  return re.FullMatch(v);
}

bool MatchesStartdatePattern(std::string_view v) {
  static const Pattern re("(now|\\d{4}-\\d{1,2}-\\d{1,2}(T\\d{1,2}:\\d{1,2}:\\d{1,2})?)");
  return re.FullMatch(v);
}

}  // namespace hearth

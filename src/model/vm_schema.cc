#include "model/vm_schema.h"

#include <cctype>
#include <algorithm>
#include <set>

#include "core/pattern.h"
#include "core/strings.h"
#include "model/drive.h"
#include "model/ip.h"
#include "model/netdev.h"
#include "model/property_string.h"
#include "model/vm_device_formats.h"

namespace hearth {
namespace {

Result<std::string> Bad(std::string msg) { return Fail(InvalidArgument(std::move(msg))); }

Result<std::string> CanonName(std::string_view v) {
  static const Pattern re("[a-zA-Z0-9]([a-zA-Z0-9\\-]*[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9\\-]*[a-zA-Z0-9])?)*");
  std::string s(v);
  if (s.empty() || s.size() > 253 || !re.FullMatch(s)) return Bad("value does not look like a valid DNS name");
  return s;
}

Result<std::string> CanonMemory(std::string_view v) {
  PropertyFormat f;
  f.default_key = "current";
  f.props = {{"current", PropType::kInteger, {}, 16.0}};
  // Printed canonically: "current=2048" is stored as "2048", as PVE prints it (clients
  // such as bpg read memory as a plain number).
  HEARTH_ASSIGN_OR_RETURN(PropertyMap m, ParsePropertyString(f, v));
  return PrintPropertyString(f, m);
}

Result<std::string> CanonDrive(std::string_view key, std::string_view v) {
  auto dk = DriveKey::Parse(key);
  HEARTH_ASSIGN_OR_RETURN(Drive d, ParseDrive(dk->bus, v));
  const std::string& f = d.file;
  bool ok = f == "none" || f == "cdrom" || (!f.empty() && f[0] == '/') || ParseDriveAllocation(f) ||
            f.find(':') != std::string::npos;
  if (!ok) return Bad("invalid volume '" + f + "'");
  if (auto alloc = ParseDriveAllocation(f); alloc && alloc->oversized)
    return Bad("format error\nsize: invalid format - value does not look like a valid disk size: " + f + "\n\n");
  if (f[0] == '/' && f.find("/../") != std::string::npos) return Bad("invalid path '" + f + "'");
  return PrintDrive(dk->bus, d);
}

Result<std::string> CanonNet(std::string_view v) {
  HEARTH_ASSIGN_OR_RETURN(NetDev n, ParseNetDev(v));
  return PrintNetDev(n);
}

// qemu-server's verify_bootdev: any drive but efidisk/tpmstate/unused, or netN, usbN, hostpciN.
std::string CheckBootOrder(std::string_view order) {
  for (const auto& d : Split(order, ';')) {
    auto dk = DriveKey::Parse(d);
    bool ok = dk ? dk->bus != DriveBus::kEfidisk && dk->bus != DriveBus::kTpmstate && dk->bus != DriveBus::kUnused
                 : FindVmKey(d) && (StartsWith(d, "net") || StartsWith(d, "usb") || StartsWith(d, "hostpci"));
    if (!ok) return "invalid boot device '" + d + "'";
  }
  return "";
}

std::string CheckLegacyBoot(std::string_view v) {
  static const Pattern legacy("[acdn]{1,4}");
  return legacy.FullMatch(v) ? "" : "value does not match the regex pattern";
}

Result<std::string> CanonBoot(std::string_view v) {
  // pve-qm-boot: the legacy "cdn" letters, or order=dev;dev (re-printed with only `order`).
  PropertyFormat f;
  f.default_key = "legacy";
  f.props = {{"order", PropType::kString, {}, {}, {}, "", CheckBootOrder},
             {"legacy", PropType::kString, {}, {}, {}, "", CheckLegacyBoot}};
  HEARTH_ASSIGN_OR_RETURN(PropertyMap m, ParsePropertyString(f, v));
  if (!m.count("order")) return std::string(v);
  std::vector<std::string> devs;
  for (const auto& d : Split(m["order"], ';'))
    if (!d.empty()) devs.push_back(d);
  return "order=" + Join(devs, ";");
}

Result<std::string> CanonIpConfig(std::string_view v) {
  HEARTH_ASSIGN_OR_RETURN(PropertyMap m, ParsePropertyString(IpConfigFormat(), v));
  if (m.count("ip") && m["ip"] != "dhcp" && !IsCidr4(m["ip"])) return Bad("invalid IPv4 CIDR '" + m["ip"] + "'");
  if (m.count("gw") && !IsIPv4(m["gw"])) return Bad("invalid IPv4 gateway '" + m["gw"] + "'");
  if (m.count("gw") && (!m.count("ip") || m["ip"] == "dhcp")) return Bad("gateway 'gw' requires a static 'ip'");
  if (m.count("ip6") && m["ip6"] != "dhcp" && m["ip6"] != "auto" && !IsCidr6(m["ip6"]))
    return Bad("invalid IPv6 CIDR '" + m["ip6"] + "'");
  if (m.count("gw6") && !IsIPv6(m["gw6"])) return Bad("invalid IPv6 gateway '" + m["gw6"] + "'");
  if (m.count("gw6") && (!m.count("ip6") || m["ip6"] == "dhcp" || m["ip6"] == "auto"))
    return Bad("gateway 'gw6' requires a static 'ip6'");
  return std::string(v);
}

Result<std::string> CanonAgent(std::string_view v) {
  HEARTH_TRY(ParsePropertyString(AgentFormat(), v));
  return std::string(v);  // PVE keeps agent verbatim
}

Result<std::string> CanonSerial(std::string_view v) {
  // A device path stays under /dev: no "." or ".." components (QEMU opens it as root).
  // Where it resolves to is checked again when the VM starts (symlinks can change).
  static const Pattern dev("/dev(/[a-zA-Z0-9_.+-]+)+");
  if (v == "socket") return std::string(v);
  if (dev.FullMatch(v) && v.find("/./") == std::string_view::npos && v.find("/../") == std::string_view::npos &&
      !EndsWith(v, "/.") && !EndsWith(v, "/.."))
    return std::string(v);
  return Bad("value does not match the regex pattern");
}

Result<std::string> CanonVga(std::string_view v) {
  PropertyFormat f;
  f.default_key = "type";
  f.props = {{"type", PropType::kEnum, {"cirrus", "qxl", "qxl2", "qxl3", "qxl4", "none", "serial0", "serial1", "serial2",
                                        "serial3", "std", "virtio", "virtio-gl", "vmware"}},
             {"memory", PropType::kInteger, {}, 4.0, 512.0},
             {"clipboard", PropType::kEnum, {"vnc"}}};
  HEARTH_TRY(ParsePropertyString(f, v));
  return std::string(v);
}

Result<std::string> CanonMachine(std::string_view v) {
  static const Pattern re("((pc|pc-i440fx|q35|pc-q35)(-\\d+(\\.\\d+)+)?(\\+pve\\d+)?)(,viommu=(intel|virtio))?");
  if (v.size() > 64 || !re.FullMatch(v)) return Bad("invalid machine type '" + std::string(v) + "'");
  return std::string(v);
}

Result<std::string> CanonStartup(std::string_view v) {
  PropertyFormat f;
  f.default_key = "order";
  f.props = {{"order", PropType::kInteger, {}, 0.0}, {"up", PropType::kInteger, {}, 0.0}, {"down", PropType::kInteger, {}, 0.0}};
  HEARTH_TRY(ParsePropertyString(f, v));
  return std::string(v);
}

Result<std::string> CanonSmbios(std::string_view v) {
  PropertyFormat f;
  f.props = {{"uuid", PropType::kString}, {"manufacturer", PropType::kString}, {"product", PropType::kString},
             {"serial", PropType::kString}, {"family", PropType::kString}, {"sku", PropType::kString},
             {"version", PropType::kString}, {"base64", PropType::kBoolean}};
  HEARTH_ASSIGN_OR_RETURN(PropertyMap m, ParsePropertyString(f, v));
  static const Pattern uuid("[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}");
  if (m.count("uuid") && !uuid.FullMatch(m["uuid"])) return Bad("invalid uuid '" + m["uuid"] + "'");
  // PVE: every other value is in the base64 alphabet (the GUI encodes and sets base64=1).
  static const Pattern b64("[A-Za-z0-9+/]+={0,2}");
  for (const auto& [k, val] : m)
    if (k != "uuid" && k != "base64" && !b64.FullMatch(val)) return Bad(k + ": value does not match the regex pattern");
  return std::string(v);
}

Result<std::string> CanonVmgenid(std::string_view v) {
  static const Pattern uuid("([0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}|0|1)");
  if (!uuid.FullMatch(v)) return Bad("invalid vmgenid '" + std::string(v) + "'");
  return std::string(v);
}

Result<std::string> CanonHotplug(std::string_view v) {
  if (v == "0" || v == "1") return std::string(v);
  for (const auto& p : SplitAny(v, ","))
    if (p != "network" && p != "disk" && p != "cpu" && p != "memory" && p != "usb" && p != "cloudinit")
      return Bad("invalid hotplug feature '" + p + "'");
  return std::string(v);
}

Result<std::string> CanonSshKeys(std::string_view v) {
  // PVE's format "urlencoded": the value itself is percent-encoded and stored as received.
  // Whether the lines are keys is checked separately (SshKeysValid), as PVE does after the
  // schema, with its own error.
  static const Pattern allowed("[-%a-zA-Z0-9_.!~*'()]*");
  std::string s(v);
  if (!allowed.FullMatch(s)) return Bad("invalid urlencoded string: " + s);
  auto decoded = PercentDecode(s, false);
  if (!decoded || !IsValidUtf8(*decoded)) return Bad("invalid urlencoded string: " + s);
  return s;
}

Result<std::string> CanonNameserver(std::string_view v) {
  for (const auto& a : SplitAny(v, ", ;"))
    if (!IsIPv4(a) && !IsIPv6(a)) return Bad("invalid nameserver address '" + a + "'");
  return std::string(v);
}

Result<std::string> CanonSearchdomain(std::string_view v) {
  for (const auto& d : SplitAny(v, ", ;")) HEARTH_TRY(CanonName(d));
  return std::string(v);
}

Result<std::string> CanonCicustom(std::string_view v) {
  PropertyFormat f;
  f.props = {{"user", PropType::kString}, {"network", PropType::kString}, {"meta", PropType::kString},
             {"vendor", PropType::kString}};
  HEARTH_ASSIGN_OR_RETURN(PropertyMap m, ParsePropertyString(f, v));
  // pve-volume-id: <storage id>:<volume name>. PVE finds a bad volume name only when it
  // reads the snippet; a path that leaves the storage is refused here already.
  for (const auto& [k, vol] : m) {
    size_t colon = vol.find(':');
    if (colon == std::string::npos || !CanonStorageId(std::string_view(vol).substr(0, colon)))
      return Bad("format error\n" + k + ": unable to parse volume ID '" + vol + "'\n");
    std::string name = vol.substr(colon + 1);
    if (name.empty() || name[0] == '/' || name == ".." || StartsWith(name, "../") || EndsWith(name, "/..") ||
        name.find("/../") != std::string::npos)
      return Bad("format error\n" + k + ": volume name '" + name + "' leaves its storage\n");
  }
  return std::string(v);
}

// PVE strips trailing whitespace when it reads a description back (inner and leading
// blank lines stay).
Result<std::string> CanonDescription(std::string_view v) {
  size_t end = v.size();
  while (end > 0 && std::isspace(static_cast<unsigned char>(v[end - 1]))) --end;
  return std::string(v.substr(0, end));
}

Result<std::string> CanonCiPassword(std::string_view v) {
  if (v.find('\n') != std::string_view::npos) return Bad("value must not contain a newline");
  return std::string(v);
}

Result<std::string> CanonAffinity(std::string_view v) {
  static const Pattern re("\\d+(-\\d+)?(,\\d+(-\\d+)?)*");
  if (!re.FullMatch(v)) return Bad("invalid CPU list '" + std::string(v) + "'");
  return std::string(v);
}

Result<std::string> CanonHookscript(std::string_view v) {
  if (v.find(":snippets/") == std::string_view::npos) return Bad("hookscript must be a snippets volume");
  return std::string(v);
}

VmKeySpec Str(std::string n, std::string d, Result<std::string> (*c)(std::string_view) = nullptr) {
  VmKeySpec s;
  s.name = std::move(n);
  s.description = std::move(d);
  s.canon = c;
  return s;
}
VmKeySpec Int(std::string n, std::optional<double> lo, std::optional<double> hi, std::string d) {
  VmKeySpec s;
  s.name = std::move(n);
  s.type = KeyType::kInteger;
  s.min = lo;
  s.max = hi;
  s.description = std::move(d);
  return s;
}
VmKeySpec Bool(std::string n, std::string d) {
  VmKeySpec s;
  s.name = std::move(n);
  s.type = KeyType::kBoolean;
  s.description = std::move(d);
  return s;
}
VmKeySpec Num(std::string n, double lo, double hi, std::string d) {
  VmKeySpec s;
  s.name = std::move(n);
  s.type = KeyType::kNumber;
  s.min = lo;
  s.max = hi;
  s.description = std::move(d);
  return s;
}
VmKeySpec Enum(std::string n, std::vector<std::string> v, std::string d) {
  VmKeySpec s;
  s.name = std::move(n);
  s.enum_values = std::move(v);
  s.description = std::move(d);
  return s;
}
VmKeySpec Indexed(VmKeySpec s, int max_index) {
  s.max_index = max_index;
  return s;
}
VmKeySpec Internal(VmKeySpec s) {
  s.internal = true;
  return s;
}

VmKeySpec WithPattern(VmKeySpec s, bool (*matches)(std::string_view)) {
  s.matches = matches;
  return s;
}

VmKeySpec MaxLength(VmKeySpec s, size_t n) {
  s.max_length = n;
  return s;
}

std::vector<VmKeySpec> MakeKeys() {
  std::vector<VmKeySpec> k = {
      Str("name", "Name of the VM (a DNS name).", CanonName),
      Str("memory", "Memory in MiB: [current=]<MiB>.", CanonMemory),
      Int("balloon", 0, 4194304, "Target RAM for the balloon device in MiB; 0 disables it."),
      Int("shares", 0, 50000, "Memory shares for auto-ballooning."),
      Int("cores", 1, 1024, "CPU cores per socket."),
      Int("sockets", 1, 16, "CPU sockets."),
      Int("vcpus", 1, 4096, "Hot-plugged vCPUs."),
      Str("cpu", "Emulated CPU type: [cputype=]<model>[,flags=...].", CanonCpu),
      Num("cpulimit", 0, 128, "Limit of CPU usage."),
      Int("cpuunits", 1, 262144, "CPU weight."),
      Str("affinity", "Host CPUs the VM may run on.", CanonAffinity),
      Bool("numa", "Enable NUMA."),
      Enum("ostype", {"other", "wxp", "w2k", "w2k3", "w2k8", "wvista", "win7", "win8", "win10", "win11", "l24", "l26", "solaris"},
           "Guest operating system."),
      Str("machine", "QEMU machine type.", CanonMachine),
      Enum("bios", {"seabios", "ovmf"}, "BIOS implementation."),
      Str("boot", "Boot order: order=<dev>[;<dev>...].", CanonBoot),
      WithPattern(Str("bootdisk", "Deprecated boot disk.", CanonBootdisk), MatchesBootdiskPattern),
      Enum("scsihw", {"lsi", "lsi53c810", "virtio-scsi-pci", "virtio-scsi-single", "megasas", "pvscsi"}, "SCSI controller."),
      Indexed(Str("ide", "IDE drive."), 3),
      Indexed(Str("sata", "SATA drive."), 5),
      Indexed(Str("scsi", "SCSI drive."), 30),
      Indexed(Str("virtio", "VirtIO drive."), 15),
      Indexed(Str("efidisk", "EFI vars disk."), 0),
      Indexed(Str("tpmstate", "TPM state disk."), 0),
      Indexed(Str("unused", "Detached volume."), 255),
      Indexed(Str("net", "Network device: <model>[=<MAC>][,bridge=<br>][,tag=<vlan>]...", CanonNet), 31),
      Indexed(Str("ipconfig", "cloud-init IP config: [ip=<CIDR>|dhcp][,gw=<IPv4>][,ip6=...][,gw6=...]", CanonIpConfig), 31),
      Str("ciuser", "cloud-init user name."),
      // libxcrypt hashes at most 512 bytes (CRYPT_MAX_PASSPHRASE_SIZE); longer ones are refused up front.
      MaxLength(Str("cipassword", "cloud-init password.", CanonCiPassword), 512),
      Enum("citype", {"nocloud", "configdrive2", "opennebula"}, "cloud-init configuration format."),
      Str("cicustom", "cloud-init custom files: [user=<volume>][,network=..][,meta=..][,vendor=..]", CanonCicustom),
      Bool("ciupgrade", "Upgrade packages after the first boot."),
      MaxLength(Str("sshkeys", "URL-encoded OpenSSH public keys, one per line.", CanonSshKeys), 65536),
      Str("nameserver", "DNS servers for cloud-init.", CanonNameserver),
      Str("searchdomain", "DNS search domains for cloud-init.", CanonSearchdomain),
      Str("agent", "QEMU guest agent: [enabled=]<1|0>[,type=virtio|isa]...", CanonAgent),
      Indexed(Str("serial", "Serial port: socket or a /dev/ path.", CanonSerial), 3),
      Str("vga", "Display: [type=]<std|virtio|serial0|none...>[,memory=<MiB>]", CanonVga),
      Str("tags", "Tags: a;b;c", nullptr),
      Bool("onboot", "Start at boot."),
      Str("startup", "Startup order: [order=]<n>[,up=<s>][,down=<s>]", CanonStartup),
      MaxLength(Str("description", "Description (may contain newlines).", CanonDescription), 8192),
      Str("hotplug", "Hot-plug features.", CanonHotplug),
      Bool("protection", "Protect the VM and its disks from removal."),
      MaxLength(Str("smbios1", "SMBIOS type 1 fields.", CanonSmbios), 512),
      Str("vmgenid", "VM generation id (UUID, 1 = generate, 0 = off).", CanonVmgenid),
      Bool("acpi", "Enable ACPI."),
      Bool("kvm", "Enable KVM hardware virtualisation."),
      Bool("tablet", "Enable the USB tablet device."),
      Bool("reboot", "Allow reboot; 0 makes a reboot stop the VM."),
      Bool("localtime", "RTC in local time."),
      Bool("freeze", "Freeze CPU at startup."),
      Bool("autostart", "Restart a crashed VM."),
      Bool("tdf", "Time drift fix."),
      Bool("keephugepages", "Keep hugepages after shutdown."),
      Enum("hugepages", {"any", "2", "1024"}, "Hugepages."),
      Enum("keyboard", {"de", "de-ch", "da", "en-gb", "en-us", "es", "fi", "fr", "fr-be", "fr-ca", "fr-ch", "hu", "is", "it",
                        "ja", "lt", "mk", "nl", "no", "pl", "pt", "pt-br", "sv", "sl", "tr"},
           "VNC keyboard layout."),
      MaxLength(Str("args", "Raw QEMU arguments (root@pam only)."), 65536),
      Str("hookscript", "Hook script volume.", CanonHookscript),
      Enum("arch", {"x86_64", "aarch64"}, "Virtual processor architecture."),
      Int("migrate_speed", 0, std::nullopt, "Max migration speed in MB/s."),
      Num("migrate_downtime", 0, 1e9, "Max migration downtime in seconds."),
      Str("vmstatestorage", "Storage for VM state volumes.", CanonStorageId),
      WithPattern(Str("startdate", "Initial RTC date: now, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS."), MatchesStartdatePattern),
      Str("watchdog", "Watchdog device: [model=]<i6300esb|ib700>[,action=...].", CanonWatchdog),
      Str("rng0", "VirtIO RNG device: [source=]<path>[,max_bytes=...][,period=...].", CanonRng),
      Str("audio0", "Audio device: device=<ich9-intel-hda|intel-hda|AC97>[,driver=...].", CanonAudio),
      Str("ivshmem", "Inter-VM shared memory."),
      Str("spice_enhancements", "SPICE enhancements."),
      Str("amd-sev", "AMD SEV."),
      Indexed(Str("hostpci", "PCI passthrough."), 15),
      Indexed(Str("usb", "USB device."), 13),
      Indexed(Str("virtiofs", "virtiofs share: [dirid=]<mapping>[,cache=...].", CanonVirtiofs), 9),
      Indexed(Str("numa", "NUMA node: cpus=<list>[,hostnodes=...][,memory=...][,policy=...].", CanonNuma), 7),
      Indexed(Str("parallel", "Parallel port."), 2),
      Internal(Bool("template", "The VM is a template.")),
      Internal(Str("lock", "Lock held by an operation.")),
      Internal(Str("meta", "Creation metadata.")),
      Internal(Str("parent", "Parent snapshot.")),
      Internal(Str("digest", "Config digest.")),
      Internal(Str("runningmachine", "Machine type of the running QEMU.")),
      Internal(Str("runningcpu", "CPU model of the running QEMU.")),
  };
  return k;
}

}  // namespace

const PropertyFormat& AgentFormat() {
  static const PropertyFormat f = [] {
    PropertyFormat p;
    p.default_key = "enabled";
    p.props = {{"enabled", PropType::kBoolean},
               {"fstrim_cloned_disks", PropType::kBoolean},
               {"freeze-fs-on-backup", PropType::kBoolean},
               {"freeze-fs", PropType::kBoolean},
               {"type", PropType::kEnum, {"virtio", "isa"}}};
    return p;
  }();
  return f;
}

const PropertyFormat& IpConfigFormat() {
  static const PropertyFormat f = [] {
    PropertyFormat p;
    p.props = {{"ip", PropType::kString}, {"gw", PropType::kString}, {"ip6", PropType::kString}, {"gw6", PropType::kString}};
    return p;
  }();
  return f;
}

bool AgentEnabled(std::string_view value) {
  auto m = ParsePropertyString(AgentFormat(), value);
  return m && m->count("enabled") && m->at("enabled") == "1";
}

const std::vector<VmKeySpec>& AllVmKeys() {
  static const std::vector<VmKeySpec> keys = MakeKeys();
  return keys;
}

const VmKeySpec* FindVmKey(std::string_view key) {
  for (const auto& s : AllVmKeys()) {
    if (s.max_index < 0) {
      if (key == s.name) return &s;
      continue;
    }
    if (!StartsWith(key, s.name)) continue;
    std::string_view digits = key.substr(s.name.size());
    if (digits.empty() || (digits.size() > 1 && digits[0] == '0') || digits[0] == '+') continue;
    auto n = ParseUint(digits);
    if (n && *n <= static_cast<uint64_t>(s.max_index)) return &s;
  }
  return nullptr;
}

Result<std::string> NormalizeTags(std::string_view value) {
  static const Pattern tag("[a-z0-9_][a-z0-9_\\-+.]*");
  std::set<std::string> tags;
  for (const auto& t : SplitAny(value, ",; ")) {
    std::string lower = ToLower(t);
    if (!tag.FullMatch(lower)) return Fail(InvalidArgument("invalid tag '" + t + "'"));
    tags.insert(lower);
  }
  return Join(std::vector<std::string>(tags.begin(), tags.end()), ";");
}

Result<std::string> CanonicalVmValue(std::string_view key, std::string_view value) {
  auto fail = [&](const std::string& msg) { return Fail(FieldError(std::string(key), msg)); };
  const VmKeySpec* spec = FindVmKey(key);
  if (!spec) return fail("property is not defined in schema and the schema does not allow additional properties");
  // Length first: nothing below runs on an unbounded value.
  size_t max_length = spec->max_length ? spec->max_length : kDefaultMaxLength;
  if (CharacterCount(value) > max_length) return fail("value may only be " + std::to_string(max_length) + " characters long");
  if (key != "description" && value.find_first_of("\r\n") != std::string_view::npos)
    return fail("value must not contain a newline");
  if (!IsValidUtf8(value)) return fail("value is not valid UTF-8");
  std::string v(value);
  switch (spec->type) {
    case KeyType::kInteger: {
      auto n = ParseInt(v);
      if (!n) return fail("type check ('integer') failed - got '" + v + "'");
      if (spec->min && *n < *spec->min) return fail("value must have a minimum value of " + std::to_string(int64_t(*spec->min)));
      if (spec->max && *n > *spec->max) return fail("value must have a maximum value of " + std::to_string(int64_t(*spec->max)));
      return std::to_string(*n);
    }
    case KeyType::kBoolean:
      if (v != "0" && v != "1") return fail("type check ('boolean') failed - got '" + v + "'");
      return v;
    case KeyType::kNumber: {
      auto d = ParseDouble(v);
      if (!d) return fail("type check ('number') failed - got '" + v + "'");
      if ((spec->min && *d < *spec->min) || (spec->max && *d > *spec->max)) return fail("value out of range");
      return v;
    }
    case KeyType::kString:
      break;
  }
  if (!spec->enum_values.empty() &&
      std::find(spec->enum_values.begin(), spec->enum_values.end(), v) == spec->enum_values.end())
    return fail("value '" + v + "' does not have a value in the enumeration '" + Join(spec->enum_values, ", ") + "'");
  Result<std::string> out = v;
  if (DriveKey::Parse(key)) {
    out = CanonDrive(key, v);
  } else if (key == "tags") {
    out = NormalizeTags(v);
  } else if (spec->canon) {
    out = spec->canon(v);
  }
  if (out && spec->matches && !spec->matches(*out)) return fail("value does not match the regex pattern");
  if (!out) {
    // A value that fails its format reads as in Proxmox: "invalid format - <why>\n", and a
    // property string's inner failures name "<key>.<property>".
    std::string msg = QualifyFormatError(out.error().message, key);
    if (!EndsWith(msg, "\n")) msg += "\n";
    return fail("invalid format - " + msg);
  }
  return out;
}

bool SshKeysValid(std::string_view urlencoded) {
  auto decoded = PercentDecode(urlencoded, false);
  if (!decoded) return false;
  static const Pattern type("ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\\.com");
  for (const auto& raw : Split(*decoded, '\n')) {
    std::string line(Trim(raw));
    if (line.empty()) continue;
    // [options] <type> <base64 blob> [comment]: the blob must decode and name the same type
    // (what `ssh-keygen -l` checks first). Options may precede the type.
    auto words = SplitAny(line, " \t");
    bool ok = false;
    for (size_t i = 0; i + 1 < words.size() && !ok; ++i) {
      if (!type.FullMatch(words[i])) continue;
      auto blob = Base64Decode(words[i + 1]);
      if (!blob || blob->size() < 4 + words[i].size()) break;
      uint32_t n = (static_cast<uint8_t>((*blob)[0]) << 24) | (static_cast<uint8_t>((*blob)[1]) << 16) |
                   (static_cast<uint8_t>((*blob)[2]) << 8) | static_cast<uint8_t>((*blob)[3]);
      ok = n == words[i].size() && blob->compare(4, n, words[i]) == 0;
      // And key material after the name: an ed25519 key is exactly 32 bytes (51 in all).
      if (ok) ok = words[i] == "ssh-ed25519" ? blob->size() == 51 : blob->size() >= 4 + n + 16;
    }
    if (!ok) return false;
  }
  return true;
}

std::string ConfigKeyPrivilege(std::string_view key) {
  static const std::set<std::string, std::less<>> cpu = {"cores", "cpu", "runningcpu", "cpulimit", "cpuunits",
                                                         "numa", "smp", "sockets", "vcpus"};
  static const std::set<std::string, std::less<>> memory = {"memory", "balloon", "shares", "allow-ksm"};
  static const std::set<std::string, std::less<>> hwtype = {"acpi", "hotplug", "kvm", "machine", "runningmachine",
                                                            "scsihw", "smbios1", "tablet", "vga", "watchdog",
                                                            "audio0", "rng0"};
  static const std::set<std::string, std::less<>> general = {
      "agent", "autostart", "bios", "description", "keyboard", "localtime", "migrate_downtime", "migrate_speed",
      "name", "onboot", "ostype", "protection", "reboot", "startdate", "startup", "tdf", "template"};
  static const std::set<std::string, std::less<>> disk = {"boot", "bootdisk", "vmstatestorage"};
  static const std::set<std::string, std::less<>> cloudinit = {"cicustom", "cipassword", "citype", "ciuser",
                                                               "ciupgrade", "nameserver", "searchdomain", "sshkeys"};
  auto indexed = [&](std::string_view prefix) {
    if (!StartsWith(key, prefix) || key.size() == prefix.size()) return false;
    for (char c : key.substr(prefix.size()))
      if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    return true;
  };
  if (DriveKey::Parse(key) || key == "cdrom" || key == "tags") return "";
  for (const char* p : {"unused", "serial", "usb", "hostpci", "virtiofs"})
    if (indexed(p)) return "";
  if (cpu.count(key) || indexed("numa")) return "VM.Config.CPU";
  if (memory.count(key)) return "VM.Config.Memory";
  if (hwtype.count(key)) return "VM.Config.HWType";
  if (general.count(key)) return "VM.Config.Options";
  if (key == "freeze") return "VM.PowerMgmt";
  if (disk.count(key)) return "VM.Config.Disk";
  if (indexed("net")) return "VM.Config.Network";
  if (cloudinit.count(key) || indexed("ipconfig")) return "VM.Config.Cloudinit|VM.Config.Network";
  return kRootOnly;  // args, lock, hookscript, affinity, hugepages, vmgenid, parallelN, ...
}

bool IsHotApplicable(std::string_view key) {
  static const std::set<std::string, std::less<>> keys = {
      "name", "description", "tags", "onboot", "protection", "startup", "hookscript", "ciuser", "cipassword",
      "citype", "cicustom", "ciupgrade", "sshkeys", "nameserver", "searchdomain", "migrate_speed",
      "migrate_downtime", "vmstatestorage", "boot", "bootdisk", "autostart"};
  if (keys.count(key)) return true;
  return StartsWith(key, "ipconfig") || StartsWith(key, "unused");
}

bool IsCloudInitKey(std::string_view key) {
  static const std::set<std::string, std::less<>> keys = {"ciuser", "cipassword", "citype", "cicustom", "ciupgrade",
                                                          "sshkeys", "nameserver", "searchdomain"};
  return keys.count(key) || StartsWith(key, "ipconfig");
}

}  // namespace hearth

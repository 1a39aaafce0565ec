#include "qemu/argv.h"

#include <cctype>
#include <set>

#include "core/strings.h"
#include "model/drive.h"
#include "model/netdev.h"
#include "model/property_string.h"
#include "model/vm_schema.h"

namespace hearth {

std::string RuntimePaths::Serial(int n) const { return dir + "/" + std::to_string(vmid) + ".serial" + std::to_string(n); }
std::string RuntimePaths::SerialLog(int n) const { return Serial(n) + ".log"; }

RuntimePaths RuntimePathsFor(const std::string& run_dir, int vmid) {
  RuntimePaths p;
  p.dir = run_dir;
  p.vmid = vmid;
  std::string base = run_dir + "/" + std::to_string(vmid);
  p.qmp = base + ".qmp";
  p.qmp_event = base + ".qmp-event";
  p.pid = base + ".pid";
  p.qga = base + ".qga";
  p.log = base + ".log";
  return p;
}

// -smbios type=1,...: values decoded when base64=1 (as PVE's GUI stores them), each ','
// doubled (QEMU's escape), empty ones left out. The config's property string has no
// escaping at all, so a value can never smuggle in another QEMU option.
static std::string SmbiosArg(const std::string& smbios1) {
  PropertyFormat f;
  for (const char* k : {"uuid", "manufacturer", "product", "serial", "family", "sku", "version"})
    f.props.push_back({k, PropType::kString});
  f.props.push_back({"base64", PropType::kBoolean});
  auto m = ParsePropertyString(f, smbios1);
  std::string out = "type=1";
  if (!m) return out;  // validated when set; an old unparsable value adds nothing
  bool b64 = m->count("base64") && (*m)["base64"] == "1";
  for (const auto& [k, v] : *m) {
    if (k == "base64") continue;
    std::string value = v;
    if (b64 && k != "uuid") value = Base64Decode(v).value_or("");
    if (value.empty()) continue;
    out += "," + k + "=" + EscapeQemuOpt(value);
  }
  return out;
}

std::string OvmfCodeFile(const std::string& efitype) { return efitype == "4m" ? "OVMF_CODE_4M.fd" : "OVMF_CODE.fd"; }

std::string OvmfVarsFile(const std::string& efitype, bool keys) {
  return std::string(efitype == "4m" ? "OVMF_VARS_4M" : "OVMF_VARS") + (keys ? ".ms.fd" : ".fd");
}

std::string EscapeQemuOpt(const std::string& v) {
  std::string out;
  for (char c : v) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

namespace {

using Args = std::vector<std::string>;

std::string Get(const std::map<std::string, std::string>& c, const std::string& k, const std::string& dflt = "") {
  auto it = c.find(k);
  return it == c.end() ? dflt : it->second;
}

// A QEMU machine type name ("pc", "q35", "pc-i440fx-7.2"): it goes into -machine unescaped.
bool IsMachineType(const std::string& m) {
  if (m.empty() || m.size() > 64) return false;
  for (char c : m)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') return false;
  return true;
}

// The device that a boot order entry refers to gets bootindex = its position.
std::map<std::string, int> BootIndexes(const std::map<std::string, std::string>& cfg) {
  std::map<std::string, int> idx;
  std::string boot = Get(cfg, "boot", "cdn");
  std::vector<std::string> devs;
  if (StartsWith(boot, "order=")) {
    devs = SplitAny(boot.substr(6), ";");
  } else {
    // Legacy letters: c = boot disk (bootdisk or first disk), d = first cdrom, n = NICs.
    std::string first_disk = Get(cfg, "bootdisk"), first_cd;
    for (const auto& [k, v] : cfg) {
      auto dk = DriveKey::Parse(k);
      if (!dk || dk->bus == DriveBus::kUnused || dk->bus == DriveBus::kEfidisk || dk->bus == DriveBus::kTpmstate) continue;
      auto d = ParseDrive(dk->bus, v);
      if (!d) continue;
      if (d->IsCdrom()) {
        if (first_cd.empty()) first_cd = k;
      } else if (first_disk.empty()) {
        first_disk = k;
      }
    }
    for (char c : boot) {
      if (c == 'c' && !first_disk.empty()) devs.push_back(first_disk);
      if (c == 'd' && !first_cd.empty()) devs.push_back(first_cd);
      if (c == 'n')
        for (const auto& [k, v] : cfg)
          if (StartsWith(k, "net")) devs.push_back(k);
    }
  }
  int n = 100;
  for (const auto& d : devs)
    if (!idx.count(d)) idx[d] = n++;
  return idx;
}

struct CpuModel {
  const char* name;
  const char* base;
  const char* flags;
};
// PVE's named x86-64 levels (qemu-server CPUConfig.pm), on top of qemu64.
const CpuModel kPveModels[] = {
    {"x86-64-v2", "qemu64", "+cx16,+lahf_lm,+popcnt,+pni,+sse4.1,+sse4.2,+ssse3"},
    {"x86-64-v2-AES", "qemu64", "+aes,+cx16,+lahf_lm,+popcnt,+pni,+sse4.1,+sse4.2,+ssse3"},
    {"x86-64-v3", "qemu64", "+aes,+avx,+avx2,+bmi1,+bmi2,+cx16,+f16c,+fma,+lahf_lm,+movbe,+popcnt,+pni,+sse4.1,+sse4.2,+ssse3,+xsave"},
    {"x86-64-v4", "qemu64", "+aes,+avx,+avx2,+avx512bw,+avx512cd,+avx512dq,+avx512f,+avx512vl,+bmi1,+bmi2,+cx16,+f16c,+fma,+lahf_lm,+movbe,+popcnt,+pni,+sse4.1,+sse4.2,+ssse3,+xsave"},
};

Result<std::string> CpuArg(const std::map<std::string, std::string>& cfg, const QemuHostInfo& host,
                           std::vector<std::string>* warnings) {
  auto parsed = ParsePropertyString(CpuFormat(), Get(cfg, "cpu"));
  if (!parsed) return Fail(FieldError("cpu", parsed.error().message));
  std::string type = parsed->count("cputype") ? parsed->at("cputype") : (host.kvm ? "kvm64" : "qemu64");
  std::string out = type;
  for (const auto& m : kPveModels)
    if (type == m.name) out = std::string(m.base) + "," + m.flags;
  if ((type == "host" || type == "max") && !host.kvm) {
    if (type == "host" && warnings) warnings->push_back("cpu type 'host' needs KVM; using 'max' under TCG");
    out = "max";
  }
  if (parsed->count("flags"))
    for (const auto& fl : Split(parsed->at("flags"), ';')) out += "," + fl;
  if (parsed->count("phys-bits")) out += ",phys-bits=" + parsed->at("phys-bits");
  if (parsed->count("hidden") && parsed->at("hidden") == "1") out += ",kvm=off";
  return out;
}

const std::map<std::string, std::string> kNicDevices = {
    {"virtio", "virtio-net-pci"}, {"e1000", "e1000"},       {"e1000-82540em", "e1000"},
    {"e1000-82544gc", "e1000-82544gc"}, {"e1000-82545em", "e1000-82545em"}, {"e1000e", "e1000e"},
    {"i82551", "i82551"},       {"i82557b", "i82557b"},     {"i82559er", "i82559er"},
    {"ne2k_isa", "ne2k_isa"},   {"ne2k_pci", "ne2k_pci"},   {"pcnet", "pcnet"},
    {"rtl8139", "rtl8139"},     {"vmxnet3", "vmxnet3"},
};

// Options that describe hardware hearth does not emulate yet: refuse to start rather than
// silently drop them.
const std::vector<std::string> kUnsupportedPrefixes = {"hostpci", "usb", "virtiofs", "ivshmem", "audio0",
                                                       "amd-sev", "tpmstate0", "parallel"};

enum class DeviceKind { kIde, kScsi, kVirtioBlk };

void AddDrive(Args& a, const std::string& key, const Drive& d, const DriveBinding* bind, const std::string& bus,
              const std::string& dev_extra, std::map<std::string, int>& boot, DeviceKind kind) {
  bool is_virtio_blk = kind == DeviceKind::kVirtioBlk;
  std::string node = "drive-" + key;
  bool cdrom = d.IsCdrom();
  if (bind) a.insert(a.end(), {"-blockdev", BlockdevArg(DriveBlockdev(d, *bind, node))});
  std::string dev;
  if (is_virtio_blk) {
    dev = "virtio-blk-pci";
  } else if (kind == DeviceKind::kScsi) {
    dev = cdrom ? "scsi-cd" : "scsi-hd";
  } else {
    dev = cdrom ? "ide-cd" : "ide-hd";
  }
  dev += (bus.empty() ? "" : ",bus=" + bus) + dev_extra;
  if (bind) dev += ",drive=" + node;
  dev += ",id=" + key;
  if (!cdrom && !is_virtio_blk && d.opts.count("ssd") && d.opts.at("ssd") == "1") dev += ",rotation_rate=1";
  if (d.opts.count("serial")) dev += ",serial=" + EscapeQemuOpt(d.opts.at("serial"));
  std::string cache = d.opts.count("cache") ? d.opts.at("cache") : "writeback";
  if (bind && !cdrom && (cache == "writethrough" || cache == "directsync")) dev += ",write-cache=off";
  if (auto it = boot.find(key); it != boot.end()) dev += ",bootindex=" + std::to_string(it->second);
  a.insert(a.end(), {"-device", dev});
}

}  // namespace

Result<std::vector<std::string>> BuildQemuArgv(const QemuLaunch& L, const QemuHostInfo& host,
                                               std::vector<std::string>* warnings) {
  const auto& cfg = L.config;
  for (const auto& [k, v] : cfg)
    for (const auto& p : kUnsupportedPrefixes)
      if (StartsWith(k, p)) return Fail(FieldError(k, "'" + k + "' is not supported by hearth yet; remove it to start the VM"));
  if (Get(cfg, "arch", "x86_64") != "x86_64") return Fail(FieldError("arch", "only x86_64 guests are supported"));

  RuntimePaths paths = RuntimePathsFor(host.run_dir, L.vmid);
  Args a = {host.binary};
  std::string name = Get(cfg, "name", "VM" + std::to_string(L.vmid));
  a.insert(a.end(), {"-name", EscapeQemuOpt(name) + ",debug-threads=on"});
  a.insert(a.end(), {"-chardev", "socket,id=qmp,path=" + EscapeQemuOpt(paths.qmp) + ",server=on,wait=off",
                     "-mon", "chardev=qmp,mode=control"});
  a.insert(a.end(), {"-chardev", "socket,id=qmp-event,path=" + EscapeQemuOpt(paths.qmp_event) + ",server=on,wait=off",
                     "-mon", "chardev=qmp-event,mode=control"});
  // Not -daemonize: the supervisor detaches QEMU itself, because the seccomp sandbox's
  // spawn=deny would forbid QEMU's own fork.
  a.insert(a.end(), {"-pidfile", paths.pid, "-nodefaults", "-no-user-config", "-display", "none"});

  // Machine and accelerator.
  std::string machine = L.force_machine.empty() ? Get(cfg, "machine", "pc") : L.force_machine;
  machine = machine.substr(0, machine.find(','));
  if (!IsMachineType(machine)) return Fail(FieldError("machine", "invalid machine type '" + machine + "'"));
  if (size_t plus = machine.find("+pve"); plus != std::string::npos) machine = machine.substr(0, plus);
  bool q35 = StartsWith(machine, "q35") || StartsWith(machine, "pc-q35");
  bool kvm = host.kvm && Get(cfg, "kvm", "1") == "1";
  std::string mopt = "type=" + machine;
  if (Get(cfg, "acpi", "1") == "0") mopt += ",acpi=off";
  a.insert(a.end(), {"-machine", mopt});
  a.insert(a.end(), {"-accel", kvm ? "kvm" : "tcg,thread=multi,tb-size=256"});
  QemuHostInfo cpu_host = host;
  cpu_host.kvm = kvm;
  HEARTH_ASSIGN_OR_RETURN(std::string cpu, CpuArg(cfg, cpu_host, warnings));
  a.insert(a.end(), {"-cpu", cpu});

  // CPUs and memory.
  int64_t sockets = ParseInt(Get(cfg, "sockets", "1")).value_or(1);
  int64_t cores = ParseInt(Get(cfg, "cores", "1")).value_or(1);
  int64_t maxcpus = sockets * cores;
  int64_t vcpus = ParseInt(Get(cfg, "vcpus", std::to_string(maxcpus))).value_or(maxcpus);
  if (vcpus > maxcpus) return Fail(FieldError("vcpus", "vcpus (" + std::to_string(vcpus) + ") must not exceed sockets*cores (" + std::to_string(maxcpus) + ")"));
  a.insert(a.end(), {"-smp", std::to_string(vcpus) + ",sockets=" + std::to_string(sockets) + ",cores=" +
                                 std::to_string(cores) + ",maxcpus=" + std::to_string(maxcpus)});
  std::string mem = Get(cfg, "memory", "512");
  if (StartsWith(mem, "current=")) mem = mem.substr(8);
  a.insert(a.end(), {"-m", mem});

  // Firmware.
  if (Get(cfg, "bios", "seabios") == "ovmf") {
    if (host.ovmf_dir.empty()) return Fail(FieldError("bios", "bios=ovmf needs OVMF firmware (install the 'ovmf' package)"));
    // The code must match the vars' size: efitype 4m (PVE's modern default) or 2m (older VMs).
    std::string efitype = "2m";
    if (auto e = Get(cfg, "efidisk0"); !e.empty())
      if (auto d = ParseDrive(DriveBus::kEfidisk, e); d && d->opts.count("efitype")) efitype = d->opts.at("efitype");
    a.insert(a.end(), {"-drive", "if=pflash,unit=0,format=raw,readonly=on,file=" +
                                     EscapeQemuOpt(host.ovmf_dir + "/" + OvmfCodeFile(efitype))});
    if (auto it = L.drives.find("efidisk0"); it != L.drives.end()) {
      // A pflash drive is opened by file name (-drive, not -blockdev).
      if (it->second.path.empty())
        return Fail(FieldError("efidisk0", "the EFI disk's storage gives QEMU no file to open"));
      // id=drive-efidisk0 as qemu-server: QMP commands (internal snapshots) name it so.
      a.insert(a.end(), {"-drive", "if=pflash,unit=1,id=drive-efidisk0,format=" + it->second.format +
                                       ",file=" + EscapeQemuOpt(it->second.path)});
    }
  }

  // Identity and clock.
  if (auto smbios = Get(cfg, "smbios1"); !smbios.empty()) a.insert(a.end(), {"-smbios", SmbiosArg(smbios)});
  if (auto genid = Get(cfg, "vmgenid"); !genid.empty() && genid != "0")
    a.insert(a.end(), {"-device", "vmgenid,guid=" + genid});
  std::string rtc = "base=" + std::string(Get(cfg, "localtime") == "1" ? "localtime" : "utc");
  if (auto sd = Get(cfg, "startdate"); !sd.empty() && sd != "now") rtc = "base=" + EscapeQemuOpt(sd);
  if (Get(cfg, "tdf") == "1") rtc += ",driftfix=slew";
  a.insert(a.end(), {"-rtc", rtc});
  if (Get(cfg, "freeze") == "1" || L.incoming || L.paused) a.push_back("-S");
  if (L.no_shutdown) a.push_back("-no-shutdown");
  if (L.incoming) a.insert(a.end(), {"-incoming", "defer"});
  if (Get(cfg, "reboot", "1") == "0") a.push_back("-no-reboot");

  // Display.
  std::string vga = Get(cfg, "vga", "std");
  vga = vga.substr(0, vga.find(','));
  if (StartsWith(vga, "type=")) vga = vga.substr(5);
  if (vga == "std") a.insert(a.end(), {"-device", "VGA,id=vga"});
  else if (vga == "virtio") a.insert(a.end(), {"-device", "virtio-vga,id=vga"});
  else if (vga == "cirrus") a.insert(a.end(), {"-device", "cirrus-vga,id=vga"});
  else if (vga == "vmware") a.insert(a.end(), {"-device", "vmware-svga,id=vga"});
  else if (StartsWith(vga, "qxl")) a.insert(a.end(), {"-device", "qxl-vga,id=vga"});

  // Serial ports.
  for (int n = 0; n <= 3; ++n) {
    std::string v = Get(cfg, "serial" + std::to_string(n));
    if (v.empty()) continue;
    std::string id = "serial" + std::to_string(n);
    if (v == "socket") {
      a.insert(a.end(), {"-chardev", "socket,id=" + id + ",path=" + EscapeQemuOpt(paths.Serial(n)) +
                                         ",server=on,wait=off,logfile=" + EscapeQemuOpt(paths.SerialLog(n))});
    } else {
      a.insert(a.end(), {"-chardev", "serial,id=" + id + ",path=" + EscapeQemuOpt(v)});
    }
    a.insert(a.end(), {"-device", "isa-serial,chardev=" + id});
  }

  // Guest agent.
  if (auto agent = Get(cfg, "agent"); AgentEnabled(agent)) {
    auto parsed = ParsePropertyString(AgentFormat(), agent);
    a.insert(a.end(), {"-chardev", "socket,path=" + EscapeQemuOpt(paths.qga) + ",server=on,wait=off,id=qga0"});
    if (parsed->count("type") && parsed->at("type") == "isa") {
      a.insert(a.end(), {"-device", "isa-serial,chardev=qga0"});
    } else {
      a.insert(a.end(), {"-device", "virtio-serial,id=qga0", "-device",
                         "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0"});
    }
  }

  // Random number generator.
  if (auto rng = Get(cfg, "rng0"); !rng.empty()) {
    auto parsed = ParsePropertyString(RngFormat(), rng);
    if (!parsed || !parsed->count("source")) return Fail(FieldError("rng0", "invalid rng0 '" + rng + "'"));
    a.insert(a.end(), {"-object", "rng-random,filename=" + parsed->at("source") + ",id=rng0"});
    std::string dev = "virtio-rng-pci,rng=rng0,id=rng0dev";
    if (parsed->count("max_bytes")) dev += ",max-bytes=" + parsed->at("max_bytes");
    if (parsed->count("period")) dev += ",period=" + parsed->at("period");
    a.insert(a.end(), {"-device", dev});
  }

  // Memory balloon (PVE adds one unless balloon=0).
  if (Get(cfg, "balloon", "1") != "0") a.insert(a.end(), {"-device", "virtio-balloon-pci,id=balloon0"});

  // Disks.
  std::map<std::string, int> boot = BootIndexes(cfg);
  std::string scsihw = Get(cfg, "scsihw", "lsi");
  bool have_scsi = false, have_sata = false;
  for (const auto& [k, v] : cfg) {
    auto dk = DriveKey::Parse(k);
    if (!dk) continue;
    if (dk->bus == DriveBus::kScsi) have_scsi = true;
    if (dk->bus == DriveBus::kSata) have_sata = true;
  }
  if (have_scsi && scsihw != "virtio-scsi-single") {
    std::string ctrl = scsihw == "virtio-scsi-pci" ? "virtio-scsi-pci" : scsihw == "megasas" ? "megasas"
                     : scsihw == "pvscsi" ? "pvscsi" : scsihw == "lsi53c810" ? "lsi53c810" : "lsi53c895a";
    a.insert(a.end(), {"-device", ctrl + ",id=scsihw0"});
  }
  if (have_sata) a.insert(a.end(), {"-device", "ahci,id=ahci0"});
  for (const auto& [k, v] : cfg) {
    auto dk = DriveKey::Parse(k);
    if (!dk || dk->bus == DriveBus::kUnused || dk->bus == DriveBus::kEfidisk || dk->bus == DriveBus::kTpmstate) continue;
    HEARTH_ASSIGN_OR_RETURN(Drive d, ParseDrive(dk->bus, v).map_error([&key = k](Error e) { return FieldError(key, e.message); }));
    const DriveBinding* bind = nullptr;
    if (auto it = L.drives.find(k); it != L.drives.end()) bind = &it->second;
    if (!bind && d.file != "none")
      return Fail(FieldError(k, "volume '" + d.file + "' is not available"));
    std::string bus, extra;
    DeviceKind kind = DeviceKind::kIde;
    switch (dk->bus) {
      case DriveBus::kIde:
        bus = q35 ? "ide." + std::to_string(dk->index) : "ide." + std::to_string(dk->index / 2);
        if (!q35) extra = ",unit=" + std::to_string(dk->index % 2);
        break;
      case DriveBus::kSata:
        bus = "ahci0." + std::to_string(dk->index);
        break;
      case DriveBus::kScsi:
        kind = DeviceKind::kScsi;
        if (scsihw == "virtio-scsi-single") {
          std::string ctrl = "virtioscsi" + std::to_string(dk->index);
          std::string cdev = "virtio-scsi-pci,id=" + ctrl;
          if (d.opts.count("iothread") && d.opts.at("iothread") == "1") {
            a.insert(a.end(), {"-object", "iothread,id=iothread-" + ctrl});
            cdev += ",iothread=iothread-" + ctrl;
          }
          a.insert(a.end(), {"-device", cdev});
          bus = ctrl + ".0";
          extra = ",channel=0,scsi-id=0,lun=" + std::to_string(dk->index);
        } else {
          bus = "scsihw0.0";
          extra = ",scsi-id=" + std::to_string(dk->index);
        }
        break;
      case DriveBus::kVirtio:
        kind = DeviceKind::kVirtioBlk;
        if (d.opts.count("iothread") && d.opts.at("iothread") == "1") {
          a.insert(a.end(), {"-object", "iothread,id=iothread-" + k});
          extra = ",iothread=iothread-" + k;
        }
        break;
      default:
        break;
    }
    if (kind == DeviceKind::kVirtioBlk && d.IsCdrom()) return Fail(FieldError(k, "virtio drives cannot be cdroms"));
    AddDrive(a, k, d, bind, bus, extra, boot, kind);
  }

  // NICs.
  for (const auto& [k, v] : cfg) {
    if (!StartsWith(k, "net")) continue;
    auto idx = ParseInt(k.substr(3));
    if (!idx) continue;
    HEARTH_ASSIGN_OR_RETURN(NetDev nic, ParseNetDev(v).map_error([&key = k](Error e) { return FieldError(key, e.message); }));
    if (nic.macaddr.empty()) return Fail(FieldError(k, "NIC has no MAC address"));
    std::string netdev;
    auto tap = L.taps.find(static_cast<int>(*idx));
    int64_t queues = nic.opts.count("queues") ? *ParseInt(nic.opts.at("queues")) : 0;
    if (tap != L.taps.end()) {
      netdev = "type=tap,id=" + k + ",ifname=" + tap->second + ",script=no,downscript=no";
      if (kvm && nic.model == "virtio") netdev += ",vhost=on";
      if (queues > 1) netdev += ",queues=" + std::to_string(queues);
    } else {
      netdev = "type=user,id=" + k;
    }
    a.insert(a.end(), {"-netdev", netdev});
    std::string dev = kNicDevices.at(nic.model) + ",mac=" + nic.macaddr + ",netdev=" + k + ",id=" + k;
    if (nic.model == "virtio" && nic.opts.count("mtu") && nic.opts.at("mtu") != "1")
      dev += ",host_mtu=" + nic.opts.at("mtu");
    if (nic.model == "virtio" && queues > 1 && tap != L.taps.end())
      dev += ",mq=on,vectors=" + std::to_string(2 * queues + 2);
    if (auto it = boot.find(k); it != boot.end()) dev += ",bootindex=" + std::to_string(it->second);
    a.insert(a.end(), {"-device", dev});
  }

  if (auto extra = Get(cfg, "args"); !extra.empty())
    for (const auto& tok : SplitAny(extra, " \t")) a.push_back(tok);

  if (!host.runas.empty()) a.insert(a.end(), {"-runas", host.runas});
  if (host.sandbox) {
    // QEMU installs its seccomp filter before it drops to -runas, so set*id must stay allowed
    // for that drop; once it runs unprivileged it cannot regain root, and spawn=deny stops it
    // from executing anything (setuid binaries included).
    std::string elevate = host.runas.empty() ? "deny" : "allow";
    a.insert(a.end(), {"-sandbox", "on,obsolete=deny,elevateprivileges=" + elevate + ",spawn=deny,resourcecontrol=deny"});
  }
  return a;
}

}  // namespace hearth

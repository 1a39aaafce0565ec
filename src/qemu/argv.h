// Config -> QEMU command line, as a pure function. Host facts (accelerator, paths, firmware)
// are inputs, never globals, so the same config always gives the same argv and golden files
// (tests/golden/qemu/*.conf -> *.argv) pin it down.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/result.h"
#include "qemu/blockdev.h"

namespace hearth {

struct QemuHostInfo {
  std::string binary = "qemu-system-x86_64";
  bool kvm = false;          // use KVM; otherwise TCG
  std::string run_dir;       // sockets, pid files, serial logs
  std::string runas;         // drop privileges to this user ("" = do not)
  bool sandbox = true;       // seccomp sandbox
  std::string ovmf_dir;      // where OVMF_CODE*.fd live ("" if OVMF is not installed)
};

struct QemuLaunch {
  int vmid = 0;
  std::map<std::string, std::string> config;   // applied config values
  std::map<std::string, DriveBinding> drives;  // by drive key, for every drive with a volume
  std::map<int, std::string> taps;             // NIC index -> tap name; absent = user-mode networking
  // Rollback to a snapshot with RAM: QEMU starts paused (-S) and waits for the saved state
  // (-incoming defer, then QemuSupervisor::LoadState), as the machine type that saved it
  // (`force_machine`, Proxmox's forcemachine from the snapshot's runningmachine).
  bool incoming = false;
  std::string force_machine;
  // Live restore: QEMU starts paused (-S) so the stream jobs exist before the guest reads,
  // and stays up when the guest powers off (-no-shutdown) so they can finish.
  bool paused = false;
  bool no_shutdown = false;
};

struct RuntimePaths {
  // qmp: the monitor for commands (one short connection each); qmp_event: the second monitor,
  // held open by QmpEventHub for events.
  std::string qmp, qmp_event, pid, qga, log;
  std::string Serial(int n) const;
  std::string SerialLog(int n) const;
  std::string dir;
  int vmid = 0;
};
RuntimePaths RuntimePathsFor(const std::string& run_dir, int vmid);

// Errors name the config key that cannot be honoured (unsupported devices, cpu host on TCG
// is mapped to "max" instead and reported through `warnings`).
Result<std::vector<std::string>> BuildQemuArgv(const QemuLaunch& launch, const QemuHostInfo& host,
                                               std::vector<std::string>* warnings = nullptr);

// The OVMF files for an efidisk's `efitype` ("2m" or "4m") and pre-enrolled keys.
std::string OvmfCodeFile(const std::string& efitype);
std::string OvmfVarsFile(const std::string& efitype, bool pre_enrolled_keys);

// QEMU option values escape ',' by doubling it.
std::string EscapeQemuOpt(const std::string& value);

}  // namespace hearth

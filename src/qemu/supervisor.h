// QemuSupervisor: starts, finds, talks to and stops VM processes.
//
// Each VM is its own QEMU, started with -daemonize so it is not our child: the daemon can
// restart, crash or upgrade without touching it. A VM's identity is its pid file plus a check
// that /proc/<pid>/cmdline really is this VM's QEMU (pid reuse), so after a restart the
// daemon re-adopts running VMs by looking, not by remembering.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "qemu/argv.h"
#include "qemu/qmp_types.h"
#include "sys/host_stats.h"
#include "sys/process.h"

namespace hearth {

class QemuSupervisor {
 public:
  QemuSupervisor(ProcessRunner& runner, const HostStats& host, std::string run_dir)
      : runner_(runner), host_(host), run_dir_(std::move(run_dir)) {}

  // Runs `argv` (which daemonizes) and returns the VM's pid once QEMU finished initialising.
  // QEMU's own error text (bad option, missing file, tap busy) comes back in the Error.
  Result<int> Launch(int vmid, const std::vector<std::string>& argv, std::chrono::seconds timeout);
  std::optional<int> Pid(int vmid) const;

  // QMP commands, one connection each (QEMU's words in the errors). `timeout` bounds the
  // connect and the reply.
  // query-status: "running", "paused", "suspended", ... (Unavailable if QEMU gave none).
  Result<std::string> QueryRunState(int vmid, std::chrono::milliseconds timeout = std::chrono::seconds(2));
  Result<BlockIoTotals> QueryBlockStats(int vmid, std::chrono::milliseconds timeout = std::chrono::seconds(2));
  // send-key; each key a QEMU qcode ("ctrl", "alt", "delete") or a scancode ("0x1d").
  Status SendKey(int vmid, const std::vector<std::string>& keys);
  // set_link on the NIC device `id` (net0, ...).
  Status SetLink(int vmid, const std::string& id, bool up);
  // block_resize of the block node `node_name` to `bytes`.
  Status BlockResize(int vmid, const std::string& node_name, uint64_t bytes);
  // Internal qcow2 snapshots of the block node `device` ("drive-scsi0") of a running VM, as
  // qemu-server's qemu_volume_snapshot: blockdev-snapshot-internal-sync and
  // blockdev-snapshot-delete-internal-sync. Synchronous in QEMU; 60 s bound.
  Status SnapshotInternal(int vmid, const std::string& device, const std::string& name);
  Status DeleteInternalSnapshot(int vmid, const std::string& device, const std::string& name);
  // RAM and device state, for snapshots with RAM. QEMU's migration to a file descriptor
  // (upstream QEMU has no equivalent of Proxmox's savevm-start patch): getfd passes `fd` (an
  // open regular file, written from offset 0), then `migrate` to it, and the MIGRATION event
  // says when it is done (no polling). The VM should be paused first so the state matches
  // its disks; afterwards QEMU is in "postmigrate" and Cont resumes it. A "failed" event
  // returns QEMU's error-desc ("No space left on device", ...). `timeout` bounds the whole save.
  Status SaveState(int vmid, int fd, std::chrono::milliseconds timeout);
  // Loads what SaveState wrote into a VM launched with QemuLaunch::incoming (QEMU waits in
  // "inmigrate"); the VM is paused afterwards (launched with -S) until Cont.
  Status LoadState(int vmid, int fd, std::chrono::milliseconds timeout);
  // The concrete machine type the VM runs ("pc-i440fx-7.2" for "pc"), from qom-get of
  // /machine's type.
  Result<std::string> CurrentMachine(int vmid);
  Status Quit(int vmid, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  Status SystemPowerdown(int vmid);
  Status SystemReset(int vmid);
  Status Stop(int vmid);  // pause the vCPUs
  Status Cont(int vmid);  // resume them
  bool WaitExit(int pid, std::chrono::milliseconds timeout) const;
  void Kill(int pid) const;
  // Removes sockets and the pid file (serial logs stay for post-mortems).
  void CleanupRuntime(int vmid) const;
  std::optional<ProcessStat> Stats(int pid) const { return host_.Process(pid); }
  RuntimePaths Paths(int vmid) const { return RuntimePathsFor(run_dir_, vmid); }
  const std::string& run_dir() const { return run_dir_; }

 private:
  ProcessRunner& runner_;
  const HostStats& host_;
  std::string run_dir_;
};

}  // namespace hearth

// QemuSupervisor: starts, finds, talks to and stops VM processes.
//
// Each VM is its own QEMU, started with -daemonize so it is not our child: the daemon can
// restart, crash or upgrade without touching it. A VM's identity is its pid file plus a check
// that /proc/<pid>/cmdline really is this VM's QEMU (pid reuse), so after a restart the
// daemon re-adopts running VMs by looking, not by remembering.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/result.h"
#include "qemu/argv.h"
#include "qemu/qemu_control.h"
#include "qemu/qmp_events.h"
#include "qemu/qmp_types.h"
#include "sys/host_stats.h"
#include "sys/process.h"

namespace hearth {

class QemuSupervisor final : public QemuControl {
 public:
  QemuSupervisor(ProcessRunner& runner, const HostStats& host, std::string run_dir)
      : runner_(runner), host_(host), run_dir_(std::move(run_dir)), events_(run_dir_) {}

  // Runs `argv` (which daemonizes) and returns the VM's pid once QEMU finished initialising.
  // QEMU's own error text (bad option, missing file, tap busy) comes back in the Error.
  Result<int> Launch(int vmid, const std::vector<std::string>& argv, std::chrono::seconds timeout) override;
  std::optional<int> Pid(int vmid) const override;

  // QMP commands, one connection each (QEMU's words in the errors). `timeout` bounds the
  // connect and the reply.
  // query-status: "running", "paused", "suspended", ... (Unavailable if QEMU gave none).
  Result<std::string> QueryRunState(int vmid, std::chrono::milliseconds timeout = std::chrono::seconds(2)) override;
  Result<BlockIoTotals> QueryBlockStats(int vmid, std::chrono::milliseconds timeout = std::chrono::seconds(2)) override;
  // send-key; each key a QEMU qcode ("ctrl", "alt", "delete") or a scancode ("0x1d").
  Status SendKey(int vmid, const std::vector<std::string>& keys) override;
  // set_link on the NIC device `id` (net0, ...).
  Status SetLink(int vmid, const std::string& id, bool up) override;
  // Any QMP command, on its own connection: QEMU's "return" value or its error text.
  Result<nlohmann::json> Execute(int vmid, const std::string& command, const nlohmann::json& args = nullptr,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10)) override;
  // The VM's events (QmpEventHub::Subscribe): subscribe before the command that causes them.
  Result<std::shared_ptr<QmpEventHub::Subscription>> SubscribeEvents(int vmid, std::set<std::string> names) {
    return events_.Subscribe(vmid, std::move(names));
  }
  // The name of the block node the device `drive_key` ("scsi0") reads and writes now: the
  // "drive-<key>" it started with, or the node a mirror switched it to (move_disk). A drive
  // that is no device of its own (efidisk0: the machine's pflash) keeps "drive-<key>".
  Result<std::string> BlockNodeName(int vmid, const std::string& drive_key) override;
  // Copies the running VM's drive to a new volume while the guest keeps writing, then
  // switches the device to it (qemu-server's qemu_drive_mirror + qemu_drive_mirror_monitor
  // with completion "complete"): blockdev-add `target` (DriveBlockdev JSON), blockdev-mirror
  // sync=full as job "mirror-<drive_key>", BLOCK_JOB_READY, job-complete, BLOCK_JOB_COMPLETED,
  // then blockdev-del of the old node so its volume is closed. Waits on events; progress lines
  // ("mirror-scsi0: transferred 512.0 MiB of 1.0 GiB (50.00%) in 3s") go to `log` about every
  // second. A job of the same id left by an interrupted move is cancelled first. On failure
  // the job is cancelled and the target node removed; the VM keeps its old volume. Gives up
  // when the copy makes no progress for `stall_timeout`.
  Status MirrorDrive(int vmid, const std::string& drive_key, const nlohmann::ordered_json& target,
                     const std::function<void(const std::string&)>& log,
                     std::chrono::milliseconds stall_timeout = std::chrono::minutes(10)) override;
  // blockdev-add of `options` (DriveBlockdev JSON) with the file opened by hearth and passed
  // as a descriptor (add-fd, "/dev/fdset/N"): QEMU runs as an unprivileged user (-runas) and
  // could not open a volume made after it started. A protocol node without a file name (a
  // network protocol) is added as it is.
  Status AddBlockdevByFd(int vmid, const nlohmann::ordered_json& options) override;
  // getfd of a listening unix socket, then nbd-server-start {addr: {type: fd}} on the same
  // connection (the descriptor is the monitor's only while that connection is open).
  Status StartNbdServer(int vmid, const std::string& socket_path) override;
  // block_resize of the block node `node_name` to `bytes`.
  Status BlockResize(int vmid, const std::string& node_name, uint64_t bytes) override;
  // Internal qcow2 snapshots of the block node `device` ("drive-scsi0") of a running VM, as
  // qemu-server's qemu_volume_snapshot: blockdev-snapshot-internal-sync and
  // blockdev-snapshot-delete-internal-sync. Synchronous in QEMU; 60 s bound.
  Status SnapshotInternal(int vmid, const std::string& device, const std::string& name) override;
  Status DeleteInternalSnapshot(int vmid, const std::string& device, const std::string& name) override;
  // RAM and device state, for snapshots with RAM. QEMU's migration to a file descriptor
  // (upstream QEMU has no equivalent of Proxmox's savevm-start patch): getfd passes `fd` (an
  // open regular file, written from offset 0), then `migrate` to it, and the MIGRATION event
  // says when it is done (no polling). The VM should be paused first so the state matches
  // its disks; afterwards QEMU is in "postmigrate" and Cont resumes it. A "failed" event
  // returns QEMU's error-desc ("No space left on device", ...). `timeout` bounds the whole save.
  Status SaveState(int vmid, int fd, std::chrono::milliseconds timeout) override;
  // Loads what SaveState wrote into a VM launched with QemuLaunch::incoming (QEMU waits in
  // "inmigrate"); the VM is paused afterwards (launched with -S) until Cont.
  Status LoadState(int vmid, int fd, std::chrono::milliseconds timeout) override;
  // The concrete machine type the VM runs ("pc-i440fx-7.2" for "pc"), from qom-get of
  // /machine's type.
  Result<std::string> CurrentMachine(int vmid) override;
  Status Quit(int vmid, std::chrono::milliseconds timeout = std::chrono::seconds(5)) override;
  Status SystemPowerdown(int vmid) override;
  Status SystemReset(int vmid) override;
  Status Stop(int vmid) override;  // pause the vCPUs
  Status Cont(int vmid) override;  // resume them
  bool WaitExit(int pid, std::chrono::milliseconds timeout) const override;
  void Kill(int pid) const override;
  // Removes sockets and the pid file (serial logs stay for post-mortems).
  void CleanupRuntime(int vmid) const override;
  std::optional<ProcessStat> Stats(int pid) const override { return host_.Process(pid); }
  const std::string& run_dir() const override { return run_dir_; }
  // Connects to the agent channel (3 s for the handshake: a guest without a running agent
  // should answer fast, clients poll), then runs the command.
  Result<nlohmann::json> AgentExecute(int vmid, const std::string& command, const nlohmann::json& args,
                                      std::chrono::seconds timeout, bool expect_reply) override;

 private:
  ProcessRunner& runner_;
  const HostStats& host_;
  std::string run_dir_;
  QmpEventHub events_;
};

}  // namespace hearth

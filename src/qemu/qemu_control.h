// QemuControl: what the VM layer asks of the QEMU processes of this node. QemuSupervisor is
// the real one (processes, QMP and QGA sockets); qemu/testing/fake_qemu.h is a fake with the
// same observable behaviour for unit tests of lifecycle and snapshot logic without QEMU.
//
// VMs are named by vmid; processes by pid. Errors carry QEMU's own words where it gave any.
// Thread-safety: every method may be called from any thread, for different VMs at once.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "qemu/argv.h"
#include "qemu/qmp_types.h"
#include "sys/host_stats.h"

namespace hearth {

class QemuControl {
 public:
  using Millis = std::chrono::milliseconds;
  virtual ~QemuControl() = default;

  // Runs `argv` (which daemonizes) and returns the VM's pid once QEMU finished initialising.
  // QEMU's own error text (bad option, missing file, tap busy) comes back in the Error.
  virtual Result<int> Launch(int vmid, const std::vector<std::string>& argv, std::chrono::seconds timeout) = 0;
  // The pid of the VM's QEMU while it runs.
  virtual std::optional<int> Pid(int vmid) const = 0;
  // The process's CPU and memory figures while it exists.
  virtual std::optional<ProcessStat> Stats(int pid) const = 0;
  // Waits up to `timeout` for the process to be gone; true if it is.
  virtual bool WaitExit(int pid, Millis timeout) const = 0;
  virtual void Kill(int pid) const = 0;
  // Removes sockets and the pid file (serial logs stay for post-mortems).
  virtual void CleanupRuntime(int vmid) const = 0;
  // Where the VM's sockets, pid file and logs live.
  virtual const std::string& run_dir() const = 0;
  RuntimePaths Paths(int vmid) const { return RuntimePathsFor(run_dir(), vmid); }

  // QMP. query-status: "running", "paused", "postmigrate", ... (Unavailable if none).
  virtual Result<std::string> QueryRunState(int vmid, Millis timeout = std::chrono::seconds(2)) = 0;
  virtual Result<BlockIoTotals> QueryBlockStats(int vmid, Millis timeout = std::chrono::seconds(2)) = 0;
  // Any QMP command: QEMU's "return" value or its error text.
  virtual Result<nlohmann::json> Execute(int vmid, const std::string& command, const nlohmann::json& args = nullptr,
                                         Millis timeout = std::chrono::seconds(10)) = 0;
  // send-key: QEMU qcodes ("ctrl", "alt", "delete") or scancodes ("0x1d").
  virtual Status SendKey(int vmid, const std::vector<std::string>& keys) = 0;
  // set_link on the NIC device `id` (net0, ...).
  virtual Status SetLink(int vmid, const std::string& id, bool up) = 0;
  virtual Status Quit(int vmid, Millis timeout = std::chrono::seconds(5)) = 0;
  virtual Status SystemPowerdown(int vmid) = 0;
  virtual Status SystemReset(int vmid) = 0;
  virtual Status Stop(int vmid) = 0;  // pause the vCPUs
  virtual Status Cont(int vmid) = 0;  // resume them
  // The concrete machine type the VM runs ("pc-i440fx-7.2" for "pc").
  virtual Result<std::string> CurrentMachine(int vmid) = 0;

  // Block devices. The node the device `drive_key` ("scsi0") reads and writes now.
  virtual Result<std::string> BlockNodeName(int vmid, const std::string& drive_key) = 0;
  virtual Status BlockResize(int vmid, const std::string& node_name, uint64_t bytes) = 0;
  // Internal qcow2 snapshots of a block node, taken by QEMU (the VM keeps the image open).
  virtual Status SnapshotInternal(int vmid, const std::string& node_name, const std::string& name) = 0;
  virtual Status DeleteInternalSnapshot(int vmid, const std::string& node_name, const std::string& name) = 0;
  // Copies the running drive to `target` (DriveBlockdev JSON) and switches the device to it;
  // QemuSupervisor::MirrorDrive says how.
  virtual Status MirrorDrive(int vmid, const std::string& drive_key, const nlohmann::ordered_json& target,
                             const std::function<void(const std::string&)>& log,
                             Millis stall_timeout = std::chrono::minutes(10)) = 0;

  // blockdev-add of `options` (DriveBlockdev JSON) with the file opened by hearth and passed
  // as a descriptor (QemuSupervisor::AddBlockdevByFd).
  virtual Status AddBlockdevByFd(int vmid, const nlohmann::ordered_json& options) = 0;
  // Starts the VM's NBD server on a unix socket hearth makes at `socket_path` (mode 0600,
  // root's) and passes to QEMU, so QEMU never creates files as its -runas user. One server
  // per VM; kFailedPrecondition if one runs already.
  virtual Status StartNbdServer(int vmid, const std::string& socket_path) = 0;

  // RAM and device state into / out of `fd` (QemuSupervisor::SaveState, LoadState): the VM is
  // "postmigrate" after a save, "paused" after a load into a VM launched to receive it.
  virtual Status SaveState(int vmid, int fd, Millis timeout) = 0;
  virtual Status LoadState(int vmid, int fd, Millis timeout) = 0;

  // A guest agent command through the VM's agent channel: the agent's "return" value (null
  // when `expect_reply` is false), or an error when no agent answers.
  virtual Result<nlohmann::json> AgentExecute(int vmid, const std::string& command, const nlohmann::json& args,
                                              std::chrono::seconds timeout, bool expect_reply) = 0;
};

}  // namespace hearth

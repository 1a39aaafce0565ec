// FakeQemu: a QemuControl without QEMU, for unit tests of the VM layer (lifecycle, snapshots,
// RAM state) that run in milliseconds. It keeps what a real QEMU would: one "process" per VM
// with a QMP run state, the argv it was launched with, and the block nodes of its -blockdev
// arguments. Internal qcow2 snapshots are made on the image files with `qemu-img snapshot`
// (what QEMU itself writes), so a storage sees them afterwards exactly as after a real QEMU.
// RAM state is a text line naming the VM and a counter, so a test can check that a rollback
// loaded the very state a snapshot saved.
//
// Every call is recorded ("stop 100", "save-state 100", "snapshot-internal 100 drive-scsi0
// pre") for tests of the order of steps; faults are injected per command.
// Thread-safety: every method is safe from any thread (one mutex).
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "qemu/qemu_control.h"
#include "sys/process.h"

namespace hearth {

class FakeQemu final : public QemuControl {
 public:
  // `runner` runs qemu-img for internal snapshots; `run_dir` is where paths point (nothing
  // is created there).
  FakeQemu(ProcessRunner& runner, std::string run_dir) : runner_(runner), run_dir_(std::move(run_dir)) {}

  // --- Test controls ---
  // The next call of `command` ("launch", "save-state", "snapshot-internal", "quit", ...)
  // fails with `error` (once).
  void FailNext(const std::string& command, Error error);
  // Whether the guest reacts to ACPI power button presses (system_powerdown) by powering off.
  void SetGuestObeysAcpi(bool obeys);
  // Whether a guest agent answers (guest-ping, guest-fsfreeze-*, guest-shutdown).
  void SetAgentRunning(bool running);
  // The VM's process dies as if killed from outside (the poller should notice).
  void Crash(int vmid);
  std::vector<std::string> Calls() const;
  void ClearCalls();
  // What the last launch of `vmid` got; empty if never launched.
  std::vector<std::string> LastArgv(int vmid) const;
  // The state text the last LoadState read for `vmid`.
  std::string LoadedState(int vmid) const;
  // The state text SaveState writes for `vmid` next.
  std::string NextSavedState(int vmid) const;

  // --- QemuControl ---
  Result<int> Launch(int vmid, const std::vector<std::string>& argv, std::chrono::seconds timeout) override;
  std::optional<int> Pid(int vmid) const override;
  std::optional<ProcessStat> Stats(int pid) const override;
  bool WaitExit(int pid, Millis timeout) const override;
  void Kill(int pid) const override;
  void CleanupRuntime(int vmid) const override;
  const std::string& run_dir() const override { return run_dir_; }
  Result<std::string> QueryRunState(int vmid, Millis timeout) override;
  Result<BlockIoTotals> QueryBlockStats(int vmid, Millis timeout) override;
  Result<nlohmann::json> Execute(int vmid, const std::string& command, const nlohmann::json& args,
                                 Millis timeout) override;
  Status SendKey(int vmid, const std::vector<std::string>& keys) override;
  Status SetLink(int vmid, const std::string& id, bool up) override;
  Status Quit(int vmid, Millis timeout) override;
  Status SystemPowerdown(int vmid) override;
  Status SystemReset(int vmid) override;
  Status Stop(int vmid) override;
  Status Cont(int vmid) override;
  Result<std::string> CurrentMachine(int vmid) override;
  Result<std::string> BlockNodeName(int vmid, const std::string& drive_key) override;
  Status BlockResize(int vmid, const std::string& node_name, uint64_t bytes) override;
  Status SnapshotInternal(int vmid, const std::string& node_name, const std::string& name) override;
  Status DeleteInternalSnapshot(int vmid, const std::string& node_name, const std::string& name) override;
  Status MirrorDrive(int vmid, const std::string& drive_key, const nlohmann::ordered_json& target,
                     const std::function<void(const std::string&)>& log, Millis stall_timeout) override;
  // Not modelled: the VM layer falls back as on a QEMU without these (kNotImplemented).
  Status AddBlockdevByFd(int vmid, const nlohmann::ordered_json& options) override;
  Status StartNbdServer(int vmid, const std::string& socket_path) override;
  Status SaveState(int vmid, int fd, Millis timeout) override;
  Status LoadState(int vmid, int fd, Millis timeout) override;
  Result<nlohmann::json> AgentExecute(int vmid, const std::string& command, const nlohmann::json& args,
                                      std::chrono::seconds timeout, bool expect_reply) override;

 private:
  struct Process {
    int pid = 0;
    std::string runstate;
    bool alive = true;
    std::map<std::string, std::string> nodes;  // block node name -> image file
  };
  // Records the call; the injected error of `command`, if any (caller holds mu_).
  Status Enter(const std::string& command, const std::string& detail);
  // `qemu-img snapshot <op> <name>` on the image of the node, as QEMU would write it.
  Status QemuImgSnapshot(int vmid, const std::string& node_name, const std::string& name, const char* op,
                         const std::string& command);
  // The running process of `vmid`, or QEMU's "not running" error (caller holds mu_).
  Result<Process*> Running(int vmid);

  ProcessRunner& runner_;
  std::string run_dir_;
  mutable std::mutex mu_;
  mutable std::map<int, Process> vms_;  // by vmid; dead ones stay until relaunched (Kill is const)
  std::map<int, int> pid_to_vmid_;
  std::map<int, std::vector<std::string>> argv_;
  std::map<int, std::string> loaded_;
  std::map<int, int> saves_;
  std::map<std::string, Error> faults_;
  mutable std::vector<std::string> calls_;
  int next_pid_ = 4000000;  // above Linux's pid_max: never a real process
  bool obeys_acpi_ = true, agent_ = false;
};

}  // namespace hearth

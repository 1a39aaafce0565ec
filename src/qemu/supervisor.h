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

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "qemu/argv.h"
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
  Result<nlohmann::json> Qmp(int vmid, const std::string& command, const nlohmann::json& args = nullptr,
                             std::chrono::milliseconds timeout = std::chrono::seconds(10));
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

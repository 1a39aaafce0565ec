#include "qemu/supervisor.h"

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "core/strings.h"
#include "qemu/qmp_client.h"
#include "sys/files.h"

namespace hearth {

Result<int> QemuSupervisor::Launch(int vmid, const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  RuntimePaths paths = Paths(vmid);
  ::unlink(paths.pid.c_str());
  ProcessOptions opt;
  opt.timeout = timeout;
  HEARTH_ASSIGN_OR_RETURN(ProcessResult r, runner_.Run(argv, opt));
  if (r.timed_out) return Fail(Unavailable("QEMU did not finish starting within " + std::to_string(timeout.count()) + " s"));
  if (r.exit_code != 0) {
    std::string err(Trim(r.err));
    return Fail(Internal("start failed: QEMU exited with code " + std::to_string(r.exit_code) +
                         (err.empty() ? "" : ": " + err)));
  }
  auto pid = Pid(vmid);
  if (!pid) return Fail(Internal("start failed: QEMU reported success but is not running (see its log)"));
  return *pid;
}

std::optional<int> QemuSupervisor::Pid(int vmid) const {
  RuntimePaths paths = Paths(vmid);
  auto text = ReadFile(paths.pid);
  if (!text) return std::nullopt;
  auto pid = ParseInt(Trim(*text));
  if (!pid || *pid <= 1) return std::nullopt;
  auto cmdline = ReadFile("/proc/" + std::to_string(*pid) + "/cmdline");
  if (!cmdline) return std::nullopt;
  // Guard against pid reuse: the process must be the QEMU with this VM's monitor socket.
  if (cmdline->find("path=" + EscapeQemuOpt(paths.qmp) + ",") == std::string::npos) return std::nullopt;
  // A zombie (exited, not yet reaped by init) is not running.
  auto stat = ReadFile("/proc/" + std::to_string(*pid) + "/stat");
  if (stat) {
    size_t close_paren = stat->rfind(')');
    if (close_paren != std::string::npos && close_paren + 2 < stat->size() && (*stat)[close_paren + 2] == 'Z')
      return std::nullopt;
  }
  return static_cast<int>(*pid);
}

Result<nlohmann::json> QemuSupervisor::Qmp(int vmid, const std::string& command, const nlohmann::json& args,
                                           std::chrono::milliseconds timeout) {
  HEARTH_ASSIGN_OR_RETURN(QmpClient c, QmpClient::Connect(Paths(vmid).qmp, timeout));
  return c.Execute(command, args, timeout);
}

bool QemuSupervisor::WaitExit(int pid, std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    bool alive = kill(pid, 0) == 0;
    if (alive) {
      // Zombies count as gone.
      auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
      if (stat) {
        size_t p = stat->rfind(')');
        if (p != std::string::npos && p + 2 < stat->size() && (*stat)[p + 2] == 'Z') alive = false;
      } else {
        alive = false;
      }
    }
    if (!alive) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void QemuSupervisor::Kill(int pid) const { kill(pid, SIGKILL); }

void QemuSupervisor::CleanupRuntime(int vmid) const {
  RuntimePaths p = Paths(vmid);
  for (const auto& f : {p.qmp, p.pid, p.qga}) ::unlink(f.c_str());
  for (int n = 0; n <= 3; ++n) ::unlink(p.Serial(n).c_str());
}

std::optional<ProcStats> QemuSupervisor::Stats(int pid) const {
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return std::nullopt;
  size_t p = stat->rfind(')');
  if (p == std::string::npos) return std::nullopt;
  std::istringstream in(stat->substr(p + 2));
  std::vector<std::string> f;
  std::string tok;
  while (in >> tok) f.push_back(tok);
  // Fields after the command: state(0) ... utime(11) stime(12) ... starttime(19) vsize(20) rss(21)
  if (f.size() < 22) return std::nullopt;
  ProcStats s;
  s.cpu_ticks = std::stoull(f[11]) + std::stoull(f[12]);
  s.start_ticks = std::stoull(f[19]);
  s.rss_bytes = std::stoull(f[21]) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return s;
}

}  // namespace hearth

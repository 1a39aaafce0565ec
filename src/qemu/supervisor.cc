#include "qemu/supervisor.h"

#include <signal.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/strings.h"
#include "qemu/qga_client.h"
#include "qemu/qmp_client.h"
#include "qemu/replies.h"
#include "sys/files.h"

namespace hearth {

namespace {

Result<nlohmann::json> Qmp(const std::string& socket, const std::string& command, const nlohmann::json& args = nullptr,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  HEARTH_ASSIGN_OR_RETURN(QmpClient c, QmpClient::Connect(socket, timeout));
  return c.Execute(command, args, timeout);
}

Status Done(Result<nlohmann::json> r) {
  if (!r) return Fail(r.error());
  return Ok();
}

}  // namespace

Result<int> QemuSupervisor::Launch(int vmid, const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  RuntimePaths paths = Paths(vmid);
  ::unlink(paths.pid.c_str());
  ::unlink(paths.qmp.c_str());
  ::unlink(paths.qmp_event.c_str());
  // A fresh log per start: QEMU's own messages, shown when a start fails.
  ::unlink(paths.log.c_str());
  HEARTH_ASSIGN_OR_RETURN(int pid, runner_.SpawnDetached(argv, paths.log));
  // Ready means QEMU finished initialising: its monitor answers.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last_error;
  auto pause = std::chrono::milliseconds(2);  // QEMU is usually ready in tens of ms
  while (std::chrono::steady_clock::now() < deadline) {
    if (WaitExit(pid, std::chrono::milliseconds(0))) {
      std::string log(Trim(ReadFile(paths.log).value_or("")));
      if (log.size() > 2000) log = "..." + log.substr(log.size() - 2000);
      return Fail(Internal("start failed: QEMU exited" + (log.empty() ? std::string() : ": " + log)));
    }
    auto status = Qmp(paths.qmp, "query-status", nullptr, std::chrono::seconds(2));
    if (status) return pid;
    last_error = status.error().message;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  Kill(pid);
  return Fail(Unavailable("start failed: QEMU did not become ready within " + std::to_string(timeout.count()) +
                          " s (" + last_error + ")"));
}

std::optional<int> QemuSupervisor::Pid(int vmid) const {
  RuntimePaths paths = Paths(vmid);
  auto text = ReadFile(paths.pid);
  if (!text) return std::nullopt;
  auto pid = ParseInt(Trim(*text));
  if (!pid || *pid <= 1) return std::nullopt;
  auto cmdline = host_.CommandLine(static_cast<int>(*pid));
  if (!cmdline) return std::nullopt;
  // Guard against pid reuse: the process must be the QEMU with this VM's monitor socket.
  if (cmdline->find("path=" + EscapeQemuOpt(paths.qmp) + ",") == std::string::npos) return std::nullopt;
  // A zombie (exited, not yet reaped by init) is not running.
  if (auto stat = host_.Process(static_cast<int>(*pid)); stat && stat->state == 'Z') return std::nullopt;
  return static_cast<int>(*pid);
}

Result<std::string> QemuSupervisor::QueryRunState(int vmid, std::chrono::milliseconds timeout) {
  HEARTH_ASSIGN_OR_RETURN(nlohmann::json ret, Qmp(Paths(vmid).qmp, "query-status", nullptr, timeout));
  std::string state = QmpRunState(ret);
  if (state.empty()) return Fail(Unavailable("query-status: QEMU's reply has no run state"));
  return state;
}

Result<BlockIoTotals> QemuSupervisor::QueryBlockStats(int vmid, std::chrono::milliseconds timeout) {
  HEARTH_ASSIGN_OR_RETURN(nlohmann::json ret, Qmp(Paths(vmid).qmp, "query-blockstats", nullptr, timeout));
  auto totals = SumBlockStats(ret);
  if (!totals) return Fail(Unavailable("query-blockstats: QEMU's reply is not a list of devices"));
  return *totals;
}

Status QemuSupervisor::SendKey(int vmid, const std::vector<std::string>& keys) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& k : keys) {
    if (StartsWith(k, "0x")) {
      unsigned code = 0;
      auto [end, ec] = std::from_chars(k.data() + 2, k.data() + k.size(), code, 16);
      if (ec != std::errc() || end != k.data() + k.size() || k.size() == 2 || code > 0xffff)
        return Fail(InvalidArgument("invalid scancode '" + k + "'"));
      list.push_back({{"type", "number"}, {"data", code}});
    } else {
      list.push_back({{"type", "qcode"}, {"data", k}});
    }
  }
  return Done(Qmp(Paths(vmid).qmp, "send-key", {{"keys", list}}, std::chrono::seconds(5)));
}

Status QemuSupervisor::SetLink(int vmid, const std::string& id, bool up) {
  return Done(Qmp(Paths(vmid).qmp, "set_link", {{"name", id}, {"up", up}}));
}

Result<nlohmann::json> QemuSupervisor::Execute(int vmid, const std::string& command, const nlohmann::json& args,
                                               std::chrono::milliseconds timeout) {
  return Qmp(Paths(vmid).qmp, command, args, timeout);
}

Result<std::string> QemuSupervisor::BlockNodeName(int vmid, const std::string& drive_key) {
  HEARTH_ASSIGN_OR_RETURN(nlohmann::json ret, Qmp(Paths(vmid).qmp, "query-block"));
  std::string node = BlockNodeOfDevice(ret, drive_key);
  // Not a device of its own (efidisk0 is the machine's pflash): the name the command line gave.
  return node.empty() ? "drive-" + drive_key : node;
}

Status QemuSupervisor::BlockResize(int vmid, const std::string& node_name, uint64_t bytes) {
  return Done(Qmp(Paths(vmid).qmp, "block_resize", {{"node-name", node_name}, {"size", bytes}}));
}

Status QemuSupervisor::SnapshotInternal(int vmid, const std::string& device, const std::string& name) {
  return Done(Qmp(Paths(vmid).qmp, "blockdev-snapshot-internal-sync", {{"device", device}, {"name", name}},
                  std::chrono::seconds(60)));
}

Status QemuSupervisor::DeleteInternalSnapshot(int vmid, const std::string& device, const std::string& name) {
  return Done(Qmp(Paths(vmid).qmp, "blockdev-snapshot-delete-internal-sync", {{"device", device}, {"name", name}},
                  std::chrono::seconds(60)));
}

namespace {

constexpr char kStateFdName[] = "hearth-vmstate";

// The MIGRATION event that ends a save or a load, then QEMU's reason when it failed.
Status AwaitMigration(QmpClient& c, const char* what, std::chrono::steady_clock::time_point deadline) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto ev = c.WaitEvent("MIGRATION", std::max(left, std::chrono::milliseconds(1)));
    if (!ev) {
      (void)c.Execute("migrate_cancel", nullptr, std::chrono::seconds(5));
      return Fail(Unavailable(std::string(what) + ": " + ev.error().message));
    }
    std::string status = MigrationEventStatus(*ev);
    if (status == "completed") return Ok();
    if (status == "failed" || status == "cancelled") {
      std::string why;
      if (auto q = c.Execute("query-migrate", nullptr, std::chrono::seconds(5)); q) why = MigrationErrorDesc(*q);
      return Fail(Internal(std::string(what) + " - " + (why.empty() ? "migration " + status : why)));
    }
  }
}

}  // namespace

Status QemuSupervisor::SaveState(int vmid, int fd, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  HEARTH_ASSIGN_OR_RETURN(QmpClient c, QmpClient::Connect(Paths(vmid).qmp));
  HEARTH_TRY(c.Execute("migrate-set-capabilities",
                       {{"capabilities", nlohmann::json::array({{{"capability", "events"}, {"state", true}}})}}));
  // QEMU's default bandwidth cap (128 MiB/s) is for networks; a local file takes all it can.
  HEARTH_TRY(c.Execute("migrate-set-parameters", {{"max-bandwidth", int64_t{1} << 40}}));
  HEARTH_TRY(c.ExecuteWithFd("getfd", {{"fdname", kStateFdName}}, fd));
  HEARTH_TRY(c.Execute("migrate", {{"uri", std::string("fd:") + kStateFdName}}));
  return AwaitMigration(c, "unable to save VM state and RAM", deadline);
}

Status QemuSupervisor::LoadState(int vmid, int fd, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  HEARTH_ASSIGN_OR_RETURN(QmpClient c, QmpClient::Connect(Paths(vmid).qmp));
  HEARTH_TRY(c.Execute("migrate-set-capabilities",
                       {{"capabilities", nlohmann::json::array({{{"capability", "events"}, {"state", true}}})}}));
  HEARTH_TRY(c.ExecuteWithFd("getfd", {{"fdname", kStateFdName}}, fd));
  HEARTH_TRY(c.Execute("migrate-incoming", {{"uri", std::string("fd:") + kStateFdName}}));
  return AwaitMigration(c, "unable to load VM state and RAM", deadline);
}

Result<nlohmann::json> QemuSupervisor::AgentExecute(int vmid, const std::string& command, const nlohmann::json& args,
                                                    std::chrono::seconds timeout, bool expect_reply) {
  auto client = QgaClient::Connect(Paths(vmid).qga, std::chrono::seconds(3));
  if (!client) return Fail(Internal(kAgentNotRunning));
  return client->Execute(command, args, timeout, expect_reply);
}

Result<std::string> QemuSupervisor::CurrentMachine(int vmid) {
  HEARTH_ASSIGN_OR_RETURN(nlohmann::json ret,
                          Qmp(Paths(vmid).qmp, "qom-get", {{"path", "/machine"}, {"property", "type"}}));
  std::string name = MachineTypeFromQom(ret);
  if (name.empty()) return Fail(Unavailable("qom-get /machine type: QEMU's reply names no machine type"));
  return name;
}

Status QemuSupervisor::Quit(int vmid, std::chrono::milliseconds timeout) {
  return Done(Qmp(Paths(vmid).qmp, "quit", nullptr, timeout));
}

Status QemuSupervisor::SystemPowerdown(int vmid) { return Done(Qmp(Paths(vmid).qmp, "system_powerdown")); }
Status QemuSupervisor::SystemReset(int vmid) { return Done(Qmp(Paths(vmid).qmp, "system_reset")); }
Status QemuSupervisor::Stop(int vmid) { return Done(Qmp(Paths(vmid).qmp, "stop")); }
Status QemuSupervisor::Cont(int vmid) { return Done(Qmp(Paths(vmid).qmp, "cont")); }

bool QemuSupervisor::WaitExit(int pid, std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    bool alive = kill(pid, 0) == 0;
    if (alive) {
      // Zombies count as gone.
      auto stat = host_.Process(pid);
      alive = stat && stat->state != 'Z';
    }
    if (!alive) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void QemuSupervisor::Kill(int pid) const { kill(pid, SIGKILL); }

void QemuSupervisor::CleanupRuntime(int vmid) const {
  RuntimePaths p = Paths(vmid);
  for (const auto& f : {p.qmp, p.qmp_event, p.pid, p.qga}) ::unlink(f.c_str());
  for (int n = 0; n <= 3; ++n) ::unlink(p.Serial(n).c_str());
}

}  // namespace hearth

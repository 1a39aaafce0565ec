#include "qemu/testing/fake_qemu.h"

#include <unistd.h>

#include <algorithm>
#include <thread>

namespace hearth {
namespace {

// The key=value pairs of one -blockdev argument (",," is a literal comma).
std::map<std::string, std::string> BlockdevOptions(const std::string& arg) {
  std::map<std::string, std::string> out;
  std::string item;
  auto flush = [&] {
    auto eq = item.find('=');
    if (eq != std::string::npos) out[item.substr(0, eq)] = item.substr(eq + 1);
    item.clear();
  };
  for (size_t i = 0; i < arg.size(); ++i) {
    if (arg[i] == ',' && i + 1 < arg.size() && arg[i + 1] == ',') {
      item += ',';
      ++i;
    } else if (arg[i] == ',') {
      flush();
    } else {
      item += arg[i];
    }
  }
  flush();
  return out;
}

Error NotRunning(int vmid) { return Unavailable("VM " + std::to_string(vmid) + " qmp command failed - not running"); }

}  // namespace

void FakeQemu::FailNext(const std::string& command, Error error) {
  std::lock_guard lock(mu_);
  faults_.insert_or_assign(command, std::move(error));
}

void FakeQemu::SetGuestObeysAcpi(bool obeys) {
  std::lock_guard lock(mu_);
  obeys_acpi_ = obeys;
}

void FakeQemu::SetAgentRunning(bool running) {
  std::lock_guard lock(mu_);
  agent_ = running;
}

void FakeQemu::Crash(int vmid) {
  std::lock_guard lock(mu_);
  if (auto it = vms_.find(vmid); it != vms_.end()) it->second.alive = false;
}

std::vector<std::string> FakeQemu::Calls() const {
  std::lock_guard lock(mu_);
  return calls_;
}

void FakeQemu::ClearCalls() {
  std::lock_guard lock(mu_);
  calls_.clear();
}

std::vector<std::string> FakeQemu::LastArgv(int vmid) const {
  std::lock_guard lock(mu_);
  auto it = argv_.find(vmid);
  return it == argv_.end() ? std::vector<std::string>{} : it->second;
}

std::string FakeQemu::LoadedState(int vmid) const {
  std::lock_guard lock(mu_);
  auto it = loaded_.find(vmid);
  return it == loaded_.end() ? "" : it->second;
}

std::string FakeQemu::NextSavedState(int vmid) const {
  std::lock_guard lock(mu_);
  auto it = saves_.find(vmid);
  return "fake vmstate of VM " + std::to_string(vmid) + ", save " + std::to_string(it == saves_.end() ? 1 : it->second + 1);
}

Status FakeQemu::Enter(const std::string& command, const std::string& detail) {
  calls_.push_back(detail.empty() ? command : command + " " + detail);
  auto it = faults_.find(command);
  if (it == faults_.end()) return Ok();
  Error e = it->second;
  faults_.erase(it);
  return Fail(std::move(e));
}

Result<FakeQemu::Process*> FakeQemu::Running(int vmid) {
  auto it = vms_.find(vmid);
  if (it == vms_.end() || !it->second.alive) return Fail(NotRunning(vmid));
  return &it->second;
}

Result<int> FakeQemu::Launch(int vmid, const std::vector<std::string>& argv, std::chrono::seconds) {
  std::lock_guard lock(mu_);
  HEARTH_TRY(Enter("launch", std::to_string(vmid)));
  if (auto it = vms_.find(vmid); it != vms_.end() && it->second.alive)
    return Fail(Internal("VM " + std::to_string(vmid) + " is already running"));
  Process p;
  p.pid = next_pid_++;
  bool incoming = std::find(argv.begin(), argv.end(), "-incoming") != argv.end();
  bool frozen = std::find(argv.begin(), argv.end(), "-S") != argv.end();
  p.runstate = incoming ? "inmigrate" : frozen ? "prelaunch" : "running";
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] != "-blockdev") continue;
    auto o = BlockdevOptions(argv[i + 1]);
    if (o.count("node-name") && o.count("file.filename")) p.nodes[o["node-name"]] = o["file.filename"];
  }
  argv_[vmid] = argv;
  pid_to_vmid_[p.pid] = vmid;
  vms_[vmid] = p;
  return p.pid;
}

std::optional<int> FakeQemu::Pid(int vmid) const {
  std::lock_guard lock(mu_);
  auto it = vms_.find(vmid);
  if (it == vms_.end() || !it->second.alive) return std::nullopt;
  return it->second.pid;
}

std::optional<ProcessStat> FakeQemu::Stats(int pid) const {
  std::lock_guard lock(mu_);
  auto v = pid_to_vmid_.find(pid);
  if (v == pid_to_vmid_.end() || !vms_.at(v->second).alive || vms_.at(v->second).pid != pid) return std::nullopt;
  ProcessStat st;
  st.state = 'S';
  st.rss_bytes = 64ull << 20;
  return st;
}

bool FakeQemu::WaitExit(int pid, Millis timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      auto v = pid_to_vmid_.find(pid);
      if (v == pid_to_vmid_.end() || !vms_.at(v->second).alive || vms_.at(v->second).pid != pid) return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void FakeQemu::Kill(int pid) const {
  std::lock_guard lock(mu_);
  calls_.push_back("kill " + std::to_string(pid));
  auto v = pid_to_vmid_.find(pid);
  if (v == pid_to_vmid_.end()) return;
  auto& p = vms_.at(v->second);
  if (p.pid == pid) p.alive = false;
}

void FakeQemu::CleanupRuntime(int vmid) const {
  std::lock_guard lock(mu_);
  calls_.push_back("cleanup " + std::to_string(vmid));
}

Result<std::string> FakeQemu::QueryRunState(int vmid, Millis) {
  std::lock_guard lock(mu_);
  HEARTH_ASSIGN_OR_RETURN(Process * p, Running(vmid));
  return p->runstate;
}

Result<BlockIoTotals> FakeQemu::QueryBlockStats(int vmid, Millis) {
  std::lock_guard lock(mu_);
  HEARTH_TRY(Running(vmid));
  return BlockIoTotals{};
}

Result<nlohmann::json> FakeQemu::Execute(int vmid, const std::string& command, const nlohmann::json&, Millis) {
  std::lock_guard lock(mu_);
  HEARTH_TRY(Running(vmid));
  HEARTH_TRY(Enter(command, std::to_string(vmid)));
  if (command == "query-block-jobs") return nlohmann::json::array();
  return nlohmann::json::object();
}

Status FakeQemu::SendKey(int vmid, const std::vector<std::string>& keys) {
  std::lock_guard lock(mu_);
  HEARTH_TRY(Running(vmid));
  std::string joined;
  for (const auto& k : keys) joined += (joined.empty() ? "" : "-") + k;
  return Enter("send-key", std::to_string(vmid) + " " + joined);
}

Status FakeQemu::SetLink(int vmid, const std::string& id, bool up) {
  std::lock_guard lock(mu_);
  HEARTH_TRY(Running(vmid));
  return Enter("set_link", std::to_string(vmid) + " " + id + (up ? " up" : " down"));
}

Status FakeQemu::Quit(int vmid, Millis) {
  std::lock_guard lock(mu_);
  HEARTH_ASSIGN_OR_RETURN(Process * p, Running(vmid));
  HEARTH_TRY(Enter("quit", std::to_string(vmid)));
  p->alive = false;
  return Ok();
}

Status FakeQemu::SystemPowerdown(int vmid) {
  std::lock_guard lock(mu_);
  HEARTH_ASSIGN_OR_RETURN(Process * p, Running(vmid));
  HEARTH_TRY(Enter("system_powerdown", std::to_string(vmid)));
  // A guest that is paused cannot react; one that obeys powers off.
  if (obeys_acpi_ && p->runstate == "running") p->alive = false;
  return Ok();
}

Status FakeQemu::SystemReset(int vmid) {
  std::lock_guard lock(mu_);
  HEARTH_TRY(Running(vmid));
  return Enter("system_reset", std::to_string(vmid));
}

Status FakeQemu::Stop(int vmid) {
  std::lock_guard lock(mu_);
  HEARTH_ASSIGN_OR_RETURN(Process * p, Running(vmid));
  HEARTH_TRY(Enter("stop", std::to_string(vmid)));
  // QEMU's vm_stop changes only a live run state (a postmigrate VM stays postmigrate).
  if (p->runstate == "running") p->runstate = "paused";
  return Ok();
}

Status FakeQemu::Cont(int vmid) {
  std::lock_guard lock(mu_);
  HEARTH_ASSIGN_OR_RETURN(Process * p, Running(vmid));
  HEARTH_TRY(Enter("cont", std::to_string(vmid)));
  if (p->runstate == "inmigrate") return Fail(Internal("Migration is not finished yet"));
  p->runstate = "running";
  return Ok();
}

Result<std::string> FakeQemu::CurrentMachine(int vmid) {
  std::lock_guard lock(mu_);
  HEARTH_TRY(Running(vmid));
  HEARTH_TRY(Enter("qom-get", std::to_string(vmid) + " /machine.type"));
  return std::string("pc-i440fx-7.2");
}

Result<std::string> FakeQemu::BlockNodeName(int vmid, const std::string& drive_key) {
  std::lock_guard lock(mu_);
  HEARTH_TRY(Running(vmid));
  return "drive-" + drive_key;
}

Status FakeQemu::BlockResize(int vmid, const std::string& node_name, uint64_t bytes) {
  std::lock_guard lock(mu_);
  HEARTH_ASSIGN_OR_RETURN(Process * p, Running(vmid));
  HEARTH_TRY(Enter("block_resize", std::to_string(vmid) + " " + node_name + " " + std::to_string(bytes)));
  auto it = p->nodes.find(node_name);
  if (it == p->nodes.end()) return Fail(Internal("Cannot find device='' nor node-name='" + node_name + "'"));
  auto r = runner_.Run({"qemu-img", "resize", it->second, std::to_string(bytes)}, {});
  if (!r || r->exit_code != 0) return Fail(Internal("block_resize of " + it->second + " failed"));
  return Ok();
}

Status FakeQemu::QemuImgSnapshot(int vmid, const std::string& node_name, const std::string& name, const char* op,
                                 const std::string& command) {
  std::lock_guard lock(mu_);
  HEARTH_ASSIGN_OR_RETURN(Process * p, Running(vmid));
  HEARTH_TRY(Enter(command, std::to_string(vmid) + " " + node_name + " " + name));
  auto it = p->nodes.find(node_name);
  if (it == p->nodes.end()) return Fail(Internal("Cannot find device='' nor node-name='" + node_name + "'"));
  std::vector<std::string> argv = {"qemu-img", "snapshot", op, name, it->second};
  auto r = runner_.Run(argv, {});
  if (!r) return Fail(r.error());
  if (r->exit_code != 0) return Fail(Internal(DescribeFailure(argv, *r)));
  return Ok();
}

Status FakeQemu::SnapshotInternal(int vmid, const std::string& node_name, const std::string& name) {
  return QemuImgSnapshot(vmid, node_name, name, "-c", "snapshot-internal");
}

Status FakeQemu::DeleteInternalSnapshot(int vmid, const std::string& node_name, const std::string& name) {
  return QemuImgSnapshot(vmid, node_name, name, "-d", "snapshot-delete-internal");
}

Status FakeQemu::MirrorDrive(int vmid, const std::string& drive_key, const nlohmann::ordered_json&,
                             const std::function<void(const std::string&)>&, Millis) {
  std::lock_guard lock(mu_);
  HEARTH_TRY(Running(vmid));
  HEARTH_TRY(Enter("blockdev-mirror", std::to_string(vmid) + " " + drive_key));
  return Fail(Internal("the fake QEMU cannot mirror drives (tests/api/test_move_disk.py covers the real one)"));
}

Status FakeQemu::AddBlockdevByFd(int, const nlohmann::ordered_json&) {
  return Fail(MakeError(ErrorCode::kNotImplemented, "blockdev-add is not modelled by FakeQemu"));
}

Status FakeQemu::StartNbdServer(int, const std::string&) {
  return Fail(MakeError(ErrorCode::kNotImplemented, "nbd-server-start is not modelled by FakeQemu"));
}

Status FakeQemu::SaveState(int vmid, int fd, Millis) {
  std::lock_guard lock(mu_);
  HEARTH_ASSIGN_OR_RETURN(Process * p, Running(vmid));
  HEARTH_TRY(Enter("save-state", std::to_string(vmid)));
  int n = ++saves_[vmid];
  std::string state = "fake vmstate of VM " + std::to_string(vmid) + ", save " + std::to_string(n) + "\n";
  if (::write(fd, state.data(), state.size()) != static_cast<ssize_t>(state.size()))
    return Fail(Internal("failed to save the VM state"));
  p->runstate = "postmigrate";  // as QEMU after a completed migration
  return Ok();
}

Status FakeQemu::LoadState(int vmid, int fd, Millis) {
  std::lock_guard lock(mu_);
  HEARTH_ASSIGN_OR_RETURN(Process * p, Running(vmid));
  HEARTH_TRY(Enter("load-state", std::to_string(vmid)));
  if (p->runstate != "inmigrate") return Fail(Internal("The incoming migration has not been requested"));
  char buf[512];
  ssize_t got = ::read(fd, buf, sizeof buf);
  if (got <= 0) return Fail(Internal("load of migration failed: Input/output error"));
  std::string text(buf, static_cast<size_t>(got));
  text = text.substr(0, text.find('\n'));
  loaded_[vmid] = text;
  p->runstate = "paused";
  return Ok();
}

Result<nlohmann::json> FakeQemu::AgentExecute(int vmid, const std::string& command, const nlohmann::json&,
                                              std::chrono::seconds, bool expect_reply) {
  std::lock_guard lock(mu_);
  HEARTH_ASSIGN_OR_RETURN(Process * p, Running(vmid));
  if (!agent_ || p->runstate != "running") return Fail(Internal("QEMU guest agent is not running"));
  HEARTH_TRY(Enter("agent " + command, std::to_string(vmid)));
  if (command == "guest-shutdown") p->alive = false;
  if (!expect_reply) return nlohmann::json(nullptr);
  if (command == "guest-fsfreeze-freeze" || command == "guest-fsfreeze-thaw") return nlohmann::json(1);
  return nlohmann::json::object();
}

}  // namespace hearth

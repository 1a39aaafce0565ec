// VmService's lifecycle and snapshot logic without QEMU: a real SQLite store, task manager and
// dir storage (qcow2 images made by the real qemu-img), with FakeQemu in QEMU's place. What
// QEMU itself does is covered by the API and e2e suites; these check hearth's steps, their
// order and what is left after a fault, in milliseconds.
#include "vms/vm_service.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/strings.h"
#include "core/testing/temp_dir.h"
#include "model/storage_config.h"
#include "qemu/testing/fake_qemu.h"
#include "state/sqlite/sqlite_store.h"
#include "storage/dir/dir_storage.h"
#include "sys/posix/posix_file_system.h"
#include "sys/posix/posix_process.h"
#include "sys/posix/proc_host_stats.h"

namespace hearth {
namespace {

// Taps without a host: records what was asked.
class FakeNet final : public NetBackend {
 public:
  Status CreateTap(const TapSpec& spec) override {
    std::lock_guard lock(mu_);
    taps_.insert(spec.name);
    return Ok();
  }
  Status DeleteTap(const std::string& name) override {
    std::lock_guard lock(mu_);
    taps_.erase(name);
    return Ok();
  }
  Status PlugTap(const TapSpec& spec) override {
    std::lock_guard lock(mu_);
    calls_.push_back("plug " + spec.name + " " + spec.bridge + " tag=" + std::to_string(spec.tag) +
                     " rate=" + std::to_string(static_cast<int>(spec.rate)));
    if (spec.bridge == missing_bridge) return Fail(FailedPrecondition("bridge '" + spec.bridge + "' does not exist"));
    return Ok();
  }
  std::string missing_bridge = "vmbr9";
  Status UnplugTap(const std::string& name) override {
    std::lock_guard lock(mu_);
    calls_.push_back("unplug " + name);
    return Ok();
  }
  Status SetTapRate(const std::string& name, double rate) override {
    std::lock_guard lock(mu_);
    calls_.push_back("rate " + name + " " + std::to_string(static_cast<int>(rate)));
    return Ok();
  }
  Status CheckBridge(const std::string&) override { return Ok(); }
  Result<Counters> TapCounters(const std::string&) override { return Counters{}; }
  std::vector<std::string> Calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  std::set<std::string> Taps() {
    std::lock_guard lock(mu_);
    return taps_;
  }

 private:
  std::mutex mu_;
  std::set<std::string> taps_;
  std::vector<std::string> calls_;
};

class VmServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = SqliteStore::Open(dir_.Sub("state.db"));
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
    std::filesystem::create_directories(dir_.Sub("tasks"));
    std::filesystem::create_directories(dir_.Sub("run"));
    std::filesystem::create_directories(dir_.Sub("local"));
    tasks_ = std::make_unique<TaskManager>(*store_, fs_, clock_, "testnode", dir_.Sub("tasks"), 1);
    auto cfg = MakeStorageConfig("local", "dir", {{"path", dir_.Sub("local")}, {"content", "images,iso"}}, nullptr);
    ASSERT_TRUE(cfg) << cfg.error().message;
    storage_.Put(*cfg, std::make_shared<DirStorage>(*cfg, runner_, DirLayout{}));
    accel_.Set(false, "unit test");
    VmServiceOptions opt;
    opt.node = "testnode";
    opt.host.run_dir = dir_.Sub("run");
    opt.poll_interval = std::chrono::seconds(3600);  // the tests call PollOnce themselves
    vms_ = std::make_unique<VmService>(*store_, *tasks_, storage_, qemu_, net_, runner_, fs_, host_, clock_, accel_, opt,
                                       random_);
    ASSERT_TRUE(vms_->Init());
  }
  void TearDown() override { vms_->StopPoller(); }

  // Runs a task to its end: its exit status ("OK", "WARNINGS: 1", or the error).
  std::string Finish(const Result<std::string>& upid) {
    if (!upid) return "refused: " + upid.error().message;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      auto t = tasks_->Get(*upid);
      if (t && !t->running) return t->record.exitstatus;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return "still running after 60 s";
  }
  std::string Log(const std::string& upid) {
    auto lines = tasks_->ReadLog(upid, 0, 1000);
    return lines ? Join(lines->first, "\n") : "";
  }
  void CreateVm(int vmid, std::map<std::string, std::string> extra = {}) {
    CreateRequest req;
    req.vmid = vmid;
    req.config = {{"name", "vm" + std::to_string(vmid)}, {"memory", "256"}, {"scsi0", "local:1,format=qcow2"}};
    for (auto& [k, v] : extra) req.config[k] = v;
    req.user = "root@pam";
    ASSERT_EQ(Finish(vms_->Create(req)), "OK");
  }
  std::string Status(int vmid) {
    auto st = vms_->CurrentStatus(vmid);
    return st ? st->status + "/" + st->qmpstatus : st.error().message;
  }
  std::string QemuRunState(int vmid) {
    auto s = qemu_.QueryRunState(vmid, std::chrono::seconds(1));
    return s ? *s : "(" + s.error().message + ")";
  }
  // The calls the fake saw that name one of `commands`, in order.
  std::vector<std::string> CallsOf(std::initializer_list<const char*> commands) {
    std::vector<std::string> out;
    for (const auto& c : qemu_.Calls())
      for (const char* want : commands)
        if (StartsWith(c, std::string(want) + " ")) out.push_back(c);
    return out;
  }
  std::string Volume(int vmid, const std::string& key) {
    auto cfg = vms_->FullConfig(vmid);
    return cfg ? DriveVolume(key, cfg->Get(key).value_or("")) : "";
  }
  std::string QcowSnapshots(const std::string& volid) {
    auto path = storage_.PathOf(volid);
    if (!path) return path.error().message;
    auto r = runner_.Run({"qemu-img", "snapshot", "-l", *path}, {});
    return r ? r->out : r.error().message;
  }

  TempDir dir_;
  std::unique_ptr<SqliteStore> store_;
  PosixFileSystem fs_;
  SystemClock clock_;
  PosixProcessRunner runner_;
  ProcHostStats host_;
  SystemRandom random_;
  std::unique_ptr<TaskManager> tasks_;
  StorageManager storage_{"testnode"};
  FakeQemu qemu_{runner_, dir_.Sub("run")};
  FakeNet net_;
  AccelState accel_;
  std::unique_ptr<VmService> vms_;
};

TEST_F(VmServiceTest, StartHandsQemuTheStoragesBlockdevAndStopQuitsIt) {
  CreateVm(100, {{"net0", "virtio=BC:24:11:00:00:01,bridge=vmbr0"}});
  ASSERT_EQ(Finish(vms_->Start(100, "root@pam", 0, false)), "OK");
  EXPECT_EQ(Status(100), "running/running");
  std::string argv = Join(qemu_.LastArgv(100), " ");
  auto path = storage_.PathOf(Volume(100, "scsi0"));
  ASSERT_TRUE(path);
  EXPECT_NE(argv.find("driver=qcow2,node-name=drive-scsi0,file.driver=file,file.filename=" + *path), std::string::npos)
      << argv;
  EXPECT_EQ(net_.Taps(), (std::set<std::string>{"tap100i0"}));
  // Starting twice is refused inside the task, with Proxmox's words.
  EXPECT_EQ(Finish(vms_->Start(100, "root@pam", 0, false)), "VM 100 already running");

  StopRequest stop;
  stop.vmid = 100;
  stop.user = "root@pam";
  ASSERT_EQ(Finish(vms_->Stop(stop)), "OK");
  EXPECT_EQ(Status(100), "stopped/stopped");
  EXPECT_EQ(CallsOf({"quit"}), (std::vector<std::string>{"quit 100"}));
  EXPECT_TRUE(net_.Taps().empty());
  // Stopping a stopped VM does nothing and is no error (Proxmox).
  EXPECT_EQ(Finish(vms_->Stop(stop)), "OK");
}

TEST_F(VmServiceTest, ALaunchErrorLeavesNothingBehind) {
  CreateVm(101, {{"net0", "virtio=BC:24:11:00:00:02,bridge=vmbr0"}});
  qemu_.FailNext("launch", Internal("qemu-system-x86_64: -device virtio-net-pci: tap busy"));
  EXPECT_EQ(Finish(vms_->Start(101, "root@pam", 0, false)), "qemu-system-x86_64: -device virtio-net-pci: tap busy");
  EXPECT_EQ(Status(101), "stopped/stopped");
  EXPECT_TRUE(net_.Taps().empty());
  EXPECT_EQ(Finish(vms_->Start(101, "root@pam", 0, false)), "OK");  // and the next start works
}

TEST_F(VmServiceTest, ShutdownFallsBackToAStopWhenTheGuestIgnoresAcpi) {
  CreateVm(102);
  ASSERT_EQ(Finish(vms_->Start(102, "root@pam", 0, false)), "OK");
  qemu_.SetGuestObeysAcpi(false);
  StopRequest req;
  req.vmid = 102;
  req.user = "root@pam";
  req.timeout = 1;
  auto upid = vms_->Shutdown(req);
  ASSERT_EQ(Finish(upid), "OK");
  EXPECT_EQ(CallsOf({"system_powerdown", "quit"}), (std::vector<std::string>{"system_powerdown 102", "quit 102"}));
  EXPECT_NE(Log(*upid).find("VM still running - terminating now"), std::string::npos) << Log(*upid);
  EXPECT_EQ(Status(102), "stopped/stopped");

  // Without forceStop the timeout is the task's error, and the VM keeps running.
  ASSERT_EQ(Finish(vms_->Start(102, "root@pam", 0, false)), "OK");
  req.force_stop = false;
  EXPECT_EQ(Finish(vms_->Shutdown(req)), "VM quit/powerdown failed - got timeout");
  EXPECT_EQ(Status(102), "running/running");
}

TEST_F(VmServiceTest, AGuestThatObeysShutsDownAndPendingChangesApply) {
  CreateVm(103);
  ASSERT_EQ(Finish(vms_->Start(103, "root@pam", 0, false)), "OK");
  UpdateRequest up;
  up.vmid = 103;
  up.set = {{"memory", "512"}};  // not hot-pluggable: pending until the VM is down
  up.user = "root@pam";
  ASSERT_TRUE(vms_->Update(up, false));
  auto pending = vms_->Config(103, /*current=*/true);
  ASSERT_TRUE(pending);
  EXPECT_EQ(pending->values.at("memory"), "256");
  StopRequest req;
  req.vmid = 103;
  req.user = "root@pam";
  ASSERT_EQ(Finish(vms_->Shutdown(req)), "OK");
  EXPECT_EQ(CallsOf({"system_powerdown", "quit"}), (std::vector<std::string>{"system_powerdown 103"}));
  EXPECT_EQ(vms_->Config(103, true)->values.at("memory"), "512");
}

// qemu-server vmconfig_update_net: a running VM's NIC takes a new rate, VLAN or link state in
// place (committed at once); a new model waits for the next start (pending).
TEST_F(VmServiceTest, NicChangesOfARunningVmApplyInPlaceOrWait) {
  CreateVm(109, {{"net0", "virtio=BC:24:11:00:00:09,bridge=vmbr0"}});
  ASSERT_EQ(Finish(vms_->Start(109, "root@pam", 0, false)), "OK");
  UpdateRequest up;
  up.vmid = 109;
  up.user = "root@pam";
  up.set = {{"net0", "virtio=BC:24:11:00:00:09,bridge=vmbr0,rate=5"}};
  ASSERT_TRUE(vms_->Update(up, false));
  EXPECT_EQ(vms_->Config(109, true)->values.at("net0"), "virtio=BC:24:11:00:00:09,bridge=vmbr0,rate=5");
  up.set = {{"net0", "virtio=BC:24:11:00:00:09,bridge=vmbr1,rate=5,tag=7,link_down=1"}};
  ASSERT_TRUE(vms_->Update(up, false));
  EXPECT_EQ(net_.Calls(), (std::vector<std::string>{"rate tap109i0 5", "unplug tap109i0",
                                                    "plug tap109i0 vmbr1 tag=7 rate=5"}));
  EXPECT_EQ(CallsOf({"set_link"}), (std::vector<std::string>{"set_link 109 net0 down", "set_link 109 net0 down"}));
  auto pending_net0 = [&]() -> std::optional<std::string> {
    auto entries = vms_->Pending(109);
    for (const auto& e : *entries)
      if (e.key == "net0") return e.pending;
    return std::nullopt;
  };
  EXPECT_EQ(vms_->Config(109, true)->values.at("net0"), "virtio=BC:24:11:00:00:09,bridge=vmbr1,rate=5,tag=7,link_down=1");
  EXPECT_EQ(pending_net0(), std::nullopt);

  up.set = {{"net0", "e1000=BC:24:11:00:00:09,bridge=vmbr1"}};
  ASSERT_TRUE(vms_->Update(up, false));
  EXPECT_EQ(vms_->Config(109, true)->values.at("net0"), "virtio=BC:24:11:00:00:09,bridge=vmbr1,rate=5,tag=7,link_down=1");
  EXPECT_EQ(pending_net0(), "e1000=BC:24:11:00:00:09,bridge=vmbr1");
  EXPECT_EQ(net_.Calls().size(), 3u);
}

// A live change that cannot be plugged leaves the NIC where it was (and the change pending).
TEST_F(VmServiceTest, AFailedLiveNicChangePutsTheTapBack) {
  CreateVm(110, {{"net0", "virtio=BC:24:11:00:00:10,bridge=vmbr0,rate=2"}});
  ASSERT_EQ(Finish(vms_->Start(110, "root@pam", 0, false)), "OK");
  UpdateRequest up;
  up.vmid = 110;
  up.user = "root@pam";
  up.set = {{"net0", "virtio=BC:24:11:00:00:10,bridge=vmbr9,rate=2"}};
  ASSERT_TRUE(vms_->Update(up, false));
  EXPECT_EQ(net_.Calls(), (std::vector<std::string>{"unplug tap110i0", "plug tap110i0 vmbr9 tag=0 rate=2",
                                                    "unplug tap110i0", "plug tap110i0 vmbr0 tag=0 rate=2"}));
  EXPECT_EQ(CallsOf({"set_link"}), (std::vector<std::string>{"set_link 110 net0 down", "set_link 110 net0 up"}));
  EXPECT_EQ(vms_->Config(110, true)->values.at("net0"), "virtio=BC:24:11:00:00:10,bridge=vmbr0,rate=2");
  auto entries = vms_->Pending(110);
  bool pending = false;
  for (const auto& e : *entries) pending = pending || (e.key == "net0" && e.pending == "virtio=BC:24:11:00:00:10,bridge=vmbr9,rate=2");
  EXPECT_TRUE(pending);
}

TEST_F(VmServiceTest, ThePollerNoticesAVmThatDied) {
  CreateVm(104, {{"net0", "virtio=BC:24:11:00:00:04,bridge=vmbr0"}});
  ASSERT_EQ(Finish(vms_->Start(104, "root@pam", 0, false)), "OK");
  qemu_.Crash(104);
  vms_->PollOnce();
  EXPECT_EQ(Status(104), "stopped/stopped");
  EXPECT_TRUE(net_.Taps().empty());
}

TEST_F(VmServiceTest, ASnapshotWithRamPausesSavesAndResumesInProxmoxsOrder) {
  CreateVm(105);
  ASSERT_EQ(Finish(vms_->Start(105, "root@pam", 0, false)), "OK");
  qemu_.ClearCalls();
  std::string expected_state = qemu_.NextSavedState(105);
  ASSERT_EQ(Finish(vms_->Snapshot(105, "pre_upgrade", "before the upgrade", /*vmstate=*/true, "root@pam")), "OK");
  EXPECT_EQ(CallsOf({"stop", "snapshot-internal", "save-state", "cont"}),
            (std::vector<std::string>{"stop 105", "snapshot-internal 105 drive-scsi0 pre_upgrade", "save-state 105",
                                      "cont 105"}));
  EXPECT_EQ(QemuRunState(105), "running");
  auto cfg = vms_->FullConfig(105);
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->Lock(), "");
  ASSERT_EQ(cfg->snapshots.count("pre_upgrade"), 1u);
  const auto& snap = cfg->snapshots.at("pre_upgrade");
  EXPECT_EQ(snap.at("vmstate"), "local:105/vm-105-state-pre_upgrade.raw");
  EXPECT_EQ(snap.at("runningmachine"), "pc-i440fx-7.2");
  EXPECT_EQ(snap.at("description"), "before the upgrade");
  EXPECT_EQ(cfg->Get("parent").value_or(""), "pre_upgrade");
  // The state volume holds what QEMU wrote, truncated to whole KiB.
  auto state_path = storage_.PathOf("local:105/vm-105-state-pre_upgrade.raw");
  ASSERT_TRUE(state_path);
  EXPECT_EQ(std::filesystem::file_size(*state_path), 1024u);
  std::ifstream f(*state_path);
  std::string first;
  std::getline(f, first);
  EXPECT_EQ(first, expected_state);
  EXPECT_NE(QcowSnapshots(Volume(105, "scsi0")).find("pre_upgrade"), std::string::npos);

  // Rollback: the running VM is stopped, started again to receive the state, and resumed.
  qemu_.ClearCalls();
  ASSERT_EQ(Finish(vms_->Rollback(105, "pre_upgrade", false, "root@pam")), "OK");
  EXPECT_EQ(CallsOf({"quit", "launch", "load-state", "cont"}),
            (std::vector<std::string>{"quit 105", "launch 105", "load-state 105", "cont 105"}));
  std::string argv = Join(qemu_.LastArgv(105), " ");
  EXPECT_NE(argv.find("-incoming defer"), std::string::npos);
  EXPECT_NE(argv.find("-machine type=pc-i440fx-7.2"), std::string::npos) << argv;
  EXPECT_EQ(qemu_.LoadedState(105), expected_state);
  EXPECT_EQ(Status(105), "running/running");
  EXPECT_EQ(vms_->FullConfig(105)->Lock(), "");
}

TEST_F(VmServiceTest, AFailedRamSaveLeavesNoSnapshotNoStateVolumeAndARunningVm) {
  CreateVm(106);
  ASSERT_EQ(Finish(vms_->Start(106, "root@pam", 0, false)), "OK");
  qemu_.FailNext("save-state", Internal("No space left on device"));
  std::string status = Finish(vms_->Snapshot(106, "full", "", /*vmstate=*/true, "root@pam"));
  EXPECT_EQ(status, "No space left on device");
  auto cfg = vms_->FullConfig(106);
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->Lock(), "");
  EXPECT_EQ(cfg->snapshots.count("full"), 0u);
  EXPECT_FALSE(cfg->Has("parent"));
  EXPECT_FALSE(storage_.InfoOf("local:106/vm-106-state-full.raw"));
  // The disk snapshot QEMU made was deleted again, and the VM runs on.
  EXPECT_EQ(QcowSnapshots(Volume(106, "scsi0")).find("full"), std::string::npos);
  EXPECT_EQ(QemuRunState(106), "running");
  // The name is free for the next try.
  EXPECT_EQ(Finish(vms_->Snapshot(106, "full", "", true, "root@pam")), "OK");
}

TEST_F(VmServiceTest, AnAgentFreezesTheGuestAroundADiskOnlySnapshot) {
  CreateVm(107, {{"agent", "1"}});
  ASSERT_EQ(Finish(vms_->Start(107, "root@pam", 0, false)), "OK");
  qemu_.SetAgentRunning(true);
  qemu_.ClearCalls();
  ASSERT_EQ(Finish(vms_->Snapshot(107, "frozen", "", /*vmstate=*/false, "root@pam")), "OK");
  EXPECT_EQ(CallsOf({"agent guest-fsfreeze-freeze", "stop", "snapshot-internal", "cont", "agent guest-fsfreeze-thaw"}),
            (std::vector<std::string>{"agent guest-fsfreeze-freeze 107", "stop 107",
                                      "snapshot-internal 107 drive-scsi0 frozen", "cont 107",
                                      "agent guest-fsfreeze-thaw 107"}));
  // Without an answering agent the snapshot is still made, with Proxmox's warning.
  qemu_.SetAgentRunning(false);
  auto upid = vms_->Snapshot(107, "unfrozen", "", false, "root@pam");
  EXPECT_EQ(Finish(upid), "WARNINGS: 1");
  EXPECT_NE(Log(*upid).find("skipping guest filesystem freeze - QEMU guest agent is not running"), std::string::npos);
}

TEST_F(VmServiceTest, AVmPausedByItsUserStaysPausedAcrossASnapshot) {
  CreateVm(108);
  ASSERT_EQ(Finish(vms_->Start(108, "root@pam", 0, false)), "OK");
  ASSERT_EQ(Finish(vms_->Suspend(108, "root@pam", false, false)), "OK");
  qemu_.ClearCalls();
  ASSERT_EQ(Finish(vms_->Snapshot(108, "paused", "", /*vmstate=*/false, "root@pam")), "OK");
  EXPECT_TRUE(CallsOf({"stop", "cont"}).empty());  // hearth did not pause it, so it does not resume it
  EXPECT_EQ(QemuRunState(108), "paused");
  // With RAM: QEMU ends in "postmigrate", which is paused to the user and to shutdown.
  ASSERT_EQ(Finish(vms_->Snapshot(108, "paused_ram", "", /*vmstate=*/true, "root@pam")), "OK");
  EXPECT_EQ(QemuRunState(108), "postmigrate");
  EXPECT_EQ(Status(108), "running/paused");
  StopRequest req;
  req.vmid = 108;
  req.user = "root@pam";
  auto upid = vms_->Shutdown(req);
  EXPECT_EQ(Finish(upid), "WARNINGS: 1");
  EXPECT_NE(Log(*upid).find("VM is paused - stop instead of shutdown"), std::string::npos) << Log(*upid);
  EXPECT_EQ(Status(108), "stopped/stopped");
}

}  // namespace
}  // namespace hearth

#include "vms/vm_service.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>

#include "core/strings.h"
#include "core/units.h"
#include "vms/backup_fleece.h"
#include "model/drive.h"
#include "model/netdev.h"
#include "model/vm_schema.h"
#include "qemu/replies.h"
#include "sys/files.h"

namespace hearth {

void AccelState::Set(bool kvm, std::string reason) {
  std::lock_guard lock(mu_);
  kvm_ = kvm;
  reason_ = std::move(reason);
  cv_.notify_all();
}

bool AccelState::WaitKvm() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return kvm_.has_value(); });
  return *kvm_;
}

std::optional<bool> AccelState::Kvm() const {
  std::lock_guard lock(mu_);
  return kvm_;
}

std::string AccelState::Reason() const {
  std::lock_guard lock(mu_);
  return reason_;
}

VmService::VmService(Store& store, TaskManager& tasks, StorageManager& storage, QemuControl& qemu, NetBackend& net,
                     ProcessRunner& runner, FileSystem& fs, const HostStats& host, const Clock& clock,
                     AccelState& accel,
                     VmServiceOptions options, Random& random)
    : store_(store), tasks_(tasks), storage_(storage), qemu_(qemu), net_(net), runner_(runner), fs_(fs), host_(host), clock_(clock),
      accel_(accel),
      options_(std::move(options)), random_(random), states_(storage, qemu), registry_(store, options_.node) {}

VmService::~VmService() { StopPoller(); }

std::string VmService::ConfigNotFound(int vmid) const { return registry_.ConfigNotFound(vmid); }

std::string VmService::UserRunState(const std::string& qemu_state) {
  return qemu_state == "postmigrate" ? "paused" : qemu_state;
}

void VmService::RemoveVmAndVolumes(int vmid) {
  for (const auto& st : storage_.All()) {
    auto vols = st->List(ContentType::kImages, vmid);
    if (!vols) continue;
    for (const auto& v : *vols) (void)storage_.Free(v.volid);
  }
  (void)store_.DeleteVm(vmid);
  registry_.Erase(vmid);
}

Status VmService::Init() {
  HEARTH_ASSIGN_OR_RETURN(auto records, store_.ListVms());
  std::vector<int> interrupted, interrupted_templates, interrupted_snapshots, interrupted_backups, drill_copies,
      live_restores;
  {
    for (const auto& r : records) {
      if (r.node != options_.node) continue;
      auto cfg = ParseConfFile(r.conf);
      if (!cfg) {
        spdlog::error("VM {}: unreadable config, skipped: {}", r.vmid, cfg.error().message);
        continue;
      }
      Entry e;
      e.config = std::move(*cfg);
      e.conf_text = r.conf;
      std::string lock_name = e.config.Lock();
      // A destroy cut short (lock=destroyed) is finished the same way: the VM was going anyway.
      // A live restore keeps 'create' while its VM runs: it goes on (ResumeLiveRestore below).
      auto live = store_.GetMeta(LiveRestoreMetaKey(r.vmid));
      bool live_restore = lock_name == "create" && live && *live && !(*live)->empty();
      if (live_restore) live_restores.push_back(r.vmid);
      else if (lock_name == "create" || lock_name == "clone" || lock_name == "destroyed") interrupted.push_back(r.vmid);
      if (lock_name == "template") interrupted_templates.push_back(r.vmid);
      if (lock_name == "backup") interrupted_backups.push_back(r.vmid);
      if (auto drill = store_.GetMeta(DrillMetaKey(r.vmid)); drill && *drill && **drill == "1") drill_copies.push_back(r.vmid);
      // A replication snapshot pauses the VM without a lock: its paused mark says so.
      auto paused = store_.GetMeta(PausedMetaKey(r.vmid));
      if (lock_name == "snapshot" || lock_name == "snapshot-delete" || lock_name == "rollback" ||
          (paused && *paused && **paused == "1"))
        interrupted_snapshots.push_back(r.vmid);
      registry_.Load(r.vmid, std::move(e));
    }
  }
  // Creates and clones that a crash interrupted: remove the half-made VM and its volumes.
  for (int vmid : interrupted) {
    spdlog::warn("VM {}: removing a create, clone or destroy that was interrupted by a restart", vmid);
    RemoveVmAndVolumes(vmid);
  }
  // A backup cut short left nothing to finish (its temporary files go with the next GC).
  for (int vmid : interrupted_backups) {
    spdlog::warn("VM {}: removing the lock of a backup that was interrupted by a restart", vmid);
    RecoverFleecing(qemu_, store_, vmid);
    (void)Mutate(vmid, [](VmConfig& c) -> Status {
      if (c.Lock() == "backup") c.values.erase("lock");
      return Ok();
    });
  }
  // The scratch copy of a restore drill the restart cut short: it was going anyway.
  for (int vmid : drill_copies) {
    spdlog::warn("VM {}: removing the copy of a restore drill that was interrupted by a restart", vmid);
    if (auto pid = qemu_.Pid(vmid)) {
      qemu_.Kill(*pid);
      if (!qemu_.WaitExit(*pid, std::chrono::seconds(30))) {
        spdlog::error("VM {}: the drill copy's QEMU (pid {}) does not exit; remove VM {} by hand", vmid, *pid, vmid);
        continue;
      }
    }
    CleanupAfterExit(vmid);
    RemoveVmAndVolumes(vmid);
    (void)store_.PutMeta(DrillMetaKey(vmid), "");
  }
  for (int vmid : interrupted_templates) {
    spdlog::warn("VM {}: undoing a template conversion that was interrupted by a restart", vmid);
    RepairInterruptedTemplate(vmid);
  }
  // Re-adopt running VMs; clean up after ones that died while we were away.
  std::vector<int> ids = registry_.Ids();
  StopStaleExports();
  AdoptUnreferencedVolumes();
  int adopted = 0;
  for (int vmid : ids) {
    if (auto pid = qemu_.Pid(vmid)) {
      SetRuntime(vmid, [&](Runtime& rt) {
        rt.pid = *pid;
        rt.qmpstatus = "running";
        auto st = qemu_.Stats(*pid);
        long hz = host_.ClockTicksPerSecond();
        double boot_uptime = host_.UptimeSeconds();
        rt.started_at = st ? clock_.UnixSeconds() - static_cast<int64_t>(boot_uptime - double(st->start_ticks) / hz)
                           : clock_.UnixSeconds();
      });
      if (auto s = qemu_.QueryRunState(vmid, std::chrono::seconds(10)))
        SetRuntime(vmid, [&](Runtime& rt) { rt.qmpstatus = UserRunState(*s); });
      ++adopted;
      RepairInterruptedMove(vmid, *pid);
    } else {
      CleanupAfterExit(vmid);
    }
  }
  if (adopted) spdlog::info("re-adopted {} running VM(s)", adopted);
  for (int vmid : interrupted_snapshots) RepairInterruptedSnapshot(vmid);
  for (int vmid : live_restores) ResumeLiveRestore(vmid);
  poller_ = std::thread([this] {
    while (!stop_poller_) {
      PollOnce();
      std::unique_lock lock(poller_mu_);
      poller_cv_.wait_for(lock, options_.poll_interval, [&] { return stop_poller_.load(); });
    }
  });
  return Ok();
}

namespace {

// "local:100/base-100-disk-0.qcow2/101/vm-101-disk-0.qcow2" and "local:101/vm-101-disk-0.qcow2"
// name one file: the storage and the last two parts of the volume name.
std::string VolumeFileKey(const std::string& volid) {
  size_t colon = volid.find(':');
  if (colon == std::string::npos) return volid;
  std::string volname = volid.substr(colon + 1);
  size_t last = volname.rfind('/');
  size_t before = last == std::string::npos || last == 0 ? std::string::npos : volname.rfind('/', last - 1);
  return volid.substr(0, colon + 1) + (before == std::string::npos ? volname : volname.substr(before + 1));
}

}  // namespace

void VmService::AdoptUnreferencedVolumes() {
  // One listing of each storage for all VMs (not one per VM: that is quadratic in VMs).
  std::map<int, std::vector<VolumeInfo>> by_vmid;
  for (const auto& st : storage_.All())
    if (auto vols = st->List(ContentType::kImages, 0))
      for (auto& v : *vols) by_vmid[v.vmid].push_back(std::move(v));
  for (const auto& [vmid, vols] : by_vmid) AdoptUnreferencedVolumes(vmid, vols);
  // The other way round: a config naming a disk that is gone (files removed behind our back,
  // a storage not mounted) is said at start, not first at the VM's next start.
  std::vector<std::pair<int, VmConfig>> configs;
  {
    registry_.ForEach([&](int id, const Entry& e) { configs.emplace_back(id, e.config); });
  }
  for (const auto& [vmid, cfg] : configs)
    for (const auto& vol : ReferencedVolumes(cfg))
      if (auto id = ParseVolumeId(vol); id && storage_.Get(id->storage) && !storage_.InfoOf(vol))
        spdlog::warn("VM {}: its config names {}, which does not exist", vmid, vol);
}

void VmService::AdoptUnreferencedVolumes(int vmid, const std::vector<VolumeInfo>& volumes) {
  auto cfg = GetConfig(vmid);
  if (!cfg) return;  // no such VM (here)
  std::set<std::string> referenced;
  for (const auto& v : ReferencedVolumes(*cfg, /*include_cdroms=*/true)) referenced.insert(VolumeFileKey(v));
  std::vector<std::string> orphans;
  for (const auto& v : volumes) {
    if (referenced.count(VolumeFileKey(v.volid))) continue;
    struct stat lst {};
    if (::lstat(v.path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)) {
      spdlog::warn("VM {}: {} is a symbolic link, not a volume hearth made: left alone", vmid, v.path);
      continue;
    }
    orphans.push_back(v.volid);
  }
  for (const auto& volid : orphans) {
    if (volid.find("/vm-" + std::to_string(vmid) + "-cloudinit.") != std::string::npos) {
      spdlog::warn("VM {}: freeing cloud-init volume {} that its config does not name", vmid, volid);
      (void)storage_.Free(volid);
      continue;
    }
    auto st = Mutate(vmid, [&](VmConfig& c) -> Status {
      std::string key = NextUnusedKey(c);
      if (key.empty()) return Fail(Internal("too many unused volumes"));
      c.values[key] = volid;
      spdlog::warn("VM {}: volume {} was not in its config (an operation cut short?): added as {}", vmid, volid, key);
      return Ok();
    });
    if (!st) spdlog::error("VM {}: could not add volume {} to its config: {}", vmid, volid, st.error().message);
  }
}

void VmService::StopPoller() {
  stop_poller_ = true;
  poller_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
}

void VmService::PollOnce() {
  std::vector<std::pair<int, Runtime>> running;
  registry_.ForEach([&](int id, const Entry& e) {
    if (e.rt.pid && !e.rt.starting) running.emplace_back(id, e.rt);
  });
  long hz = host_.ClockTicksPerSecond();
  for (auto& [vmid, rt] : running) {
    auto pid = qemu_.Pid(vmid);
    if (!pid || *pid != rt.pid) {
      // QEMU exited (guest poweroff, crash, kill) without going through a stop task. Take
      // the VM's operation lock so we do not race a task that is stopping it right now.
      auto guard = tasks_.vm_locks().TryAcquire(vmid);
      if (!guard) continue;  // an operation on the VM is under way; look again next round
      if (!qemu_.Pid(vmid)) {
        bool was_running = false;
        (void)registry_.Read(vmid, [&](const Entry& e) { was_running = e.rt.pid == rt.pid; });
        if (was_running) {
          spdlog::info("VM {}: QEMU (pid {}) exited", vmid, rt.pid);
          CleanupAfterExit(vmid);
        }
      }
      continue;
    }
    auto st = qemu_.Stats(*pid);
    if (!st) continue;
    // Network: the VM's taps, counted by the host (host rx = guest tx).
    uint64_t netin = 0, netout = 0;
    if (auto cfg = GetConfig(vmid)) {
      for (const auto& [k, v] : cfg->values) {
        if (!StartsWith(k, "net")) continue;
        auto idx = ParseInt(k.substr(3));
        if (!idx) continue;
        if (auto c = net_.TapCounters(TapName(vmid, static_cast<int>(*idx)))) {
          netin += c->tx_bytes;
          netout += c->rx_bytes;
        }
      }
    }
    // Disks: QEMU's block statistics, every few seconds (one QMP round trip per VM).
    std::optional<std::pair<uint64_t, uint64_t>> disk;
    auto now = clock_.Monotonic();
    if (now - rt.last_blockstats >= std::chrono::seconds(5)) {
      if (auto t = qemu_.QueryBlockStats(vmid)) disk = std::make_pair(t->rd_bytes, t->wr_bytes);
    }
    SetRuntime(vmid, [&](Runtime& r) {
      r.netin = netin;
      r.netout = netout;
      if (disk) {
        r.diskread = disk->first;
        r.diskwrite = disk->second;
        r.last_blockstats = now;
      }
      auto now = clock_.Monotonic();
      if (r.last_ticks && r.last_sample.time_since_epoch().count()) {
        // CPUs' worth of time used per second; List() divides by the VM's vCPUs.
        double secs = std::chrono::duration<double>(now - r.last_sample).count();
        if (secs > 0) r.cpu = double(st->cpu_ticks - r.last_ticks) / hz / secs;
      }
      r.last_ticks = st->cpu_ticks;
      r.last_sample = now;
      r.mem = st->rss_bytes;
    });
  }
}

bool VmService::Exists(int vmid) { return registry_.Exists(vmid); }

Status VmService::CheckLock(const VmConfig& cfg, bool skiplock) const {
  std::string lock = cfg.Lock();
  if (!lock.empty() && !skiplock) return Fail(FailedPrecondition("VM is locked (" + lock + ")"));
  return Ok();
}

static uint64_t MaxDisk(const VmConfig& cfg) {
  // Size of the boot disk (first non-cdrom disk in boot order, else the first disk).
  std::string boot = cfg.Get("boot").value_or("");
  std::vector<std::string> order;
  if (StartsWith(boot, "order=")) order = SplitAny(boot.substr(6), ";");
  for (const auto& [k, v] : cfg.values)
    if (DriveKey::Parse(k)) order.push_back(k);
  for (const auto& k : order) {
    auto dk = DriveKey::Parse(k);
    if (!dk || !dk->IsDisk()) continue;
    auto it = cfg.values.find(k);
    if (it == cfg.values.end()) continue;
    auto d = ParseDrive(dk->bus, it->second);
    if (!d || d->IsCdrom()) continue;
    if (auto s = d->SizeBytes()) return *s;
  }
  return 0;
}

static uint64_t MemoryBytes(const VmConfig& cfg) {
  std::string m = cfg.Get("memory").value_or("512");
  if (StartsWith(m, "current=")) m = m.substr(8);
  return ParseUint(m).value_or(512) * kMiB;
}

VmStatusInfo VmService::MakeStatus(int vmid, const Entry& e) const {
  VmStatusInfo s;
  const VmConfig& c = e.config;
  s.vmid = vmid;
  s.name = c.Get("name").value_or("VM " + std::to_string(vmid));
  bool running = e.rt.pid != 0;
  s.status = running ? "running" : "stopped";
  s.qmpstatus = running ? e.rt.qmpstatus : "stopped";
  s.pid = e.rt.pid;
  s.uptime = running ? std::max<int64_t>(0, clock_.UnixSeconds() - e.rt.started_at) : 0;
  int64_t sockets = ParseInt(c.Get("sockets").value_or("1")).value_or(1);
  int64_t cores = ParseInt(c.Get("cores").value_or("1")).value_or(1);
  s.cpus = static_cast<int>(ParseInt(c.Get("vcpus").value_or(std::to_string(sockets * cores))).value_or(1));
  s.cpu = running && s.cpus ? std::min(1.0, e.rt.cpu / s.cpus) : 0;
  s.maxmem = MemoryBytes(c);
  s.mem = running ? std::min(e.rt.mem, s.maxmem) : 0;
  s.maxdisk = MaxDisk(c);
  if (running) {
    s.netin = e.rt.netin;
    s.netout = e.rt.netout;
    s.diskread = e.rt.diskread;
    s.diskwrite = e.rt.diskwrite;
  }
  s.is_template = c.IsTemplate();
  s.lock = c.Lock();
  s.tags = c.Get("tags").value_or("");
  s.agent = AgentEnabled(c.Get("agent").value_or("0"));
  s.serial = c.Has("serial0") || c.Has("serial1") || c.Has("serial2") || c.Has("serial3");
  s.onboot = c.Get("onboot").value_or("0") == "1";
  return s;
}

std::vector<VmStatusInfo> VmService::List() {
  std::vector<VmStatusInfo> out;
  registry_.ForEach([&](int vmid, const Entry& e) { out.push_back(MakeStatus(vmid, e)); });
  return out;
}

Result<VmStatusInfo> VmService::CurrentStatus(int vmid) {
  std::optional<VmStatusInfo> found;
  HEARTH_TRY(registry_.Read(vmid, [&](const Entry& e) { found = MakeStatus(vmid, e); }));
  if (found->status == "running") {
    // Live run state (paused, suspended...) straight from QEMU.
    if (auto st = qemu_.QueryRunState(vmid)) {
      found->qmpstatus = UserRunState(*st);
      SetRuntime(vmid, [&](Runtime& rt) { rt.qmpstatus = found->qmpstatus; });
    }
  }
  return *found;
}

Result<ConfigView> VmService::Config(int vmid, bool current) {
  ConfigView view;
  HEARTH_TRY(registry_.Read(vmid, [&](const Entry& e) {
    view = ConfigView{current ? e.config.values : e.config.WithPending(), ConfDigest(e.conf_text)};
  }));
  return view;
}

Result<std::vector<PendingEntry>> VmService::Pending(int vmid) {
  VmConfig c;
  std::string digest;
  HEARTH_TRY(registry_.Read(vmid, [&](const Entry& e) {
    c = e.config;
    digest = ConfDigest(e.conf_text);
  }));
  std::map<std::string, PendingEntry> out;
  for (const auto& [k, v] : c.values) out[k] = PendingEntry{k, v, std::nullopt, 0};
  for (const auto& [k, v] : c.pending) {
    auto& p = out[k];
    p.key = k;
    p.pending = v;
  }
  for (const auto& [k, forced] : c.pending_delete) {
    auto& p = out[k];
    p.key = k;
    p.del = forced ? 2 : 1;
  }
  std::vector<PendingEntry> list;
  for (auto& [k, p] : out) list.push_back(std::move(p));
  list.push_back(PendingEntry{"digest", digest, std::nullopt, 0});
  return list;
}

Result<int> VmService::NextId(std::optional<int> wanted) { return registry_.NextId(wanted); }

Result<std::pair<std::string, uint64_t>> VmService::SerialLog(int vmid, int n, uint64_t offset) {
  HEARTH_ASSIGN_OR_RETURN(VmConfig cfg, GetConfig(vmid));
  if (cfg.Get("serial" + std::to_string(n)).value_or("") != "socket")
    return Fail(FailedPrecondition("serial" + std::to_string(n) + " is not configured as a socket"));
  std::ifstream f(qemu_.Paths(vmid).SerialLog(n), std::ios::binary);
  if (!f) return std::make_pair(std::string(), uint64_t{0});
  f.seekg(0, std::ios::end);
  uint64_t size = static_cast<uint64_t>(f.tellg());
  if (offset > size) offset = 0;  // the log restarted with the VM
  constexpr uint64_t kMax = 1 << 20;
  if (size - offset > kMax) offset = size - kMax;
  f.seekg(static_cast<std::streamoff>(offset));
  std::string data(size - offset, '\0');
  f.read(data.data(), static_cast<std::streamsize>(data.size()));
  return std::make_pair(data, size);
}

std::string VmService::NewMac() {
  std::array<uint8_t, 3> b;
  random_.Fill(b.data(), b.size());
  return MakeMac(b);
}

Result<std::string> VmService::StartTask(const std::string& type, int vmid, const std::string& user,
                                         std::function<Status(TaskContext&)> work) {
  // A live restore holds its VM for as long as the stream runs: anything else would wait
  // behind it for that long, so it is refused now, with the lock's words.
  if (type != "qmrestore" && LiveRestoreRunning(vmid)) return Fail(FailedPrecondition("VM is locked (create)"));
  TaskSpec spec;
  spec.type = type;
  spec.id = std::to_string(vmid);
  spec.user = user;
  spec.vmid = vmid;
  return tasks_.Start(spec, std::move(work));
}

Result<std::unique_ptr<VmLocks::Guard>> VmService::LockForCall(int vmid) {
  if (LiveRestoreRunning(vmid)) return Fail(FailedPrecondition("VM is locked (create)"));
  auto guard = tasks_.vm_locks().AcquireFor(vmid, kSyncLockWait);
  if (!guard)
    return Fail(Unavailable("can't lock file '/var/lock/qemu-server/lock-" + std::to_string(vmid) +
                            ".conf' - got timeout"));
  return guard;
}

void VmService::CleanupAfterExit(int vmid) {
  auto cfg = GetConfig(vmid);
  if (cfg) {
    for (const auto& [k, v] : cfg->values)
      if (StartsWith(k, "net"))
        if (auto idx = ParseInt(k.substr(3))) (void)net_.DeleteTap(TapName(vmid, static_cast<int>(*idx)));
  }
  qemu_.CleanupRuntime(vmid);
  SetRuntime(vmid, [](Runtime& rt) { rt = Runtime{}; });
}

}  // namespace hearth

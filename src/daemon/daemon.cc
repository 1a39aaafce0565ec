#include "daemon/daemon.h"

#include <pwd.h>
#include <signal.h>
#include <malloc.h>
#include <sys/resource.h>
#include <cstring>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <filesystem>
#include <thread>

#include "api/api_server.h"
#include "api/handlers/handlers.h"
#include "core/strings.h"
#include "daemon/firewall_setup.h"
#include "firewall/nft_backend.h"
#include "http/http_server.h"
#include "images/image_builder.h"
#include "http/tls_cert.h"
#include "model/netdev.h"
#include "model/vm_config.h"
#include "net/netlink/netlink_backend.h"
#include "net/netlink/netlink_host_links.h"
#include "qemu/kvm_probe.h"
#include "qemu/supervisor.h"
#include "storage/btrfs/btrfs_storage.h"
#include "storage/lvmthin/lvmthin_storage.h"
#include "storage/nfs/nfs_storage.h"
#include "storage/zfspool/zfspool_storage.h"
#include "storage/dir/dir_storage.h"
#include "storage/storage_configs.h"
#include "sys/files.h"
#include "sys/posix/posix_file_system.h"
#include "sys/posix/proc_host_stats.h"
#include "sys/posix/posix_process.h"
#include "tasks/task_manager.h"
#include "vms/vm_service.h"
#include "sys/random_source.h"

#ifndef HEARTH_VERSION
#define HEARTH_VERSION "0.1.0"
#endif
#ifndef HEARTH_GIT_REV
#define HEARTH_GIT_REV "0"
#endif

namespace hearth {
namespace {

Result<std::pair<std::string, uint16_t>> ParseListen(const std::string& listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return Fail(FieldError("listen", "want ADDRESS:PORT, got '" + listen + "'"));
  std::string addr = listen.substr(0, colon);
  if (addr.size() > 1 && addr.front() == '[') addr = addr.substr(1, addr.size() - 2);
  auto port = ParseUint(listen.substr(colon + 1));
  if (!port || *port > 65535) return Fail(FieldError("listen", "invalid port in '" + listen + "'"));
  return std::make_pair(addr, static_cast<uint16_t>(*port));
}

std::string FindOvmf() { return PathExists("/usr/share/OVMF/OVMF_CODE_4M.fd") ? "/usr/share/OVMF" : ""; }

}  // namespace

int RunDaemon(const DaemonOptions& opt) {
  auto t0 = std::chrono::steady_clock::now();
  // Signals are handled by sigwait in this thread; every thread made later inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // A file-size limit (ulimit -f, systemd LimitFSIZE=) must fail the write that crosses it
  // with EFBIG (an upload then gets its 500), not kill the daemon (found by a break-it pass).
  signal(SIGXFSZ, SIG_IGN);
  // glibc gives each busy thread its own arena (up to 8 per core) and each keeps its high-water
  // mark; a few shared arenas keep the daemon's memory close to what it uses (soak test).
  mallopt(M_ARENA_MAX, 4);
  // One fd per connection, QMP/QGA socket and open file: take the hard limit, not the
  // default soft 1024 (the HTTP server caps connections well below it).
  if (rlimit rl; getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) spdlog::warn("cannot raise the open file limit: {}", strerror(errno));
  }

  auto fail = [](const Error& e) {
    spdlog::critical("{}", e.message);
    return 1;
  };
  // Absolute and without a trailing '/': it is also storage `local`'s path.
  std::string data_dir = std::filesystem::absolute(opt.data_dir).lexically_normal().string();
  while (data_dir.size() > 1 && data_dir.back() == '/') data_dir.pop_back();
  std::string run_dir = opt.run_dir.empty() ? data_dir + "/run" : opt.run_dir;
  std::string node = opt.node.empty() ? DefaultNodeName() : opt.node;
  for (const auto& d : {data_dir, run_dir, data_dir + "/tasks"})
    if (auto st = MakeDirs(d); !st) return fail(st.error());
  if (auto st = HoldLockFile(data_dir + "/hearth.lock"); !st) return fail(st.error());

  auto listen = ParseListen(opt.listen);
  if (!listen) return fail(listen.error());
  auto store = OpenStore(data_dir);
  if (!store) return fail(store.error());
  PosixFileSystem fs;
  ProcHostStats host_stats;
  auto tickets = LoadOrCreateTicketAuthority(fs, data_dir);
  if (!tickets) return fail(tickets.error());
  std::string cert = data_dir + "/priv/hearth.crt", key = data_dir + "/priv/hearth.key";
  if (auto st = EnsureSelfSignedCertificate(fs, cert, key, node); !st) return fail(st.error());

  SystemClock clock;
  PosixProcessRunner runner;
  LibPamAuthenticator pam;
  AccessService access(**store, clock, **tickets, pam);
  TaskManager tasks(**store, fs, clock, node, data_dir + "/tasks", 
                    host_stats.Process(getpid()).value_or(ProcessStat{}).start_ticks);
  if (auto st = tasks.RecoverUnfinished(); !st) return fail(st.error());

  // Storages come from their records in the store (`local`, the data dir, written at first
  // start); each type's driver is registered here, the only place that links them.
  StorageRegistry registry;
  RegisterDirStorage(registry);
  RegisterBtrfsStorage(registry);
  RegisterZfsPoolStorage(registry);
  RegisterLvmThinStorage(registry);
  RegisterNfsStorage(registry);
  StorageManager storage(node);
  StorageConfigs storage_configs(**store, registry, storage, StorageDeps{&runner, node, data_dir});
  {
    std::vector<std::string> warnings;
    if (auto st = storage_configs.Load(&warnings); !st) return fail(st.error());
    for (const auto& w : warnings) spdlog::warn("{}", w);
  }
  // Spooled upload bodies and staged uploads belong to requests and tasks that died with the
  // previous process (a crash or kill -9 mid-upload): nothing else can ever finish them.
  (void)MakeDirs(data_dir + "/tmp");
  std::vector<std::string> temp_dirs = {data_dir + "/tmp"};
  for (const auto& st : storage.All())
    if (std::find(temp_dirs.begin(), temp_dirs.end(), st->TempDir()) == temp_dirs.end()) temp_dirs.push_back(st->TempDir());
  for (const auto& dir : temp_dirs)
    if (auto n = RemoveFilesIn(dir); n && *n) spdlog::info("removed {} leftover temporary upload file(s) in {}", *n, dir);

  AccelState accel;
  std::thread probe;
  if (opt.accel == "tcg") {
    accel.Set(false, "TCG chosen with --accel tcg");
  } else if (opt.accel == "kvm") {
    accel.Set(true, "");
  } else {
    probe = std::thread([&] {
      KvmProbeResult r = ProbeKvm(runner, fs, opt.qemu_binary, run_dir);
      if (r.usable) {
        spdlog::info("KVM is usable (probe guest: {:.2f} s with KVM, {:.2f} s with TCG)", r.kvm_seconds, r.tcg_seconds);
      } else {
        spdlog::warn("KVM is not usable here: {}. VMs run under TCG (software emulation, much slower).", r.reason);
      }
      accel.Set(r.usable, r.reason);
    });
  }

  QemuHostInfo host;
  host.binary = opt.qemu_binary;
  host.run_dir = run_dir;
  host.ovmf_dir = FindOvmf();
  if (getuid() == 0) {
    if (getpwnam(opt.qemu_user.c_str())) {
      host.runas = opt.qemu_user;
    } else {
      spdlog::warn("user '{}' does not exist: QEMU will run as root (run scripts/install-deps.sh to create it)",
                   opt.qemu_user);
    }
  }
  QemuSupervisor qemu(runner, host_stats, run_dir);
  NetlinkBackend net;
  VmServiceOptions vopt;
  vopt.node = node;
  vopt.host = host;
  vopt.fleecing_dir = data_dir + "/fleecing";
  SystemRandom random;
  VmService vms(**store, tasks, storage, qemu, net, runner, fs, host_stats, clock, accel, vopt, random);
  if (auto st = vms.Init(); !st) return fail(st.error());

  NodeFacts facts;
  facts.node = node;
  facts.hearth_version = HEARTH_VERSION;
  facts.repoid = HEARTH_GIT_REV;
  facts.ssl_fingerprint = CertificateFingerprint(cert).value_or("");
  facts.data_dir = data_dir;
  facts.accel = &accel;
  std::string image_cache = opt.image_cache.empty() ? data_dir + "/cache/images" : opt.image_cache;
  if (auto st = MakeDirs(image_cache); !st) return fail(st.error());
  ImageBuilder images(runner, fs, image_cache);
  SnapshotScheduler snapshot_schedules(**store, tasks, vms, clock);
  if (auto st = snapshot_schedules.Load(); !st) return fail(st.error());
  snapshot_schedules.Start();
  BackupScheduler backup_jobs(**store, clock, node, VzdumpJobRunner(vms, storage, node), TaskRunningIn(tasks));
  if (auto st = backup_jobs.Load(); !st) return fail(st.error());
  backup_jobs.OnLaunchFailed([&tasks](const BackupJob& job, const std::string& error) {
    return StartFailedRunTask(tasks, "vzdump", "", "backup job '" + job.id + "'", error);
  });
  backup_jobs.Start();
  StorageDeps storage_deps{&runner, node, data_dir};
  ReplicationScheduler replication(**store, vms, storage, fs, clock, node, data_dir,
                                   [&](const StorageConfig& c) { return registry.Make(c, storage_deps); });
  if (auto st = replication.Load(); !st) return fail(st.error());
  replication.Start();
  // After replication: sync jobs pull from its remotes.
  auto remote_of = [&replication](const std::string& name) { return replication.GetRemote(name); };
  DatastoreJobScheduler datastore_jobs(**store, clock, node, DatastoreJobRunner(vms, remote_of), TaskRunningIn(tasks));
  if (auto st = datastore_jobs.Load(); !st) return fail(st.error());
  datastore_jobs.OnLaunchFailed([&tasks](const DatastoreJob& job, const std::string& error) {
    return StartFailedRunTask(tasks, DatastoreJobTaskType(job.type), job.id, "datastore job '" + job.id + "'", error);
  });
  datastore_jobs.Start();
  vms.SetPurgeHook([&](TaskContext& ctx, int vmid) {
    if (auto st = backup_jobs.RemoveVmid(vmid); !st) ctx.Warn("removing VM " + std::to_string(vmid) + " from backup jobs: " + st.error().message);
    else ctx.Log("removed VM " + std::to_string(vmid) + " from backup jobs");
  });
  vms.SetDestroyCheck([&](int vmid, bool purge) { return replication.GuestDestroy(vmid, purge); });
  ReplicaReceiver replica_receiver([&](const std::string& id) { return storage.Get(id); },
                                   [&](int vmid) { return vms.Exists(vmid); }, fs, data_dir + "/replica");
  // The host network: an apply that a crash interrupted (or nobody confirmed) is taken back,
  // then the applied configuration is set up (it is not there after a host reboot).
  NetlinkHostLinks host_links;
  HostNetwork network(**store, host_links, tasks, node, [&store](const std::string& bridge) {
    std::vector<std::string> users;
    auto vms_ = (*store)->ListVms();
    if (!vms_) return users;
    for (const auto& rec : *vms_) {
      auto conf = ParseConfFile(rec.conf);
      if (!conf) continue;
      for (const auto& [key, value] : conf->WithPending()) {
        if (key.rfind("net", 0) != 0) continue;
        if (auto nic = ParseNetDev(value); nic && nic->Bridge() == bridge)
          users.push_back("VM " + std::to_string(rec.vmid) + " (" + key + ")");
      }
    }
    return users;
  });
  if (auto st = network.Restore(); !st) spdlog::error("network: {}", st.error().message);
  // The firewall: the stored rule set is applied again (hearth's nftables tables are replaced
  // as a whole), then kept in step with the VMs' NICs.
  LibNftables nft;
  auto firewall = MakeFirewall(**store, nft, vms, host_links, node, listen->second);
  (void)firewall->Start();
  vms.SetDestroyedHook([&firewall](TaskContext& ctx, int vmid) {
    if (auto st = firewall->ForgetVm(vmid); !st) ctx.Warn("removing the VM's firewall configuration: " + st.error().message);
  });
  ApiServices services{access, tasks, vms, storage, storage_configs, images, host_stats, facts};
  services.network = &network;
  services.firewall = firewall.get();
  services.snapshot_schedules = &snapshot_schedules;
  services.backup_jobs = &backup_jobs;
  services.datastore_jobs = &datastore_jobs;
  services.replication = &replication;
  services.replica_receiver = &replica_receiver;
  Router router;
  RegisterAllRoutes(router, services);
  ApiServerOptions api_options;
  api_options.on_admitted = [&network](const Identity& who) { network.NoteRequest(who.AuthId()); };
  ApiServer api(router, access, node, api_options);

  HttpsServerOptions hopt;
  hopt.address = listen->first;
  hopt.port = listen->second;
  hopt.cert_file = cert;
  hopt.key_file = key;
  hopt.threads = opt.threads;
  hopt.client_timeout = std::chrono::seconds(opt.client_timeout);
  hopt.stream_body_to = [&](const HttpRequest& head,
                            std::optional<uint64_t> length) -> std::optional<HttpsServerOptions::StreamTarget> {
    if (!api.IsUpload(head.method, head.target)) return std::nullopt;
    HttpsServerOptions::StreamTarget t{data_dir + "/tmp", std::nullopt};
    // Nothing is written to disk for a caller without credentials.
    if ((t.refusal = api.RefuseUpload(head))) return t;
    auto refuse = [&](const std::string& why) {
      t.refusal = ErrorResponse(Internal(why));
      return t;
    };
    if (!length) {  // PVE's text; 411 Length Required says what the client must change
      refuse("upload without content length header not supported");
      t.refusal->status = 411;
      return t;
    }
    // The spooled body is turned into the stored file chunk by chunk, so an upload needs
    // its own size free plus one chunk of slack.
    auto space = FilesystemSpace(t.dir);
    bool stream = head.target.find("/hearth/replication/receive") != std::string::npos;
    if (space && *length + (16ull << 20) > space->avail)
      return refuse((stream ? "not enough space in '" + t.dir + "' (where the target spools it) for a " +
                                  std::to_string(*length >> 20) + "M replication stream: "
                            : "not enough space on storage 'local' for a " + std::to_string(*length >> 20) +
                                  "M upload: ") +
                    std::to_string((*length + (16ull << 20) + (1 << 20) - 1) >> 20) + "M needed (16M kept free), " +
                    std::to_string(space->avail >> 20) + "M free");
    return t;
  };
  auto server = HttpsServer::Start(
      hopt, [&](HttpRequest req, HttpsServer::Responder respond) { api.Handle(std::move(req), std::move(respond)); });
  if (!server) return fail(server.error());
  (void)WriteFileAtomic(fs, run_dir + "/api-port", std::to_string((*server)->port()) + "\n");
  // The port the API really listens on (--listen ...:0 picks one) stays reachable.
  firewall->SetApiPort((*server)->port());
  double ready_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  spdlog::info("hearth {} on node '{}': API ready on https://{}:{}/api2/json ({:.0f} ms)", HEARTH_VERSION, node,
               listen->first, (*server)->port(), ready_ms);
  spdlog::info("TLS certificate SHA-256 fingerprint: {}", facts.ssl_fingerprint);

  // Housekeeping: old tasks and their logs (kept: 30 days, and always the newest 10,000),
  // every 6 hours; and memory back to the kernel every 30 seconds. A burst of big answers
  // (8 clients listing 20,000 tasks at once peak at ~200 MiB) left glibc's arenas holding
  // that memory for good, so RSS only ever grew (found by the soak test); malloc_trim also
  // releases free pages inside the heaps, and takes a few milliseconds.
  std::mutex housekeeping_mu;
  std::condition_variable housekeeping_cv;
  bool stopping = false;
  std::thread housekeeping([&] {
    std::unique_lock lock(housekeeping_mu);
    auto next_prune = std::chrono::steady_clock::now();
    do {
      if (std::chrono::steady_clock::now() >= next_prune) {
        if (auto n = tasks.Prune(30 * 86400, 10000); n && *n) spdlog::info("pruned {} old task(s)", *n);
        next_prune = std::chrono::steady_clock::now() + std::chrono::hours(6);
      }
      malloc_trim(0);
    } while (!housekeeping_cv.wait_for(lock, std::chrono::seconds(30), [&] { return stopping; }));
  });

  int sig = 0;
  sigwait(&signals, &sig);
  {
    std::lock_guard lock(housekeeping_mu);
    stopping = true;
  }
  housekeeping_cv.notify_all();
  housekeeping.join();
  spdlog::info("signal {}: shutting down (VMs keep running)", sig);
  (*server)->Stop();
  // Handlers still running on workers answer into a stopped server (ignored); they must be
  // done before the server and the services go away.
  api.StopWorkers();
  snapshot_schedules.Stop();
  backup_jobs.Stop();
  datastore_jobs.Stop();
  vms.StopPoller();
  if (probe.joinable()) probe.join();
  if (!tasks.WaitIdleFor(std::chrono::seconds(10))) {
    // Unfinished tasks end as "unexpected status" at the next start, as after a crash.
    spdlog::warn("{} task(s) still running; exiting anyway", tasks.running());
    spdlog::default_logger()->flush();
    _exit(0);
  }
  return 0;
}

}  // namespace hearth

// The real route table with real services over a throw-away data dir, for fuzz targets that
// validate parameters against the routes' schemas. Handlers are never called, so nothing
// here runs QEMU or touches the host beyond the temp dir. Built once per fuzz process.
#pragma once

#include <stdlib.h>

#include <cstring>
#include <memory>
#include <string>

#include "access/pam.h"
#include "api/handlers/handlers.h"
#include "daemon/daemon.h"
#include "fuzz_common.h"
#include "net/netlink/netlink_backend.h"
#include "qemu/supervisor.h"
#include "storage/dir/dir_storage.h"
#include "storage/storage_configs.h"
#include "sys/files.h"
#include "sys/posix/posix_file_system.h"
#include "sys/posix/proc_host_stats.h"
#include "sys/random_source.h"
#include "sys/posix/posix_process.h"

namespace hearth::fuzz {

class NoPam final : public PamAuthenticator {
 public:
  bool Authenticate(const std::string&, const std::string&) override { return false; }
};

struct ApiEnv {
  std::string dir;
  std::unique_ptr<SqliteStore> store;
  std::unique_ptr<TicketAuthority> tickets;
  SystemClock clock;
  PosixProcessRunner runner;
  PosixFileSystem fs;
  ProcHostStats host;
  // The same bytes every time: an input found by fuzzing must replay alone exactly.
  struct FixedRandom final : Random {
    void Fill(void* out, size_t n) override { memset(out, 0x5a, n); }
  } random;
  NoPam pam;
  std::unique_ptr<AccessService> access;
  std::unique_ptr<TaskManager> tasks;
  StorageManager storage{"fuzz"};
  StorageRegistry registry;
  std::unique_ptr<StorageConfigs> storage_configs;
  AccelState accel;
  std::unique_ptr<QemuSupervisor> qemu;
  NetlinkBackend net;
  std::unique_ptr<VmService> vms;
  std::unique_ptr<ImageBuilder> images;
  std::unique_ptr<ApiServices> services;
  Router router;

  ApiEnv() {
    char tmpl[] = "/dev/shm/hearth-fuzz-XXXXXX";
    FUZZ_CHECK(mkdtemp(tmpl), "temp dir");
    dir = tmpl;
    auto s = OpenStore(dir);
    FUZZ_CHECK(s, "store");
    store = std::move(*s);
    auto t = LoadOrCreateTicketAuthority(fs, dir);
    FUZZ_CHECK(t, "tickets");
    tickets = std::move(*t);
    access = std::make_unique<AccessService>(*store, clock, *tickets, pam);
    tasks = std::make_unique<TaskManager>(*store, fs, clock, "fuzz", dir + "/tasks", 1);
    RegisterDirStorage(registry);
    storage_configs = std::make_unique<StorageConfigs>(*store, registry, storage, StorageDeps{&runner, "fuzz", dir});
    FUZZ_CHECK(storage_configs->Load(nullptr), "storages");
    accel.Set(false, "fuzzing");
    qemu = std::make_unique<QemuSupervisor>(runner, host, dir + "/run");
    VmServiceOptions vopt;
    vopt.node = "fuzz";
    vms = std::make_unique<VmService>(*store, *tasks, storage, *qemu, net, runner, fs, host, clock, accel, vopt,
                                      random);
    images = std::make_unique<ImageBuilder>(runner, fs, dir + "/cache");
    services.reset(new ApiServices{*access, *tasks, *vms, storage, *storage_configs, *images, host, NodeFacts{}});
    services->facts.node = "fuzz";
    RegisterAllRoutes(router, *services);
  }
};

inline ApiEnv& Env() {
  static ApiEnv* env = new ApiEnv();  // never destroyed: fuzzers exit without tearing down
  return *env;
}

}  // namespace hearth::fuzz

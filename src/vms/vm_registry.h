// VmRegistry: the VMs of this node in memory: each one's parsed config, the config text as
// stored (its digest is Proxmox's `digest`), and its runtime state (pid, run state, the
// poller's last samples). Config changes go through Mutate, which writes the Store first and
// only then the memory, so what the API shows is always what a restart would load.
//
// Thread-safety: every method is safe from any thread. Readers share one lock and never wait
// for the disk: Mutate serialises changes per VM (a stripe of mutexes) and writes the store
// outside the registry lock. Callbacks run under the registry lock: no I/O, no re-entry.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "core/result.h"
#include "model/vm_config.h"
#include "state/store.h"

namespace hearth {

struct VmRuntime {
  int pid = 0;
  bool starting = false;
  std::string qmpstatus = "stopped";
  int64_t started_at = 0;  // unix seconds
  uint64_t last_ticks = 0;
  std::chrono::steady_clock::time_point last_sample;
  double cpu = 0;
  uint64_t mem = 0;
  uint64_t netin = 0, netout = 0, diskread = 0, diskwrite = 0;
  std::chrono::steady_clock::time_point last_blockstats;
};

struct VmEntry {
  VmConfig config;
  std::string conf_text;
  VmRuntime rt;
};

class VmRegistry {
 public:
  VmRegistry(Store& store, std::string node) : store_(store), node_(std::move(node)) {}

  // Proxmox's "Configuration file 'nodes/<node>/qemu-server/<vmid>.conf' does not exist".
  std::string ConfigNotFound(int vmid) const;

  // Loading at start (no store write).
  void Load(int vmid, VmEntry entry);
  // Takes `vmid` for a new VM whose placeholder config `entry` is written to the store
  // (not durably: a crash before the creating task ends removes it anyway). Fails with
  // `taken_message` if the id is in use here or in the store.
  Status Reserve(int vmid, VmEntry entry, const std::string& taken_message);
  // Removes the VM from memory (the caller has deleted its record, or is about to).
  void Erase(int vmid);

  bool Exists(int vmid) const;
  // Has a QEMU, or one is being started.
  bool IsRunning(int vmid) const;
  Result<VmConfig> Config(int vmid) const;
  // Runs `fn` on the VM's entry under the shared lock; NotFound (ConfigNotFound) if absent.
  Status Read(int vmid, const std::function<void(const VmEntry&)>& fn) const;
  // Runs `fn` on every entry in vmid order under the shared lock.
  void ForEach(const std::function<void(int, const VmEntry&)>& fn) const;
  std::vector<int> Ids() const;
  // `wanted` if free (else "VM <id> already exists" on field vmid), or the lowest free id
  // in [100, 1000000) (Proxmox's /cluster/nextid).
  Result<int> NextId(std::optional<int> wanted) const;

  // Applies `fn` to a copy of the config and persists it; `expect_digest` (non-empty)
  // enforces Proxmox's optimistic check ("checksum mismatch (file change by other user?)").
  // Nothing changes when `fn` fails or the store write does.
  Status Mutate(int vmid, const std::function<Status(VmConfig&)>& fn, const std::string& expect_digest = "");
  // Changes the runtime state (no store write). A VM that is gone is ignored.
  void SetRuntime(int vmid, const std::function<void(VmRuntime&)>& fn);

  // Changes whenever any VM's config or runtime state changes.
  uint64_t Generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  // Exclusive access to vms_ that bumps the generation when released.
  class WriteLock {
   public:
    explicit WriteLock(VmRegistry& r) : r_(r), lock_(r.mu_) {}
    ~WriteLock() { r_.generation_.fetch_add(1, std::memory_order_release); }

   private:
    VmRegistry& r_;
    std::unique_lock<std::shared_mutex> lock_;
  };

  Store& store_;
  std::string node_;
  mutable std::shared_mutex mu_;
  std::map<int, VmEntry> vms_;  // GUARDED_BY(mu_)
  // Serialise Mutate() per VM (vmid modulo the stripe count) without the registry lock.
  std::array<std::mutex, 64> mutate_stripes_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace hearth

// RAM state volumes: what a snapshot with RAM (vmstate=1) saves and a rollback loads, after
// qemu-server's QemuConfig.pm (__snapshot_save_vmstate, find_vmstate_storage) and
// QemuServer.pm (vm_start with a statefile); docs/reference/pve-snapshots.md section 5.
//
// The volume is Proxmox's: raw, named vm-<vmid>-state-<snapname> (".raw" on path-based
// storages), sized 2 x memory + 500 MiB before the save and truncated to what was written
// after it. The content is QEMU's migration stream: upstream QEMU has no savevm-start, so
// the state goes through `migrate` to a file descriptor and comes back through
// `migrate-incoming` into a QEMU started with -incoming defer.
//
// Thread-safety: stateless apart from the references it holds; callers hold the VM's lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "core/result.h"
#include "model/vm_config.h"
#include "qemu/qemu_control.h"
#include "storage/storage_manager.h"

namespace hearth {

class VmStateVolumes {
 public:
  VmStateVolumes(StorageManager& storage, QemuControl& qemu) : storage_(storage), qemu_(qemu) {}

  // find_vmstate_storage: `vmstatestorage` if set, else a shared storage holding one of the
  // VM's disks, else a local one (a path-based storage preferred in each), else "local".
  std::string ChooseStorage(const VmConfig& config) const;
  // The volid a state volume for snapshot `snapname` on `storage` gets: "<storage>:<vmid>/
  // vm-<vmid>-state-<snapname>.raw".
  static std::string VolumeIdFor(const std::string& storage, int vmid, const std::string& snapname);
  // Allocates the volume VolumeIdFor names (2 x `memory_mib` + 500 MiB, sparse). Fails if it
  // exists or the storage cannot hold VM images.
  Status Allocate(const std::string& volid, int vmid, uint64_t memory_mib);
  // Writes the running VM's RAM and device state into `volid` (QemuSupervisor::SaveState),
  // then truncates the volume to the bytes written (rounded up to 1 KiB), which it returns.
  Result<uint64_t> Save(int vmid, const std::string& volid, std::chrono::milliseconds timeout);
  // Loads `volid` into the VM launched with QemuLaunch::incoming.
  Status Load(int vmid, const std::string& volid, std::chrono::milliseconds timeout);
  // A bound for a save or load of `memory_mib`: generous (TCG, a loaded disk).
  static std::chrono::milliseconds Deadline(uint64_t memory_mib);

 private:
  StorageManager& storage_;
  QemuControl& qemu_;
};

// The VM's current memory in MiB ("memory: 2048" or "memory: current=2048"; default 512).
uint64_t CurrentMemoryMiB(const VmConfig& config);

}  // namespace hearth

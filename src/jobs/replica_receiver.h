// The target half of storage replication: what a node does with the volumes another node
// replicates to it (Proxmox's `pvesr prepare-local-job` / `finalize-local-job` and the
// storage import between them; pve-manager PVE/CLI/pvesr.pm, pve-guest-common
// Replication.pm prepare; docs/reference/pve-replication.md §4). The API's target routes and
// a local-path target (jobs/replication_target.h) both drive it.
//
// Volumes keep the source's storage id and volname here (as in Proxmox, where the target
// node has the same storage). The guest's config arrives with each finished run and is kept
// in `config_dir/<guest>.json` (0600) so that a failover has it.
// Thread-safety: calls for one job come one at a time from its runner; calls for different
// guests touch different volumes.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "storage/plugin.h"
#include "sys/file_system.h"

namespace hearth {

class ReplicaReceiver {
 public:
  using StorageLookup = std::function<Result<std::shared_ptr<StoragePlugin>>(const std::string& storeid)>;
  // `is_local_guest(vmid)`: a guest of this node's own has that id (then nothing is taken).
  ReplicaReceiver(StorageLookup storage, std::function<bool(int)> is_local_guest, FileSystem& fs,
                  std::string config_dir)
      : storage_(std::move(storage)), is_local_guest_(std::move(is_local_guest)), fs_(fs),
        config_dir_(std::move(config_dir)) {}

  // Before a run. Refuses a guest that another node replicates here ("guest '<vmid>' is
  // replicated here from node '<x>'"). Checks every volume (owner `guest`, a disk image, a
  // storage here that can receive it), then: with `remove` (the job is being deleted with its
  // data) frees the guest's volumes on the listed and `scan` storages that carry this job's
  // snapshots, and forgets the kept config; otherwise, when a volume has the snapshot of
  // `last_sync`, deletes the job's other snapshots on it (stale ones of runs that failed) and
  // frees the guest's volumes on those storages (and on `scan`: storages an earlier run used,
  // Proxmox's --scan) that carry this job's snapshots but are no longer replicated. Returns,
  // per volume present here, the job's snapshots it still has.
  Result<std::map<std::string, std::vector<std::string>>> Prepare(const std::string& jobid,
                                                                  const std::vector<std::string>& volids,
                                                                  const std::vector<std::string>& scan,
                                                                  int64_t last_sync, bool remove,
                                                                  const std::string& source,
                                                                  const std::function<void(const std::string&)>& log);
  // One volume's stream (a file ExportVolume wrote on the source: hostile input). `base` is
  // the snapshot it is incremental to ("" = full). Nothing changes on failure.
  Status Receive(int guest, const std::string& volid, const std::string& snap, const std::string& base,
                 const std::string& stream_file);
  // After a run: the job's snapshots older than `last_sync`'s are deleted, and the guest's
  // config (`config`, its text as the source had it) is kept with the source's node name.
  Status Finalize(const std::string& jobid, const std::vector<std::string>& volids, int64_t last_sync,
                  const std::string& source, const std::string& config,
                  const std::function<void(const std::string&)>& log);

  // Checks a volume a source sends for `guest`; its storage.
  Result<std::shared_ptr<StoragePlugin>> CheckVolume(int guest, const std::string& volid);

 private:
  StorageLookup storage_;
  std::function<bool(int)> is_local_guest_;
  FileSystem& fs_;
  std::string config_dir_;
};

}  // namespace hearth

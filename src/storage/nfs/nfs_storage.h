// An NFS export used as a directory storage, as Proxmox's NFSPlugin (pve-storage
// src/PVE/Storage/NFSPlugin.pm): everything a dir storage holds, at `path` (default
// /mnt/pve/<id>), which activation mounts from `server`:`export` when it is not mounted yet:
//   showmount --no-headers --exports <server>      (check_connection; NFSv4 `options`:
//                                                    rpcinfo -T tcp <server> nfs 4, else a
//                                                    TCP connect to the NFS port)
//   mount -t nfs <server>:<export> <path> [-o <options>]
// An IPv6 server is written in brackets. The storage is shared (every node mounts the same
// export) and inactive while the export is not mounted there.
//
// Differences from Proxmox, on purpose: the connection is checked only when a mount is
// needed (Proxmox checks at every activation; hearth activates before many operations and a
// mounted export answers for itself), and a mount in progress is not retried.
//
// Not tested against a real NFS server on the machines hearth is built on: their kernels have
// neither an NFS client nor nfsd. The unit tests check the commands and the /proc/mounts
// matching against recorded outputs; the API test checks that a failed mount is a clear error.
//
// Thread-safety: as DirStorage; activations of one storage are serialised.
#pragma once

#include <functional>
#include <mutex>
#include <string>

#include "storage/dir/dir_storage.h"

namespace hearth {

class NfsStorage final : public DirStorage {
 public:
  // `mounts` returns the text of /proc/mounts (injected by tests).
  using MountsReader = std::function<std::string()>;
  NfsStorage(const StorageConfig& config, ProcessRunner& runner, MountsReader mounts = nullptr);
  std::string type() const override { return "nfs"; }
  // Mounts the export if it is not mounted (Proxmox's errors: "storage 'x' is not online",
  // "unable to activate storage 'x' - directory '/p' does not exist", "mount error: ..."),
  // then the dir checks and subdirectories.
  Status Activate() override;
  // The export mounted at `path`, then the dir checks.
  Status Ready() const override;

  // nfs_is_mounted: a line of `mounts` with an nfs* type, the source "<server>:<export>"
  // (with or without a trailing '/') and the mount point `path` (octal escapes decoded).
  static bool IsMounted(const std::string& mounts, const std::string& server, const std::string& export_path,
                        const std::string& path);
  // "<server>:<export>", an IPv6 server in brackets.
  static std::string Source(const std::string& server, const std::string& export_path);

 private:
  Status CheckConnection();
  ProcessRunner& runner_;
  MountsReader mounts_;
  std::string server_, export_, options_;
  std::mutex activate_mu_;
};

class StorageRegistry;
void RegisterNfsStorage(StorageRegistry& registry);

}  // namespace hearth

// StorageManager: the configured storages of this node by id, each with its configuration
// and its driver, and volume-id level helpers.
//
// Lifetime: drivers are shared_ptrs. A caller holds one for the length of an operation, so a
// storage removed or reconfigured through the API meanwhile stays alive until its last user
// is done; no lock is held across I/O.
// Thread-safety: every method is safe from any thread (a shared_mutex over the table).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "model/storage_config.h"
#include "storage/plugin.h"

namespace hearth {

struct StorageEntry {
  StorageConfig config;
  std::shared_ptr<StoragePlugin> plugin;
};

class StorageManager {
 public:
  explicit StorageManager(std::string node = "localhost") : node_(std::move(node)) {}

  // Adds or replaces the storage `config.id`.
  void Put(StorageConfig config, std::shared_ptr<StoragePlugin> plugin);
  void Remove(const std::string& id);

  // Every configured storage, disabled ones too, in id order (listings, status).
  std::vector<StorageEntry> Entries() const;
  std::optional<StorageEntry> Find(const std::string& id) const;

  // A storage to operate on. Errors (Proxmox's texts, PVE::Storage storage_config and
  // storage_check_enabled): "storage 'x' does not exist", "storage 'x' is disabled",
  // "storage 'x' is not available on node 'n'".
  Result<std::shared_ptr<StoragePlugin>> Get(const std::string& storage) const;
  // The storages enabled on this node, in id order.
  std::vector<std::shared_ptr<StoragePlugin>> All() const;

  Result<std::string> PathOf(const std::string& volid) const;
  Result<VolumeInfo> InfoOf(const std::string& volid) const;
  Status Free(const std::string& volid) const;
  // How QEMU opens the volume (StoragePlugin::Blockdev).
  Result<VolumeBlockdev> BlockdevOf(const std::string& volid) const;

  const std::string& node() const { return node_; }
  // Advances on every Put and Remove (cached listings key on it).
  uint64_t Generation() const { return generation_.load(); }

 private:
  std::string node_;
  mutable std::shared_mutex mu_;
  std::map<std::string, StorageEntry> entries_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace hearth

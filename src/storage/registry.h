// StorageRegistry: storage type name -> factory. Each driver library (storage/dir, later
// storage/btrfs, ...) provides a Register* function; only daemon/ (and tests) call them, so
// no other library depends on a concrete driver. Proxmox's equivalent is the plugin list in
// PVE::Storage (pve-storage src/PVE/Storage.pm, `PVE::Storage::*Plugin->register()`).
//
// Thread-safety: fill it before any lookup; lookups are then const and safe from any thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "model/storage_config.h"
#include "storage/plugin.h"
#include "sys/process.h"

namespace hearth {

// What every driver may need besides its configuration.
struct StorageDeps {
  ProcessRunner* runner = nullptr;
  std::string node;      // this node's name (for `nodes` checks and messages)
  std::string data_dir;  // hearth's data dir: a dir storage there keeps hearth's own layout
};

// Builds a driver for one storage. Must not touch the disk (activation does that): a
// storage whose directory is missing still gets a plugin and reports itself inactive.
using StorageFactory =
    std::function<Result<std::shared_ptr<StoragePlugin>>(const StorageConfig& config, const StorageDeps& deps)>;

class StorageRegistry {
 public:
  void Register(const std::string& type, StorageFactory factory);
  bool Has(const std::string& type) const { return factories_.count(type) > 0; }
  // Registered type names, sorted.
  std::vector<std::string> Types() const;
  // Fails (kFailedPrecondition, HTTP 500) for a type the model knows but no driver was registered for.
  Result<std::shared_ptr<StoragePlugin>> Make(const StorageConfig& config, const StorageDeps& deps) const;

 private:
  std::map<std::string, StorageFactory> factories_;
};

}  // namespace hearth

// StorageConfigs: the storage configuration as the /storage API changes it. Validates with
// model/storage_config, activates a new storage, persists each storage as a record in the
// Store (cluster state: never a local file) and installs its driver in the StorageManager.
// Follows pve-storage PVE/API2/Storage/Config.pm: the order of checks and the error texts
// ("create storage failed: ...", "update storage failed: ...", "delete storage failed: ...")
// are Proxmox's; docs/reference/pve-storage.md section 1.
//
// Thread-safety: every method is safe from any thread; changes are serialised (Proxmox's
// lock_storage_config), reads are not blocked by them.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "state/store.h"
#include "storage/registry.h"
#include "storage/storage_manager.h"

namespace hearth {

class StorageConfigs {
 public:
  StorageConfigs(Store& store, const StorageRegistry& registry, StorageManager& manager, StorageDeps deps);

  // At daemon start: reads every record (writing `local` at the data dir the first time),
  // builds the drivers and activates the storages enabled here. A record that does not
  // parse or whose driver fails is skipped with a warning in `warnings` (Proxmox skips a bad
  // section the same way); only a store error fails.
  Status Load(std::vector<std::string>* warnings);

  // SHA-1 hex of every section in id order: the `digest` of GET /storage.
  std::string Digest() const;

  // Runs under the change lock after every check and before the record is written (Proxmox's
  // on_add_hook/on_update_hook/on_delete_hook: secrets kept outside storage.cfg); its error
  // stops the change.
  using Hook = std::function<Status(const StorageConfig&)>;

  // POST /storage. `params`: options without `storage` and `type`.
  Result<StorageConfig> Create(const std::string& id, const std::string& type,
                               const std::map<std::string, std::string>& params, std::vector<std::string>* warnings,
                               const Hook& before_write = {});
  // PUT /storage/{storage}. `digest` empty: no check.
  Result<StorageConfig> Update(const std::string& id, const std::map<std::string, std::string>& set,
                               const std::vector<std::string>& remove, const std::string& digest,
                               std::vector<std::string>* warnings, const Hook& before_write = {});
  // DELETE /storage/{storage}. Volumes on the storage are not touched. The hook gets the
  // config as it was (not called for a record that did not parse).
  Status Delete(const std::string& id, const Hook& before_write = {});

 private:
  Store& store_;
  const StorageRegistry& registry_;
  StorageManager& manager_;
  StorageDeps deps_;
  std::mutex change_mu_;
};

}  // namespace hearth

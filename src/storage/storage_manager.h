// StorageManager: the configured storages by id, and volume-id level helpers.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "storage/plugin.h"

namespace hearth {

class StorageManager {
 public:
  void Add(std::unique_ptr<StoragePlugin> plugin);
  // Fails with the Proxmox wording when the storage does not exist.
  Result<StoragePlugin*> Get(const std::string& storage);
  std::vector<StoragePlugin*> All();
  Result<std::string> PathOf(const std::string& volid);
  Result<VolumeInfo> InfoOf(const std::string& volid);
  Status Free(const std::string& volid);

 private:
  std::map<std::string, std::unique_ptr<StoragePlugin>> plugins_;
};

}  // namespace hearth

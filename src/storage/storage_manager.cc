#include "storage/storage_manager.h"

namespace hearth {

void StorageManager::Add(std::unique_ptr<StoragePlugin> plugin) {
  std::string id = plugin->id();
  plugins_[id] = std::move(plugin);
}

Result<StoragePlugin*> StorageManager::Get(const std::string& storage) {
  auto it = plugins_.find(storage);
  if (it == plugins_.end()) return Fail(NotFound("storage '" + storage + "' does not exist"));
  return it->second.get();
}

std::vector<StoragePlugin*> StorageManager::All() {
  std::vector<StoragePlugin*> out;
  for (auto& [id, p] : plugins_) out.push_back(p.get());
  return out;
}

Result<std::string> StorageManager::PathOf(const std::string& volid) {
  HEARTH_ASSIGN_OR_RETURN(VolumeId v, ParseVolumeId(volid));
  HEARTH_ASSIGN_OR_RETURN(StoragePlugin * p, Get(v.storage));
  return p->Path(v.volname);
}

Result<VolumeInfo> StorageManager::InfoOf(const std::string& volid) {
  HEARTH_ASSIGN_OR_RETURN(VolumeId v, ParseVolumeId(volid));
  HEARTH_ASSIGN_OR_RETURN(StoragePlugin * p, Get(v.storage));
  return p->Info(v.volname);
}

Status StorageManager::Free(const std::string& volid) {
  HEARTH_ASSIGN_OR_RETURN(VolumeId v, ParseVolumeId(volid));
  HEARTH_ASSIGN_OR_RETURN(StoragePlugin * p, Get(v.storage));
  return p->FreeVolume(v.volname);
}

}  // namespace hearth

#include "storage/storage_manager.h"

#include <mutex>

namespace hearth {

void StorageManager::Put(StorageConfig config, std::shared_ptr<StoragePlugin> plugin) {
  std::unique_lock lock(mu_);
  std::string id = config.id;
  entries_[id] = StorageEntry{std::move(config), std::move(plugin)};
  ++generation_;
}

void StorageManager::Remove(const std::string& id) {
  std::unique_lock lock(mu_);
  entries_.erase(id);
  ++generation_;
}

std::vector<StorageEntry> StorageManager::Entries() const {
  std::shared_lock lock(mu_);
  std::vector<StorageEntry> out;
  out.reserve(entries_.size());
  for (const auto& [id, e] : entries_) out.push_back(e);
  return out;
}

std::optional<StorageEntry> StorageManager::Find(const std::string& id) const {
  std::shared_lock lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

Result<std::shared_ptr<StoragePlugin>> StorageManager::Get(const std::string& storage) const {
  std::shared_lock lock(mu_);
  auto it = entries_.find(storage);
  if (it == entries_.end()) return Fail(NotFound("storage '" + storage + "' does not exist"));
  const StorageConfig& c = it->second.config;
  if (c.Disabled()) return Fail(FailedPrecondition("storage '" + storage + "' is disabled"));
  if (!c.EnabledOn(node_))
    return Fail(FailedPrecondition("storage '" + storage + "' is not available on node '" + node_ + "'"));
  return it->second.plugin;
}

std::vector<std::shared_ptr<StoragePlugin>> StorageManager::All() const {
  std::shared_lock lock(mu_);
  std::vector<std::shared_ptr<StoragePlugin>> out;
  for (const auto& [id, e] : entries_)
    if (e.config.EnabledOn(node_)) out.push_back(e.plugin);
  return out;
}

Result<std::string> StorageManager::PathOf(const std::string& volid) const {
  HEARTH_ASSIGN_OR_RETURN(VolumeId v, ParseVolumeId(volid));
  HEARTH_ASSIGN_OR_RETURN(auto p, Get(v.storage));
  return p->Path(v.volname);
}

Result<VolumeInfo> StorageManager::InfoOf(const std::string& volid) const {
  HEARTH_ASSIGN_OR_RETURN(VolumeId v, ParseVolumeId(volid));
  HEARTH_ASSIGN_OR_RETURN(auto p, Get(v.storage));
  return p->Info(v.volname);
}

Result<VolumeBlockdev> StorageManager::BlockdevOf(const std::string& volid) const {
  HEARTH_ASSIGN_OR_RETURN(VolumeId v, ParseVolumeId(volid));
  HEARTH_ASSIGN_OR_RETURN(auto p, Get(v.storage));
  return p->Blockdev(v.volname);
}

Status StorageManager::Free(const std::string& volid) const {
  HEARTH_ASSIGN_OR_RETURN(VolumeId v, ParseVolumeId(volid));
  HEARTH_ASSIGN_OR_RETURN(auto p, Get(v.storage));
  return p->FreeVolume(v.volname);
}

}  // namespace hearth

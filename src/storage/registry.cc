#include "storage/registry.h"

namespace hearth {

void StorageRegistry::Register(const std::string& type, StorageFactory factory) { factories_[type] = std::move(factory); }

std::vector<std::string> StorageRegistry::Types() const {
  std::vector<std::string> out;
  for (const auto& [type, f] : factories_) out.push_back(type);
  return out;
}

Result<std::shared_ptr<StoragePlugin>> StorageRegistry::Make(const StorageConfig& config, const StorageDeps& deps) const {
  auto it = factories_.find(config.type);
  if (it == factories_.end())
    return Fail(FailedPrecondition("storage type '" + config.type + "' has no driver in this hearth build yet"));
  return it->second(config, deps);
}

}  // namespace hearth

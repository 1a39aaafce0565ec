#include "storage/storage_configs.h"

#include <filesystem>

#include "model/vm_config.h"

namespace hearth {
namespace {

Error Prefixed(const char* what, const Error& e) {
  // Schema errors (400, per field) pass unchanged, as Proxmox's param exceptions do; plain
  // errors get the lock's prefix.
  if (!e.fields.empty() || e.code == ErrorCode::kInvalidArgument) return e;
  Error out = e;
  out.message = std::string(what) + ": " + e.message;
  return out;
}

std::string SectionsText(const std::vector<StorageRecord>& records) {
  std::string text;
  for (const auto& r : records) text += r.section + "\n";
  return text;
}

}  // namespace

StorageConfigs::StorageConfigs(Store& store, const StorageRegistry& registry, StorageManager& manager, StorageDeps deps)
    : store_(store), registry_(registry), manager_(manager), deps_(std::move(deps)) {}

Status StorageConfigs::Load(std::vector<std::string>* warnings) {
  std::lock_guard lock(change_mu_);
  auto warn = [&](const std::string& w) {
    if (warnings) warnings->push_back(w);
  };
  HEARTH_ASSIGN_OR_RETURN(auto records, store_.ListStorages());
  if (records.empty() && !deps_.data_dir.empty()) {
    // First start (or a data dir from before storage records): `local` as it always was.
    auto local = MakeStorageConfig("local", "dir",
                                   {{"path", deps_.data_dir}, {"content", "backup,images,import,iso,snippets,vztmpl"}},
                                   nullptr);
    if (!local)
      return Fail(FailedPrecondition("the data dir '" + deps_.data_dir + "' cannot be storage 'local': " +
                                     local.error().message + " (Proxmox allows letters, digits and -_.@/ in a "
                                     "directory storage's path; choose another --data-dir)"));
    StorageRecord rec{local->id, PrintStorageSection(*local)};
    HEARTH_TRY(store_.CreateStorage(rec));
    records.push_back(rec);
  }
  for (const auto& rec : records) {
    std::vector<std::string> parse_warnings;
    auto parsed = ParseStorageCfg(rec.section, &parse_warnings);
    for (const auto& w : parse_warnings) warn("storage '" + rec.id + "': " + w);
    if (!parsed || parsed->size() != 1 || parsed->front().id != rec.id) {
      warn("storage '" + rec.id + "': the stored configuration does not parse; skipped");
      continue;
    }
    const StorageConfig& config = parsed->front();
    auto plugin = registry_.Make(config, deps_);
    if (!plugin) {
      warn("storage '" + rec.id + "': " + plugin.error().message + "; skipped");
      continue;
    }
    if (config.EnabledOn(deps_.node))
      if (auto st = (*plugin)->Activate(); !st) warn(st.error().message);
    manager_.Put(config, *plugin);
  }
  return Ok();
}

std::string StorageConfigs::Digest() const {
  auto records = store_.ListStorages();
  return ConfDigest(records ? SectionsText(*records) : "");
}

Result<StorageConfig> StorageConfigs::Create(const std::string& id, const std::string& type,
                                             const std::map<std::string, std::string>& params,
                                             std::vector<std::string>* warnings, const Hook& before_write) {
  constexpr const char* kWhat = "create storage failed";
  // Parameter checks first (Proxmox's check_config runs outside the lock), so a bad request
  // for an existing id gets the parameter error.
  auto config = MakeStorageConfig(id, type, params, warnings);
  if (!config) return Fail(config.error());
  auto plugin = registry_.Make(*config, deps_);
  if (!plugin) return Fail(Prefixed(kWhat, plugin.error()));
  std::lock_guard lock(change_mu_);
  if (manager_.Find(id)) return Fail(AlreadyExists(std::string(kWhat) + ": storage ID '" + id + "' already defined"));
  // Two storages on one directory would show every disk twice, and hearth's start-up rescan
  // would adopt each as an unusedN of the other: refused (Proxmox allows it; its rescan is
  // manual).
  if (auto path = config->Get("path"); !path.empty()) {
    std::error_code ec;
    auto real = std::filesystem::weakly_canonical(path, ec);
    for (const auto& e : manager_.Entries()) {
      std::string other = e.config.Get("path");
      if (other.empty()) continue;
      auto other_real = std::filesystem::weakly_canonical(other, ec);
      if (real == other_real)
        return Fail(FailedPrecondition(std::string(kWhat) + ": path '" + path + "' is already storage '" +
                                       e.config.id + "' (" + other + ")"));
    }
  }
  // Activated before anything is written: a storage that cannot work here is not stored.
  if (config->EnabledOn(deps_.node))
    if (auto st = (*plugin)->Activate(); !st) return Fail(Prefixed(kWhat, st.error()));
  if (before_write)
    if (auto st = before_write(*config); !st) return Fail(Prefixed(kWhat, st.error()));
  if (auto st = store_.CreateStorage({id, PrintStorageSection(*config)}); !st) return Fail(Prefixed(kWhat, st.error()));
  manager_.Put(*config, *plugin);
  return *config;
}

Result<StorageConfig> StorageConfigs::Update(const std::string& id, const std::map<std::string, std::string>& set,
                                             const std::vector<std::string>& remove, const std::string& digest,
                                             std::vector<std::string>* warnings, const Hook& before_write) {
  constexpr const char* kWhat = "update storage failed";
  std::lock_guard lock(change_mu_);
  HEARTH_ASSIGN_OR_RETURN(auto records, store_.ListStorages());
  if (!digest.empty() && digest != ConfDigest(SectionsText(records)))
    return Fail(Aborted(std::string(kWhat) + ": detected modified configuration - file changed by other user? Try again."));
  auto entry = manager_.Find(id);
  if (!entry) return Fail(NotFound(std::string(kWhat) + ": storage '" + id + "' does not exist"));
  auto updated = UpdateStorageConfig(entry->config, set, remove, warnings);
  if (!updated) return Fail(Prefixed(kWhat, updated.error()));
  // No activation on update, as Proxmox.
  if (before_write)
    if (auto st = before_write(*updated); !st) return Fail(Prefixed(kWhat, st.error()));
  if (auto st = store_.UpdateStorage({id, PrintStorageSection(*updated)}, std::nullopt); !st)
    return Fail(Prefixed(kWhat, st.error()));
  entry->plugin->Reconfigure(*updated);
  manager_.Put(*updated, entry->plugin);
  return *updated;
}

Status StorageConfigs::Delete(const std::string& id, const Hook& before_write) {
  constexpr const char* kWhat = "delete storage failed";
  std::lock_guard lock(change_mu_);
  if (auto entry = manager_.Find(id); entry && before_write)
    if (auto st = before_write(entry->config); !st) return Fail(Prefixed(kWhat, st.error()));
  // From the store, so that a record skipped at start (it did not parse) can be removed too.
  if (auto st = store_.DeleteStorage(id); !st) return Fail(Prefixed(kWhat, st.error()));
  manager_.Remove(id);
  return Ok();
}

}  // namespace hearth

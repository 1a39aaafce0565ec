#include "vms/backup_keys.h"

#include <nlohmann/json.hpp>

namespace hearth {
namespace {

std::string MetaKey(const std::string& storage) { return "priv/storage/" + storage + ".enc"; }
std::string KeyringKey(const std::string& storage) { return MetaKey(storage) + ".old"; }

std::string FingerprintOf(const std::string& key_file) {
  auto k = BackupKey::FromKeyFile(key_file);
  return k ? k->fingerprint() : "";
}

}  // namespace

Result<BackupKeys::Resolved> BackupKeys::Resolve(const std::string& value, int64_t now_unix) {
  if (value.empty()) return Fail(FieldError("encryption-key", "value must not be empty (use delete=encryption-key)"));
  if (value == "autogen") {
    HEARTH_ASSIGN_OR_RETURN(BackupKey key, BackupKey::Generate());
    return Resolved{key.fingerprint(), key.ToKeyFile(now_unix)};
  }
  auto key = BackupKey::FromKeyFile(value);
  if (!key) return Fail(FieldError("encryption-key", key.error().message));
  // Stored in hearth's form: its fingerprint computed here (a PBS key file's differs).
  return Resolved{key->fingerprint(), key->ToKeyFile(now_unix)};
}

std::shared_ptr<const BackupKey> BackupKeys::Keys::Find(const std::string& fingerprint) const {
  if (current && current->fingerprint() == fingerprint) return current;
  for (const auto& k : retired)
    if (k->fingerprint() == fingerprint) return k;
  return nullptr;
}

Result<std::vector<std::string>> BackupKeys::Keyring(const std::string& storage) {
  HEARTH_ASSIGN_OR_RETURN(auto text, store_.GetMeta(KeyringKey(storage)));
  std::vector<std::string> out;
  if (!text || text->empty()) return out;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_array()) return Fail(Internal("the retired encryption keys of storage '" + storage + "' do not parse"));
  for (const auto& e : j)
    if (e.is_string()) out.push_back(e.get<std::string>());
  return out;
}

Status BackupKeys::PutKeyring(const std::string& storage, std::vector<std::string> files) {
  nlohmann::json j = nlohmann::json::array();
  for (auto& f : files) j.push_back(std::move(f));
  return store_.PutMeta(KeyringKey(storage), j.dump());
}

Result<BackupKeys::Keys> BackupKeys::Load(const StorageConfig& config) {
  Keys keys;
  HEARTH_ASSIGN_OR_RETURN(auto current, store_.GetMeta(MetaKey(config.id)));
  HEARTH_ASSIGN_OR_RETURN(auto ring, Keyring(config.id));
  std::shared_ptr<const BackupKey> stored;
  if (current && !current->empty()) {
    auto k = BackupKey::FromKeyFile(*current);
    if (!k) return Fail(Internal("the encryption key of storage '" + config.id + "' is damaged: " + k.error().message));
    stored = std::make_shared<const BackupKey>(std::move(*k));
  }
  for (const auto& f : ring)
    if (auto k = BackupKey::FromKeyFile(f)) keys.retired.push_back(std::make_shared<const BackupKey>(std::move(*k)));
  if (stored) keys.retired.push_back(stored);  // found by Find whatever the config says
  std::string fingerprint = config.Get("encryption-key");
  if (fingerprint.empty()) return keys;
  // The config's fingerprint decides: a key saved for an update whose config is not written
  // yet (or failed) is not used for new backups.
  keys.current = keys.Find(fingerprint);
  if (!keys.current)
    return Fail(FailedPrecondition("encryption configured ('" + fingerprint + "') but no encryption key file found!"));
  return keys;
}

Status BackupKeys::Save(const std::string& storage, const std::string& key_file) {
  HEARTH_ASSIGN_OR_RETURN(auto old, store_.GetMeta(MetaKey(storage)));
  if (old && !old->empty() && FingerprintOf(*old) != FingerprintOf(key_file)) HEARTH_TRY(Retire(storage));
  return store_.PutMeta(MetaKey(storage), key_file);
}

Status BackupKeys::Retire(const std::string& storage) {
  HEARTH_ASSIGN_OR_RETURN(auto current, store_.GetMeta(MetaKey(storage)));
  if (!current || current->empty()) return Ok();
  HEARTH_ASSIGN_OR_RETURN(auto ring, Keyring(storage));
  std::string fp = FingerprintOf(*current);
  bool known = false;
  for (const auto& f : ring) known = known || FingerprintOf(f) == fp;
  if (!known) {
    ring.push_back(*current);
    HEARTH_TRY(PutKeyring(storage, ring));
  }
  // "" is the Store's absent value (PutMeta has no delete).
  return store_.PutMeta(MetaKey(storage), "");
}

}  // namespace hearth

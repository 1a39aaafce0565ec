#include "vms/backup_keys.h"

namespace hearth {
namespace {

std::string MetaKey(const std::string& storage) { return "priv/storage/" + storage + ".enc"; }

}  // namespace

Result<BackupKeys::Resolved> BackupKeys::Resolve(const std::string& value, int64_t now_unix) {
  if (value == "autogen") {
    HEARTH_ASSIGN_OR_RETURN(BackupKey key, BackupKey::Generate());
    return Resolved{key.fingerprint(), key.ToKeyFile(now_unix)};
  }
  auto key = BackupKey::FromKeyFile(value);
  if (!key) return Fail(FieldError("encryption-key", key.error().message));
  // Stored in hearth's form: its fingerprint computed here (a PBS key file's differs).
  return Resolved{key->fingerprint(), key->ToKeyFile(now_unix)};
}

Result<std::shared_ptr<const BackupKey>> BackupKeys::Load(const StorageConfig& config) {
  std::string fingerprint = config.Get("encryption-key");
  if (fingerprint.empty()) return std::shared_ptr<const BackupKey>();
  HEARTH_ASSIGN_OR_RETURN(auto text, store_.GetMeta(MetaKey(config.id)));
  if (!text || text->empty())
    return Fail(FailedPrecondition("encryption configured ('" + fingerprint + "') but no encryption key file found!"));
  auto key = BackupKey::FromKeyFile(*text);
  if (!key) return Fail(Internal("the encryption key of storage '" + config.id + "' is damaged: " + key.error().message));
  if (key->fingerprint() != fingerprint)
    return Fail(FailedPrecondition("the encryption key of storage '" + config.id + "' (" + key->fingerprint() +
                                   ") does not match its configured fingerprint '" + fingerprint +
                                   "': set encryption-key again"));
  return std::make_shared<const BackupKey>(std::move(*key));
}

Status BackupKeys::Save(const std::string& storage, const std::string& key_file) {
  HEARTH_ASSIGN_OR_RETURN(auto old, store_.GetMeta(MetaKey(storage)));
  if (old && !old->empty() && *old != key_file) HEARTH_TRY(store_.PutMeta(MetaKey(storage) + ".old", *old));
  return store_.PutMeta(MetaKey(storage), key_file);
}

Status BackupKeys::Delete(const std::string& storage, bool keep_as_old) {
  // "" is the Store's absent value (PutMeta has no delete).
  HEARTH_ASSIGN_OR_RETURN(auto old, store_.GetMeta(MetaKey(storage)));
  if (keep_as_old && old && !old->empty()) HEARTH_TRY(store_.PutMeta(MetaKey(storage) + ".old", *old));
  if (!keep_as_old) HEARTH_TRY(store_.PutMeta(MetaKey(storage) + ".old", ""));
  return store_.PutMeta(MetaKey(storage), "");
}

}  // namespace hearth

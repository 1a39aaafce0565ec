// BackupKeys: the encryption keys of backup storages, kept where Proxmox VE keeps a Proxmox
// Backup Server storage's key (/etc/pve/priv/storage/<storage>.enc): in the cluster state,
// one record per storage ("priv/storage/<storage>.enc"), never in storage.cfg, which holds
// only the key's fingerprint as the storage's `encryption-key` option (PBSPlugin.pm's
// on_add_hook/on_update_hook). Replacing a key keeps the previous one as "<storage>.enc.old"
// (Proxmox renames the file the same way), since backups made with it still need it.
//
// Thread-safety: as the Store (every call is one transaction).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "backup/crypt_key.h"
#include "core/result.h"
#include "model/storage_config.h"
#include "state/store.h"

namespace hearth {

class BackupKeys {
 public:
  explicit BackupKeys(Store& store) : store_(store) {}

  // What the API's `encryption-key` value means: "autogen" makes a new key; anything else
  // must be a key file (BackupKey::FromKeyFile's errors, as field errors). Nothing is stored.
  struct Resolved {
    std::string fingerprint;  // for storage.cfg
    std::string key_file;     // what is stored and what the API returns ("config")
  };
  static Result<Resolved> Resolve(const std::string& value, int64_t now_unix);

  // The key of `config`'s storage: null when it has no `encryption-key`. Errors when the
  // option is set but the key is gone ("encryption configured ('<fp>') but no encryption key
  // file found!", Proxmox's text) or does not match it.
  Result<std::shared_ptr<const BackupKey>> Load(const StorageConfig& config);
  // Stores `key_file` as the key of `storage`, the previous key (if another) kept as .old.
  Status Save(const std::string& storage, const std::string& key_file);
  // Removes the key of `storage`: kept as .old when only encryption is turned off (backups
  // made with it still need it), removed with its .old when the storage is removed.
  Status Delete(const std::string& storage, bool keep_as_old);

 private:
  Store& store_;
};

}  // namespace hearth

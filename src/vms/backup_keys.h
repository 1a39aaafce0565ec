// BackupKeys: the encryption keys of backup storages, kept where Proxmox VE keeps a Proxmox
// Backup Server storage's key (/etc/pve/priv/storage/<storage>.enc): in the cluster state,
// one record per storage ("priv/storage/<storage>.enc"), never in storage.cfg, which holds
// only the key's fingerprint as the storage's `encryption-key` option (PBSPlugin.pm's
// on_add_hook/on_update_hook).
//
// Unlike Proxmox (which keeps one ".old" file on autogen and deletes the key with the option
// or the storage), every key a storage had is kept in its keyring ("<storage>.enc.old", a
// JSON list of key files): backups made with a retired key still restore and verify with it,
// after a rotation, after encryption is turned off, and after the storage is removed and
// added again with the same id. Keys leave the keyring only with the data dir.
//
// Thread-safety: as the Store (every call is one transaction or a read).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

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

  struct Keys {
    std::shared_ptr<const BackupKey> current;  // null: new backups are not encrypted
    std::vector<std::shared_ptr<const BackupKey>> retired;
    // The key of that fingerprint (current or retired), or null.
    std::shared_ptr<const BackupKey> Find(const std::string& fingerprint) const;
  };
  // The keys of `config`'s storage. Errors when the option is set and no key of that
  // fingerprint is kept ("encryption configured ('<fp>') but no encryption key file found!",
  // Proxmox's text); a key being replaced meanwhile is found in the keyring.
  Result<Keys> Load(const StorageConfig& config);
  // `key_file` becomes the key of `storage`; the previous one (of another fingerprint) goes
  // to the keyring.
  Status Save(const std::string& storage, const std::string& key_file);
  // The current key goes to the keyring (encryption turned off, or the storage removed).
  Status Retire(const std::string& storage);

 private:
  Result<std::vector<std::string>> Keyring(const std::string& storage);
  Status PutKeyring(const std::string& storage, std::vector<std::string> files);
  Store& store_;
};

}  // namespace hearth

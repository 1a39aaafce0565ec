// Storage definitions as Proxmox's storage.cfg holds them: one section per storage, a type
// (dir, btrfs, nfs, lvmthin, zfspool) with its options. The facts follow pve-storage
// (PVE/Storage/Plugin.pm and the per-type plugins, PVE/API2/Storage/Config.pm) and
// pve-common's SectionConfig.pm; docs/reference/pve-storage.md lists them with references.
//
// Pure functions over values: no I/O, thread-safe. Errors use Proxmox's texts. A value with a
// bad format is a field error ("Parameter verification failed.", HTTP 400); a check Proxmox
// makes in check_config (an option the type does not have, a missing required option, a
// fixed option changed) is a plain error (HTTP 500), as Proxmox's plain `die`.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "model/volume_id.h"

namespace hearth {

struct StorageTypeSpec {
  std::string_view type;
  std::vector<std::string_view> options;   // every option the type takes (its options())
  std::vector<std::string_view> required;  // on create; written first in the file
  std::vector<std::string_view> fixed;     // cannot change after create
  std::vector<ContentType> content;        // content types it can hold
  bool content_none = false;               // "none" allowed (dir, btrfs)
  std::vector<ContentType> default_content;
  std::vector<std::string_view> formats;  // image formats; the first is the default
  bool always_shared = false;             // network storage (nfs): shared without saying so
};

// Every option any type takes, sorted (the unified schema of POST /storage).
const std::vector<std::string_view>& StorageOptionNames();
// Options fixed in every type that has them: not in PUT /storage/{storage}'s schema at all
// (Proxmox's updateSchema): path, export, vgname, thinpool.
bool StorageOptionFixedEverywhere(std::string_view key);
// Options written as JSON numbers in GET /storage (booleans as 0/1, integers).
bool StorageOptionIsNumeric(std::string_view key);

// Null for a type hearth does not know.
const StorageTypeSpec* FindStorageType(std::string_view type);
// "btrfs, dir, lvmthin, nfs, zfspool"
const std::vector<std::string_view>& StorageTypeNames();

// pve-storage-id: a letter first, then letters, digits, '-', '_', '.', ending in a letter or
// digit, at least 2 characters (and at most 64: Proxmox sets no bound, hearth does).
// Errors: "storage ID 'x' cannot be shorter than 2 characters", "storage ID 'x' contains
// illegal characters" (field "storage", with "invalid format - " as Proxmox's schema says).
Status CheckStorageId(std::string_view id);

struct StorageConfig {
  std::string id;
  std::string type;
  // Canonical values by option name: booleans "0"/"1", content and nodes comma lists in
  // a stable order (Proxmox's order is its hash order: any order is faithful).
  std::map<std::string, std::string> options;

  bool Disabled() const;
  bool Shared() const;  // the option, or a network type
  std::vector<ContentType> Content() const;
  // Enabled on `node`: not disabled, and `nodes` unset or naming it.
  bool EnabledOn(std::string_view node) const;
  std::string Get(const std::string& key, std::string fallback = "") const;
};

// POST /storage after the schema: checks `params` (option name -> value, without `type`
// and `storage`) as Proxmox's check_config(create) does, fills the type's default content,
// canonicalises the path. `warnings` gets what Proxmox warns about and drops (a content type
// the storage cannot hold). Errors: field errors for bad values; "unexpected property 'k'",
// "missing value for required option 'k'", "illegal path for directory storage: p".
Result<StorageConfig> MakeStorageConfig(std::string_view id, std::string_view type,
                                        const std::map<std::string, std::string>& params,
                                        std::vector<std::string>* warnings);

// PUT /storage/{storage}: `set` and `remove` (the `delete` list) applied to `current` as
// Proxmox's update does: "can't change value of fixed parameter 'k'", "no such option 'k'",
// "unable to delete required option 'k'", "unable to delete fixed option 'k'", "cannot set
// and delete property 'k' at the same time!".
Result<StorageConfig> UpdateStorageConfig(const StorageConfig& current, const std::map<std::string, std::string>& set,
                                          const std::vector<std::string>& remove, std::vector<std::string>* warnings);

// One storage.cfg section: "<type>: <id>\n", a bare "\tdisable" if disabled, the required
// options sorted, then the others sorted, as "\t<key> <value>\n"; no trailing blank line.
std::string PrintStorageSection(const StorageConfig& config);

// A whole storage.cfg (Proxmox's, to import one): sections separated by blank lines, '#'
// comments. As Proxmox, a bad line drops only its key (a warning), a bad header or a missing
// required option drops the section (a warning). Input longer than 1 MiB is refused.
Result<std::vector<StorageConfig>> ParseStorageCfg(std::string_view text, std::vector<std::string>* warnings);

}  // namespace hearth

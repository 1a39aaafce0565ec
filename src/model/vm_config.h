// VmConfig: a VM's configuration as Proxmox models it — applied values, a [PENDING] section
// (changes waiting for the next start) and pending deletions — plus the text file format that
// is stored and hashed for the `digest`.
//
// File format (as /etc/pve/qemu-server/<vmid>.conf):
//   #description line 1          <- description, one '#' line per line (percent-escaped)
//   cores: 2                      <- "key: value", keys sorted
//   [PENDING]
//   delete: net1,!scsi1           <- '!' marks a forced delete
//   memory: 2048
//
//   [before-upgrade]              <- one section per snapshot, sorted by name
//   #snapshot comment
//   cores: 2
//   snaptime: 1764572400
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace hearth {

struct VmConfig {
  std::map<std::string, std::string> values;
  std::map<std::string, std::string> pending;
  std::map<std::string, bool> pending_delete;  // key -> forced
  // Snapshot sections by name (model/vm_snapshot.h): the applied values at snapshot time
  // plus parent, snaptime, snapstate, description.
  std::map<std::string, std::map<std::string, std::string>> snapshots;

  std::optional<std::string> Get(std::string_view key) const;
  bool Has(std::string_view key) const { return values.count(std::string(key)) > 0; }
  bool IsTemplate() const;
  std::string Lock() const;  // "" when unlocked
  // GET config's default view: pending values merged in, pending deletions removed.
  std::map<std::string, std::string> WithPending() const;
  bool HasPending() const { return !pending.empty() || !pending_delete.empty(); }
};

std::string FormatConfFile(const VmConfig& config);
Result<VmConfig> ParseConfFile(std::string_view text);
// SHA-1 hex of the config file text: the Proxmox `digest`.
std::string ConfDigest(std::string_view conf_text);

struct ConfigChange {
  std::map<std::string, std::string> set;  // canonical values (see CanonicalVmValue)
  std::vector<std::string> del;
  bool force = false;
  std::vector<std::string> revert;
};

// Records `change` in the pending section of VM `vmid`'s config. Fails (naming the field) if a
// key is both set and deleted, or a deleted/reverted key is not a known option.
Status StageChange(VmConfig& config, int vmid, const ConfigChange& change);

struct CommitResult {
  std::vector<std::string> destroy_volumes;  // no longer referenced, to be freed by the caller
  std::vector<std::string> applied;          // keys applied
};

// Applies pending entries whose key satisfies `apply_now`. Replaced or deleted disks of VM
// `vmid` become unusedN (forced deletes and deleted unusedN are returned for destruction);
// another VM's disks are only forgotten, as qemu-server does (vm_is_volid_owner).
CommitResult CommitPending(VmConfig& config, int vmid, const std::function<bool(const std::string&)>& apply_now);

// Volume ids referenced by drive keys (values, pending and snapshot sections) and by
// `vmstate` (RAM state volumes), excluding cdrom media and "none"/"cdrom"/paths. Used for destroy and for "is this volume in use".
std::vector<std::string> ReferencedVolumes(const VmConfig& config, bool include_cdroms = false);

// The storage volume of one drive value, or "" if it has none (none, cdrom, paths).
std::string DriveVolume(std::string_view key, std::string_view value);

std::string NextUnusedKey(const VmConfig& config);

}  // namespace hearth

// The VM configuration keys hearth accepts (the Proxmox qemu-server $confdesc subset that
// real clients send), with their wire types and validators.
//
// One table serves three purposes: validating API parameters, typing JSON output (integer
// and boolean keys go out as JSON numbers, everything else as strings, exactly as PVE), and
// canonicalising values the way PVE re-renders them (drives, NICs, tags, boot order).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "model/property_string.h"
#include "model/vm_device_formats.h"

namespace hearth {

enum class KeyType { kString, kInteger, kBoolean, kNumber };

struct VmKeySpec {
  std::string name;  // "cores"; for indexed keys the prefix ("net")
  KeyType type = KeyType::kString;
  int max_index = -1;  // >= 0: indexed key name0..nameN
  std::optional<double> min, max;
  std::vector<std::string> enum_values;
  // Validates an already type-checked value and returns its canonical form, or an error
  // message naming what is wrong. Null: any single-line string is fine.
  Result<std::string> (*canon)(std::string_view value) = nullptr;
  // Proxmox's `pattern`, checked after the format: a mismatch reads "value does not match
  // the regex pattern" (no "invalid format - ").
  bool (*matches)(std::string_view value) = nullptr;
  bool internal = false;  // set by hearth only (template, lock, meta, ...): rejected from users
  std::string description;
  // Longest accepted value in characters, checked before any parsing. Proxmox's own
  // maxLength where it sets one (description 8192, smbios1 512), else kDefaultMaxLength.
  size_t max_length = 0;
};

constexpr size_t kDefaultMaxLength = 4096;

// nullopt for unknown keys. Handles indexed keys ("net3" -> the "net" spec).
const VmKeySpec* FindVmKey(std::string_view key);
const std::vector<VmKeySpec>& AllVmKeys();

// The privileges (any one suffices, joined by '|') a user other than root@pam needs on
// /vms/<vmid> to set or delete `key`, after qemu-server's check_vm_modify_config_perm:
// "" for keys whose check depends on the value (drives, serialN, usbN, hostpciN,
// virtiofsN, unusedN, tags: see ValueDependentPrivilege), kRootOnly for keys only root@pam
// may set (args, hookscript, affinity, hugepages, parallelN, lock, vmgenid, ...).
inline constexpr const char* kRootOnly = "root";
std::string ConfigKeyPrivilege(std::string_view key);

// True if every non-blank line of the (percent-encoded) sshkeys value is an OpenSSH public
// key: a known type and a base64 blob that names that type. PVE runs `ssh-keygen -l` on
// each line and fails the call with "SSH public key validation error" (HTTP 500).
bool SshKeysValid(std::string_view urlencoded);

// Type-checks and canonicalises one user-supplied value. The error carries the key as field.
Result<std::string> CanonicalVmValue(std::string_view key, std::string_view value);

// Tags: lower-cased, de-duplicated, sorted, joined with ';' (PVE get_unique_tags).
Result<std::string> NormalizeTags(std::string_view value);

// The keys a running VM can take without a restart (metadata and cloud-init inputs; device
// hot-plug comes later). Everything else becomes pending until the next start.
bool IsHotApplicable(std::string_view key);

bool IsCloudInitKey(std::string_view key);

// Formats of property-string keys that validation and their consumers (argv builder,
// cloud-init renderer) both need: one definition each.
const PropertyFormat& AgentFormat();
const PropertyFormat& IpConfigFormat();
// `agent: 1`, `enabled=1,...`, in any key order.
bool AgentEnabled(std::string_view value);

}  // namespace hearth

#include "model/vm_config.h"

#include <openssl/sha.h>

#include <set>

#include "core/strings.h"
#include "model/drive.h"
#include "model/volume_id.h"
#include "model/vm_schema.h"

namespace hearth {

std::optional<std::string> VmConfig::Get(std::string_view key) const {
  auto it = values.find(std::string(key));
  if (it == values.end()) return std::nullopt;
  return it->second;
}

bool VmConfig::IsTemplate() const { return Get("template").value_or("0") == "1"; }
std::string VmConfig::Lock() const { return Get("lock").value_or(""); }

std::map<std::string, std::string> VmConfig::WithPending() const {
  auto out = values;
  for (const auto& [k, v] : pending) out[k] = v;
  for (const auto& [k, forced] : pending_delete) out.erase(k);
  return out;
}

namespace {

// The VM a disk volume belongs to, by its name: "local:100/vm-100-disk-0.qcow2" and the
// linked clone "local:100/base-100-disk-0.qcow2/101/vm-101-disk-0.qcow2" (owner 101); 0 for
// a name that is not a VM disk's.
int VolumeOwner(const std::string& volid) {
  size_t slash = volid.rfind('/');
  std::string file = volid.substr(slash == std::string::npos ? volid.find(':') + 1 : slash + 1);
  auto dn = ParseDiskName(file.substr(0, file.rfind('.')));
  return dn ? dn->vmid : 0;
}

// Description lines are stored as comments; escape what would break the line format.
std::string EscapeCommentLine(std::string_view line) {
  std::string out;
  for (char c : line) {
    if (c == '%') out += "%25";
    else if (c == '\r') out += "%0D";
    else out += c;
  }
  return out;
}

// pve-configid, as qemu-server's parser takes snapshot headers: [a-z][a-z0-9_-]+ (any case),
// at most 40 characters; "pending" in any case is the pending section's, never a snapshot.
bool IsSnapshotSectionName(const std::string& name) {
  if (name.size() < 2 || name.size() > 40 || !std::isalpha(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return ToLower(name) != "pending";
}

void AppendSection(std::string& out, const std::map<std::string, std::string>& values) {
  if (auto d = values.find("description"); d != values.end())
    for (const auto& line : Split(d->second, '\n')) out += "#" + EscapeCommentLine(line) + "\n";
  for (const auto& [k, v] : values)
    if (k != "description") out += k + ": " + v + "\n";
}

}  // namespace

std::string FormatConfFile(const VmConfig& config) {
  std::string out;
  AppendSection(out, config.values);
  if (config.HasPending()) {
    out += "\n[PENDING]\n";
    if (!config.pending_delete.empty()) {
      std::vector<std::string> dels;
      for (const auto& [k, forced] : config.pending_delete) dels.push_back((forced ? "!" : "") + k);
      out += "delete: " + Join(dels, ",") + "\n";
    }
    AppendSection(out, config.pending);
  }
  for (const auto& [name, section] : config.snapshots) {
    out += "\n[" + name + "]\n";
    AppendSection(out, section);
  }
  return out;
}

Result<VmConfig> ParseConfFile(std::string_view text) {
  VmConfig cfg;
  std::map<std::string, std::string>* section = &cfg.values;
  std::string description;
  bool in_pending = false;
  auto flush_description = [&] {
    if (!description.empty()) {
      description.pop_back();  // trailing '\n'
      // We write '%' as %25; a hand-edited file may hold a bare '%': keep such text as it is.
      auto decoded = PercentDecode(description, false);
      (*section)["description"] = decoded ? *decoded : description;
      description.clear();
    }
  };
  for (const auto& line : Split(text, '\n')) {
    if (line.empty()) continue;
    if (line[0] == '#') {
      description += line.substr(1) + "\n";
      continue;
    }
    if (line == "[PENDING]") {
      flush_description();
      section = &cfg.pending;
      in_pending = true;
      continue;
    }
    if (line[0] == '[' && line.back() == ']' && IsSnapshotSectionName(line.substr(1, line.size() - 2))) {
      flush_description();
      std::string name = line.substr(1, line.size() - 2);
      if (cfg.snapshots.count(name)) return Fail(Internal("duplicate snapshot section '" + line + "'"));
      section = &cfg.snapshots[name];
      in_pending = false;
      continue;
    }
    if (line[0] == '[') return Fail(Internal("unsupported config section '" + line + "'"));
    size_t colon = line.find(": ");
    if (colon == std::string::npos) return Fail(Internal("malformed config line '" + line + "'"));
    std::string key = line.substr(0, colon), value = line.substr(colon + 2);
    if (in_pending && key == "delete") {
      for (auto k : SplitAny(value, ",")) {
        bool forced = !k.empty() && k[0] == '!';
        cfg.pending_delete[forced ? k.substr(1) : k] = forced;
      }
      continue;
    }
    (*section)[key] = value;
  }
  flush_description();
  return cfg;
}

std::string ConfDigest(std::string_view text) {
  unsigned char md[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), md);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(md), sizeof md));
}

namespace {

// A disk that only a pending value names and that the change drops (replaced, deleted or
// reverted) becomes unusedN, as qemu-server's vmconfig_register_unused_drive does for the
// old pending drive; otherwise nothing would ever free it (found by the chaos test: a
// destroy freed only what the config still named).
void ParkPendingVolume(VmConfig& cfg, int vmid, const std::string& key, const std::string& new_value) {
  auto it = cfg.pending.find(key);
  if (it == cfg.pending.end()) return;
  auto dk = DriveKey::Parse(key);
  if (!dk || dk->bus == DriveBus::kUnused) return;
  std::string vol = DriveVolume(key, it->second);
  if (vol.empty() || vol == DriveVolume(key, new_value)) return;
  auto d = ParseDrive(dk->bus, it->second);
  if (!d || d->IsCdrom()) return;
  for (const auto* m : {&cfg.values, &cfg.pending})
    for (const auto& [k, v] : *m)
      if (k != key && DriveVolume(k, v) == vol) return;  // still named elsewhere
  if (VolumeOwner(vol) != vmid) return;  // another VM's disk: only the reference goes
  std::string unused = NextUnusedKey(cfg);
  if (!unused.empty()) cfg.values[unused] = vol;
}

}  // namespace

Status StageChange(VmConfig& cfg, int vmid, const ConfigChange& change) {
  for (const auto& k : change.del) {
    if (!FindVmKey(k)) return Fail(FieldError("delete", "unknown option '" + k + "'"));
    if (change.set.count(k))
      return Fail(FieldError("delete", "you can't use '-" + k + "' and '-delete " + k + "' at the same time"));
  }
  for (const auto& k : change.revert) {
    if (!FindVmKey(k)) return Fail(FieldError("revert", "unknown option '" + k + "'"));
    if (change.set.count(k))
      return Fail(FieldError("revert", "you can't use '-" + k + "' and '-revert " + k + "' at the same time"));
  }
  for (const auto& k : change.revert) {
    ParkPendingVolume(cfg, vmid, k, "");
    cfg.pending.erase(k);
    cfg.pending_delete.erase(k);
  }
  for (const auto& k : change.del) {
    ParkPendingVolume(cfg, vmid, k, "");
    cfg.pending.erase(k);
    if (cfg.values.count(k)) cfg.pending_delete[k] = change.force;
  }
  for (const auto& [k, v] : change.set) {
    ParkPendingVolume(cfg, vmid, k, v);
    cfg.pending_delete.erase(k);
    if (cfg.Get(k) == v) {
      cfg.pending.erase(k);  // setting the current value is no change
    } else {
      cfg.pending[k] = v;
    }
  }
  return Ok();
}

std::string DriveVolume(std::string_view key, std::string_view value) {
  auto dk = DriveKey::Parse(key);
  if (!dk) return "";
  auto d = ParseDrive(dk->bus, value);
  if (!d) return "";
  const std::string& f = d->file;
  if (f == "none" || f == "cdrom" || f.empty() || f[0] == '/' || f.find(':') == std::string::npos) return "";
  if (ParseDriveAllocation(f)) return "";
  return f;
}

std::vector<std::string> ReferencedVolumes(const VmConfig& cfg, bool include_cdroms) {
  std::set<std::string> vols;
  auto scan = [&](const std::map<std::string, std::string>& m) {
    for (const auto& [k, v] : m) {
      auto dk = DriveKey::Parse(k);
      if (!dk) continue;
      auto d = ParseDrive(dk->bus, v);
      if (!d || (d->IsCdrom() && !include_cdroms)) continue;
      std::string vol = DriveVolume(k, v);
      if (!vol.empty()) vols.insert(vol);
    }
  };
  // A snapshot's RAM state volume (and a hibernated VM's, in the config itself) is the VM's too.
  auto state = [&](const std::map<std::string, std::string>& m) {
    auto it = m.find("vmstate");
    if (it != m.end() && it->second.find(':') != std::string::npos) vols.insert(it->second);
  };
  scan(cfg.values);
  state(cfg.values);
  scan(cfg.pending);
  for (const auto& [name, section] : cfg.snapshots) {
    scan(section);
    state(section);
  }
  return {vols.begin(), vols.end()};
}

std::string NextUnusedKey(const VmConfig& cfg) {
  for (int i = 0; i <= 255; ++i) {
    std::string k = "unused" + std::to_string(i);
    if (!cfg.values.count(k) && !cfg.pending.count(k)) return k;
  }
  return "";
}

namespace {

// A disk volume (not a cdrom) that goes away from a drive key becomes unusedN, unless forced.
void DetachVolume(VmConfig& cfg, int vmid, const std::string& key, const std::string& old_value, bool force,
                  CommitResult& result) {
  auto dk = DriveKey::Parse(key);
  if (!dk) return;
  std::string vol = DriveVolume(key, old_value);
  if (vol.empty()) return;
  // Another VM's disk attached here is never freed nor kept as unusedN, only forgotten
  // (qemu-server's try_deallocate_drive and vmconfig_register_unused_drive check
  // vm_is_volid_owner): deleting it here deleted the owner's disk (found by a break-it pass).
  if (VolumeOwner(vol) != vmid) return;
  // A snapshot still holds it: never destroyed here (a rollback brings it back; destroying the
  // VM frees it), as qemu-server's is_volume_in_use check.
  bool in_snapshot = false;
  for (const auto& [name, section] : cfg.snapshots)
    for (const auto& [k, v] : section) in_snapshot = in_snapshot || (DriveKey::Parse(k) && DriveVolume(k, v) == vol);
  if (in_snapshot && (force || dk->bus == DriveBus::kUnused)) return;
  // Still named by another key (moved between keys, or an unusedN beside the drive that uses
  // it): nothing to detach, and never to destroy (found by a break-it pass: deleting such an
  // unusedN destroyed the live disk).
  for (const auto& [k, v] : cfg.values)
    if (k != key && DriveKey::Parse(k) && DriveVolume(k, v) == vol) return;
  if (dk->bus == DriveBus::kUnused) {
    result.destroy_volumes.push_back(vol);
    return;
  }
  // A cloud-init drive is generated data: removing it destroys it (never an unusedN).
  std::string file = vol.substr(vol.rfind('/') == std::string::npos ? vol.find(':') + 1 : vol.rfind('/') + 1);
  if (auto dn = ParseDiskName(file.substr(0, file.rfind('.'))); dn && dn->cloudinit) {
    if (!in_snapshot) result.destroy_volumes.push_back(vol);
    return;
  }
  auto d = ParseDrive(dk->bus, old_value);
  if (d && d->IsCdrom()) return;
  if (force) {
    result.destroy_volumes.push_back(vol);
  } else {
    std::string unused = NextUnusedKey(cfg);
    if (!unused.empty()) cfg.values[unused] = vol;
  }
}

}  // namespace

CommitResult CommitPending(VmConfig& cfg, int vmid, const std::function<bool(const std::string&)>& apply_now) {
  CommitResult result;
  for (auto it = cfg.pending_delete.begin(); it != cfg.pending_delete.end();) {
    const auto [key, forced] = *it;
    if (!apply_now(key)) {
      ++it;
      continue;
    }
    if (auto old = cfg.values.find(key); old != cfg.values.end()) {
      std::string old_value = old->second;
      cfg.values.erase(old);
      DetachVolume(cfg, vmid, key, old_value, forced, result);
    }
    result.applied.push_back(key);
    it = cfg.pending_delete.erase(it);
  }
  for (auto it = cfg.pending.begin(); it != cfg.pending.end();) {
    const std::string key = it->first;
    if (!apply_now(key)) {
      ++it;
      continue;
    }
    std::string new_value = it->second;
    auto old = cfg.values.find(key);
    std::optional<std::string> old_value;
    if (old != cfg.values.end()) old_value = old->second;
    cfg.values[key] = new_value;
    if (old_value && DriveVolume(key, *old_value) != DriveVolume(key, new_value))
      DetachVolume(cfg, vmid, key, *old_value, false, result);
    result.applied.push_back(key);
    it = cfg.pending.erase(it);
  }
  return result;
}

}  // namespace hearth

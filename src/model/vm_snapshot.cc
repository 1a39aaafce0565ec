#include "model/vm_snapshot.h"

#include <set>

#include "core/pattern.h"
#include "core/strings.h"
#include "model/drive.h"

namespace hearth {
namespace {

// Keys a snapshot section does not copy from the config, and a rollback does not copy back
// (AbstractConfig __snapshot_copy_config / __snapshot_apply_config).
bool NotCopied(const std::string& key) {
  return key == "snapstate" || key == "snaptime" || key == "vmstate" || key == "lock" || key == "digest" ||
         key == "description" || StartsWith(key, "unused");
}

Error Plain(const std::string& text) { return Internal(text); }

// What a snapshot with RAM records about the QEMU that saved it: used for the start after a
// rollback, never put back into the config (qemu-server __snapshot_rollback_hook).
bool RunningOnly(const std::string& key) {
  return key == "runningmachine" || key == "runningcpu" || key == "running-nets-host-mtu";
}

}  // namespace

std::string ReplicationSnapshotName(const std::string& jobid, int64_t time) {
  return "__replicate_" + jobid + "_" + std::to_string(time) + "__";
}

std::optional<std::pair<std::string, int64_t>> ParseReplicationSnapshotName(const std::string& name) {
  // Canonical numbers only (no leading zeros), so a name means one job and one time.
  static const Pattern re("__replicate_([1-9][0-9]{2,8}-(?:0|[1-9][0-9]{0,8}))_([1-9][0-9]{0,11})__");
  auto m = re.Capture(name);
  if (!m) return std::nullopt;
  auto t = ParseInt((*m)[1]);
  if (!t) return std::nullopt;
  return std::make_pair((*m)[0], *t);
}

bool WantsFsFreeze(const VmConfig& cfg) {
  std::string agent = cfg.Get("agent").value_or("0");
  bool enabled = agent == "1" || StartsWith(agent, "1,") || agent.find("enabled=1") != std::string::npos;
  return enabled && agent.find("freeze-fs=0") == std::string::npos;
}

Status CheckNewSnapshotName(const std::string& name) {
  bool ok = name.size() >= 2 && std::isalpha(static_cast<unsigned char>(name[0]));
  for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-');
  if (!ok) return Fail(FieldError("snapname", "invalid format - invalid configuration ID '" + name + "'"));
  if (name.size() > 40) return Fail(FieldError("snapname", "value may only be 40 characters long"));
  if (name == "current") return Fail(Plain("unable to use snapshot name 'current' (reserved name)"));
  if (ToLower(name) == "pending") return Fail(Plain("unable to use snapshot name 'pending' (reserved name)"));
  return Ok();
}

std::vector<std::pair<std::string, std::string>> SnapshotDrives(const std::map<std::string, std::string>& section) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [k, v] : section) {
    auto dk = DriveKey::Parse(k);
    if (!dk || dk->bus == DriveBus::kUnused) continue;
    auto d = ParseDrive(dk->bus, v);
    if (!d || d->IsCdrom()) continue;
    std::string vol = DriveVolume(k, v);
    if (!vol.empty()) out.emplace_back(k, vol);
  }
  return out;
}

Status PrepareSnapshot(VmConfig& cfg, const std::string& name, const std::string& description, int64_t now,
                       std::vector<std::string>* warnings) {
  if (cfg.IsTemplate()) return Fail(Plain("you can't take a snapshot if it's a template"));
  if (!cfg.Lock().empty()) return Fail(Plain("VM is locked (" + cfg.Lock() + ")"));
  if (cfg.snapshots.count(name)) return Fail(Plain("snapshot name '" + name + "' already used"));
  for (auto& [other, section] : cfg.snapshots)
    if (auto p = section.find("parent"); p != section.end() && p->second == name) {
      if (warnings) warnings->push_back("deleting parent '" + name + "' reference from '" + other +
                                        "' to avoid bogus snapshot cycle.");
      section.erase(p);
    }
  std::map<std::string, std::string> section;
  for (const auto& [k, v] : cfg.values)
    if (!NotCopied(k) && !RunningOnly(k)) section[k] = v;
  section["snapstate"] = "prepare";
  section["snaptime"] = std::to_string(now);
  if (!description.empty()) section["description"] = description;
  cfg.snapshots[name] = std::move(section);
  cfg.values["lock"] = "snapshot";
  return Ok();
}

Status CommitSnapshot(VmConfig& cfg, const std::string& name) {
  if (cfg.Lock() != "snapshot") return Fail(Plain("missing snapshot lock"));
  auto it = cfg.snapshots.find(name);
  if (it == cfg.snapshots.end()) return Fail(Plain("snapshot '" + name + "' does not exist"));
  if (it->second.count("snapstate") == 0 || it->second["snapstate"] != "prepare")
    return Fail(Plain("wrong snapshot state"));
  it->second.erase("snapstate");
  cfg.values.erase("lock");
  cfg.values["parent"] = name;
  return Ok();
}

void AbandonSnapshot(VmConfig& cfg, const std::string& name) {
  cfg.snapshots.erase(name);
  if (cfg.Lock() == "snapshot") cfg.values.erase("lock");
}

Status PrepareSnapshotDelete(VmConfig& cfg, const std::string& name, bool force) {
  // A delete that failed half-way left its lock and state: `force` finishes it.
  bool resume = force && cfg.Lock() == "snapshot-delete" && cfg.snapshots.count(name) &&
                cfg.snapshots.at(name).count("snapstate") && cfg.snapshots.at(name).at("snapstate") == "delete";
  if (!cfg.Lock().empty() && !resume) return Fail(Plain("VM is locked (" + cfg.Lock() + ")"));
  if (cfg.IsTemplate()) return Fail(Plain("you can't delete a snapshot if vm is a template"));
  auto it = cfg.snapshots.find(name);
  if (it == cfg.snapshots.end()) return Fail(Plain("snapshot '" + name + "' does not exist"));
  cfg.values["lock"] = "snapshot-delete";
  it->second["snapstate"] = "delete";
  return Ok();
}

Status FinishSnapshotDelete(VmConfig& cfg, const std::string& name) {
  if (cfg.Lock() != "snapshot-delete") return Fail(Plain("encountered invalid lock, expected 'snapshot-delete'"));
  auto it = cfg.snapshots.find(name);
  if (it == cfg.snapshots.end()) return Fail(Plain("snapshot '" + name + "' does not exist"));
  std::string grandparent = it->second.count("parent") ? it->second.at("parent") : "";
  auto reparent = [&](std::map<std::string, std::string>& m) {
    if (auto p = m.find("parent"); p != m.end() && p->second == name) {
      if (grandparent.empty()) m.erase(p);
      else p->second = grandparent;
    }
  };
  reparent(cfg.values);
  for (auto& [other, section] : cfg.snapshots)
    if (other != name) reparent(section);
  auto drives = SnapshotDrives(it->second);
  cfg.snapshots.erase(it);
  cfg.values.erase("lock");
  // A disk only this snapshot still held becomes unusedN (AbstractConfig snapshot_delete's
  // add_unused_volume), or nothing would ever free it.
  for (const auto& [key, vol] : drives) {
    bool named = false;
    for (const auto& [k, v] : cfg.values) named = named || (DriveKey::Parse(k) && DriveVolume(k, v) == vol);
    for (const auto& [k, v] : cfg.pending) named = named || (DriveKey::Parse(k) && DriveVolume(k, v) == vol);
    for (const auto& [other, section] : cfg.snapshots)
      for (const auto& [k, v] : section) named = named || (DriveKey::Parse(k) && DriveVolume(k, v) == vol);
    std::string unused = NextUnusedKey(cfg);
    if (!named && !unused.empty()) cfg.values[unused] = vol;
  }
  return Ok();
}

Status CheckRollback(const VmConfig& cfg, const std::string& name) {
  if (cfg.IsTemplate()) return Fail(Plain("you can't rollback if vm is a template"));
  auto it = cfg.snapshots.find(name);
  if (it == cfg.snapshots.end()) return Fail(Plain("snapshot '" + name + "' does not exist"));
  if (auto st = it->second.find("snapstate"); st != it->second.end())
    return Fail(Plain("unable to rollback to incomplete snapshot (snapstate = " + st->second + ")"));
  if (!cfg.Lock().empty()) return Fail(Plain("VM is locked (" + cfg.Lock() + ")"));
  return Ok();
}

Status ApplyRollback(VmConfig& cfg, const std::string& name) {
  if (cfg.Lock() != "rollback") return Fail(Plain("got wrong lock"));
  auto it = cfg.snapshots.find(name);
  if (it == cfg.snapshots.end()) return Fail(Plain("snapshot '" + name + "' does not exist"));
  const auto& snap = it->second;
  // Disks only the current config names stay reachable as unusedN.
  std::set<std::string> in_snapshot;
  for (const auto& [k, vol] : SnapshotDrives(snap)) in_snapshot.insert(vol);
  std::vector<std::string> orphans;
  for (const auto& [k, vol] : SnapshotDrives(cfg.values))
    if (!in_snapshot.count(vol)) orphans.push_back(vol);
  std::map<std::string, std::string> restored;
  for (const auto& [k, v] : cfg.values)
    if (k == "description" || StartsWith(k, "unused")) restored[k] = v;
  for (const auto& [k, v] : snap)
    if (!NotCopied(k) && !RunningOnly(k)) restored[k] = v;
  restored["parent"] = name;
  // An unusedN naming a disk the snapshot attaches again goes (qemu-server's
  // write_vm_config drops unused entries a drive uses).
  std::set<std::string> attached;
  for (const auto& [k, vol] : SnapshotDrives(restored)) attached.insert(vol);
  for (auto it = restored.begin(); it != restored.end();)
    it = StartsWith(it->first, "unused") && attached.count(it->second) ? restored.erase(it) : std::next(it);
  cfg.values = std::move(restored);
  cfg.pending.clear();
  cfg.pending_delete.clear();
  for (const auto& vol : orphans) {
    bool named = false;
    for (const auto& [k, v] : cfg.values) named = named || v == vol;
    std::string key = NextUnusedKey(cfg);
    if (!named && !key.empty()) cfg.values[key] = vol;
  }
  return Ok();
}

}  // namespace hearth

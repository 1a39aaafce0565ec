#include "vms/vm_registry.h"

namespace hearth {

std::string VmRegistry::ConfigNotFound(int vmid) const {
  return "Configuration file 'nodes/" + node_ + "/qemu-server/" + std::to_string(vmid) + ".conf' does not exist";
}

void VmRegistry::Load(int vmid, VmEntry entry) {
  WriteLock lock(*this);
  vms_[vmid] = std::move(entry);
}

Status VmRegistry::Reserve(int vmid, VmEntry entry, const std::string& taken_message) {
  std::string text = entry.conf_text;
  {
    // The id is taken in memory first, so the store write below runs without the registry
    // lock (it may wait behind another write's fsync).
    WriteLock lock(*this);
    if (vms_.count(vmid)) return Fail(Internal(taken_message));
    vms_[vmid] = std::move(entry);
  }
  auto st = store_.CreateVm({vmid, node_, text}, /*durable=*/false);
  if (!st) {
    Erase(vmid);
    return Fail(st.error().code == ErrorCode::kAlreadyExists ? Internal(taken_message) : st.error());
  }
  return Ok();
}

void VmRegistry::Erase(int vmid) {
  WriteLock lock(*this);
  vms_.erase(vmid);
}

bool VmRegistry::Exists(int vmid) const {
  std::shared_lock lock(mu_);
  return vms_.count(vmid) > 0;
}

bool VmRegistry::IsRunning(int vmid) const {
  std::shared_lock lock(mu_);
  auto it = vms_.find(vmid);
  return it != vms_.end() && (it->second.rt.pid != 0 || it->second.rt.starting);
}

Result<VmConfig> VmRegistry::Config(int vmid) const {
  std::shared_lock lock(mu_);
  auto it = vms_.find(vmid);
  if (it == vms_.end()) return Fail(NotFound(ConfigNotFound(vmid)));
  return it->second.config;
}

Status VmRegistry::Read(int vmid, const std::function<void(const VmEntry&)>& fn) const {
  std::shared_lock lock(mu_);
  auto it = vms_.find(vmid);
  if (it == vms_.end()) return Fail(NotFound(ConfigNotFound(vmid)));
  fn(it->second);
  return Ok();
}

void VmRegistry::ForEach(const std::function<void(int, const VmEntry&)>& fn) const {
  std::shared_lock lock(mu_);
  for (const auto& [vmid, e] : vms_) fn(vmid, e);
}

std::vector<int> VmRegistry::Ids() const {
  std::shared_lock lock(mu_);
  std::vector<int> ids;
  ids.reserve(vms_.size());
  for (const auto& [vmid, e] : vms_) ids.push_back(vmid);
  return ids;
}

Result<int> VmRegistry::NextId(std::optional<int> wanted) const {
  std::shared_lock lock(mu_);
  if (wanted) {
    if (vms_.count(*wanted)) return Fail(FieldError("vmid", "VM " + std::to_string(*wanted) + " already exists"));
    return *wanted;
  }
  // PVE (Cluster.pm nextid): the lowest free id in [100, 1000000).
  for (int id = 100; id < 1000000; ++id)
    if (!vms_.count(id)) return id;
  return Fail(Internal("unable to get any free VMID in range [100, 1000000]"));
}

Status VmRegistry::Mutate(int vmid, const std::function<Status(VmConfig&)>& fn, const std::string& expect_digest) {
  // Changes to one VM's config are serialised by its stripe; the durable store write
  // happens outside the registry lock, so writes to different VMs share an fsync (the
  // store's group commit) and readers are never held up by the disk.
  std::lock_guard stripe(mutate_stripes_[static_cast<size_t>(vmid) % mutate_stripes_.size()]);
  VmConfig copy;
  std::string old_text;
  {
    std::shared_lock lock(mu_);
    auto it = vms_.find(vmid);
    if (it == vms_.end()) return Fail(NotFound(ConfigNotFound(vmid)));
    if (!expect_digest.empty() && expect_digest != ConfDigest(it->second.conf_text))
      return Fail(FailedPrecondition("checksum mismatch (file change by other user?)"));
    copy = it->second.config;
    old_text = it->second.conf_text;
  }
  HEARTH_TRY(fn(copy));
  std::string text = FormatConfFile(copy);
  if (text == old_text) return Ok();
  HEARTH_TRY(store_.UpdateVm({vmid, node_, text}, old_text));
  WriteLock lock(*this);
  auto it = vms_.find(vmid);
  if (it == vms_.end()) return Fail(NotFound(ConfigNotFound(vmid)));
  it->second.config = std::move(copy);
  it->second.conf_text = std::move(text);
  return Ok();
}

void VmRegistry::SetRuntime(int vmid, const std::function<void(VmRuntime&)>& fn) {
  WriteLock lock(*this);
  auto it = vms_.find(vmid);
  if (it != vms_.end()) fn(it->second.rt);
}

}  // namespace hearth

#include "vms/vm_state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "sys/unique_fd.h"
#include "core/strings.h"
#include "model/drive.h"
#include "model/volume_id.h"

namespace hearth {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

Result<std::string> OpenablePath(StorageManager& storage, const std::string& volid) {
  auto path = storage.PathOf(volid);
  if (!path) return Fail(std::move(path.error()).WithContext("vmstate"));
  return *path;
}

}  // namespace

uint64_t CurrentMemoryMiB(const VmConfig& config) {
  std::string m = config.Get("memory").value_or("512");
  if (StartsWith(m, "current=")) m = m.substr(8);
  m = m.substr(0, m.find(','));
  auto n = ParseUint(m);
  return n && *n > 0 ? *n : 512;
}

std::string VmStateVolumes::ChooseStorage(const VmConfig& config) const {
  if (auto v = config.Get("vmstatestorage"); v && !v->empty()) return *v;
  std::set<std::string> used;  // sorted, as foreach_storage_used_by_vm visits them
  for (const auto& vol : ReferencedVolumes(config))
    if (auto id = ParseVolumeId(vol)) used.insert(id->storage);
  std::string shared, local;
  for (const auto& sid : used) {
    auto entry = storage_.Find(sid);
    if (!entry) continue;
    std::string& dst = entry->config.Shared() ? shared : local;
    if (dst.empty() || !entry->config.Get("path").empty()) dst = sid;  // a file-based one preferred
  }
  if (!shared.empty()) return shared;
  if (!local.empty()) return local;
  return "local";
}

std::string VmStateVolumes::VolumeIdFor(const std::string& storage, int vmid, const std::string& snapname) {
  std::string id = std::to_string(vmid);
  return storage + ":" + id + "/vm-" + id + "-state-" + snapname + ".raw";
}

Status VmStateVolumes::Allocate(const std::string& volid, int vmid, uint64_t memory_mib) {
  HEARTH_ASSIGN_OR_RETURN(VolumeId id, ParseVolumeId(volid));
  HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, storage_.Get(id.storage));
  if (!st->Supports(ContentType::kImages))
    return Fail(FailedPrecondition("storage '" + id.storage + "' does not support vm images (vmstate)"));
  // Twice the memory plus room for device state, as qemu-server sizes it; sparse, so only
  // what QEMU writes takes space.
  uint64_t size = (memory_mib * 2 + 500) * kMiB;
  std::string file = id.volname.substr(id.volname.find('/') + 1);
  std::string stem = file.substr(0, file.rfind('.'));
  HEARTH_ASSIGN_OR_RETURN(std::string got, st->AllocImage(vmid, "raw", size, stem, nullptr));
  if (id.storage + ":" + got != volid) {
    (void)st->FreeVolume(got);
    return Fail(Internal("vmstate: storage '" + id.storage + "' named the state volume '" + got + "', not '" +
                         id.volname + "'"));
  }
  return Ok();
}

Result<uint64_t> VmStateVolumes::Save(int vmid, const std::string& volid, std::chrono::milliseconds timeout) {
  HEARTH_ASSIGN_OR_RETURN(std::string path, OpenablePath(storage_, volid));
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) return Fail(Internal("vmstate: cannot open " + path + ": " + std::strerror(errno)));
  HEARTH_TRY(qemu_.SaveState(vmid, fd.get(), timeout));
  // QEMU's copy shares our file offset: it is where the stream ended.
  off_t end = ::lseek(fd.get(), 0, SEEK_CUR);
  if (end <= 0) return Fail(Internal("vmstate: QEMU wrote nothing to " + path));
  uint64_t used = (static_cast<uint64_t>(end) + 1023) / 1024 * 1024;
  if (::fsync(fd.get()) != 0) return Fail(Internal("vmstate: fsync " + path + ": " + std::strerror(errno)));
  if (::ftruncate(fd.get(), static_cast<off_t>(used)) != 0)
    return Fail(Internal("vmstate: truncating " + path + ": " + std::strerror(errno)));
  return used;
}

Status VmStateVolumes::Load(int vmid, const std::string& volid, std::chrono::milliseconds timeout) {
  HEARTH_ASSIGN_OR_RETURN(std::string path, OpenablePath(storage_, volid));
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) return Fail(Internal("vmstate: cannot open " + path + ": " + std::strerror(errno)));
  return qemu_.LoadState(vmid, fd.get(), timeout);
}

std::chrono::milliseconds VmStateVolumes::Deadline(uint64_t memory_mib) {
  // Ten minutes, plus a second per 4 MiB of memory: far beyond what a local disk needs.
  return std::chrono::seconds(600 + memory_mib / 4);
}

}  // namespace hearth

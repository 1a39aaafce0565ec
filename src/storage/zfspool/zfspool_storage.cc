#include "storage/zfspool/zfspool_storage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <algorithm>
#include <cstring>
#include <set>
#include <thread>

#include "core/pattern.h"
#include "core/strings.h"
#include "storage/image_copy.h"
#include "storage/registry.h"

namespace hearth {

namespace {

constexpr char kBaseSnap[] = "__base__";
constexpr size_t kMaxVolname = 255;

bool StatBlockDevice(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
}

// Proxmox rounds zvol sizes up to whole MiB (ZFSPoolPlugin alloc_image / volume_resize).
uint64_t ZvolKiB(uint64_t bytes) {
  uint64_t kib = (bytes + 1023) / 1024;
  return (kib + 1023) / 1024 * 1024;
}

std::vector<std::string> Lines(const std::string& out) {
  std::vector<std::string> lines;
  for (auto& l : Split(out, '\n'))
    if (!Trim(l).empty()) lines.emplace_back(Trim(l));
  return lines;
}

}  // namespace

Result<ZfsPoolStorage::ZfsVolume> ZfsPoolStorage::ParseVolname(const std::string& volname) {
  // Proxmox's ^(((base|basevol)-(\d+)-\S+)/)?((base|basevol|vm|subvol)-(\d+)-\S+)$, with the
  // name part narrowed to what hearth makes, so no '@' (a snapshot) or '/' (another dataset)
  // can reach a zfs command.
  static const Pattern re("(?:((base)-([0-9]{1,9})-[A-Za-z0-9_.+-]+)/)?((base|vm)-([0-9]{1,9})-[A-Za-z0-9_.+-]+)");
  auto fail = [&] { return Fail(InvalidArgument("unable to parse zfs volume name '" + volname.substr(0, 300) + "'")); };
  if (volname.empty() || volname.size() > kMaxVolname) return fail();
  auto cap = re.Capture(volname);
  if (!cap || cap->size() < 6) return fail();
  const auto& m = *cap;
  ZfsVolume v;
  v.base = m[0];
  v.base_vmid = m[2].empty() ? 0 : std::stoi(m[2]);
  v.name = m[3];
  v.is_base = m[4] == "base";
  v.vmid = std::stoi(m[5]);
  return v;
}

ZfsPoolStorage::ZfsPoolStorage(const StorageConfig& config, ProcessRunner& runner,
                               std::function<bool(const std::string&)> device_ready)
    : id_(config.id),
      pool_(config.Get("pool")),
      blocksize_(config.Get("blocksize")),
      mountpoint_(config.Get("mountpoint")),
      sparse_(config.Get("sparse") == "1"),
      runner_(runner),
      device_ready_(device_ready ? std::move(device_ready) : StatBlockDevice) {
  Reconfigure(config);
}

void ZfsPoolStorage::Reconfigure(const StorageConfig& config) {
  std::lock_guard lock(config_mu_);
  content_ = config.Content();
  // blocksize and sparse may change (they apply to new zvols), as in Proxmox.
  blocksize_ = config.Get("blocksize");
  sparse_ = config.Get("sparse") == "1";
}

bool ZfsPoolStorage::Supports(ContentType content) const {
  std::lock_guard lock(config_mu_);
  for (auto c : content_)
    if (c == content) return content == ContentType::kImages;
  return false;
}

std::string ZfsPoolStorage::TempDir() const {
  return (mountpoint_.empty() ? "/" + pool_ : mountpoint_) + "/.hearth-tmp";
}

Result<std::string> ZfsPoolStorage::Zfs(std::vector<std::string> args, std::chrono::seconds timeout, bool zpool,
                                        const ProcessOptions* extra) {
  std::vector<std::string> argv = {zpool ? "zpool" : "zfs"};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessOptions opt = extra ? *extra : ProcessOptions{};
  opt.timeout = timeout;
  auto r = runner_.Run(argv, opt);
  if (!r) return Fail(Internal("zfs error: " + r.error().message));
  if (r->timed_out) return Fail(Internal("command '" + Join(argv, " ") + "' failed: got timeout"));
  if (r->exit_code != 0) {
    std::string why = LastLine(r->err);
    return Fail(Internal("zfs error: " + (why.empty() ? "exit code " + std::to_string(r->exit_code) : why)));
  }
  return r->out;
}

Status ZfsPoolStorage::Activate() {
  std::string pool = pool_.substr(0, pool_.find('/'));
  auto imported = [&]() -> bool {
    auto out = Zfs({"list", "-o", "name", "-H", pool}, std::chrono::seconds(30), true);
    if (!out) return false;
    for (const auto& l : Lines(*out))
      if (l == pool) return true;
    return false;
  };
  if (imported()) return Ok();
  auto imp = Zfs({"import", "-d", "/dev/disk/by-id/", "-o", "cachefile=none", pool}, std::chrono::seconds(60), true);
  if (!imp && !imported())  // another import may have raced ours
    return Fail(FailedPrecondition("could not activate storage '" + id_ + "', " + imp.error().message));
  return Ok();
}

Result<StorageStatus> ZfsPoolStorage::Usage() {
  StorageStatus s;
  s.storage = id_;
  s.type = "zfspool";
  {
    std::lock_guard lock(config_mu_);
    s.content = content_;
  }
  auto out = Zfs({"get", "-o", "value", "-Hp", "available,used", pool_}, std::chrono::seconds(10));
  auto lines = out ? Lines(*out) : std::vector<std::string>{};
  if (lines.size() < 2) {
    s.active = false;
    return s;
  }
  uint64_t avail = ParseInt(lines[0]).value_or(0), used = ParseInt(lines[1]).value_or(0);
  s.avail = avail;
  s.used = used;
  s.total = avail + used;
  return s;
}

Status ZfsPoolStorage::WaitForDevice(const std::string& name) {
  // udev makes /dev/zvol/<pool>/<name> shortly after `zfs create`; Proxmox waits up to 300 s
  // in a task, once a second (zfs_wait_for_zvol_link). The first checks come quicker here.
  std::string path = "/dev/zvol/" + Dataset(name);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  auto pause = std::chrono::milliseconds(10);
  while (!device_ready_(path)) {
    if (std::chrono::steady_clock::now() >= deadline)
      return Fail(Unavailable("timeout: no zvol device link for '" + name + "' found after 300 sec."));
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(1000));
  }
  return Ok();
}

Status ZfsPoolStorage::ActivateVolume(const std::string& volname) {
  HEARTH_ASSIGN_OR_RETURN(ZfsVolume v, ParseVolname(volname));
  return WaitForDevice(v.name);
}

Result<std::string> ZfsPoolStorage::NextDiskName(int vmid) {
  HEARTH_ASSIGN_OR_RETURN(auto vols, List(ContentType::kImages, vmid));
  std::set<int> taken;
  static const Pattern disk("(?:vm|base)-([0-9]+)-disk-([0-9]+)");
  for (const auto& v : vols) {
    std::string name = v.volid.substr(v.volid.rfind('/') == std::string::npos ? v.volid.find(':') + 1 : v.volid.rfind('/') + 1);
    auto m = disk.Capture(name);
    if (m && m->size() == 2 && (*m)[0] == std::to_string(vmid) && (*m)[1].size() < 6) taken.insert(std::stoi((*m)[1]));
  }
  for (int n = 0; n < 1024; ++n)
    if (!taken.count(n)) return "vm-" + std::to_string(vmid) + "-disk-" + std::to_string(n);
  return Fail(Internal("unable to allocate an image name for VM " + std::to_string(vmid) + " in storage '" + id_ + "'"));
}

Result<std::string> ZfsPoolStorage::AllocImage(int vmid, const std::string& format, uint64_t size,
                                               const std::string& name, const ProgressFn& progress) {
  (void)progress;
  if (format != "raw") return Fail(FieldError("format", "unsupported format '" + format + "'"));
  std::string bs;
  bool sparse;
  {
    std::lock_guard lock(config_mu_);
    bs = blocksize_;
    sparse = sparse_;
  }
  std::string volname;
  {
    std::lock_guard lock(alloc_mu_);
    if (!name.empty()) {
      if (!StartsWith(name, "vm-" + std::to_string(vmid) + "-"))
        return Fail(Internal("illegal name '" + name + "' - should be 'vm-" + std::to_string(vmid) + "-*'"));
      HEARTH_TRY(ParseVolname(name));
      volname = name;
    } else {
      HEARTH_ASSIGN_OR_RETURN(volname, NextDiskName(vmid));
    }
    std::vector<std::string> args = {"create"};
    if (sparse) args.push_back("-s");
    if (!bs.empty()) args.insert(args.end(), {"-b", bs});
    args.insert(args.end(), {"-V", std::to_string(ZvolKiB(size)) + "k", Dataset(volname)});
    HEARTH_TRY(Zfs(args));
  }
  if (auto st = WaitForDevice(volname); !st) {
    (void)FreeVolume(volname);
    return Fail(st.error());
  }
  return volname;
}

Status ZfsPoolStorage::FreeVolume(const std::string& volname) {
  HEARTH_ASSIGN_OR_RETURN(ZfsVolume v, ParseVolname(volname));
  if (v.is_base) {
    HEARTH_ASSIGN_OR_RETURN(auto all, List(ContentType::kImages, 0));
    for (const auto& other : all)
      if (other.parent == id_ + ":" + v.name)
        return Fail(FailedPrecondition("base volume '" + volname + "' is still in use by linked clones"));
  }
  Error last = Internal("");
  for (int attempt = 0; attempt < 6; ++attempt) {
    auto r = Zfs({"destroy", "-r", Dataset(v.name)});
    if (r) return Ok();
    last = r.error();
    if (last.message.find("dataset does not exist") != std::string::npos) return Ok();
    if (last.message.find("dataset is busy") == std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  return Fail(last);
}

Result<std::string> ZfsPoolStorage::Path(const std::string& volname) {
  HEARTH_ASSIGN_OR_RETURN(ZfsVolume v, ParseVolname(volname));
  return "/dev/zvol/" + Dataset(v.name);
}

Result<VolumeBlockdev> ZfsPoolStorage::Blockdev(const std::string& volname) {
  HEARTH_ASSIGN_OR_RETURN(std::string path, Path(volname));
  return VolumeBlockdev{"raw", {{"driver", "host_device"}, {"filename", path}}, path};
}

Result<VolumeInfo> ZfsPoolStorage::Info(const std::string& volname) {
  HEARTH_ASSIGN_OR_RETURN(ZfsVolume v, ParseVolname(volname));
  auto out = Zfs({"get", "-o", "value", "-Hp", "volsize,usedbydataset", Dataset(v.name)}, std::chrono::seconds(30));
  if (!out) {
    if (out.error().message.find("dataset does not exist") != std::string::npos)
      return Fail(NotFound("volume '" + id_ + ":" + volname + "' does not exist"));
    return Fail(out.error());
  }
  auto lines = Lines(*out);
  auto size = lines.empty() ? std::nullopt : ParseInt(lines[0]);
  if (!size || *size < 0) return Fail(Internal("Could not get zfs volume size"));
  VolumeInfo info;
  info.volid = id_ + ":" + volname;
  info.format = "raw";
  info.size = static_cast<uint64_t>(*size);
  info.used = lines.size() > 1 ? static_cast<uint64_t>(std::max<int64_t>(0, ParseInt(lines[1]).value_or(0))) : 0;
  info.vmid = v.vmid;
  if (!v.base.empty()) info.parent = id_ + ":" + v.base;
  info.path = "/dev/zvol/" + Dataset(v.name);
  return info;
}

Result<std::vector<VolumeInfo>> ZfsPoolStorage::List(std::optional<ContentType> content, int vmid) {
  std::vector<VolumeInfo> out;
  if (content && *content != ContentType::kImages) return out;
  HEARTH_ASSIGN_OR_RETURN(std::string text, Zfs({"list", "-o", "name,volsize,origin,type,refquota", "-t",
                                                 "volume,filesystem", "-d1", "-Hp", pool_},
                                                std::chrono::seconds(30)));
  const std::string base_suffix = std::string("@") + kBaseSnap;
  for (const auto& line : Lines(text)) {
    auto f = SplitAny(line, " \t");
    if (f.size() < 5 || f[3] != "volume") continue;  // the pool itself, container datasets
    size_t slash = f[0].rfind('/');
    if (slash == std::string::npos || f[0].substr(0, slash) != pool_) continue;
    std::string name = f[0].substr(slash + 1);
    std::string volname = name;
    // A linked clone's origin is <pool>/base-…@__base__; its volid names the base.
    if (f[2] != "-" && StartsWith(f[2], pool_ + "/") && EndsWith(f[2], base_suffix))
      volname = f[2].substr(pool_.size() + 1, f[2].size() - pool_.size() - 1 - base_suffix.size()) + "/" + name;
    auto v = ParseVolname(volname);
    if (!v) continue;  // not a name Proxmox (or hearth) gives a VM disk
    if (vmid && v->vmid != vmid) continue;
    VolumeInfo info;
    info.volid = id_ + ":" + volname;
    info.format = "raw";
    info.size = static_cast<uint64_t>(std::max<int64_t>(0, ParseInt(f[1]).value_or(0)));
    info.vmid = v->vmid;
    if (!v->base.empty()) info.parent = id_ + ":" + v->base;
    info.path = "/dev/zvol/" + Dataset(v->name);
    out.push_back(std::move(info));
  }
  return out;
}

Result<std::string> ZfsPoolStorage::RenameToBase(const std::string& volname) {
  HEARTH_ASSIGN_OR_RETURN(ZfsVolume v, ParseVolname(volname));
  if (v.is_base) return Fail(Internal("create_base not possible with base image"));
  std::string newname = "base-" + v.name.substr(3);
  HEARTH_TRY(Zfs({"rename", Dataset(v.name), Dataset(newname)}));
  if (auto st = Zfs({"snapshot", Dataset(newname) + "@" + kBaseSnap}); !st) {
    (void)Zfs({"rename", Dataset(newname), Dataset(v.name)});
    return Fail(st.error());
  }
  return v.base.empty() ? newname : v.base + "/" + newname;
}

Result<std::string> ZfsPoolStorage::UndoBase(const std::string& base_volname) {
  HEARTH_ASSIGN_OR_RETURN(ZfsVolume v, ParseVolname(base_volname));
  if (!v.is_base) return Fail(Internal("volume '" + base_volname + "' is not a base image"));
  std::string vmname = "vm-" + v.name.substr(5);
  auto destroyed = Zfs({"destroy", Dataset(v.name) + "@" + kBaseSnap});
  if (!destroyed && destroyed.error().message.find("could not find any snapshots") == std::string::npos &&
      destroyed.error().message.find("does not exist") == std::string::npos)
    return Fail(destroyed.error());
  HEARTH_TRY(Zfs({"rename", Dataset(v.name), Dataset(vmname)}));
  return v.base.empty() ? vmname : v.base + "/" + vmname;
}

Result<std::string> ZfsPoolStorage::CloneLinked(const std::string& base_volname, int vmid) {
  HEARTH_ASSIGN_OR_RETURN(ZfsVolume v, ParseVolname(base_volname));
  if (!v.is_base) return Fail(Internal("clone_image only works on base images"));
  std::string name;
  {
    std::lock_guard lock(alloc_mu_);
    HEARTH_ASSIGN_OR_RETURN(name, NextDiskName(vmid));
    HEARTH_TRY(Zfs({"clone", Dataset(v.name) + "@" + kBaseSnap, Dataset(name)}));
  }
  // Proxmox does not wait here; a start right after would find no device yet.
  if (auto st = WaitForDevice(name); !st) {
    (void)Zfs({"destroy", "-r", Dataset(name)});
    return Fail(st.error());
  }
  return v.name + "/" + name;
}

Result<std::string> ZfsPoolStorage::CopyImage(const std::string& src_path, const std::string& src_format, int vmid,
                                              const std::string& format, const ProgressFn& progress,
                                              const std::string& src_snapshot) {
  if (format != "raw") return Fail(FieldError("format", "unsupported format '" + format + "'"));
  // The new volume needs the source's virtual size first (qemu-img -n writes into it).
  HEARTH_ASSIGN_OR_RETURN(uint64_t size, ImageVirtualSize(runner_, src_path, src_format));
  HEARTH_ASSIGN_OR_RETURN(std::string name, AllocImage(vmid, "raw", size, "", nullptr));
  if (auto st = ConvertImage(runner_, src_path, src_format, "/dev/zvol/" + Dataset(name), "raw", true, progress, src_snapshot); !st) {
    (void)FreeVolume(name);
    return Fail(st.error());
  }
  return name;
}

Status ZfsPoolStorage::ResizeImage(const std::string& volname, uint64_t new_size) {
  HEARTH_ASSIGN_OR_RETURN(ZfsVolume v, ParseVolname(volname));
  HEARTH_TRY(Zfs({"set", "volsize=" + std::to_string(ZvolKiB(new_size)) + "k", Dataset(v.name)}));
  return Ok();
}

Result<std::string> ZfsPoolStorage::ImportFile(ContentType content, const std::string& file_name,
                                               const std::string& temp_path) {
  (void)file_name;
  ::unlink(temp_path.c_str());
  return Fail(FieldError("content", "storage '" + id_ + "' does not support content type '" +
                                        std::string(ContentTypeName(content)) + "'"));
}

bool ZfsPoolStorage::CanSnapshot(const std::string& volname) const {
  auto v = ParseVolname(volname);
  return v && !v->is_base;
}

Status ZfsPoolStorage::VolumeSnapshot(const std::string& volname, const std::string& snap) {
  HEARTH_ASSIGN_OR_RETURN(ZfsVolume v, ParseVolname(volname));
  HEARTH_TRY(Zfs({"snapshot", Dataset(v.name) + "@" + snap}));
  return Ok();
}

Result<std::vector<std::string>> ZfsPoolStorage::SnapshotsOf(const std::string& name) {
  // Oldest first: -s creation (Proxmox: -S would not reverse snapshots of the same second).
  HEARTH_ASSIGN_OR_RETURN(std::string out, Zfs({"list", "-H", "-r", "-t", "snapshot", "-o", "name", "-s", "creation",
                                                Dataset(name)},
                                               std::chrono::seconds(30)));
  std::vector<std::string> snaps;
  std::string prefix = Dataset(name) + "@";
  for (const auto& l : Lines(out))
    if (StartsWith(l, prefix)) snaps.push_back(l.substr(prefix.size()));
  return snaps;
}

Status ZfsPoolStorage::VolumeSnapshotRollback(const std::string& volname, const std::string& snap) {
  HEARTH_ASSIGN_OR_RETURN(ZfsVolume v, ParseVolname(volname));
  HEARTH_ASSIGN_OR_RETURN(auto snaps, SnapshotsOf(v.name));
  auto it = std::find(snaps.begin(), snaps.end(), snap);
  if (it == snaps.end())
    return Fail(Internal("can't rollback, snapshot '" + snap + "' does not exist on '" + id_ + ":" + volname + "'"));
  if (it + 1 != snaps.end())
    return Fail(Internal("can't rollback, '" + snap + "' is not most recent snapshot on '" + id_ + ":" + volname + "'"));
  HEARTH_TRY(Zfs({"rollback", Dataset(v.name) + "@" + snap}));
  return Ok();
}

Status ZfsPoolStorage::VolumeSnapshotDelete(const std::string& volname, const std::string& snap) {
  HEARTH_ASSIGN_OR_RETURN(ZfsVolume v, ParseVolname(volname));
  HEARTH_TRY(Zfs({"destroy", Dataset(v.name) + "@" + snap}));
  return Ok();
}

Result<StoragePlugin::SnapshotImage> ZfsPoolStorage::SnapshotImageOf(const std::string& volname, const std::string& snap) {
  (void)snap;
  return Fail(Internal("Full clone feature is not supported for a snapshot of '" + id_ + ":" + volname + "'"));
}

Result<std::string> ZfsPoolStorage::CloneLinkedFromSnapshot(const std::string& volname, const std::string& snap,
                                                            int vmid) {
  (void)snap, (void)vmid;
  return Fail(Internal("Linked clone feature is not supported for a snapshot of '" + id_ + ":" + volname + "'"));
}

bool ZfsPoolStorage::CanReplicate(const std::string& volname) const { return ParseVolname(volname).has_value(); }

Result<std::vector<std::string>> ZfsPoolStorage::VolumeSnapshotNames(const std::string& volname) {
  HEARTH_ASSIGN_OR_RETURN(ZfsVolume v, ParseVolname(volname));
  HEARTH_ASSIGN_OR_RETURN(auto snaps, SnapshotsOf(v.name));
  std::sort(snaps.begin(), snaps.end());
  return snaps;
}

Result<uint64_t> ZfsPoolStorage::ExportVolume(const std::string& volname, const std::string& snap,
                                              const std::string& base, const std::string& out_path) {
  HEARTH_ASSIGN_OR_RETURN(ZfsVolume v, ParseVolname(volname));
  int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Fail(Internal("could not create '" + out_path + "': " + std::strerror(errno)));
  std::vector<std::string> args = {"send", "-Rpv"};
  if (!base.empty()) args.insert(args.end(), {"-I", Dataset(v.name) + "@" + base});
  args.insert(args.end(), {"--", Dataset(v.name) + "@" + snap});
  ProcessOptions opt;
  opt.stdout_fd = fd;
  auto r = Zfs(args, std::chrono::hours(24), false, &opt);
  struct stat st {};
  bool sized = ::fstat(fd, &st) == 0;
  bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!r || !sized || !synced) {
    ::unlink(out_path.c_str());
    return Fail(r ? Internal("could not write '" + out_path + "'") : r.error());
  }
  return static_cast<uint64_t>(st.st_size);
}

Status ZfsPoolStorage::ImportVolume(const std::string& volname, const std::string& snap, const std::string& base,
                                    const std::string& in_path) {
  (void)snap;
  HEARTH_ASSIGN_OR_RETURN(ZfsVolume v, ParseVolname(volname));
  std::string ds = Dataset(v.name);
  // Proxmox's volume_import checks: an incremental stream needs its base here, a full one
  // must not overwrite an existing volume.
  if (!base.empty()) {
    if (!Zfs({"get", "-H", "name", ds + "@" + base}, std::chrono::seconds(30)))
      return Fail(Internal("base snapshot '" + ds + "@" + base + "' doesn't exist"));
  } else if (Zfs({"get", "-H", "name", ds}, std::chrono::seconds(30))) {
    return Fail(Internal("volume '" + ds + "' already exists"));
  }
  int fd = ::open(in_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Fail(Internal("could not open '" + in_path + "': " + std::strerror(errno)));
  ProcessOptions opt;
  opt.stdin_fd = fd;
  auto r = Zfs({"recv", "-F", "-x", "encryption", "--", ds}, std::chrono::hours(24), false, &opt);
  ::close(fd);
  if (r) return Ok();
  // Back to the last good copy: zfs receives a snapshot whole or not at all, but -F may have
  // rolled the volume back first.
  if (!base.empty())
    (void)Zfs({"rollback", "-r", "--", ds + "@" + base});
  else
    (void)Zfs({"destroy", "-r", "--", ds});
  return Fail(r.error());
}

void RegisterZfsPoolStorage(StorageRegistry& registry) {
  registry.Register("zfspool", [](const StorageConfig& config, const StorageDeps& deps) -> Result<std::shared_ptr<StoragePlugin>> {
    if (!deps.runner) return Fail(Internal("zfspool storage without a process runner"));
    return std::make_shared<ZfsPoolStorage>(config, *deps.runner);
  });
}

}  // namespace hearth

#include "storage/lvmthin/lvmthin_storage.h"

#include <unistd.h>

#include <cmath>
#include <set>

#include "core/pattern.h"
#include "core/strings.h"
#include "storage/image_copy.h"
#include "storage/registry.h"

namespace hearth {

namespace {

// LVMPlugin's lvm_list_volumes columns, in order (12 fields separated by ':').
constexpr char kLvsOptions[] =
    "vg_name,lv_name,lv_size,lv_attr,pool_lv,data_percent,metadata_percent,snap_percent,uuid,tags,metadata_size,time";

}  // namespace

std::optional<LvmThinStorage::Lv> LvmThinStorage::ParseLvsLine(const std::string& line) {
  std::string t(Trim(line));
  auto f = Split(t, ':');
  if (f.size() != 12 || f[0].empty() || f[1].empty()) return std::nullopt;
  Lv lv;
  lv.vg = f[0];
  lv.name = f[1];
  lv.size = static_cast<uint64_t>(std::max<int64_t>(0, ParseInt(f[2]).value_or(0)));
  lv.attr = f[3];
  lv.pool = f[4];
  if (!f[5].empty()) {
    char* end = nullptr;
    double pct = std::strtod(f[5].c_str(), &end);
    if (end && *end == '\0' && std::isfinite(pct) && pct >= 0 && pct <= 100) lv.data_percent = pct;
  }
  lv.ctime = ParseInt(f[11]).value_or(0);
  return lv;
}

Result<LvmThinStorage::LvmVolume> LvmThinStorage::ParseVolname(const std::string& volname) {
  static const Pattern re("(vm|base)-([0-9]{1,9})-[A-Za-z0-9_.+-]+");
  auto cap = volname.size() <= 127 ? re.Capture(volname) : std::nullopt;
  if (!cap) return Fail(InvalidArgument("unable to parse lvm volume name '" + volname.substr(0, 300) + "'"));
  LvmVolume v;
  v.name = volname;
  v.is_base = (*cap)[0] == "base";
  v.vmid = std::stoi((*cap)[1]);
  return v;
}

LvmThinStorage::LvmThinStorage(const StorageConfig& config, ProcessRunner& runner, std::string temp_dir)
    : id_(config.id), vg_(config.Get("vgname")), pool_(config.Get("thinpool")), temp_dir_(std::move(temp_dir)),
      runner_(runner) {
  Reconfigure(config);
}

void LvmThinStorage::Reconfigure(const StorageConfig& config) {
  std::lock_guard lock(config_mu_);
  content_ = config.Content();
}

bool LvmThinStorage::Supports(ContentType content) const {
  std::lock_guard lock(config_mu_);
  for (auto c : content_)
    if (c == content) return content == ContentType::kImages;
  return false;
}

Result<std::string> LvmThinStorage::Lvm(const std::string& tool, std::vector<std::string> args, const std::string& what,
                                        std::chrono::seconds timeout) {
  std::vector<std::string> argv = {tool};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessOptions opt;
  opt.timeout = timeout;
  auto r = runner_.Run(argv, opt);
  if (!r) return Fail(Internal(what + ": " + r.error().message));
  if (r->timed_out) return Fail(Internal(what + ": got timeout"));
  if (r->exit_code != 0) {
    std::string why = LastLine(r->err);
    return Fail(Internal(what + ": " + (why.empty() ? "exit code " + std::to_string(r->exit_code) : why)));
  }
  return r->out;
}

Result<std::map<std::string, LvmThinStorage::Lv>> LvmThinStorage::Volumes() {
  HEARTH_ASSIGN_OR_RETURN(std::string out,
                          Lvm("/sbin/lvs", {"--separator", ":", "--noheadings", "--units", "b", "--unbuffered",
                                            "--nosuffix", "--config", "report/time_format=\"%s\"", "--options",
                                            kLvsOptions, vg_},
                              "lvs '" + vg_ + "' error", std::chrono::seconds(30)));
  std::map<std::string, Lv> lvs;
  for (const auto& line : Split(out, '\n'))
    if (auto lv = ParseLvsLine(line); lv && lv->vg == vg_) lvs[lv->name] = *lv;
  return lvs;
}

Status LvmThinStorage::ActivateLv(const std::string& lv) {
  HEARTH_ASSIGN_OR_RETURN(auto lvs, Volumes());
  auto it = lvs.find(lv);
  if (it == lvs.end()) return Fail(Internal("no such logical volume " + vg_ + "/" + lv));
  if (it->second.active()) return Ok();
  HEARTH_TRY(Lvm("/sbin/lvchange", {"-ay", "-K", vg_ + "/" + lv}, "activating LV '" + vg_ + "/" + lv + "' failed"));
  return Ok();
}

void LvmThinStorage::NoAutoActivation(const std::string& lv) {
  // Proxmox: a failure here only warns (older lvcreate lacks the option for thin LVs).
  (void)Lvm("/sbin/lvchange", {"--setautoactivation", "n", vg_ + "/" + lv}, "could not set autoactivation");
}

Status LvmThinStorage::Activate() {
  auto vgs = Lvm("/sbin/vgs", {"--separator", ":", "--noheadings", "--units", "b", "--unbuffered", "--nosuffix",
                               "--options", "vg_name,vg_size,vg_free,lv_count"},
                 "vgs error", std::chrono::seconds(30));
  bool found = false;
  if (vgs)
    for (const auto& line : Split(*vgs, '\n'))
      if (auto f = Split(std::string(Trim(line)), ':'); !f.empty() && f[0] == vg_) found = true;
  if (!found) (void)Lvm("/sbin/vgscan", {"--ignorelockingfailure", "--mknodes"}, "vgscan error");
  return ActivateLv(pool_).map_error([&](Error e) {
    return Error(FailedPrecondition("could not activate storage '" + id_ + "', " + e.message));
  });
}

Status LvmThinStorage::ActivateVolume(const std::string& volname) {
  HEARTH_ASSIGN_OR_RETURN(LvmVolume v, ParseVolname(volname));
  return ActivateLv(v.name);
}

Result<StorageStatus> LvmThinStorage::Usage() {
  StorageStatus s;
  s.storage = id_;
  s.type = "lvmthin";
  {
    std::lock_guard lock(config_mu_);
    s.content = content_;
  }
  auto lvs = Volumes();
  auto it = lvs ? lvs->find(pool_) : decltype(lvs->end()){};
  if (!lvs || it == lvs->end() || it->second.type() != 't' || it->second.size == 0) {
    s.active = false;
    return s;
  }
  const Lv& p = it->second;
  s.total = p.size;
  s.used = static_cast<uint64_t>(p.data_percent * static_cast<double>(p.size) / 100.0);
  s.avail = s.total - std::min(s.used, s.total);
  s.active = p.active();
  return s;
}

Result<std::string> LvmThinStorage::NextDiskName(int vmid, const std::map<std::string, Lv>& lvs) const {
  // Proxmox's LVM find_free_diskname looks at every LV of the volume group.
  static const Pattern disk("(?:vm|base)-([0-9]+)-disk-([0-9]{1,5})");
  std::set<int> taken;
  for (const auto& [name, lv] : lvs)
    if (auto m = disk.Capture(name); m && (*m)[0] == std::to_string(vmid)) taken.insert(std::stoi((*m)[1]));
  for (int n = 0; n < 1024; ++n)
    if (!taken.count(n)) return "vm-" + std::to_string(vmid) + "-disk-" + std::to_string(n);
  return Fail(Internal("unable to allocate an image name for VM " + std::to_string(vmid) + " in storage '" + id_ + "'"));
}

Result<std::string> LvmThinStorage::AllocImage(int vmid, const std::string& format, uint64_t size,
                                               const std::string& name, const ProgressFn& progress) {
  (void)progress;
  if (format != "raw") return Fail(FieldError("format", "unsupported format '" + format + "'"));
  std::lock_guard lock(alloc_mu_);
  HEARTH_ASSIGN_OR_RETURN(auto lvs, Volumes());
  std::string lv = name;
  if (!lv.empty()) {
    if (!StartsWith(lv, "vm-" + std::to_string(vmid) + "-"))
      return Fail(Internal("illegal name '" + lv + "' - should be 'vm-" + std::to_string(vmid) + "-*'"));
    HEARTH_TRY(ParseVolname(lv));
    if (lvs.count(lv)) return Fail(AlreadyExists("volume '" + id_ + ":" + lv + "' already exists"));
  } else {
    HEARTH_ASSIGN_OR_RETURN(lv, NextDiskName(vmid, lvs));
  }
  uint64_t kib = (size + 1023) / 1024;
  HEARTH_TRY(Lvm("/sbin/lvcreate", {"-aly", "-V", std::to_string(kib) + "k", "--name", lv, "--thinpool", vg_ + "/" + pool_},
                 "lvcreate '" + vg_ + "/" + lv + "' error"));
  NoAutoActivation(lv);
  return lv;
}

Status LvmThinStorage::FreeVolume(const std::string& volname) {
  HEARTH_ASSIGN_OR_RETURN(LvmVolume v, ParseVolname(volname));
  HEARTH_ASSIGN_OR_RETURN(auto lvs, Volumes());
  static const Pattern snap_name("[a-zA-Z][a-zA-Z0-9_-]+");
  std::string prefix = "snap_" + v.name + "_";
  for (const auto& [lv, info] : lvs)
    if (StartsWith(lv, prefix) && snap_name.FullMatch(std::string_view(lv).substr(prefix.size())))
      HEARTH_TRY(Lvm("/sbin/lvremove", {"-f", vg_ + "/" + lv}, "lvremove snapshot '" + vg_ + "/" + lv + "' error"));
  if (!lvs.count(v.name)) return Ok();
  HEARTH_TRY(Lvm("/sbin/lvremove", {"-f", vg_ + "/" + v.name}, "lvremove '" + vg_ + "/" + v.name + "' error"));
  return Ok();
}

Result<std::string> LvmThinStorage::Path(const std::string& volname) {
  HEARTH_ASSIGN_OR_RETURN(LvmVolume v, ParseVolname(volname));
  return "/dev/" + vg_ + "/" + v.name;
}

Result<VolumeBlockdev> LvmThinStorage::Blockdev(const std::string& volname) {
  HEARTH_ASSIGN_OR_RETURN(std::string path, Path(volname));
  return VolumeBlockdev{"raw", {{"driver", "host_device"}, {"filename", path}}, path};
}

Result<VolumeInfo> LvmThinStorage::Info(const std::string& volname) {
  HEARTH_ASSIGN_OR_RETURN(LvmVolume v, ParseVolname(volname));
  HEARTH_ASSIGN_OR_RETURN(auto lvs, Volumes());
  auto it = lvs.find(v.name);
  if (it == lvs.end() || it->second.type() != 'V')
    return Fail(NotFound("volume '" + id_ + ":" + volname + "' does not exist"));
  VolumeInfo info;
  info.volid = id_ + ":" + volname;
  info.format = "raw";
  info.size = it->second.size;
  info.used = static_cast<uint64_t>(it->second.data_percent * static_cast<double>(it->second.size) / 100.0);
  info.vmid = v.vmid;
  info.ctime = it->second.ctime;
  info.path = "/dev/" + vg_ + "/" + v.name;
  return info;
}

Result<std::vector<VolumeInfo>> LvmThinStorage::List(std::optional<ContentType> content, int vmid) {
  std::vector<VolumeInfo> out;
  if (content && *content != ContentType::kImages) return out;
  HEARTH_ASSIGN_OR_RETURN(auto lvs, Volumes());
  for (const auto& [name, lv] : lvs) {
    if (lv.type() != 'V' || lv.pool != pool_) continue;
    auto v = ParseVolname(name);
    if (!v || (vmid && v->vmid != vmid)) continue;
    VolumeInfo info;
    info.volid = id_ + ":" + name;
    info.format = "raw";
    info.size = lv.size;
    info.vmid = v->vmid;
    info.ctime = lv.ctime;
    info.path = "/dev/" + vg_ + "/" + name;
    out.push_back(std::move(info));
  }
  return out;
}

Result<std::string> LvmThinStorage::RenameToBase(const std::string& volname) {
  HEARTH_ASSIGN_OR_RETURN(LvmVolume v, ParseVolname(volname));
  if (v.is_base) return Fail(Internal("create_base not possible with base image"));
  HEARTH_ASSIGN_OR_RETURN(auto lvs, Volumes());
  for (const auto& [lv, info] : lvs)
    if (StartsWith(lv, "snap_" + v.name + "_"))
      return Fail(Internal("unable to create base volume - found snaphost '" + lv + "'"));  // sic, Proxmox's text
  std::string newname = "base-" + v.name.substr(3);
  HEARTH_TRY(Lvm("/sbin/lvrename", {vg_, v.name, newname},
                 "lvrename '" + vg_ + "/" + v.name + "' => '" + vg_ + "/" + newname + "' error"));
  (void)Lvm("/sbin/lvchange", {"-pr", "-ky", vg_ + "/" + newname}, "lvchange error");
  return newname;
}

Result<std::string> LvmThinStorage::UndoBase(const std::string& base_volname) {
  HEARTH_ASSIGN_OR_RETURN(LvmVolume v, ParseVolname(base_volname));
  if (!v.is_base) return Fail(Internal("volume '" + base_volname + "' is not a base image"));
  std::string vmname = "vm-" + v.name.substr(5);
  HEARTH_TRY(Lvm("/sbin/lvrename", {vg_, v.name, vmname},
                 "lvrename '" + vg_ + "/" + v.name + "' => '" + vg_ + "/" + vmname + "' error"));
  (void)Lvm("/sbin/lvchange", {"-prw", "-kn", vg_ + "/" + vmname}, "lvchange error");
  return vmname;
}

Result<std::string> LvmThinStorage::CloneLinked(const std::string& base_volname, int vmid) {
  HEARTH_ASSIGN_OR_RETURN(LvmVolume v, ParseVolname(base_volname));
  if (!v.is_base) return Fail(Internal("clone_image only works on base images"));
  std::lock_guard lock(alloc_mu_);
  HEARTH_ASSIGN_OR_RETURN(auto lvs, Volumes());
  HEARTH_ASSIGN_OR_RETURN(std::string name, NextDiskName(vmid, lvs));
  HEARTH_TRY(Lvm("/sbin/lvcreate", {"-n", name, "-prw", "-kn", "-s", vg_ + "/" + v.name},
                 "clone image '" + vg_ + "/" + v.name + "' error"));
  NoAutoActivation(name);
  return name;
}

Result<std::string> LvmThinStorage::CloneLinkedFromSnapshot(const std::string& volname, const std::string& snap,
                                                            int vmid) {
  HEARTH_ASSIGN_OR_RETURN(LvmVolume v, ParseVolname(volname));
  std::lock_guard lock(alloc_mu_);
  HEARTH_ASSIGN_OR_RETURN(auto lvs, Volumes());
  std::string source = SnapLv(v.name, snap);
  if (!lvs.count(source)) return Fail(Internal("snapshot '" + snap + "' does not exist"));
  HEARTH_ASSIGN_OR_RETURN(std::string name, NextDiskName(vmid, lvs));
  HEARTH_TRY(Lvm("/sbin/lvcreate", {"-n", name, "-prw", "-kn", "-s", vg_ + "/" + source},
                 "clone image '" + vg_ + "/" + source + "' error"));
  NoAutoActivation(name);
  return name;
}

Result<std::string> LvmThinStorage::CopyImage(const std::string& src_path, const std::string& src_format, int vmid,
                                              const std::string& format, const ProgressFn& progress,
                                              const std::string& src_snapshot) {
  if (format != "raw") return Fail(FieldError("format", "unsupported format '" + format + "'"));
  // The new volume needs the source's virtual size first (qemu-img -n writes into it).
  HEARTH_ASSIGN_OR_RETURN(uint64_t size, ImageVirtualSize(runner_, src_path, src_format));
  HEARTH_ASSIGN_OR_RETURN(std::string name, AllocImage(vmid, "raw", size, "", nullptr));
  if (auto st = ConvertImage(runner_, src_path, src_format, "/dev/" + vg_ + "/" + name, "raw", true, progress, src_snapshot); !st) {
    (void)FreeVolume(name);
    return Fail(st.error());
  }
  return name;
}

Status LvmThinStorage::ResizeImage(const std::string& volname, uint64_t new_size) {
  HEARTH_ASSIGN_OR_RETURN(LvmVolume v, ParseVolname(volname));
  std::string path = "/dev/" + vg_ + "/" + v.name;
  HEARTH_TRY(Lvm("/sbin/lvextend", {"-L", std::to_string((new_size + 1023) / 1024) + "k", path},
                 "error resizing volume '" + path + "'"));
  return Ok();
}

Result<std::string> LvmThinStorage::ImportFile(ContentType content, const std::string& file_name,
                                               const std::string& temp_path) {
  (void)file_name;
  ::unlink(temp_path.c_str());
  return Fail(FieldError("content", "storage '" + id_ + "' does not support content type '" +
                                        std::string(ContentTypeName(content)) + "'"));
}

bool LvmThinStorage::CanSnapshot(const std::string& volname) const {
  auto v = ParseVolname(volname);
  return v && !v->is_base;
}

Status LvmThinStorage::VolumeSnapshot(const std::string& volname, const std::string& snap) {
  HEARTH_ASSIGN_OR_RETURN(LvmVolume v, ParseVolname(volname));
  std::string lv = SnapLv(v.name, snap);
  HEARTH_TRY(Lvm("/sbin/lvcreate", {"-n", lv, "-pr", "-s", vg_ + "/" + v.name},
                 "lvcreate snapshot '" + vg_ + "/" + lv + "' error"));
  return Ok();
}

Status LvmThinStorage::VolumeSnapshotRollback(const std::string& volname, const std::string& snap) {
  HEARTH_ASSIGN_OR_RETURN(LvmVolume v, ParseVolname(volname));
  HEARTH_ASSIGN_OR_RETURN(auto lvs, Volumes());
  std::string source = SnapLv(v.name, snap);
  if (!lvs.count(source)) return Fail(Internal("snapshot '" + snap + "' does not exist"));
  // The new volume under a name of its own first ("rollback_<name>": not a volume name, so a
  // crash does not make it an unused disk; a repeated rollback picks it up).
  std::string fresh = "rollback_" + v.name;
  if (!lvs.count(fresh))
    HEARTH_TRY(Lvm("/sbin/lvcreate", {"-kn", "-n", fresh, "-s", vg_ + "/" + source},
                   "lvm rollback '" + vg_ + "/" + source + "' error"));
  if (lvs.count(v.name))
    HEARTH_TRY(Lvm("/sbin/lvremove", {"-f", vg_ + "/" + v.name}, "lvremove '" + vg_ + "/" + v.name + "' error"));
  HEARTH_TRY(Lvm("/sbin/lvrename", {vg_, fresh, v.name},
                 "lvrename '" + vg_ + "/" + fresh + "' => '" + vg_ + "/" + v.name + "' error"));
  NoAutoActivation(v.name);
  return Ok();
}

Status LvmThinStorage::VolumeSnapshotDelete(const std::string& volname, const std::string& snap) {
  HEARTH_ASSIGN_OR_RETURN(LvmVolume v, ParseVolname(volname));
  std::string lv = SnapLv(v.name, snap);
  HEARTH_TRY(Lvm("/sbin/lvremove", {"-f", vg_ + "/" + lv}, "lvremove snapshot '" + vg_ + "/" + lv + "' error"));
  return Ok();
}

Result<StoragePlugin::SnapshotImage> LvmThinStorage::SnapshotImageOf(const std::string& volname,
                                                                     const std::string& snap) {
  HEARTH_ASSIGN_OR_RETURN(LvmVolume v, ParseVolname(volname));
  std::string lv = SnapLv(v.name, snap);
  auto st = ActivateLv(lv);
  if (!st) {
    if (st.error().message.rfind("no such logical volume", 0) == 0)
      return Fail(Internal("snapshot '" + snap + "' does not exist"));
    return Fail(st.error());
  }
  return SnapshotImage{"/dev/" + vg_ + "/" + lv, "raw", ""};
}

void RegisterLvmThinStorage(StorageRegistry& registry) {
  registry.Register("lvmthin", [](const StorageConfig& config, const StorageDeps& deps) -> Result<std::shared_ptr<StoragePlugin>> {
    if (!deps.runner) return Fail(Internal("lvmthin storage without a process runner"));
    return std::make_shared<LvmThinStorage>(config, *deps.runner, deps.data_dir + "/tmp");
  });
}

}  // namespace hearth

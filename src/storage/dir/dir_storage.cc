#include "storage/dir/dir_storage.h"
#include "storage/image_copy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/strings.h"
#include "core/units.h"
#include "storage/registry.h"
#include "model/property_string.h"
#include "sys/file_system.h"
#include "sys/files.h"

namespace hearth {

namespace fs = std::filesystem;

std::optional<uint64_t> Qcow2VirtualSize(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  unsigned char h[32];
  ssize_t n = pread(fd, h, sizeof h, 0);
  close(fd);
  if (n != sizeof h || std::memcmp(h, "QFI\xfb", 4) != 0) return std::nullopt;
  uint64_t size = 0;
  for (int i = 24; i < 32; ++i) size = (size << 8) | h[i];
  return size;
}

std::string Qcow2BackingFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  unsigned char h[20];
  std::string out;
  if (pread(fd, h, sizeof h, 0) == sizeof h && std::memcmp(h, "QFI\xfb", 4) == 0) {
    uint64_t offset = 0;
    for (int i = 8; i < 16; ++i) offset = (offset << 8) | h[i];
    uint32_t size = (uint32_t(h[16]) << 24) | (uint32_t(h[17]) << 16) | (uint32_t(h[18]) << 8) | h[19];
    if (offset && size && size < 4096) {
      out.resize(size);
      if (pread(fd, out.data(), size, static_cast<off_t>(offset)) != static_cast<ssize_t>(size)) out.clear();
    }
  }
  close(fd);
  return out;
}

std::string DirLayout::Subdir(ContentType content) const {
  switch (content) {
    case ContentType::kImages: return "images";
    case ContentType::kRootdir: return "private";
    case ContentType::kIso: return iso;
    case ContentType::kVztmpl: return vztmpl;
    case ContentType::kBackup: return "dump";
    case ContentType::kSnippets: return "snippets";
    case ContentType::kImport: return "import";
  }
  return "";
}

DirStorage::DirStorage(std::string id, std::string root, std::vector<ContentType> content, ProcessRunner& runner,
                       DirLayout layout)
    : id_(std::move(id)), root_(std::move(root)), layout_(std::move(layout)), content_(std::move(content)),
      runner_(runner) {}

DirStorage::DirStorage(const StorageConfig& config, ProcessRunner& runner, DirLayout layout)
    : id_(config.id), root_(config.Get("path")), layout_(std::move(layout)), runner_(runner) {
  Reconfigure(config);
}

void DirStorage::Reconfigure(const StorageConfig& config) {
  // pve-storage Plugin.pm config_aware_base_mkdir / get_subdir-creation: the new options
  // win over the deprecated `mkdir`, and everything defaults to on.
  std::string mkdir = config.Get("mkdir", "1");
  std::lock_guard lock(config_mu_);
  content_ = config.Content();
  create_base_path_ = config.Get("create-base-path", mkdir) == "1";
  create_subdirs_ = config.Get("create-subdirs", mkdir) == "1";
  is_mountpoint_ = config.Get("is_mountpoint");
  format_ = config.Get("format");
  nocow_ = config.Get("nocow") == "1";
  compress_ = config.Get("compress");
}

std::string DirStorage::DefaultFormat() const {
  std::lock_guard lock(config_mu_);
  return format_.empty() || !SupportsFormat(format_) ? "qcow2" : format_;
}

bool DirStorage::SupportsFormat(const std::string& format) const {
  return format == "raw" || format == "qcow2" || format == "vmdk";
}

std::vector<ContentType> DirStorage::Content() const {
  std::lock_guard lock(config_mu_);
  return content_;
}

bool DirStorage::Supports(ContentType c) const {
  std::lock_guard lock(config_mu_);
  return std::find(content_.begin(), content_.end(), c) != content_.end();
}

std::string DirStorage::FileOf(const DirVolume& v) const {
  if (v.content == ContentType::kImages) return root_ + "/images/" + std::to_string(v.vmid) + "/" + v.name;
  return root_ + "/" + layout_.Subdir(v.content) + "/" + v.name;
}

namespace {

// Whether `path` is the root of a mount (its parent is on another device,
// or it is "/").
bool IsMountPoint(const std::string& path) {
  struct stat self, parent;
  if (::stat(path.c_str(), &self) != 0 || !S_ISDIR(self.st_mode)) return false;
  if (::stat((path + "/..").c_str(), &parent) != 0) return false;
  return self.st_dev != parent.st_dev || self.st_ino == parent.st_ino;
}

}  // namespace

Status DirStorage::Ready() const {
  std::string mountpoint;
  {
    std::lock_guard lock(config_mu_);
    mountpoint = is_mountpoint_;
  }
  std::string prefix = "unable to activate storage '" + id_ + "' - ";
  // pve-storage DirPlugin activate_storage: `is_mountpoint` is a boolean (the path itself)
  // or the mount point's path.
  if (!mountpoint.empty()) {
    auto yes = ParseBooleanWord(mountpoint);
    std::string mp = yes ? (*yes ? root_ : "") : mountpoint;
    if (!mp.empty() && !IsMountPoint(mp))
      return Fail(FailedPrecondition(prefix + "directory is expected to be a mount point but is not mounted: '" + mp + "'"));
  }
  struct stat st;
  if (::stat(root_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Fail(FailedPrecondition(prefix + "directory '" + root_ + "' does not exist or is unreachable"));
  return Ok();
}

Status DirStorage::Activate() {
  std::vector<ContentType> content;
  bool base, subdirs;
  std::string mountpoint;
  {
    std::lock_guard lock(config_mu_);
    content = content_;
    base = create_base_path_;
    subdirs = create_subdirs_;
    mountpoint = is_mountpoint_;
  }
  // The base path is not made below a mount point that is missing (it would land on the
  // root file system).
  bool expects_mount = !mountpoint.empty() && ParseBooleanWord(mountpoint) != std::optional<bool>(false);
  if (base && !expects_mount) (void)MakeDirs(root_);
  HEARTH_TRY(Ready());
  if (!subdirs) return Ok();
  std::vector<std::string> made;
  for (ContentType c : content) {
    std::string dir = root_ + "/" + layout_.Subdir(c);
    if (std::find(made.begin(), made.end(), dir) != made.end()) continue;
    if (auto r = MakeDirs(dir); !r)
      return Fail(FailedPrecondition("failed to create content directory '" + dir + "' for content '" +
                                     ContentTypeName(c) + "' - " + r.error().message +
                                     " - ensure that you have read and write access to your storage!"));
    made.push_back(dir);
  }
  return Ok();
}

Result<StorageStatus> DirStorage::Usage() {
  StorageStatus s;
  s.storage = id_;
  s.type = type();
  s.content = Content();
  auto space = FilesystemSpace(root_);
  if (!Ready() || !space) {
    s.active = false;
    return s;
  }
  s.total = space->total;
  s.used = space->used;
  s.avail = space->avail;
  return s;
}

uint64_t DirStorage::InitialFootprint(const std::string& format, uint64_t size) {
  if (format == "raw") return size;
  return 2 * kMiB;  // qcow2 header, refcount and L1 tables; data grows on write (thin)
}

Result<std::string> DirStorage::AllocImage(int vmid, const std::string& format, uint64_t size,
                                           const std::string& name, const ProgressFn& progress) {
  if (format != "raw" && format != "qcow2" && format != "vmdk")
    return Fail(FieldError("format", "unsupported format '" + format + "' for storage '" + id_ + "'"));
  HEARTH_TRY(Ready());
  std::lock_guard lock(alloc_mu_);
  std::string dir = root_ + "/images/" + std::to_string(vmid);
  HEARTH_TRY(MakeDirs(dir));
  HEARTH_ASSIGN_OR_RETURN(std::string file, ImageFileName(vmid, format, name));
  HEARTH_ASSIGN_OR_RETURN(FsSpace space, FilesystemSpace(root_));
  uint64_t need = InitialFootprint(format, size);
  if (space.avail < need)
    return Fail(FailedPrecondition("not enough space on storage '" + id_ + "': " + FormatSize(need) + " needed, " +
                                   std::to_string(space.avail / kMiB) + "M free"));
  if (format != "raw" && size > space.avail && progress)
    progress("WARN: thin provisioning: " + std::to_string(size / kMiB) + "M requested, " +
             std::to_string(space.avail / kMiB) + "M free on '" + id_ + "'");
  std::string path = dir + "/" + file;
  // qemu-img wants a size in bytes; round up to 512-byte sectors.
  uint64_t bytes = (size + 511) / 512 * 512;
  auto r = runner_.Run({"qemu-img", "create", "-q", "-f", format, path, std::to_string(bytes)}, {});
  if (!r || r->exit_code != 0) {
    ::unlink(path.c_str());
    return Fail(r ? Internal("allocating " + file + ": " + DescribeFailure({"qemu-img"}, *r))
                  : r.error().WithContext("allocating " + file));
  }
  return std::to_string(vmid) + "/" + file;
}

Result<std::string> DirStorage::ImageFileName(int vmid, const std::string& format, const std::string& name) {
  if (name.empty()) return NextDiskFile(vmid, format);
  std::string dir = root_ + "/images/" + std::to_string(vmid), file = name + "." + format;
  if (PathExists(dir + "/" + name) || PathExists(dir + "/" + file))
    return Fail(AlreadyExists("volume '" + id_ + ":" + std::to_string(vmid) + "/" + file + "' already exists"));
  return file;
}

Result<std::string> DirStorage::NextDiskFile(int vmid, const std::string& format) {
  std::string dir = root_ + "/images/" + std::to_string(vmid);
  for (int n = 0; n < 10000; ++n) {
    bool taken = false;
    for (const char* prefix : {"vm-", "base-"}) {
      std::string stem = dir + "/" + prefix + std::to_string(vmid) + "-disk-" + std::to_string(n);
      taken |= PathExists(stem);
      for (const char* ext : {"raw", "qcow2", "vmdk"}) taken |= PathExists(stem + "." + ext);
    }
    if (!taken) return "vm-" + std::to_string(vmid) + "-disk-" + std::to_string(n) + "." + format;
  }
  return Fail(FailedPrecondition("no free disk name for VM " + std::to_string(vmid)));
}

std::vector<std::string> DirStorage::LinkedClonesOf(const std::string& base_volname) {
  std::vector<std::string> out;
  std::string backing = "../" + base_volname;
  std::error_code ec;
  for (const auto& owner : fs::directory_iterator(root_ + "/images", ec))
    for (const auto& f : fs::directory_iterator(owner.path(), ec))
      if (f.path().extension() == ".qcow2" && Qcow2BackingFile(f.path().string()) == backing)
        out.push_back(id_ + ":" + base_volname + "/" + owner.path().filename().string() + "/" +
                      f.path().filename().string());
  return out;
}

Result<std::string> DirStorage::RenameToBase(const std::string& volname) {
  HEARTH_ASSIGN_OR_RETURN(DirVolume v, ParseDirVolname(volname));
  if (v.content != ContentType::kImages || v.is_base) return Fail(InvalidArgument("'" + volname + "' is not a VM disk"));
  if (!v.base_volname.empty())
    return Fail(FailedPrecondition("'" + volname + "' is a linked clone; make a full clone before converting it"));
  std::string base_name = "base-" + v.name.substr(3);  // vm-100-disk-0.qcow2 -> base-100-disk-0.qcow2
  std::string from = FileOf(v);
  std::string to = root_ + "/images/" + std::to_string(v.vmid) + "/" + base_name;
  if (auto st = RenameNoReplace(from, to); !st) {
    if (st.error().code == ErrorCode::kAlreadyExists)
      return Fail(AlreadyExists("volume '" + id_ + ":" + std::to_string(v.vmid) + "/" + base_name + "' already exists"));
    return Fail(st.error());
  }
  // Base images are never written again; read-only also protects them from mistakes.
  ::chmod(to.c_str(), 0400);
  return std::to_string(v.vmid) + "/" + base_name;
}

Result<std::string> DirStorage::UndoBase(const std::string& base_volname) {
  HEARTH_ASSIGN_OR_RETURN(DirVolume v, ParseDirVolname(base_volname));
  if (!v.is_base) return Fail(InvalidArgument("'" + base_volname + "' is not a base image"));
  if (!LinkedClonesOf(base_volname).empty())
    return Fail(FailedPrecondition("base volume '" + id_ + ":" + base_volname + "' has linked clones"));
  std::string vm_name = "vm-" + v.name.substr(5);  // base-100-disk-0.qcow2 -> vm-100-disk-0.qcow2
  std::string from = FileOf(v);
  std::string to = root_ + "/images/" + std::to_string(v.vmid) + "/" + vm_name;
  ::chmod(from.c_str(), 0600);
  HEARTH_TRY(RenameNoReplace(from, to));
  return std::to_string(v.vmid) + "/" + vm_name;
}

Result<std::string> DirStorage::CloneLinked(const std::string& base_volname, int vmid) {
  HEARTH_ASSIGN_OR_RETURN(DirVolume base, ParseDirVolname(base_volname));
  if (!base.is_base) return Fail(FailedPrecondition("'" + base_volname + "' is not a base image (convert the VM to a template first)"));
  if (base.format != "qcow2")
    return Fail(FailedPrecondition("linked clones need a qcow2 base image; '" + base_volname + "' is " + base.format));
  HEARTH_TRY(Ready());
  std::lock_guard lock(alloc_mu_);
  std::string dir = root_ + "/images/" + std::to_string(vmid);
  HEARTH_TRY(MakeDirs(dir));
  HEARTH_ASSIGN_OR_RETURN(std::string file, NextDiskFile(vmid, "qcow2"));
  std::string path = dir + "/" + file;
  // The backing file is recorded relative to the overlay, so the data dir can move.
  auto r = runner_.Run({"qemu-img", "create", "-q", "-f", "qcow2", "-b", "../" + base_volname, "-F", "qcow2", path}, {});
  if (!r || r->exit_code != 0) {
    ::unlink(path.c_str());
    return Fail(r ? Internal("linked clone: " + DescribeFailure({"qemu-img"}, *r)) : r.error());
  }
  return base_volname + "/" + std::to_string(vmid) + "/" + file;
}

Result<std::string> DirStorage::CopyImage(const std::string& src_path, const std::string& src_format, int vmid,
                                          const std::string& format, const ProgressFn& progress,
                                          const std::string& src_snapshot) {
  if (format != "raw" && format != "qcow2" && format != "vmdk")
    return Fail(FieldError("format", "unsupported format '" + format + "'"));
  HEARTH_TRY(Ready());
  std::string file;
  std::string dir = root_ + "/images/" + std::to_string(vmid);
  {
    std::lock_guard lock(alloc_mu_);
    HEARTH_TRY(MakeDirs(dir));
    HEARTH_ASSIGN_OR_RETURN(file, NextDiskFile(vmid, format));
    // Reserve the name before the (slow) copy so parallel copies pick different names.
    int fd = ::open((dir + "/" + file).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Fail(Internal("create " + file + ": " + strerror(errno)));
    ::close(fd);
  }
  std::string path = dir + "/" + file;
  if (auto st = ConvertImage(src_path, src_format, path, format, progress, src_snapshot); !st) {
    ::unlink(path.c_str());
    return Fail(st.error());
  }
  return std::to_string(vmid) + "/" + file;
}

Status DirStorage::ConvertImage(const std::string& src_path, const std::string& src_format, const std::string& dst_path,
                                const std::string& format, const ProgressFn& progress, const std::string& src_snapshot) {
  return hearth::ConvertImage(runner_, src_path, src_format, dst_path, format, false, progress, src_snapshot);
}

Result<StoragePlugin::SnapshotImage> DirStorage::SnapshotImageOf(const std::string& volname, const std::string& snap) {
  HEARTH_ASSIGN_OR_RETURN(DirVolume v, ParseDirVolname(volname));
  if (v.content != ContentType::kImages || v.format != "qcow2")
    return Fail(Internal("Full clone feature is not supported for a snapshot of '" + id_ + ":" + volname + "'"));
  HEARTH_ASSIGN_OR_RETURN(std::string path, Path(volname));
  // `qemu-img snapshot` has no -f: the format is named through --image-opts (never probed).
  std::string escaped;
  for (char c : path) escaped += c == ',' ? std::string(",,") : std::string(1, c);
  auto r = runner_.Run({"qemu-img", "snapshot", "-U", "-l", "--image-opts", "driver=qcow2,file.filename=" + escaped}, {});
  if (!r || r->exit_code != 0)
    return Fail(r ? Internal("listing snapshots of " + volname + ": " + DescribeFailure({"qemu-img"}, *r)) : r.error());
  // The table's second column is the tag: "1         before-upgrade   0 B 2026-..."
  bool found = false;
  for (auto line : Split(r->out, '\n')) {
    auto words = SplitAny(line, " \t");  // empty pieces dropped
    if (words.size() >= 2 && words[1] == snap) found = true;
  }
  if (!found) return Fail(Internal("snapshot '" + snap + "' does not exist"));
  return SnapshotImage{path, "qcow2", snap};
}

Result<std::string> DirStorage::CloneLinkedFromSnapshot(const std::string& volname, const std::string&, int) {
  return Fail(Internal("Linked clone feature is not supported for a snapshot of '" + id_ + ":" + volname + "'"));
}

bool DirStorage::CanSnapshot(const std::string& volname) const {
  auto v = ParseDirVolname(volname);
  return v && v->content == ContentType::kImages && v->format == "qcow2";
}

Status DirStorage::QemuImgSnapshot(const std::string& volname, const char* op, const std::string& snap,
                                   const char* refusal) {
  HEARTH_ASSIGN_OR_RETURN(DirVolume v, ParseDirVolname(volname));
  if (v.content != ContentType::kImages || v.format != "qcow2") return Fail(FailedPrecondition(refusal));
  std::string path = FileOf(v);
  if (!PathExists(path)) return Fail(NotFound("volume '" + id_ + ":" + volname + "' does not exist"));
  auto r = runner_.Run({"qemu-img", "snapshot", op, snap, path}, {});
  if (!r) return Fail(r.error());
  if (r->exit_code != 0) return Fail(Internal("qemu-img snapshot " + std::string(op) + " " + snap + ": " +
                                              DescribeFailure({"qemu-img"}, *r)));
  return Ok();
}

Status DirStorage::VolumeSnapshot(const std::string& volname, const std::string& snap) {
  return QemuImgSnapshot(volname, "-c", snap, "can't snapshot this image format");
}

Status DirStorage::VolumeSnapshotRollback(const std::string& volname, const std::string& snap) {
  return QemuImgSnapshot(volname, "-a", snap, "can't rollback snapshot this image format");
}

Status DirStorage::VolumeSnapshotDelete(const std::string& volname, const std::string& snap) {
  return QemuImgSnapshot(volname, "-d", snap, "can't delete snapshot for this image format");
}

Status DirStorage::ResizeImage(const std::string& volname, uint64_t new_size) {
  HEARTH_ASSIGN_OR_RETURN(DirVolume v, ParseDirVolname(volname));
  if (v.content != ContentType::kImages) return Fail(InvalidArgument("'" + volname + "' is not a disk image"));
  if (v.is_base) return Fail(FailedPrecondition("'" + volname + "' is a template's base image and cannot change"));
  std::string path = FileOf(v);
  auto r = runner_.Run({"qemu-img", "resize", "-q", "-f", v.format, path, std::to_string(new_size)}, {});
  if (!r) return Fail(r.error());
  if (r->exit_code != 0) return Fail(Internal("resize: " + DescribeFailure({"qemu-img"}, *r)));
  return Ok();
}

Result<std::string> DirStorage::Path(const std::string& volname) {
  HEARTH_ASSIGN_OR_RETURN(DirVolume v, ParseDirVolname(volname));
  return FileOf(v);
}

Status DirStorage::FreeVolume(const std::string& volname) {
  HEARTH_ASSIGN_OR_RETURN(std::string path, Path(volname));
  if (auto v = ParseDirVolname(volname); v && v->is_base) {
    auto clones = LinkedClonesOf(volname);
    if (!clones.empty())
      return Fail(FailedPrecondition("base volume '" + id_ + ":" + volname + "' is still in use by linked clone '" +
                                     clones.front() + "'"));
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return Fail(Internal("remove '" + path + "': " + strerror(errno)));
  if (auto v = ParseDirVolname(volname); v && v->content == ContentType::kImages) {
    // The VM's last disk takes its images/<vmid> dir along (Proxmox leaves them, one per VM
    // ever made); rmdir fails harmlessly while other disks remain. Under alloc_mu_ because
    // allocations make the dir and then the file in it.
    std::lock_guard lock(alloc_mu_);
    (void)::rmdir(ParentDir(path).c_str());
  }
  return Ok();
}

Result<VolumeInfo> DirStorage::InfoAt(const std::string& volname, const DirVolume& v) {
  std::string path = FileOf(v);
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return Fail(NotFound("volume '" + id_ + ":" + volname + "' does not exist"));
  VolumeInfo info;
  info.volid = id_ + ":" + volname;
  info.content = v.content;
  info.format = v.format;
  info.vmid = v.vmid;
  info.used = static_cast<uint64_t>(st.st_blocks) * 512;
  info.size = static_cast<uint64_t>(st.st_size);
  info.ctime = st.st_ctime;
  info.path = path;
  if (v.format == "qcow2")
    if (auto vs = Qcow2VirtualSize(path)) info.size = *vs;
  // vmdk headers come in several kinds; qemu-img reads them (vmdk disks are rare: one process
  // each is affordable, and the file size would be wrong for every use of the size).
  if (v.format == "vmdk" && v.content == ContentType::kImages)
    if (auto vs = ImageVirtualSize(runner_, path, "vmdk")) info.size = *vs;
  if (v.format == "qcow2" && v.base_volname.empty()) {
    // A linked clone listed by its plain name: report it under its full volid, with parent.
    std::string backing = Qcow2BackingFile(path);
    if (StartsWith(backing, "../")) {
      std::string base = backing.substr(3);
      if (auto b = ParseDirVolname(base); b && b->is_base) {
        info.volid = id_ + ":" + base + "/" + std::to_string(v.vmid) + "/" + v.name;
        info.parent = id_ + ":" + base;
      }
    }
  }
  if (!v.base_volname.empty()) info.parent = id_ + ":" + v.base_volname;
  return info;
}

Result<VolumeInfo> DirStorage::Info(const std::string& volname) {
  auto v = ParseDirVolname(volname);
  if (!v) return Fail(NotFound("volume '" + id_ + ":" + volname + "' does not exist"));
  return InfoAt(volname, *v);
}

Result<std::string> DirStorage::BackupDir() const {
  if (!Supports(ContentType::kBackup)) return StoragePlugin::BackupDir();
  HEARTH_TRY(Ready());
  return root_ + "/" + layout_.Subdir(ContentType::kBackup);
}

Result<std::vector<VolumeInfo>> DirStorage::List(std::optional<ContentType> content, int vmid) {
  std::vector<VolumeInfo> out;
  auto scan_dir = [&](const std::string& rel, const std::string& prefix) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root_ + "/" + rel, ec)) {
      if (!e.is_regular_file(ec)) continue;
      std::string name = e.path().filename().string();
      std::string volname = prefix + name;
      auto v = ParseDirVolname(volname);
      if (!v) continue;  // temp files and foreign files are not volumes
      if (auto info = InfoAt(volname, *v)) out.push_back(*info);
    }
  };
  auto want = [&](ContentType c) { return (!content || *content == c) && Supports(c); };
  if (want(ContentType::kImages)) {
    std::error_code ec;
    for (const auto& d : fs::directory_iterator(root_ + "/images", ec)) {
      std::string owner = d.path().filename().string();
      if (vmid && owner != std::to_string(vmid)) continue;
      scan_dir("images/" + owner, owner + "/");
    }
  }
  if (want(ContentType::kIso) && !vmid) scan_dir(layout_.Subdir(ContentType::kIso), "iso/");
  if (want(ContentType::kSnippets) && !vmid) scan_dir(layout_.Subdir(ContentType::kSnippets), "snippets/");
  if (want(ContentType::kImport) && !vmid) scan_dir(layout_.Subdir(ContentType::kImport), "import/");
  if (want(ContentType::kBackup)) scan_dir(layout_.Subdir(ContentType::kBackup), "backup/");
  if (want(ContentType::kVztmpl) && !vmid) scan_dir(layout_.Subdir(ContentType::kVztmpl), "vztmpl/");
  std::sort(out.begin(), out.end(), [](const VolumeInfo& a, const VolumeInfo& b) { return ToLower(a.volid) < ToLower(b.volid); });
  return out;
}

Result<std::string> DirStorage::ImportFile(ContentType content, const std::string& file_name,
                                           const std::string& temp_path) {
  if (!Supports(content))
    return Fail(FieldError("content", "storage '" + id_ + "' does not support content type '" + ContentTypeName(content) + "'"));
  HEARTH_TRY(Ready());
  std::string dir_name = content == ContentType::kIso ? "iso" : content == ContentType::kSnippets ? "snippets"
                       : content == ContentType::kImport ? "import" : content == ContentType::kVztmpl ? "vztmpl" : "";
  if (dir_name.empty()) return Fail(FieldError("content", std::string("cannot upload content type '") + ContentTypeName(content) + "'"));
  std::string volname = dir_name + "/" + file_name;
  auto parsed = ParseDirVolname(volname);
  if (!parsed) return Fail(FieldError("filename", "invalid file name '" + file_name + "'"));
  std::string dest = FileOf(*parsed);
  HEARTH_TRY(MakeDirs(dest.substr(0, dest.rfind('/'))));
  // Durable first, then moved in atomically: of two imports with one name, exactly one wins.
  HEARTH_TRY(SyncFile(temp_path));
  if (auto st = RenameNoReplace(temp_path, dest); !st) {
    if (st.error().code == ErrorCode::kAlreadyExists)
      return Fail(AlreadyExists("volume '" + id_ + ":" + volname + "' already exists"));
    return Fail(st.error().WithContext("move upload into place"));
  }
  return id_ + ":" + volname;
}

void RegisterDirStorage(StorageRegistry& registry) {
  registry.Register("dir", [](const StorageConfig& config, const StorageDeps& deps) -> Result<std::shared_ptr<StoragePlugin>> {
    if (!deps.runner) return Fail(Internal("dir storage without a process runner"));
    // The data dir predates configurable storages: its ISOs are in iso/, not template/iso/.
    bool data_dir = !deps.data_dir.empty() && config.Get("path") == deps.data_dir;
    return std::make_shared<DirStorage>(config, *deps.runner, data_dir ? DirLayout::HearthDataDir() : DirLayout{});
  });
}

}  // namespace hearth

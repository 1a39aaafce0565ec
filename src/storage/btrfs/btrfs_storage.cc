#include "storage/btrfs/btrfs_storage.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/strings.h"
#include "core/units.h"
#include "model/vm_snapshot.h"
#include "storage/btrfs/send_stream.h"
#include "storage/registry.h"
#include "sys/file_system.h"
#include "sys/files.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;

constexpr long kBtrfsMagic = 0x9123683e;  // statfs f_type (linux/magic.h BTRFS_SUPER_MAGIC)

// Proxmox's snapshot names (pve-guest-common: pve-configid, at most 40 characters), and the
// replication snapshots' "__replicate_<jobid>_<time>__".
bool IsSnapshotName(const std::string& s) {
  if (ParseReplicationSnapshotName(s)) return true;
  if (s.empty() || s.size() > 40 || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; });
}

bool IsDir(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// "vm-100-disk-0", "base-100-disk-0", "vm-100-cloudinit": the subvolume stems of raw images.
bool IsImageStem(const std::string& name) { return ParseDiskName(name).has_value(); }

}  // namespace

BtrfsStorage::BtrfsStorage(const StorageConfig& config, ProcessRunner& runner) : DirStorage(config, runner, DirLayout{}) {}

Status BtrfsStorage::Btrfs(std::vector<std::string> args) {
  args.insert(args.begin(), {"btrfs", "-q"});
  auto r = runner_.Run(args, {});
  if (!r) return Fail(r.error());
  if (r->exit_code != 0) {
    std::string shown = Join(std::vector<std::string>(args.begin() + 2, args.end()), " ");
    return Fail(Internal("command 'btrfs " + shown + "' failed: " + DescribeFailure({"btrfs"}, *r)));
  }
  return Ok();
}

Status BtrfsStorage::Activate() {
  bool base;
  {
    std::lock_guard lock(config_mu_);
    base = create_base_path_;
  }
  std::string mountpoint;
  {
    std::lock_guard lock(config_mu_);
    mountpoint = is_mountpoint_;
  }
  if (base && mountpoint.empty()) (void)MakeDirs(root_);
  HEARTH_TRY(DirStorage::Activate());
  // A rollback cut short (crash between the exchange and the delete) leaves its swapped-out
  // subvolume as <stem>.tmp.<pid>: nothing names it, so it goes now.
  std::error_code ec;
  for (const auto& owner : fs::directory_iterator(root_ + "/images", ec))
    for (const auto& e : fs::directory_iterator(owner.path(), ec)) {
      std::string name = e.path().filename().string();
      size_t tmp = name.find(".tmp.");
      if (tmp != std::string::npos && IsImageStem(name.substr(0, tmp)) && IsDir(e.path().string()))
        (void)Btrfs({"subvolume", "delete", "--", e.path().string()});
    }
  return Ok();
}

Status BtrfsStorage::Ready() const {
  HEARTH_TRY(DirStorage::Ready());
  // An unmounted file system leaves an empty directory on another one: never written to.
  struct statfs sf;
  if (::statfs(root_.c_str(), &sf) != 0 || static_cast<long>(sf.f_type) != kBtrfsMagic)
    return Fail(FailedPrecondition("'" + root_ + "' is not a btrfs file system"));
  return Ok();
}

Result<BtrfsStorage::RawImage> BtrfsStorage::Raw(const std::string& volname) const {
  HEARTH_ASSIGN_OR_RETURN(DirVolume v, ParseDirVolname(volname));
  if (v.content != ContentType::kImages || v.format != "raw" || !v.base_volname.empty())
    return Fail(InvalidArgument("'" + volname + "' is not a raw disk image"));
  std::string stem = v.name.substr(0, v.name.size() - 4);  // without ".raw"
  return RawImage{v, root_ + "/images/" + std::to_string(v.vmid) + "/" + stem};
}

Status BtrfsStorage::MakeImageSubvolume(const std::string& subvol, uint64_t size) {
  HEARTH_TRY(Btrfs({"subvolume", "create", "--", subvol}));
  auto undo = [&](Error e) {
    (void)Btrfs({"subvolume", "delete", "--", subvol});
    return Fail(std::move(e));
  };
  std::string compress;
  {
    std::lock_guard lock(config_mu_);
    compress = compress_;
  }
  // Set on the subvolume before disk.raw exists, so the file inherits it (btrfs compresses
  // each extent written from then on; data that does not shrink is stored as it is).
  if (!compress.empty())
    if (auto st = Btrfs({"property", "set", "--", subvol, "compression", compress}); !st) return undo(st.error());
  std::string file = subvol + "/disk.raw";
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return undo(Internal("create " + file + ": " + strerror(errno)));
  bool nocow;
  {
    std::lock_guard lock(config_mu_);
    nocow = nocow_;
  }
  // NOCOW only takes on an empty file (chattr +C): before the size is set, as Proxmox.
  int flags = 0;
  if (nocow && ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
    flags |= FS_NOCOW_FL;
    (void)::ioctl(fd, FS_IOC_SETFLAGS, &flags);
  }
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int err = errno;
    ::close(fd);
    return undo(Internal("size " + file + ": " + strerror(err)));
  }
  ::close(fd);
  return Ok();
}

Result<std::string> BtrfsStorage::AllocImage(int vmid, const std::string& format, uint64_t size,
                                             const std::string& name, const ProgressFn& progress) {
  if (format != "raw")
    return Fail(FieldError("format", "unsupported format '" + format + "' for storage '" + id_ +
                                         "' (btrfs storages hold raw images: snapshots and clones are the file system's)"));
  HEARTH_TRY(Ready());
  std::lock_guard lock(alloc_mu_);
  std::string dir = root_ + "/images/" + std::to_string(vmid);
  HEARTH_TRY(MakeDirs(dir));
  HEARTH_ASSIGN_OR_RETURN(std::string file, ImageFileName(vmid, "raw", name));
  // Sparse, like a qcow2 on a dir storage: thin provisioning, said when it overcommits.
  if (auto space = FilesystemSpace(root_); space && size > space->avail && progress)
    progress("WARN: thin provisioning: " + std::to_string(size / kMiB) + "M requested, " +
             std::to_string(space->avail / kMiB) + "M free on '" + id_ + "'");
  std::string stem = file.substr(0, file.size() - 4);
  HEARTH_TRY(MakeImageSubvolume(dir + "/" + stem, (size + 511) / 512 * 512));
  return std::to_string(vmid) + "/" + file;
}

Result<std::vector<std::string>> BtrfsStorage::VolumeSnapshotNames(const std::string& volname) {
  HEARTH_ASSIGN_OR_RETURN(RawImage img, Raw(volname));
  std::string prefix = img.subvol.substr(img.subvol.rfind('/') + 1) + "@";
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(ParentDir(img.subvol), ec)) {
    std::string name = e.path().filename().string();
    if (StartsWith(name, prefix) && IsSnapshotName(name.substr(prefix.size())) && IsDir(e.path().string()))
      out.push_back(name.substr(prefix.size()));
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status BtrfsStorage::FreeVolume(const std::string& volname) {
  auto img = Raw(volname);
  if (!img) return DirStorage::FreeVolume(volname);
  if (!IsDir(img->subvol)) return Ok();  // already gone: freeing is idempotent
  std::vector<std::string> args = {"subvolume", "delete", "--"};
  HEARTH_ASSIGN_OR_RETURN(auto snaps, VolumeSnapshotNames(volname));
  for (const auto& s : snaps) args.push_back(img->subvol + "@" + s);
  args.push_back(img->subvol);
  HEARTH_TRY(Btrfs(args));
  std::lock_guard lock(alloc_mu_);
  (void)::rmdir(ParentDir(img->subvol).c_str());  // the VM's last disk takes its directory along
  return Ok();
}

Result<std::string> BtrfsStorage::Path(const std::string& volname) {
  if (auto img = Raw(volname)) return img->subvol + "/disk.raw";
  return DirStorage::Path(volname);
}

Result<VolumeInfo> BtrfsStorage::Info(const std::string& volname) {
  auto img = Raw(volname);
  if (!img) return DirStorage::Info(volname);
  std::string path = img->subvol + "/disk.raw";
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Fail(NotFound("volume '" + id_ + ":" + volname + "' does not exist"));
  VolumeInfo info;
  info.volid = id_ + ":" + volname;
  info.content = ContentType::kImages;
  info.format = "raw";
  info.vmid = img->vol.vmid;
  info.size = static_cast<uint64_t>(st.st_size);
  info.used = static_cast<uint64_t>(st.st_blocks) * 512;
  info.ctime = st.st_ctime;
  info.path = path;
  return info;
}

Result<std::vector<VolumeInfo>> BtrfsStorage::List(std::optional<ContentType> content, int vmid) {
  // The dir listing finds everything but raw images (those are directories here).
  HEARTH_ASSIGN_OR_RETURN(auto out, DirStorage::List(content, vmid));
  if ((!content || *content == ContentType::kImages) && Supports(ContentType::kImages)) {
    std::error_code ec;
    for (const auto& d : fs::directory_iterator(root_ + "/images", ec)) {
      std::string owner = d.path().filename().string();
      if (vmid && owner != std::to_string(vmid)) continue;
      for (const auto& e : fs::directory_iterator(d.path(), ec)) {
        std::string name = e.path().filename().string();
        // Snapshots (@), leftovers (.tmp.) and foreign files are not volumes.
        if (name.find('@') != std::string::npos || name.find('.') != std::string::npos) continue;
        if (!IsDir(e.path().string())) continue;
        if (auto info = Info(owner + "/" + name + ".raw")) out.push_back(*info);
      }
    }
    std::sort(out.begin(), out.end(),
              [](const VolumeInfo& a, const VolumeInfo& b) { return ToLower(a.volid) < ToLower(b.volid); });
  }
  return out;
}

Result<std::string> BtrfsStorage::RenameToBase(const std::string& volname) {
  auto img = Raw(volname);
  if (!img) return DirStorage::RenameToBase(volname);
  if (img->vol.is_base) return Fail(InvalidArgument("'" + volname + "' is already a base image"));
  std::string stem = img->subvol.substr(img->subvol.rfind('/') + 1);
  if (!StartsWith(stem, "vm-")) return Fail(InvalidArgument("'" + volname + "' is not a VM disk"));
  std::string base_stem = "base-" + stem.substr(3);
  std::string base = ParentDir(img->subvol) + "/" + base_stem;
  HEARTH_TRY(RenameNoReplace(img->subvol, base));
  if (auto st = Btrfs({"property", "set", base, "ro", "true"}); !st) {
    (void)::rename(base.c_str(), img->subvol.c_str());
    return Fail(st.error());
  }
  return std::to_string(img->vol.vmid) + "/" + base_stem + ".raw";
}

Result<std::string> BtrfsStorage::UndoBase(const std::string& base_volname) {
  auto img = Raw(base_volname);
  if (!img) return DirStorage::UndoBase(base_volname);
  std::string stem = img->subvol.substr(img->subvol.rfind('/') + 1);
  if (!StartsWith(stem, "base-")) return Fail(InvalidArgument("'" + base_volname + "' is not a base image"));
  std::string vm_stem = "vm-" + stem.substr(5);
  HEARTH_TRY(Btrfs({"property", "set", img->subvol, "ro", "false"}));
  HEARTH_TRY(RenameNoReplace(img->subvol, ParentDir(img->subvol) + "/" + vm_stem));
  return std::to_string(img->vol.vmid) + "/" + vm_stem + ".raw";
}

Result<std::string> BtrfsStorage::CloneLinked(const std::string& base_volname, int vmid) {
  auto img = Raw(base_volname);
  if (!img) return DirStorage::CloneLinked(base_volname, vmid);
  if (!img->vol.is_base)
    return Fail(FailedPrecondition("'" + base_volname + "' is not a base image (convert the VM to a template first)"));
  return WritableSnapshotFor(img->subvol, vmid);
}

Result<std::string> BtrfsStorage::WritableSnapshotFor(const std::string& source, int vmid) {
  HEARTH_TRY(Ready());
  std::lock_guard lock(alloc_mu_);
  std::string dir = root_ + "/images/" + std::to_string(vmid);
  HEARTH_TRY(MakeDirs(dir));
  HEARTH_ASSIGN_OR_RETURN(std::string file, NextDiskFile(vmid, "raw"));
  std::string stem = file.substr(0, file.size() - 4);
  HEARTH_TRY(Btrfs({"subvolume", "snapshot", "--", source, dir + "/" + stem}));
  return std::to_string(vmid) + "/" + file;
}

Result<std::string> BtrfsStorage::CopyImage(const std::string& src_path, const std::string& src_format, int vmid,
                                            const std::string& format, const ProgressFn& progress,
                                            const std::string& src_snapshot) {
  if (format != "raw")
    return Fail(FieldError("format", "unsupported format '" + format + "' for storage '" + id_ +
                                         "' (btrfs storages hold raw images)"));
  HEARTH_TRY(Ready());
  std::string dir = root_ + "/images/" + std::to_string(vmid), subvol;
  {
    // The subvolume (with an empty disk.raw, NOCOW if asked) reserves the name before the
    // slow copy, so parallel copies pick different names.
    std::lock_guard lock(alloc_mu_);
    HEARTH_TRY(MakeDirs(dir));
    HEARTH_ASSIGN_OR_RETURN(std::string file, NextDiskFile(vmid, "raw"));
    subvol = dir + "/" + file.substr(0, file.size() - 4);
    HEARTH_TRY(MakeImageSubvolume(subvol, 0));
  }
  if (auto st = ConvertImage(src_path, src_format, subvol + "/disk.raw", "raw", progress, src_snapshot); !st) {
    (void)Btrfs({"subvolume", "delete", "--", subvol});
    return Fail(st.error());
  }
  return std::to_string(vmid) + "/" + subvol.substr(subvol.rfind('/') + 1) + ".raw";
}

Status BtrfsStorage::ResizeImage(const std::string& volname, uint64_t new_size) {
  auto img = Raw(volname);
  if (!img) return DirStorage::ResizeImage(volname, new_size);
  if (img->vol.is_base) return Fail(FailedPrecondition("'" + volname + "' is a template's base image and cannot change"));
  std::string path = img->subvol + "/disk.raw";
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Fail(NotFound("volume '" + id_ + ":" + volname + "' does not exist"));
  if (new_size < static_cast<uint64_t>(st.st_size)) return Fail(InvalidArgument("shrinking disks is not supported"));
  if (::truncate(path.c_str(), static_cast<off_t>(new_size)) != 0)
    return Fail(Internal("resize " + path + ": " + strerror(errno)));
  return Ok();
}

Result<StoragePlugin::SnapshotImage> BtrfsStorage::SnapshotImageOf(const std::string& volname, const std::string& snap) {
  auto img = Raw(volname);
  if (!img) return DirStorage::SnapshotImageOf(volname, snap);
  if (!IsSnapshotName(snap) || !IsDir(img->subvol + "@" + snap))
    return Fail(Internal("snapshot '" + snap + "' does not exist"));
  // The read-only snapshot subvolume is the disk as it was: no selection inside the file.
  return SnapshotImage{img->subvol + "@" + snap + "/disk.raw", "raw", ""};
}

Result<std::string> BtrfsStorage::CloneLinkedFromSnapshot(const std::string& volname, const std::string& snap, int vmid) {
  auto img = Raw(volname);
  if (!img) return DirStorage::CloneLinkedFromSnapshot(volname, snap, vmid);
  if (!IsSnapshotName(snap) || !IsDir(img->subvol + "@" + snap))
    return Fail(Internal("snapshot '" + snap + "' does not exist"));
  // A writable snapshot of the read-only one, as BTRFSPlugin's clone_image with a snapname.
  return WritableSnapshotFor(img->subvol + "@" + snap, vmid);
}

bool BtrfsStorage::CanSnapshot(const std::string& volname) const {
  return Raw(volname) ? true : DirStorage::CanSnapshot(volname);
}

bool BtrfsStorage::SnapshotByQemu(const std::string& volname) const {
  return Raw(volname) ? false : DirStorage::SnapshotByQemu(volname);
}

Status BtrfsStorage::VolumeSnapshot(const std::string& volname, const std::string& snap) {
  if (!Raw(volname)) return DirStorage::VolumeSnapshot(volname, snap);
  HEARTH_ASSIGN_OR_RETURN(RawImage img, Raw(volname));
  if (!IsSnapshotName(snap)) return Fail(FieldError("snapname", "invalid format - invalid configuration ID '" + snap + "'"));
  if (!IsDir(img.subvol)) return Fail(NotFound("volume '" + id_ + ":" + volname + "' does not exist"));
  if (PathExists(img.subvol + "@" + snap))
    return Fail(AlreadyExists("snapshot '" + snap + "' of volume '" + id_ + ":" + volname + "' already exists"));
  return Btrfs({"subvolume", "snapshot", "-r", "--", img.subvol, img.subvol + "@" + snap});
}

Status BtrfsStorage::VolumeSnapshotRollback(const std::string& volname, const std::string& snap) {
  if (!Raw(volname)) return DirStorage::VolumeSnapshotRollback(volname, snap);
  HEARTH_ASSIGN_OR_RETURN(RawImage img, Raw(volname));
  if (!IsSnapshotName(snap) || !IsDir(img.subvol + "@" + snap))
    return Fail(NotFound("snapshot '" + snap + "' of volume '" + id_ + ":" + volname + "' does not exist"));
  // One atomic step: a crash leaves either the old disk in place (and tmp, removed at the
  // next activation) or the rolled-back one (and the old one as tmp, removed likewise).
  return SwapInWritableSnapshot(img.subvol + "@" + snap, img.subvol);
}

Status BtrfsStorage::VolumeSnapshotDelete(const std::string& volname, const std::string& snap) {
  if (!Raw(volname)) return DirStorage::VolumeSnapshotDelete(volname, snap);
  HEARTH_ASSIGN_OR_RETURN(RawImage img, Raw(volname));
  if (!IsSnapshotName(snap) || !IsDir(img.subvol + "@" + snap))
    return Fail(NotFound("snapshot '" + snap + "' of volume '" + id_ + ":" + volname + "' does not exist"));
  return Btrfs({"subvolume", "delete", "--", img.subvol + "@" + snap});
}

bool BtrfsStorage::CanReplicate(const std::string& volname) const { return Raw(volname).has_value(); }

Result<uint64_t> BtrfsStorage::ExportVolume(const std::string& volname, const std::string& snap, const std::string& base,
                                            const std::string& out_path) {
  auto img = Raw(volname);
  if (!img) return DirStorage::ExportVolume(volname, snap, base, out_path);
  auto missing = [&](const std::string& s) {
    return Fail(NotFound("snapshot '" + s + "' of volume '" + id_ + ":" + volname + "' does not exist"));
  };
  if (!IsSnapshotName(snap) || !IsDir(img->subvol + "@" + snap)) return missing(snap);
  std::vector<std::string> args = {"send", "-f", out_path};
  if (!base.empty()) {
    if (!IsSnapshotName(base) || !IsDir(img->subvol + "@" + base)) return missing(base);
    args.insert(args.end(), {"-p", img->subvol + "@" + base});
  }
  args.insert(args.end(), {"--", img->subvol + "@" + snap});
  if (auto st = Btrfs(args); !st) {
    (void)::unlink(out_path.c_str());
    return Fail(st.error());
  }
  struct stat st;
  if (::stat(out_path.c_str(), &st) != 0) return Fail(Internal("btrfs send wrote no stream to " + out_path));
  return static_cast<uint64_t>(st.st_size);
}

Status BtrfsStorage::SwapInWritableSnapshot(const std::string& source, const std::string& subvol) {
  std::string tmp = subvol + ".tmp." + std::to_string(::getpid());
  if (IsDir(tmp)) (void)Btrfs({"subvolume", "delete", "--", tmp});
  HEARTH_TRY(Btrfs({"subvolume", "snapshot", "--", source, tmp}));
  if (!IsDir(subvol)) {
    if (::rename(tmp.c_str(), subvol.c_str()) == 0) return Ok();
  } else if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, subvol.c_str(), RENAME_EXCHANGE) == 0) {
    (void)Btrfs({"subvolume", "delete", "--", tmp});  // the old state; else removed at the next start
    return Ok();
  }
  int err = errno;
  (void)Btrfs({"subvolume", "delete", "--", tmp});
  return Fail(Internal("failed to rotate '" + tmp + "' into place at '" + subvol + "' - " + strerror(err)));
}

Status BtrfsStorage::ImportVolume(const std::string& volname, const std::string& snap, const std::string& base,
                                  const std::string& in_path) {
  auto img = Raw(volname);
  if (!img) return DirStorage::ImportVolume(volname, snap, base, in_path);
  if (img->vol.is_base) return Fail(FailedPrecondition("'" + volname + "' is a template's base image and cannot change"));
  HEARTH_TRY(Ready());
  if (!IsSnapshotName(snap)) return Fail(FieldError("snapshot", "invalid snapshot name '" + snap + "'"));
  if (!base.empty() && (!IsSnapshotName(base) || !IsDir(img->subvol + "@" + base)))
    return Fail(NotFound("base snapshot '" + base + "' of volume '" + id_ + ":" + volname +
                         "' does not exist here: a full transfer is needed"));
  if (PathExists(img->subvol + "@" + snap))
    return Fail(AlreadyExists("snapshot '" + snap + "' of volume '" + id_ + ":" + volname + "' already exists"));
  // A full stream never replaces a volume that is here already (another guest's, or a copy
  // whose history the source lost): as Proxmox's import, it is refused.
  if (base.empty() && PathExists(img->subvol))
    return Fail(AlreadyExists("volume '" + id_ + ":" + volname + "' already exists"));
  std::string dir = ParentDir(img->subvol), stem = img->subvol.substr(img->subvol.rfind('/') + 1);
  // The stream names the subvolume it makes: only the expected one is accepted, and `-e`
  // stops at the end of this first stream, so nothing else is made; -C confines the paths
  // inside the stream to the directory.
  std::string want = stem + "@" + snap;
  {
    std::string head(64 << 10, '\0');
    int fd = ::open(in_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Fail(Internal("cannot open " + in_path + ": " + strerror(errno)));
    ssize_t n = ::pread(fd, head.data(), head.size(), 0);
    ::close(fd);
    head.resize(n > 0 ? static_cast<size_t>(n) : 0);
    HEARTH_ASSIGN_OR_RETURN(SendStreamHead h, ParseSendStreamHead(head));
    if (h.path != want || h.incremental != !base.empty())
      return Fail(InvalidArgument("the replication stream makes " + std::string(h.incremental ? "a snapshot" : "a subvolume") +
                                  " '" + h.path + "', not the expected " + (base.empty() ? "subvolume" : "snapshot") +
                                  " '" + want + "'"));
  }
  {
    std::lock_guard lock(alloc_mu_);
    HEARTH_TRY(MakeDirs(dir));
  }
  std::string received = dir + "/" + want;
  // A receive cut short leaves a writable, partial <image>@<snap>: it goes here, or (after a
  // crash) as a stale snapshot at the job's next prepare.
  Status st = Btrfs({"receive", "-e", "-E", "1", "-C", "-f", in_path, "--", dir});
  if (st) st = CheckReceivedImage(received);
  if (!st && IsDir(received)) (void)Btrfs({"subvolume", "delete", "--", received});
  HEARTH_TRY(st);
  // A crash from here leaves the new snapshot and the old image: the next run sends from
  // the new snapshot (or the source deletes it as stale) and the image is made again.
  return SwapInWritableSnapshot(img->subvol + "@" + snap, img->subvol);
}

Status BtrfsStorage::CheckReceivedImage(const std::string& subvol) {
  // What a hostile stream could leave besides a disk image: a symlink (QEMU and resize would
  // follow it to a host file), a device node, a set-id file, other files or directories.
  auto bad = [&](const std::string& what) {
    return Fail(InvalidArgument("the replication stream holds " + what + ", not just a disk image: refused"));
  };
  std::error_code ec;
  int entries = 0;
  for (const auto& e : fs::directory_iterator(subvol, ec)) {
    ++entries;
    if (e.path().filename() != "disk.raw") return bad("'" + e.path().filename().string() + "'");
  }
  if (ec) return Fail(Internal("cannot read the received subvolume: " + ec.message()));
  struct stat st;
  if (entries != 1 || ::lstat((subvol + "/disk.raw").c_str(), &st) != 0) return bad("no disk.raw");
  if (!S_ISREG(st.st_mode)) return bad("a disk.raw that is not a regular file");
  if ((st.st_mode & (S_ISUID | S_ISGID | S_ISVTX)) != 0 || st.st_nlink != 1) return bad("a disk.raw with odd attributes");
  return Ok();
}

void RegisterBtrfsStorage(StorageRegistry& registry) {
  registry.Register("btrfs", [](const StorageConfig& config, const StorageDeps& deps) -> Result<std::shared_ptr<StoragePlugin>> {
    if (!deps.runner) return Fail(Internal("btrfs storage without a process runner"));
    return std::make_shared<BtrfsStorage>(config, *deps.runner);
  });
}

}  // namespace hearth

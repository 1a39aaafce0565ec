#pragma once

#include <mutex>
#include <string>

#include "storage/plugin.h"
#include "sys/process.h"

namespace hearth {

// Where each content type lives under a directory storage's path.
struct DirLayout {
  std::string iso = "template/iso", vztmpl = "template/cache";  // Proxmox's (DirPlugin)
  // Staged uploads (same file system, so they rename into place); hidden, so a directory
  // that Proxmox also uses shows nothing new.
  std::string tmp = ".hearth-tmp";
  // hearth's data dir as storage `local` has always laid it out: iso/, template/, tmp/.
  static DirLayout HearthDataDir() { return {"iso", "template", "tmp"}; }
  std::string Subdir(ContentType content) const;  // "images", "template/iso", "dump", ...
};

// A directory storage, laid out like Proxmox's `dir` type:
//   images/<vmid>/vm-<vmid>-disk-<n>.<fmt>   template/iso/   template/cache/   snippets/
//   import/   dump/   (hearth's own data dir: iso/ and template/, see DirLayout)
// Images are created with qemu-img. Sizes are read from the qcow2 header (no process per
// volume), so listing a thousand volumes stays fast.
// Not final: the btrfs driver is a DirStorage whose raw images are subvolumes (as Proxmox's
// BTRFSPlugin derives from DirPlugin); everything that is not a raw image is shared.
class DirStorage : public StoragePlugin {
 public:
  DirStorage(std::string id, std::string root, std::vector<ContentType> content, ProcessRunner& runner,
             DirLayout layout = DirLayout::HearthDataDir());
  // From a stored configuration (type dir): path, content, create-base-path/create-subdirs/
  // mkdir, is_mountpoint.
  DirStorage(const StorageConfig& config, ProcessRunner& runner, DirLayout layout);
  const std::string& id() const override { return id_; }
  std::string type() const override { return "dir"; }
  bool Supports(ContentType content) const override;
  std::string DefaultFormat() const override;
  bool SupportsFormat(const std::string& format) const override;
  Result<StorageStatus> Usage() override;
  Status Activate() override;
  // Activation's checks, creating nothing: the mount point mounted (is_mountpoint), the
  // directory there (btrfs: on btrfs). Usage() reports inactive and allocations, copies,
  // clones and imports fail while it fails, as Proxmox activates before each of them.
  virtual Status Ready() const;
  void Reconfigure(const StorageConfig& config) override;
  Result<std::string> AllocImage(int vmid, const std::string& format, uint64_t size, const std::string& name,
                                 const ProgressFn& progress) override;
  Status FreeVolume(const std::string& volname) override;
  Result<std::string> Path(const std::string& volname) override;
  Result<VolumeInfo> Info(const std::string& volname) override;
  Result<std::vector<VolumeInfo>> List(std::optional<ContentType> content, int vmid) override;
  Result<std::string> RenameToBase(const std::string& volname) override;
  Result<std::string> UndoBase(const std::string& base_volname) override;
  Result<std::string> CloneLinked(const std::string& base_volname, int vmid) override;
  Result<std::string> CopyImage(const std::string& src_path, const std::string& src_format, int vmid,
                                const std::string& format, const ProgressFn& progress,
                                const std::string& src_snapshot = "") override;
  Result<SnapshotImage> SnapshotImageOf(const std::string& volname, const std::string& snap) override;
  Result<std::string> CloneLinkedFromSnapshot(const std::string& volname, const std::string& snap, int vmid) override;
  Status ResizeImage(const std::string& volname, uint64_t new_size) override;
  Result<std::string> ImportFile(ContentType content, const std::string& file_name,
                                 const std::string& temp_path) override;
  std::string TempDir() const override { return root_ + "/" + layout_.tmp; }
  Result<std::string> BackupDir() const override;
  // Internal qcow2 snapshots (qemu-img snapshot -c/-a/-d), as Proxmox's Plugin.pm.
  bool CanSnapshot(const std::string& volname) const override;
  bool SnapshotByQemu(const std::string& volname) const override { return CanSnapshot(volname); }
  Status VolumeSnapshot(const std::string& volname, const std::string& snap) override;
  Status VolumeSnapshotRollback(const std::string& volname, const std::string& snap) override;
  Status VolumeSnapshotDelete(const std::string& volname, const std::string& snap) override;

  // Space an image of this format and size needs up front (raw: all of it; qcow2: metadata).
  static uint64_t InitialFootprint(const std::string& format, uint64_t size);

 protected:
  // `qemu-img snapshot <op> <snap> <file>` on a qcow2 image; `what` names the failure.
  Status QemuImgSnapshot(const std::string& volname, const char* op, const std::string& snap, const char* refusal);
  // qemu-img convert with progress in tens of percent; `dst_path` may exist (it is rewritten).
  Status ConvertImage(const std::string& src_path, const std::string& src_format, const std::string& dst_path,
                      const std::string& format, const ProgressFn& progress, const std::string& src_snapshot = "");
  Result<VolumeInfo> InfoAt(const std::string& volname, const DirVolume& parsed);
  // The file of a parsed volname under this storage's layout.
  std::string FileOf(const DirVolume& v) const;
  std::vector<ContentType> Content() const;
  // `name`.<format> if neither it nor a bare `name` directory exists, else the next free disk
  // name (NextDiskFile); call with alloc_mu_ held.
  Result<std::string> ImageFileName(int vmid, const std::string& format, const std::string& name);
  // Picks the next free "vm-<vmid>-disk-<n>.<format>" under images/<vmid>/ (taken: any
  // format, base- too, and a bare directory of that name: a btrfs subvolume); call with
  // alloc_mu_ held.
  Result<std::string> NextDiskFile(int vmid, const std::string& format);
  // Linked clones (anywhere on this storage) whose backing file is `base_volname`.
  std::vector<std::string> LinkedClonesOf(const std::string& base_volname);
  std::string id_, root_;
  DirLayout layout_;
  mutable std::mutex config_mu_;  // guards the options below (Reconfigure)
  std::vector<ContentType> content_;
  bool create_base_path_ = true, create_subdirs_ = true;
  std::string is_mountpoint_;  // "", "0"/"1"/"no"/"yes"..., or the mount point's path
  std::string format_;         // the `format` option: default image format ("" = the type's)
  bool nocow_ = false;         // btrfs: chattr +C on new raw images
  std::string compress_;       // btrfs: compression property of new image subvolumes ("" = none)
  ProcessRunner& runner_;
  std::mutex alloc_mu_;  // picks disk indexes one at a time
};

// Registers type "dir" (a storage at the daemon's data dir keeps hearth's DirLayout).
class StorageRegistry;
void RegisterDirStorage(StorageRegistry& registry);

// Reads the virtual size from a qcow2 header; nullopt if the file is not qcow2.
std::optional<uint64_t> Qcow2VirtualSize(const std::string& path);
// The backing file name recorded in a qcow2 header ("" if none or not qcow2).
std::string Qcow2BackingFile(const std::string& path);

}  // namespace hearth

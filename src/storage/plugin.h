// StoragePlugin: one storage (a directory, later btrfs, RBD, ...). Plugins are created by
// name from a factory table in daemon/; VmService and the API see only this interface.
//
// Volume names (`volname`) are plugin-specific; a volume id is "<storage>:<volname>".
// Every method is thread-safe. Methods that create files leave nothing behind on failure.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "model/storage_config.h"
#include "model/volume_id.h"

namespace hearth {

struct VolumeInfo {
  std::string volid;
  ContentType content = ContentType::kImages;
  std::string format;  // raw, qcow2, iso, ...
  uint64_t size = 0;   // virtual size for images, file size otherwise
  uint64_t used = 0;   // bytes allocated on disk
  int vmid = 0;
  std::string parent;  // base volume id of a linked clone
  int64_t ctime = 0;
  std::string path;
};

struct StorageStatus {
  std::string storage;
  std::string type;
  std::vector<ContentType> content;
  bool active = true, enabled = true, shared = false;
  uint64_t total = 0, used = 0, avail = 0;
};

using ProgressFn = std::function<void(const std::string&)>;

// How QEMU opens a volume: the protocol node of its -blockdev (the "file" child under the
// format node) and the format the format node reads. The VM layer adds the node name and the
// drive's own options (cache, aio, discard, read-only), so a new driver (a network protocol,
// a block device) only answers this and never touches the argv builder. qemu-server derives
// the same from PVE::Storage::path and the volume's type (QemuServer/Blockdev.pm).
struct VolumeBlockdev {
  std::string format;               // raw, qcow2, vmdk; anything else is opened as raw
  nlohmann::ordered_json protocol;  // {"driver": "file", "filename": "/path"}, host_device, ...
  // The host path QEMU reads, for what needs one (an EFI vars pflash drive, a descriptor
  // passed to a running QEMU); "" for a volume that has none (a network protocol).
  std::string path;
};

class StoragePlugin {
 public:
  virtual ~StoragePlugin() = default;
  virtual const std::string& id() const = 0;
  virtual std::string type() const = 0;
  virtual bool Supports(ContentType content) const = 0;
  // The image format new disks get when none is asked for: the storage's `format` option, else
  // the type's (hearth's dir: qcow2, btrfs: raw). PVE::Storage storage_default_format.
  virtual std::string DefaultFormat() const = 0;
  virtual bool SupportsFormat(const std::string& format) const = 0;
  virtual Result<StorageStatus> Usage() = 0;
  // Proxmox's activate_storage: makes the storage usable on this node (directories made,
  // mounts checked) or fails saying why, e.g. "unable to activate storage 'x' - directory
  // '/p' does not exist or is unreachable". Idempotent; cheap when already active.
  virtual Status Activate() = 0;
  // Proxmox's activate_volume: makes one volume usable before QEMU opens it (an LVM thin LV
  // activated, a zvol's device link present). Called at VM start for every disk. Cheap when
  // it is; file storages need nothing.
  virtual Status ActivateVolume(const std::string& volname) {
    (void)volname;
    return Ok();
  }
  // The -blockdev protocol options of a volume (VolumeBlockdev). Image files by default
  // (driver "file"); block-device storages (zvols, LVs) answer "host_device".
  virtual Result<VolumeBlockdev> Blockdev(const std::string& volname) {
    HEARTH_ASSIGN_OR_RETURN(VolumeInfo info, Info(volname));
    return VolumeBlockdev{info.format, {{"driver", "file"}, {"filename", info.path}}, info.path};
  }
  // Takes changed options of the same storage (PUT /storage/{storage}: content, disable,
  // nodes, ...; the fixed ones such as `path` never change). The object stays the same so
  // that operations in flight keep their locks.
  virtual void Reconfigure(const StorageConfig& config) = 0;

  // Allocates a new image for `vmid`: "vm-<vmid>-disk-<n>" with the lowest free n, or `name`
  // if given (e.g. "vm-100-cloudinit"). Returns the volname.
  virtual Result<std::string> AllocImage(int vmid, const std::string& format, uint64_t size,
                                         const std::string& name, const ProgressFn& progress) = 0;
  virtual Status FreeVolume(const std::string& volname) = 0;
  virtual Result<std::string> Path(const std::string& volname) = 0;
  virtual Result<VolumeInfo> Info(const std::string& volname) = 0;
  virtual Result<std::vector<VolumeInfo>> List(std::optional<ContentType> content, int vmid) = 0;
  // Turns a VM disk into a template's base image (vm-<vmid>-disk-N -> base-<vmid>-disk-N).
  // Returns the new volname.
  virtual Result<std::string> RenameToBase(const std::string& volname) = 0;
  // Undoes RenameToBase (an interrupted template conversion). Returns the VM disk volname.
  virtual Result<std::string> UndoBase(const std::string& base_volname) = 0;
  // A linked clone of a base image for `vmid`: a copy-on-write overlay, no data copied.
  virtual Result<std::string> CloneLinked(const std::string& base_volname, int vmid) = 0;
  // A full, independent copy of `src_path` for `vmid` in `format`, reporting progress.
  // `src_snapshot`: an internal qcow2 snapshot of the source to copy instead of its current
  // state (SnapshotImageOf's internal_snapshot).
  virtual Result<std::string> CopyImage(const std::string& src_path, const std::string& src_format, int vmid,
                                        const std::string& format, const ProgressFn& progress,
                                        const std::string& src_snapshot = "") = 0;
  // Grows an image (not in use by a running QEMU) to `new_size` bytes.
  virtual Status ResizeImage(const std::string& volname, uint64_t new_size) = 0;
  // Moves a finished temporary file into the storage as `file_name` of `content` (uploads).
  virtual Result<std::string> ImportFile(ContentType content, const std::string& file_name,
                                         const std::string& temp_path) = 0;
  // Volume snapshots, Proxmox's volume_snapshot / volume_snapshot_rollback /
  // volume_snapshot_delete. CanSnapshot is volume_has_feature('snapshot'): dir only for qcow2
  // ("snapshot feature is not available" otherwise), btrfs for raw. SnapshotByQemu is
  // volume_qemu_snapshot_method == 'qemu': while the VM runs, QEMU takes the snapshot (QMP,
  // internal qcow2); otherwise the storage does, the VM paused. Snapshot names are checked by
  // the caller (pve-snapshot-name).
  virtual bool CanSnapshot(const std::string& volname) const = 0;
  virtual bool SnapshotByQemu(const std::string& volname) const = 0;
  virtual Status VolumeSnapshot(const std::string& volname, const std::string& snap) = 0;
  virtual Status VolumeSnapshotRollback(const std::string& volname, const std::string& snap) = 0;
  virtual Status VolumeSnapshotDelete(const std::string& volname, const std::string& snap) = 0;
  // A volume as it was at snapshot `snap`, for a full copy (volume_has_feature 'copy' on a
  // snapshot: dir for qcow2, btrfs for any): the file to read, its format, and the internal
  // qcow2 snapshot qemu-img must select in it ("" when the file is the snapshot itself).
  // Errors: "Full clone feature is not supported for a snapshot of '<storage>:<volname>'",
  // "snapshot '<snap>' does not exist".
  struct SnapshotImage {
    std::string path, format, internal_snapshot;
  };
  virtual Result<SnapshotImage> SnapshotImageOf(const std::string& volname, const std::string& snap) = 0;
  // A linked clone of the volume's snapshot `snap` for `vmid` (volume_has_feature 'clone' on
  // a snapshot: btrfs raw only; dir: "Linked clone feature is not supported for a snapshot of ...").
  virtual Result<std::string> CloneLinkedFromSnapshot(const std::string& volname, const std::string& snap, int vmid) = 0;
  // Replication (Proxmox's volume_has_feature 'replicate', volume_export and volume_import,
  // in the storage's own stream format). Only btrfs raw images can (`btrfs send`/`receive`);
  // the defaults say so with Proxmox's text.
  virtual bool CanReplicate(const std::string& volname) const {
    (void)volname;
    return false;
  }
  // The volume's storage snapshots (config snapshots and replication snapshots alike), sorted.
  virtual Result<std::vector<std::string>> VolumeSnapshotNames(const std::string& volname) {
    return Fail(Internal("missing replicate feature on volume '" + id() + ":" + volname + "'"));
  }
  // Writes snapshot `snap` of the volume as a stream into the new file `out_path`, only the
  // changes since snapshot `base` when it is given (one both sides hold). Returns the
  // stream's size in bytes; on failure `out_path` is removed.
  virtual Result<uint64_t> ExportVolume(const std::string& volname, const std::string& snap, const std::string& base,
                                        const std::string& out_path) {
    (void)snap, (void)base, (void)out_path;
    return Fail(Internal("missing replicate feature on volume '" + id() + ":" + volname + "'"));
  }
  // Reads a stream ExportVolume wrote (hostile input: the file came over the network). On
  // success the volume holds the data of `snap` and has `snap` among its snapshots; on
  // failure nothing changed: the previous copy and its snapshots stay as they were.
  virtual Status ImportVolume(const std::string& volname, const std::string& snap, const std::string& base,
                              const std::string& in_path) {
    (void)snap, (void)base, (void)in_path;
    return Fail(Internal("storage '" + id() + "' is not replicatable (volume '" + volname + "')"));
  }

  // Where this storage keeps backups (Proxmox's get_backup_dir: "<path>/dump"); hearth's
  // backup datastore lives there. "can't use storage '<id>' for backups - wrong content
  // type" when the storage holds no `backup` content or is no file storage.
  virtual Result<std::string> BackupDir() const {
    return Fail(FailedPrecondition("can't use storage '" + id() + "' for backups - wrong content type"));
  }

  // Where temporary files for this storage should be written (same filesystem: rename works).
  // It may not exist yet; whatever is in it when the daemon starts is a leftover.
  virtual std::string TempDir() const = 0;
};

}  // namespace hearth

// A btrfs storage laid out as Proxmox's BTRFSPlugin (pve-storage src/PVE/Storage/
// BTRFSPlugin.pm; docs/reference/pve-storage.md section 6): everything a dir storage holds,
// except that a raw disk image is a subvolume with one file in it,
//   images/<vmid>/vm-<vmid>-disk-<n>/disk.raw        volid <id>:<vmid>/vm-<vmid>-disk-<n>.raw
//   images/<vmid>/vm-<vmid>-disk-<n>@<snap>/          its read-only snapshots
//   images/<vmid>/base-<vmid>-disk-<n>/               a template's disk (subvolume ro=true)
// so clones (linked or full) are writable subvolume snapshots sharing every extent, and volume
// snapshots are read-only subvolume snapshots. Copy-on-write stays on (checksums and
// compression keep working) unless the `nocow` option asks for chattr +C on new images.
//
// Every btrfs command runs as `btrfs -q <args> -- <paths>` through the ProcessRunner (no
// shell). Thread-safe as DirStorage; snapshot operations on one volume are serialised by the
// caller (the VM's lock).
#pragma once

#include <string>
#include <vector>

#include "storage/dir/dir_storage.h"

namespace hearth {

class BtrfsStorage final : public DirStorage {
 public:
  BtrfsStorage(const StorageConfig& config, ProcessRunner& runner);
  std::string type() const override { return "btrfs"; }
  std::string DefaultFormat() const override { return "raw"; }
  bool SupportsFormat(const std::string& format) const override { return format == "raw"; }
  // Besides the dir checks: the path must be on btrfs ("'<path>' is not a btrfs file system").
  Status Activate() override;
  Status Ready() const override;
  Result<std::string> AllocImage(int vmid, const std::string& format, uint64_t size, const std::string& name,
                                 const ProgressFn& progress) override;
  // Deletes the subvolume and all its snapshots in one `btrfs subvolume delete`.
  Status FreeVolume(const std::string& volname) override;
  Result<std::string> Path(const std::string& volname) override;
  Result<VolumeInfo> Info(const std::string& volname) override;
  Result<std::vector<VolumeInfo>> List(std::optional<ContentType> content, int vmid) override;
  // vm-… -> base-…, then the subvolume is made read-only.
  Result<std::string> RenameToBase(const std::string& volname) override;
  Result<std::string> UndoBase(const std::string& base_volname) override;
  // A writable snapshot of the base subvolume: instant, shares every extent, and independent of
  // the base afterwards (its volid has no base part, as Proxmox's).
  Result<std::string> CloneLinked(const std::string& base_volname, int vmid) override;
  Result<std::string> CopyImage(const std::string& src_path, const std::string& src_format, int vmid,
                                const std::string& format, const ProgressFn& progress,
                                const std::string& src_snapshot = "") override;
  Result<SnapshotImage> SnapshotImageOf(const std::string& volname, const std::string& snap) override;
  Result<std::string> CloneLinkedFromSnapshot(const std::string& volname, const std::string& snap, int vmid) override;
  Status ResizeImage(const std::string& volname, uint64_t new_size) override;

  // Volume snapshots (Proxmox's volume_snapshot, volume_snapshot_rollback,
  // volume_snapshot_delete). Names as Proxmox's snapshot names ([a-zA-Z][a-zA-Z0-9_-]*).
  // Raw images: read-only subvolume snapshots; anything else as a dir storage.
  bool CanSnapshot(const std::string& volname) const override;
  bool SnapshotByQemu(const std::string& volname) const override;
  Status VolumeSnapshot(const std::string& volname, const std::string& snap) override;
  // Any snapshot, not only the newest: the current subvolume is swapped atomically
  // (renameat2 RENAME_EXCHANGE) with a writable snapshot of <snap>, then the old one goes.
  Status VolumeSnapshotRollback(const std::string& volname, const std::string& snap) override;
  Status VolumeSnapshotDelete(const std::string& volname, const std::string& snap) override;
  Result<std::vector<std::string>> VolumeSnapshotNames(const std::string& volname) override;
  // Replication: raw images only. Export is `btrfs send [-p <base>] -f <out> <image>@<snap>`.
  // Import first reads the stream's head (send_stream.h): it must make exactly <image>@<snap>
  // (a snapshot of <image>@<base> when incremental); then `btrfs receive -e -C` beside the
  // image, the received subvolume must hold only a regular disk.raw, then a writable snapshot
  // of it is swapped in as the image (RENAME_EXCHANGE), so a failure at any step leaves the
  // previous copy whole (a partial or refused receive is deleted). A full stream onto an
  // existing image is refused ("volume '<volid>' already exists").
  bool CanReplicate(const std::string& volname) const override;
  Result<uint64_t> ExportVolume(const std::string& volname, const std::string& snap, const std::string& base,
                                const std::string& out_path) override;
  Status ImportVolume(const std::string& volname, const std::string& snap, const std::string& base,
                      const std::string& in_path) override;

 private:
  struct RawImage {
    DirVolume vol;
    std::string subvol;  // images/<vmid>/<name without .raw>
  };
  // The subvolume of a raw image volname; fails for anything else.
  Result<RawImage> Raw(const std::string& volname) const;
  Status Btrfs(std::vector<std::string> args);
  // A writable snapshot of subvolume `source` as the next free disk of `vmid`; its volname.
  Result<std::string> WritableSnapshotFor(const std::string& source, int vmid);
  // Replaces the image subvolume by a writable snapshot of `source` in one atomic step (or
  // makes it, if there is none yet).
  Status SwapInWritableSnapshot(const std::string& source, const std::string& subvol);
  // A received subvolume must hold exactly one regular file, disk.raw (no symlink, device,
  // set-id bit, hard link or other entry).
  static Status CheckReceivedImage(const std::string& subvol);
  // Creates the subvolume with an empty, sized disk.raw in it; removes it again on failure.
  Status MakeImageSubvolume(const std::string& subvol, uint64_t size);
};

void RegisterBtrfsStorage(StorageRegistry& registry);

}  // namespace hearth

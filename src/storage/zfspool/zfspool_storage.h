// A ZFS pool storage as Proxmox's ZFSPoolPlugin (pve-storage src/PVE/Storage/ZFSPoolPlugin.pm;
// the facts are in docs/reference/pve-zfspool.md): every VM disk is a zvol,
//   <pool>/vm-<vmid>-disk-<n>       volid <id>:vm-<vmid>-disk-<n>, path /dev/zvol/<pool>/<name>
//   <pool>/base-<vmid>-disk-<n>     a template's disk, with the snapshot @__base__
//   <pool>/vm-<vmid>-disk-<n>       a linked clone: volid <id>:base-<b>-disk-<m>/vm-<vmid>-disk-<n>,
//                                   `origin` <pool>/base-<b>-disk-<m>@__base__
// snapshots are ZFS snapshots (<pool>/<name>@<snap>), replication is `zfs send`/`zfs recv`.
// Only raw zvols (VM disks): `subvol` datasets are for containers, which hearth does not run.
//
// Every command is an argv through the ProcessRunner (`zfs ...`, `zpool ...`, `qemu-img ...`),
// never a shell; names are checked before they reach one (no '@', '/', blanks or leading '-').
// zfs errors read "zfs error: <zfs's last stderr line>" as Proxmox's zfs_request. The kernel
// module is not on the machines hearth is developed on, so this driver is tested against
// recorded command outputs (zfspool_storage_test.cc); btrfs is the driver tested for real.
//
// Thread-safe: allocations pick disk numbers one at a time; snapshot operations on one
// volume are serialised by the caller (the VM's lock).
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "storage/plugin.h"
#include "sys/process.h"

namespace hearth {

class StorageRegistry;

class ZfsPoolStorage final : public StoragePlugin {
 public:
  // `device_ready(path)` says whether the zvol's block device exists yet (udev makes it
  // after `zfs create`); the default stats the path. Tests replace it.
  ZfsPoolStorage(const StorageConfig& config, ProcessRunner& runner,
                 std::function<bool(const std::string&)> device_ready = nullptr);

  const std::string& id() const override { return id_; }
  std::string type() const override { return "zfspool"; }
  bool Supports(ContentType content) const override;
  std::string DefaultFormat() const override { return "raw"; }
  bool SupportsFormat(const std::string& format) const override { return format == "raw"; }
  // `zfs get -o value -Hp available,used <pool>`: total = available + used.
  Result<StorageStatus> Usage() override;
  // The pool imported (`zpool list -o name -H <pool>`), else `zpool import -d /dev/disk/by-id/
  // -o cachefile=none <pool>`; "could not activate storage '<id>', <error>" when neither works.
  Status Activate() override;
  // Waits for the zvol's /dev/zvol link (udev may still be making it after an import).
  Status ActivateVolume(const std::string& volname) override;
  // A block device (the zvol), raw: QEMU's host_device protocol.
  Result<VolumeBlockdev> Blockdev(const std::string& volname) override;
  void Reconfigure(const StorageConfig& config) override;

  // `zfs create [-s] [-b <blocksize>] -V <KiB>k <pool>/<name>`, the size rounded up to 1 MiB
  // (Proxmox: zfs issue 8541), then waits for /dev/zvol/<pool>/<name>.
  Result<std::string> AllocImage(int vmid, const std::string& format, uint64_t size, const std::string& name,
                                 const ProgressFn& progress) override;
  // `zfs destroy -r`, retried while "dataset is busy" (6 tries, 1 s apart); a base still used
  // by linked clones is refused ("base volume '<volname>' is still in use by linked clones").
  Status FreeVolume(const std::string& volname) override;
  Result<std::string> Path(const std::string& volname) override;
  Result<VolumeInfo> Info(const std::string& volname) override;
  // `zfs list -o name,volsize,origin,type,refquota -t volume,filesystem -d1 -Hp <pool>`.
  Result<std::vector<VolumeInfo>> List(std::optional<ContentType> content, int vmid) override;
  // `zfs rename` vm- -> base-, then `zfs snapshot <pool>/<base>@__base__`.
  Result<std::string> RenameToBase(const std::string& volname) override;
  Result<std::string> UndoBase(const std::string& base_volname) override;
  // `zfs clone <pool>/<base>@__base__ <pool>/vm-<vmid>-disk-<n>`.
  Result<std::string> CloneLinked(const std::string& base_volname, int vmid) override;
  // A new zvol of the source's size, then `qemu-img convert -n` into its block device.
  Result<std::string> CopyImage(const std::string& src_path, const std::string& src_format, int vmid,
                                const std::string& format, const ProgressFn& progress,
                                const std::string& src_snapshot = "") override;
  // `zfs set volsize=<KiB>k`, rounded up to 1 MiB.
  Status ResizeImage(const std::string& volname, uint64_t new_size) override;
  Result<std::string> ImportFile(ContentType content, const std::string& file_name,
                                 const std::string& temp_path) override;

  // Snapshots: `zfs snapshot`, `zfs rollback` (only to the most recent snapshot, as Proxmox:
  // "can't rollback, '<snap>' is not most recent snapshot on '<id>:<volname>'"), `zfs destroy`.
  // A running VM is paused while the storage snapshots (not QEMU).
  bool CanSnapshot(const std::string& volname) const override;
  bool SnapshotByQemu(const std::string&) const override { return false; }
  Status VolumeSnapshot(const std::string& volname, const std::string& snap) override;
  Status VolumeSnapshotRollback(const std::string& volname, const std::string& snap) override;
  Status VolumeSnapshotDelete(const std::string& volname, const std::string& snap) override;
  // Proxmox's table: copy and clone of a snapshot are not features of zfspool.
  Result<SnapshotImage> SnapshotImageOf(const std::string& volname, const std::string& snap) override;
  Result<std::string> CloneLinkedFromSnapshot(const std::string& volname, const std::string& snap, int vmid) override;

  // Replication: `zfs send -Rpv [-I <pool>/<name>@<base>] <pool>/<name>@<snap>` into the file,
  // `zfs recv -F -x encryption <pool>/<name>` from it; a failed receive rolls back to <base>
  // (`zfs rollback -r`) or destroys what a full receive made, as Proxmox's volume_import.
  bool CanReplicate(const std::string& volname) const override;
  Result<std::vector<std::string>> VolumeSnapshotNames(const std::string& volname) override;
  Result<uint64_t> ExportVolume(const std::string& volname, const std::string& snap, const std::string& base,
                                const std::string& out_path) override;
  Status ImportVolume(const std::string& volname, const std::string& snap, const std::string& base,
                      const std::string& in_path) override;

  // The pool's mount point (`mountpoint`, default "/<pool>") + "/.hearth-tmp".
  std::string TempDir() const override;

  // A volname split as Proxmox's parse_volname: "base-100-disk-0/vm-101-disk-0" has name
  // "vm-101-disk-0", base "base-100-disk-0"; fails ("unable to parse zfs volume name '<v>'")
  // for anything else, and for names hearth would not pass to zfs (bounded, no '@' or '/').
  struct ZfsVolume {
    std::string name, base;
    int vmid = 0, base_vmid = 0;
    bool is_base = false;
  };
  static Result<ZfsVolume> ParseVolname(const std::string& volname);

 private:
  std::string Dataset(const std::string& name) const { return pool_ + "/" + name; }
  // `zfs <args>` (or `zpool` when `zpool`); stdout on success, "zfs error: <last stderr line>".
  Result<std::string> Zfs(std::vector<std::string> args, std::chrono::seconds timeout = std::chrono::seconds(300),
                          bool zpool = false, const ProcessOptions* extra = nullptr);
  Status WaitForDevice(const std::string& name);
  // The lowest free vm-<vmid>-disk-<n> (numbers shared with base-); call with alloc_mu_ held.
  Result<std::string> NextDiskName(int vmid);
  Result<std::vector<std::string>> SnapshotsOf(const std::string& name);

  std::string id_, pool_, blocksize_, mountpoint_;
  bool sparse_ = false;
  mutable std::mutex config_mu_;  // guards content_ (Reconfigure)
  std::vector<ContentType> content_;
  ProcessRunner& runner_;
  std::function<bool(const std::string&)> device_ready_;
  std::mutex alloc_mu_;
};

void RegisterZfsPoolStorage(StorageRegistry& registry);

}  // namespace hearth

// An LVM thin pool storage as Proxmox's LvmThinPlugin (pve-storage src/PVE/Storage/
// LvmThinPlugin.pm and LVMPlugin.pm; facts in docs/reference/pve-zfspool.md, part B): every VM
// disk is a thin LV in the pool `<vgname>/<thinpool>`,
//   <vg>/vm-<vmid>-disk-<n>            volid <id>:vm-<vmid>-disk-<n>, path /dev/<vg>/<name>
//   <vg>/base-<vmid>-disk-<n>          a template's disk (read-only, activation skipped)
//   <vg>/snap_<volname>_<snap>         a snapshot (a read-only thin snapshot LV)
// Linked clones are thin snapshots of the base and, as in Proxmox, their volid does not name
// the base (thin snapshots do not depend on their origin). Snapshots of any age can be rolled
// back to. No replication (Proxmox has none for LVM either).
//
// Commands are argv vectors (`/sbin/lvs`, `/sbin/lvcreate`, ...; Proxmox's paths), never a
// shell. lvs output is read with `--separator : --noheadings --units b --nosuffix`. Device-
// mapper is missing where hearth is developed, so this driver is tested against recorded
// command outputs (lvmthin_storage_test.cc). Thread-safe as ZfsPoolStorage.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "storage/plugin.h"
#include "sys/process.h"

namespace hearth {

class StorageRegistry;

class LvmThinStorage final : public StoragePlugin {
 public:
  // `temp_dir`: where temporary files go (the storage has no file system): hearth's data dir.
  LvmThinStorage(const StorageConfig& config, ProcessRunner& runner, std::string temp_dir);

  const std::string& id() const override { return id_; }
  std::string type() const override { return "lvmthin"; }
  bool Supports(ContentType content) const override;
  std::string DefaultFormat() const override { return "raw"; }
  bool SupportsFormat(const std::string& format) const override { return format == "raw"; }
  // The thin pool's size and data_percent (lvs): total = pool size, used = its share.
  Result<StorageStatus> Usage() override;
  // The volume group present (vgscan once if not) and the thin pool active (`lvchange -ay -K`).
  Status Activate() override;
  // A thin LV (or snapshot) activated before QEMU opens it: `lvchange -ay -K <vg>/<lv>`.
  Status ActivateVolume(const std::string& volname) override;
  // A block device (the LV), raw: QEMU's host_device protocol.
  Result<VolumeBlockdev> Blockdev(const std::string& volname) override;
  void Reconfigure(const StorageConfig& config) override;

  // `lvcreate -aly -V <KiB>k --name <name> --thinpool <vg>/<pool>`, then
  // `lvchange --setautoactivation n` (a failure there is not an error, as Proxmox).
  Result<std::string> AllocImage(int vmid, const std::string& format, uint64_t size, const std::string& name,
                                 const ProgressFn& progress) override;
  // Its snapshot LVs first, then the LV (`lvremove -f`); a missing LV is not an error.
  Status FreeVolume(const std::string& volname) override;
  Result<std::string> Path(const std::string& volname) override;
  Result<VolumeInfo> Info(const std::string& volname) override;
  Result<std::vector<VolumeInfo>> List(std::optional<ContentType> content, int vmid) override;
  // `lvrename` vm- -> base-, then read-only with activation skipped (`lvchange -pr -ky`);
  // refused while the volume has snapshots.
  Result<std::string> RenameToBase(const std::string& volname) override;
  Result<std::string> UndoBase(const std::string& base_volname) override;
  // `lvcreate -n <name> -prw -kn -s <vg>/<base>`.
  Result<std::string> CloneLinked(const std::string& base_volname, int vmid) override;
  Result<std::string> CopyImage(const std::string& src_path, const std::string& src_format, int vmid,
                                const std::string& format, const ProgressFn& progress,
                                const std::string& src_snapshot = "") override;
  // `lvextend -L <KiB>k /dev/<vg>/<name>` (grows only).
  Status ResizeImage(const std::string& volname, uint64_t new_size) override;
  Result<std::string> ImportFile(ContentType content, const std::string& file_name,
                                 const std::string& temp_path) override;

  bool CanSnapshot(const std::string& volname) const override;
  bool SnapshotByQemu(const std::string&) const override { return false; }
  // `lvcreate -n snap_<vol>_<snap> -pr -s <vg>/<vol>`.
  Status VolumeSnapshot(const std::string& volname, const std::string& snap) override;
  // A writable thin snapshot of the snapshot LV replaces the volume. Proxmox removes the volume
  // first; hearth makes the new one as `rollback_<name>` first, then removes the volume and
  // renames, so a crash in between never loses both, and a repeated rollback finishes.
  Status VolumeSnapshotRollback(const std::string& volname, const std::string& snap) override;
  Status VolumeSnapshotDelete(const std::string& volname, const std::string& snap) override;
  // The snapshot LV itself (activated): copy and clone of snapshots are LvmThin features.
  Result<SnapshotImage> SnapshotImageOf(const std::string& volname, const std::string& snap) override;
  Result<std::string> CloneLinkedFromSnapshot(const std::string& volname, const std::string& snap, int vmid) override;

  std::string TempDir() const override { return temp_dir_; }

  // One line of lvs output (`--options` below), or nullopt for a line that is not 12 fields.
  struct Lv {
    std::string vg, name, attr, pool;
    uint64_t size = 0;
    double data_percent = 0;
    int64_t ctime = 0;
    char type() const { return attr.empty() ? '?' : attr[0]; }       // 't' pool, 'V' thin volume
    bool active() const { return attr.size() > 4 && attr[4] == 'a'; }
  };
  static std::optional<Lv> ParseLvsLine(const std::string& line);
  // Proxmox's parse_volname: (vm|base)-<vmid>-<rest>, an LVM name (letters, digits, '-', '_',
  // '.', '+'; 127 characters at most): "unable to parse lvm volume name '<v>'".
  struct LvmVolume {
    std::string name;
    int vmid = 0;
    bool is_base = false;
  };
  static Result<LvmVolume> ParseVolname(const std::string& volname);

 private:
  Result<std::string> Lvm(const std::string& tool, std::vector<std::string> args, const std::string& what,
                          std::chrono::seconds timeout = std::chrono::seconds(300));
  // Every LV of the volume group, by name.
  Result<std::map<std::string, Lv>> Volumes();
  Status ActivateLv(const std::string& lv);
  void NoAutoActivation(const std::string& lv);
  Result<std::string> NextDiskName(int vmid, const std::map<std::string, Lv>& lvs) const;
  std::string SnapLv(const std::string& name, const std::string& snap) const { return "snap_" + name + "_" + snap; }

  std::string id_, vg_, pool_, temp_dir_;
  mutable std::mutex config_mu_;
  std::vector<ContentType> content_;
  ProcessRunner& runner_;
  std::mutex alloc_mu_;
};

void RegisterLvmThinStorage(StorageRegistry& registry);

}  // namespace hearth

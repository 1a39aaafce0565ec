// FleecedRead: the disks of a running VM read at one instant while the guest runs on
// (vzdump's mode=snapshot), and read incrementally when a dirty bitmap can be trusted.
// The QMP steps are qemu/backup_access.h; this decides which bitmap to use, makes and
// removes the fleecing images, and keeps what must survive a crash in the store's meta:
//   backup-fleecing:<vmid>  the fleecing images being used (removed at the next start if a
//                           crash cut the backup short; RecoverFleecing)
//   backup-bitmap:<vmid>    BitmapRecord: what the VM's bitmaps count changes since
//
// When is a bitmap trusted (otherwise the disk is read whole and its bitmaps start anew)?
// All of: the same QEMU process recorded it since the last backup that was stored (a
// restart, a rollback or a disk move outside QEMU would go unseen, as in Proxmox, whose
// bitmaps live in QEMU's memory); that backup is the newest of this VM in the same storage,
// with the same encryption key, and its index of the disk is the one recorded (checksum);
// the disk's size is unchanged; QEMU reports the bitmap recording and consistent.
// Rules from docs/reference/qemu-fleecing.md §2.3 and §3.3.
//
// Thread-safety: one FleecedRead per backup, used by one thread; the VM lock is held.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backup/datastore.h"
#include "backup/nbd_image.h"
#include "core/result.h"
#include "qemu/backup_access.h"
#include "qemu/qemu_control.h"
#include "state/store.h"
#include "sys/process.h"

namespace hearth {

struct BitmapRecord {
  std::string instance;  // the QEMU process: "<pid>:<start ticks>"
  std::string storage, fingerprint;
  int64_t time = 0;  // the stored backup the bitmaps count changes since
  struct Disk {
    std::string bitmap, csum;  // csum: of that backup's drive-<key>.img.fidx
    uint64_t size = 0;
  };
  std::map<std::string, Disk> disks;
  std::string Encode() const;
  static std::optional<BitmapRecord> Decode(const std::string& text);
};
std::string BitmapMetaKey(int vmid);
std::string FleecingMetaKey(int vmid);

class FleecedRead {
 public:
  struct Options {
    int vmid = 0;
    std::string storage;       // the backup's storage id
    int64_t time = 0;          // the backup's time (names the new bitmaps)
    std::string run_dir;       // the NBD socket goes here
    std::string fleecing_dir;  // the fleecing images go here
    std::optional<BackupSnapshotId> newest;  // the VM's newest stored backup in that storage
  };
  using Log = std::function<void(const std::string&)>;
  // Sets up the point-in-time view of the disks `keys` ("scsi0"): clears what an earlier
  // crash left, picks each disk's bitmap, makes the fleecing images, then freeze(), the
  // point in time, thaw() (thaw also when it failed), then the NBD exports.
  // kNotImplemented when this QEMU cannot, or has none of the disks open as a block node
  // (the caller pauses the guest instead).
  static Result<std::unique_ptr<FleecedRead>> Open(QemuControl& qemu, ProcessRunner& runner, Store& meta,
                                                   BackupDatastore& store, const Options& options,
                                                   const std::vector<std::string>& keys, const std::function<void()>& freeze,
                                                   const std::function<void()>& thaw, const Log& log);
  // Whether the disk is read through the point-in-time view (false: QEMU does not have it
  // open, so nothing writes it and its image is read as it is).
  bool Covers(const std::string& key) const;
  // The disk's point-in-time view. `previous`/`dirty` are set for an incremental read.
  struct DiskRead {
    std::unique_ptr<NbdImage> nbd;
    std::optional<FixedIndex> previous;
    std::optional<std::vector<bool>> dirty;
  };
  Result<DiskRead> Connect(const std::string& key);
  // Ends the point in time as soon as the disks are read (the guest's writes stop being
  // copied) and removes the fleecing images.
  Status Release();
  // The backup `m` is stored: the bitmaps that were exported go, and the record names `m`.
  Status Commit(const BackupManifest& m);
  // Not committed: releases, and the bitmaps count everything since the last stored backup.
  ~FleecedRead();

 private:
  FleecedRead(QemuControl& qemu, Store& meta, BackupDatastore& store, Options options, Log log)
      : qemu_(qemu), meta_(meta), store_(store), options_(std::move(options)), log_(std::move(log)) {}
  QemuControl& qemu_;
  Store& meta_;
  BackupDatastore& store_;
  Options options_;
  Log log_;
  std::string socket_, instance_;
  std::vector<FleeceDisk> disks_;
  std::map<std::string, BackupSnapshotId> previous_;  // disk key -> the backup its bitmap counts from
  bool point_taken_ = false, released_ = false, committed_ = false;
};

// At daemon start, for a VM whose backup a crash cut short: detaches what is left in its
// QEMU (if it runs) and removes the fleecing images. Its bitmaps are left to the next
// backup's checks (a frozen one is not trusted: that disk is read whole).
void RecoverFleecing(QemuControl& qemu, Store& meta, int vmid);

}  // namespace hearth

// VmService: the VMs of this node — their configs (in memory, persisted through Store on
// every change), their QEMU processes and the operations on them.
//
// Threads: API handlers call the read and config methods concurrently; lifecycle operations
// return a UPID and run on task threads, one at a time per VM (TaskManager's VmLocks); a
// poller thread notices VMs that exited and samples CPU and memory. The registry is guarded
// by one shared mutex; no I/O beyond the SQLite write happens while it is held exclusively.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "backup/backup_source.h"
#include "backup/datastore.h"
#include "vms/backup_keys.h"
#include "core/result.h"
#include "model/cloudinit.h"
#include "model/retention.h"
#include "model/vm_config.h"
#include "net/backend.h"
#include "qemu/argv.h"
#include "qemu/qga_client.h"
#include "model/netdev.h"
#include "qemu/qemu_control.h"
#include "state/store.h"
#include "storage/storage_manager.h"
#include "sys/clock.h"
#include "sys/file_system.h"
#include "sys/host_stats.h"
#include "sys/process.h"
#include "sys/random_source.h"
#include "tasks/task_manager.h"
#include "vms/vm_registry.h"
#include "vms/vm_state.h"

namespace hearth {

// The accelerator decision is made once at start, in the background (the KVM probe takes
// seconds); VM starts wait for it.
class AccelState {
 public:
  void Set(bool kvm, std::string reason);
  // Blocks until decided.
  bool WaitKvm();
  std::optional<bool> Kvm() const;
  std::string Reason() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<bool> kvm_;
  std::string reason_;
};

struct VmStatusInfo {
  int vmid = 0;
  std::string name;
  std::string status;     // running | stopped
  std::string qmpstatus;  // running | paused | stopped | ...
  int pid = 0;
  int64_t uptime = 0;
  double cpu = 0;  // fraction of the VM's vCPUs in use
  uint64_t mem = 0, maxmem = 0, maxdisk = 0;
  uint64_t netin = 0, netout = 0, diskread = 0, diskwrite = 0;  // bytes since start
  int cpus = 1;
  bool is_template = false;
  std::string lock, tags;
  bool agent = false, serial = false;
  bool onboot = false;
};

struct ConfigView {
  std::map<std::string, std::string> values;
  std::string digest;
};

struct PendingEntry {
  std::string key;
  std::optional<std::string> value, pending;
  int del = 0;  // 1 = pending delete, 2 = forced
};

struct CreateRequest {
  int vmid = 0;
  std::map<std::string, std::string> config;  // canonical values from the schema
  std::string storage;                        // default storage for "<size>" allocations
  bool start = false;
  std::string user;
};

struct UpdateRequest {
  int vmid = 0;
  std::map<std::string, std::string> set;
  std::vector<std::string> del, revert;
  bool force = false;
  std::string digest;
  bool skiplock = false;
  std::string user;
  // Checks that depend on the current values (PVE runs them inside its locked update): run
  // under the VM's lock, before anything changes. Optional.
  std::function<Status(const VmConfig& current)> authorize;
};

struct CloneRequest {
  int vmid = 0;   // source
  int newid = 0;
  std::string name, description;
  std::optional<bool> full;  // default: linked for templates, full otherwise
  std::string storage, format;  // full clones only
  std::string snapname;         // clone the VM as it was at this snapshot
  std::string user;
};

struct MoveDiskRequest {
  int vmid = 0;
  std::string disk, storage, format, digest;  // format "" keeps the current one
  bool delete_source = false;  // else the old volume becomes unusedN
  std::string user;
};

struct StopRequest {
  int vmid = 0;
  std::string user;
  int timeout = 0;  // seconds; 0 = default (shutdown: startup down= or 60; stop: 60)
  bool force_stop = true;  // shutdown: stop hard after the timeout
  bool overrule_shutdown = false;
  bool skiplock = false;
};

// POST /nodes/{node}/vzdump after the handler's checks (docs/reference/pve-vzdump.md).
struct VzdumpRequest {
  std::vector<int> vmids;  // the handler expands all/exclude into this list
  std::string storage = "local";
  std::string mode = "snapshot";  // snapshot | suspend | stop
  std::string notes_template;
  bool is_protected = false;
  std::optional<KeepOptions> prune;  // the request's or the storage's prune-backups
  bool remove = true;
  std::string user;
  std::string command_line;  // "vzdump 100 --storage local ..." for the first log line
  int stopwait_minutes = 10;  // mode=stop: how long the guest may take to shut down
  int64_t bwlimit_kib = 0;    // KiB/s of disk reads; 0: no limit
};

// POST /nodes/{node}/qemu with `archive`.
struct RestoreRequest {
  int vmid = 0;
  std::string archive;  // "<storage>:backup/vm/<vmid>/<time>"
  std::string storage;  // target of every disk; "" = each disk's original storage, else local
  bool unique = false;
  bool start = false;  // start the VM when restored
  // Overwrite an existing VM (stopped, not protected, not locked): its disks that the backup
  // holds are freed once the restore is done, its other volumes stay as unusedN, its
  // snapshots go (qemu-server's restore_cleanup_oldconf). A failed restore leaves it as it was.
  bool force = false;
  // Config keys given with the archive (no disks): set on the restored config, new NICs
  // without a MAC get one (qemu-server's override_conf and restore_merge_config).
  std::map<std::string, std::string> override_conf;
  std::string user;
  // live-restore=1 (vm_live_restore.cc): the VM starts at once on its new (qcow2) disks while
  // the backup streams into them; the task lasts until every disk is complete. `bwlimit`
  // (KiB/s, 0 = none) limits that stream (Proxmox ignores it for live restores).
  bool live_restore = false;
  int64_t bwlimit = 0;
};

struct RestoreDrillRequest {
  std::string storage;
  int vmid = 0;          // the VM whose newest backup on `storage` is drilled
  int scratch_vmid = 0;  // 0: the first free at or above 999900000
  std::string marker;    // a serial0 line that shows the guest is up (when it has no agent)
  int timeout = 900;     // seconds from the start to the sign of life
  std::string user;
};

// Fills in MACs for NICs that have none, as PVE does on create, update and restore.
Status AddMissingMacs(std::map<std::string, std::string>& values, const std::function<std::string()>& new_mac);

// Which backups a verify re-reads (proxmox-backup src/backup/verify.rs verify_filter): all,
// or with ignore_verified those never verified and those whose last verification started
// more than outdated_after days ago (never, when unset).
struct BackupVerifyFilter {
  bool ignore_verified = false;
  std::optional<int> outdated_after;  // days
  // Whether a backup with this recorded state (verify_state, verify_upid) is re-read at `now`.
  bool Includes(const std::string& verify_state, const std::string& verify_upid, int64_t now) const;
};

// One backup of a prune preview (GET /nodes/{node}/storage/{storage}/prunebackups).
struct BackupPruneEntry {
  std::string volid;
  int64_t ctime = 0;
  int vmid = 0;
  PruneMark mark = PruneMark::kKeep;
};

// "<storage>:backup/vm/<vmid>/<time>", the volume id of a backup.
std::string BackupVolid(const std::string& storage, const BackupSnapshotId& id);
// "<storage>:backup/vm/<vmid>/<time>" -> storage and snapshot id; FieldError on "archive".
Result<std::pair<std::string, BackupSnapshotId>> ParseBackupVolid(const std::string& volid);

struct VmServiceOptions {
  std::string node;
  QemuHostInfo host;  // `kvm` is filled from AccelState at each start
  std::chrono::seconds poll_interval{1};
  // Where a running VM's backup keeps the data its guest overwrites meanwhile (mode=snapshot);
  // "" = <run_dir>/fleecing.
  std::string fleecing_dir;
};

// The host side of a VM's NIC netN: its tap, bridge, VLANs and rate (vm_nic.cc).
TapSpec NicTapSpec(int vmid, int index, const NetDev& nic);

class VmService {
 public:
  VmService(Store& store, TaskManager& tasks, StorageManager& storage, QemuControl& qemu, NetBackend& net,
            ProcessRunner& runner, FileSystem& fs, const HostStats& host, const Clock& clock, AccelState& accel, VmServiceOptions options,
            Random& random);
  ~VmService();

  // Loads VMs, undoes creates interrupted by a crash, re-adopts running QEMUs and starts the
  // poller.
  Status Init();
  void StopPoller();

  std::vector<VmStatusInfo> List();
  Result<VmStatusInfo> CurrentStatus(int vmid);
  Result<ConfigView> Config(int vmid, bool current);
  Result<std::vector<PendingEntry>> Pending(int vmid);
  bool Exists(int vmid);
  std::string ConfigNotFound(int vmid) const;

  Result<std::string> Create(const CreateRequest& req);
  // Synchronous (PUT) when `async` is false: returns nullopt. Asynchronous (POST): a UPID.
  Result<std::optional<std::string>> Update(const UpdateRequest& req, bool async);
  Result<std::string> Destroy(int vmid, const std::string& user, bool purge, bool destroy_unreferenced, bool skiplock);
  // Asked before a destroy is accepted: what else references the VM (replication jobs) may
  // refuse it or, with `purge`, drop those references (Proxmox's check_for_existing_jobs and
  // remove_vmid_jobs). Set once at start, before the API serves.
  void SetDestroyCheck(std::function<Status(int vmid, bool purge)> check) { destroy_check_ = std::move(check); }
  // Called inside the destroy task once a VM destroyed with purge=1 is gone (backup jobs
  // forget it); its problems are the hook's to log as warnings.
  void SetPurgeHook(std::function<void(TaskContext& ctx, int vmid)> hook) { purge_hook_ = std::move(hook); }
  // Called after every destroy (purge or not), in the destroy task: what belongs to the VM
  // elsewhere goes with it (its firewall configuration, as Proxmox's remove_vmfw_conf).
  void SetDestroyedHook(std::function<void(TaskContext& ctx, int vmid)> hook) { destroyed_hook_ = std::move(hook); }

  // Converts a stopped VM into a template: its disks become read-only base images.
  Result<std::string> Template(int vmid, const std::string& user, const std::string& disk);
  // Linked clones are copy-on-write overlays on a template's base images (milliseconds);
  // full clones copy every disk (with progress in the task log).
  Result<std::string> Clone(const CloneRequest& req);

  // Runs a guest agent command after PVE's checks, in PVE's order and words: "No QEMU guest
  // agent configured", "VM <id> is not running", "QEMU guest agent is not running".
  Result<nlohmann::json> AgentCommand(int vmid, const std::string& command, const nlohmann::json& args = nullptr,
                                      std::chrono::seconds timeout = std::chrono::seconds(10),
                                      bool expect_reply = true);

  // Cloud-init: the rendered seed documents ("user", "network", "meta"), and regeneration of
  // the cloud-init drive (PUT …/cloudinit; also done at every start).
  // `reveal_password` false shows cipassword as "**********" (PVE: unless the caller has
  // VM.Config.Cloudinit).
  Result<std::string> CloudInitDump(int vmid, const std::string& type, bool reveal_password);
  Status RegenerateCloudInit(int vmid);

  // Grows a disk: `size` is absolute ("20G") or relative ("+5G"). Shrinking is refused; the
  // same size is a no-op. Running VMs are resized live through QMP.
  Result<std::string> Resize(int vmid, const std::string& disk, const std::string& size, const std::string& digest,
                             bool skiplock, const std::string& user);

  // Presses keys in the guest (PUT …/sendkey): QEMU key names joined by '-' ("ctrl-alt-delete",
  // "shift-a"). Synchronous; "VM <vmid> not running" if it is not.
  Status SendKey(int vmid, const std::string& key);
  // Copies a stopped VM's disk to another storage or format (task qmmove); the old volume
  // becomes unusedN or, with delete_source, is removed. Running VMs are refused for now.
  Result<std::string> MoveDisk(const MoveDiskRequest& req);

  // Snapshots (vm_snapshot.cc; Proxmox's qmsnapshot, qmdelsnapshot, qmrollback tasks).
  // `vmstate` saves RAM too when the VM runs (ignored when it is stopped, as Proxmox); a
  // rollback to such a snapshot starts the VM from that state.
  Result<std::string> Snapshot(int vmid, const std::string& name, const std::string& description, bool vmstate,
                               const std::string& user);
  Result<std::string> DeleteSnapshot(int vmid, const std::string& name, bool force, const std::string& user);
  // Stops a running VM hard first; `start` starts it again afterwards (a separate qmstart task;
  // no effect with RAM state: the rollback task resumes the VM itself).
  Result<std::string> Rollback(int vmid, const std::string& name, bool start, const std::string& user);
  Status SetSnapshotDescription(int vmid, const std::string& name, const std::string& description);
  // The whole config, snapshot sections included.
  Result<VmConfig> FullConfig(int vmid);
  // GET …/feature (qemu-server QemuConfig has_feature): can every disk of the VM, or of its
  // snapshot `snapname`, be snapshotted ("snapshot"), linked-cloned ("clone") or fully
  // copied ("copy")? "snapshot 'x' does not exist" for a missing snapshot.
  Result<bool> HasFeature(int vmid, const std::string& feature, const std::string& snapname);

  // Replication's guest side (vm_replication.cc). The volumes a job copies, sorted: every
  // disk of the config and its snapshots except CD-ROMs, `replicate=0` disks and volumes on
  // shared storages (qemu-server get_replicatable_volumes); "missing replicate feature on
  // volume '<volid>'" for one its storage cannot send, "unable to replicate local
  // file/device '<path>'" for a host path. `cleanup` (Proxmox's cleanup mode, to find a
  // job's snapshots): `replicate=0` disks too, and volumes that cannot replicate are skipped.
  Result<std::vector<std::string>> ReplicatableVolumes(int vmid, bool cleanup = false);
  // Storage snapshot `snap` of each volume, of one instant: a running VM is paused around it
  // (after an agent fsfreeze when configured), under the VM's lock (waits up to
  // kSyncLockWait). On failure the snapshots made are deleted again. `log` gets each step.
  Status SnapshotForReplication(int vmid, const std::string& snap, const std::vector<std::string>& volids,
                                const std::function<void(const std::string&)>& log);

  Result<std::string> Start(int vmid, const std::string& user, int timeout, bool skiplock);
  Result<std::string> Stop(const StopRequest& req);
  Result<std::string> Shutdown(const StopRequest& req);
  Result<std::string> Reboot(const StopRequest& req);
  Result<std::string> Reset(int vmid, const std::string& user, bool skiplock);
  Result<std::string> Suspend(int vmid, const std::string& user, bool todisk, bool skiplock);
  Result<std::string> Resume(int vmid, const std::string& user, bool skiplock);

  // Backups (vm_backup.cc): a vzdump task over the VMs (each VM locked in turn; a running
  // VM is paused while its disks are read, or stopped and started again with mode=stop),
  // into the storage's backup datastore; each VM's failure is logged and the job ends
  // "job errors", as Proxmox's.
  Result<std::string> Vzdump(const VzdumpRequest& req);
  // The backups on `storage` (of `vmid`, or all), oldest first; none if it holds no backups.
  Result<std::vector<BackupSnapshotInfo>> ListBackups(const std::string& storage, int vmid);
  // The encryption keys of backup storages (the storage config routes set them).
  BackupKeys& backup_keys() { return backup_keys_; }
  Status RemoveBackup(const std::string& volid);
  // The config text a backup holds (GET /nodes/{node}/vzdump/extractconfig).
  Result<std::string> BackupConfig(const std::string& volid);
  // Each backup on `storage` (of `vmid`, or all when 0) with its mark under `keep`, one group
  // per VM (vm_backup_prune.cc). "storage 'x' does not support backups" without that content.
  Result<std::vector<BackupPruneEntry>> PruneBackupsPreview(const std::string& storage, const KeepOptions& keep, int vmid);
  // The same, removing what is marked "remove", as task "prunebackups" ("<vmid>@<storage>"
  // or "<storage>"); the UPID.
  Result<std::string> PruneBackups(const std::string& storage, const KeepOptions& keep, int vmid, const std::string& user);
  // Re-reads every chunk of the backups on `storage` (one `volid`, or `vmid`'s, or all) and
  // records each result (shown as `verification` in the content listing); task "verify".
  // A damaged chunk is named with its backup, disk and index; the task then fails with
  // PBS's "verification failed - please check the log for details".
  // With filter.ignore_verified, a backup verified before is skipped (the log says so) unless
  // that verification is older than filter.outdated_after days (PBS's verify_filter).
  Result<std::string> VerifyBackups(const std::string& storage, int vmid, const std::string& volid,
                                    const std::string& user, const BackupVerifyFilter& filter = {});
  // Removes chunks no backup references and that are older than the grace period (backups
  // running meanwhile stay safe); task "garbage_collection".
  Result<std::string> GarbageCollectBackups(const std::string& storage, const std::string& user);
  // Copies the backups of `storage` (of `vmid`, or all) that storage `target` lacks, only the
  // chunks it lacks (backup/datastore_sync.h), then applies `prune` on the target; task
  // "syncjob". A restore from the target needs nothing of the source.
  Result<std::string> SyncBackups(const std::string& storage, const std::string& target, int vmid,
                                  const std::optional<KeepOptions>& prune, const std::string& user);
  // The same from another source into `storage` (a pull from another hearth node:
  // jobs/remote_backup_source.h); task "syncjob" "<vmid>@<storage>" or "<storage>", then
  // `prune` on `storage`.
  Result<std::string> PullBackups(const std::string& storage, std::shared_ptr<BackupSource> source, int vmid,
                                  const std::optional<KeepOptions>& prune, const std::string& user);
  // The datastore of `storage` for reading what a pulling node asks for (no key is needed:
  // encrypted backups are served as stored). "storage 'x' does not support backups".
  Result<std::shared_ptr<BackupDatastore>> BackupStoreForSync(const std::string& storage);
  Status UpdateBackup(const std::string& volid, const std::optional<std::string>& notes, std::optional<bool> is_protected);
  // A new VM from a backup (task qmrestore): its config, each disk written into a new volume.
  Result<std::string> Restore(const RestoreRequest& req);
  // A restore drill (vm_restore_drill.cc), task "restoredrill" ("<vmid>@<storage>"): the
  // newest backup of req.vmid restored to a scratch VMID with its NICs' links down, started,
  // the guest's sign of life awaited (agent ping, or req.marker on serial0 when the backup's
  // config has no agent), then the copy stopped and destroyed whatever happened. The task
  // fails when any step does. Checked before the task: a backup exists ("vmid"), the guest
  // can be checked ("marker"), the scratch VMID is free.
  Result<std::string> RestoreDrill(const RestoreDrillRequest& req);

  // Deletes a volume (DELETE …/storage/{storage}/content/{volume}) under its owner VM's
  // lock; refused while any VM's config (or pending change) uses it, or a linked clone sits
  // on it.
  Status DeleteVolume(const std::string& volid);

  // The lowest free vmid at or above 100 (PVE's /cluster/nextid), or checks `wanted`.
  Result<int> NextId(std::optional<int> wanted);
  // The tail of serial port `n`'s log (bytes from `offset`), and the new offset.
  Result<std::pair<std::string, uint64_t>> SerialLog(int vmid, int n, uint64_t offset);

  // One poller step (also called by tests).
  void PollOnce();
  // Changes whenever any VM's config or runtime state changes: callers may cache anything
  // derived from List() until it moves.
  uint64_t Generation() const { return registry_.Generation(); }
  const std::string& node() const { return options_.node; }

 private:
  using Runtime = VmRuntime;
  using Entry = VmEntry;

  std::function<Status(int, bool)> destroy_check_;
  std::function<void(TaskContext&, int)> purge_hook_;
  std::function<void(TaskContext&, int)> destroyed_hook_;
  // QEMU's run state as the user sees it. A VM whose RAM was saved while it was paused (a
  // snapshot with RAM) is in QEMU's "postmigrate": its vCPUs are stopped and `cont` resumes
  // it, so it is "paused", as Proxmox shows it after its savevm (and shutdown treats it so).
  static std::string UserRunState(const std::string& qemu_state);
  Result<VmConfig> GetConfig(int vmid) { return registry_.Config(vmid); }
  VmStatusInfo MakeStatus(int vmid, const Entry& e) const;
  // VmRegistry::Mutate.
  Status Mutate(int vmid, const std::function<Status(VmConfig&)>& fn, const std::string& expect_digest = "") {
    return registry_.Mutate(vmid, fn, expect_digest);
  }
  Status CheckLock(const VmConfig& cfg, bool skiplock) const;
  bool IsRunning(int vmid) { return registry_.IsRunning(vmid); }
  // A running VM's NIC `key` changed from `before` to `after` (ClassifyNicChange kLive):
  // re-plugs the tap (bridge, tag, trunks, firewall), sets its rate, sets the link (vm_nic.cc).
  Status UpdateNicLive(TaskContext* ctx, int vmid, const std::string& key, const NetDev& before, const NetDev& after);
  void SetRuntime(int vmid, const std::function<void(Runtime&)>& fn) { registry_.SetRuntime(vmid, fn); }

  // Task bodies.
  Status DoCreate(TaskContext& ctx, const CreateRequest& req);
  // `state` set: resume from a snapshot's RAM state (volid and machine type); pending
  // changes are not applied then, as qemu-server's vm_start with a statefile.
  struct SavedState {
    std::string volid, machine;
  };
  Status DoStart(TaskContext& ctx, int vmid, int timeout, const SavedState* state = nullptr);
  struct StartExtras {
    const SavedState* state = nullptr;
    // Live restore (vm_live_restore.cc): these disks' backings (DriveBinding::backing); QEMU
    // starts paused and stays up when the guest powers off; the lock 'create' is the restore's.
    std::map<std::string, nlohmann::ordered_json> backing;
  };
  Status DoStartWith(TaskContext& ctx, int vmid, int timeout, const StartExtras& extras);
  Status DoStop(TaskContext& ctx, int vmid, int timeout_seconds);
  // Commits every pending change (the VM is stopped) and frees what that detached.
  Status ApplyPending(int vmid, TaskContext* ctx);
  Status DoShutdown(TaskContext& ctx, const StopRequest& req);
  Status DoDestroy(TaskContext& ctx, int vmid, bool destroy_unreferenced);
  Status DoTemplate(TaskContext& ctx, int vmid, const std::string& disk);
  Status DoSnapshot(TaskContext& ctx, int vmid, const std::string& name, const std::string& description,
                    bool vmstate);
  // The datastore of a storage with content backup, with the storage's encryption key. A key
  // that is configured but cannot be loaded fails it when `need_key` (backups, restores,
  // verify); listing, prune, GC, notes and sync work without it.
  // `fingerprint`: the key of that fingerprint when the storage keeps it (retired keys read
  // the backups made with them).
  Result<std::unique_ptr<BackupDatastore>> OpenDatastore(const std::string& storage, bool need_key = true,
                                                         const std::string& fingerprint = "");
  // The sync task of SyncBackups and PullBackups, into `target`'s datastore.
  Result<std::string> StartSync(const std::string& target, std::shared_ptr<BackupSource> source, int vmid,
                                const std::optional<KeepOptions>& prune, const std::string& user,
                                const std::string& first_line);
  // The datastore to read backup `id` with: with the key the backup was made with, if kept.
  Result<std::unique_ptr<BackupDatastore>> OpenDatastoreFor(const std::string& storage, const BackupSnapshotId& id);
  // At start: the disk exports of backups and restores a crash cut short are stopped.
  void StopStaleExports();
  Status BackupOne(TaskContext& ctx, BackupDatastore& store, const VzdumpRequest& req, int vmid);
  // `old`: the config of the VM a force=1 restore overwrites; null for a new VM. `written`
  // becomes true once the restored config is in place (a later failure keeps the VM).
  Status DoRestore(TaskContext& ctx, std::shared_ptr<BackupDatastore> store, const BackupSnapshotId& id,
                   const RestoreRequest& req, const VmConfig* old, bool* written);
  // The streaming half of a live restore (vm_live_restore.cc): serves `disks` (drive key ->
  // the backup's index) over NBD, starts the VM on them unless its QEMU runs (`resuming`: a
  // restart cut the task short), streams each disk in and unlocks the VM. On failure the VM
  // is stopped and unlocked with its volumes kept, as Proxmox's pbs_live_restore.
  Status RunLiveRestore(TaskContext& ctx, int vmid, std::shared_ptr<BackupDatastore> store, const std::string& archive,
                        const std::map<std::string, FixedIndex>& disks, int64_t bwlimit_kib, bool resuming);
  // The end of a failed live restore, as Proxmox's: the jobs cancelled, QEMU stopped, the
  // record and the lock 'create' removed, the volumes and config kept; "live-restore failed".
  Status AbortLiveRestore(TaskContext& ctx, int vmid, const std::vector<std::string>& keys, const Error& e);
  // At start: a live restore a restart cut short goes on in a new qmrestore task.
  void ResumeLiveRestore(int vmid);
  // Whether a live restore of `vmid` runs (or a restart is to resume it): other tasks and
  // locked calls on the VM are refused at once rather than queued behind the stream.
  bool LiveRestoreRunning(int vmid);
  // The VM whose live restore reads backup `volid`, if any (the backup cannot go meanwhile).
  std::optional<int> LiveRestoreUsing(const std::string& volid);
  // {"archive", "disks", "bwlimit"} while a live restore runs; "" when none.
  static std::string LiveRestoreMetaKey(int vmid);
  // move_disk's copy (vm_disk_ops.cc): a new volume on the target storage holding the disk's
  // data, by qemu-img while the VM is stopped, by QEMU's block mirror while it runs (the
  // device then uses the new volume). Returns its volume id.
  // move_disk's checks of the source, before the task and again inside it: the disk's volume id.
  Result<std::string> CheckMoveSource(const VmConfig& cfg, const MoveDiskRequest& req, bool running);
  Result<std::string> CopyDiskOffline(TaskContext& ctx, const MoveDiskRequest& req, const VolumeInfo& src,
                                      StoragePlugin& target, const std::string& format);
  Result<std::string> MirrorDisk(TaskContext& ctx, const MoveDiskRequest& req, const std::string& drive_value,
                                 const VolumeInfo& src, StoragePlugin& target, const std::string& format);
  std::mutex moving_mu_;
  std::set<std::pair<int, std::string>> moving_;  // GUARDED_BY(moving_mu_): disks being moved
  // Frees a snapshot's RAM state volume; with `force`, a failure is a warning.
  Status FreeStateVolume(TaskContext* ctx, int vmid, const std::string& volid, bool force);
  // Snapshots `drives` (key, volid) as `name`; `done` gets those that were made.
  Status SnapshotVolumes(TaskContext& ctx, int vmid, const std::string& name,
                         const std::vector<std::pair<std::string, std::string>>& drives,
                         std::vector<std::pair<std::string, std::string>>& done);
  // With `force`, failures are warnings (to `ctx`, or the daemon log when null).
  Status DeleteVolumeSnapshots(TaskContext* ctx, int vmid, const std::string& name,
                               const std::vector<std::pair<std::string, std::string>>& drives, bool force);
  // At start: a snapshot create cut short is undone, a snapshot delete or rollback finished.
  void RepairInterruptedSnapshot(int vmid);
  // A move_disk mirror cut short after QEMU switched the device to the new volume (which the
  // start added as unusedN): the config is pointed at the volume QEMU really writes to.
  void RepairInterruptedMove(int vmid, int pid);
  // Rolls every volume of snapshot `name` back and applies its config (lock: rollback set).
  Status FinishRollback(TaskContext* ctx, int vmid, const std::string& name);
  static std::string RollbackMetaKey(int vmid);
  static std::string PausedMetaKey(int vmid);
  // Set while VM `vmid` is a restore drill's scratch copy: a restart removes it (Init).
  static std::string DrillMetaKey(int vmid);
  Status CheckTemplateDisks(const VmConfig& cfg, int vmid, const std::string& only_disk);
  // At start, a VM that was never finished or is going anyway: every volume it owns, its
  // record and its registry entry go (errors ignored: what is left is adopted as unused).
  void RemoveVmAndVolumes(int vmid);
  // A template conversion cut short (crash or error): its disks go back to vm-* names.
  void RepairInterruptedTemplate(int vmid);
  // At start: a volume of a VM that its config does not name (an allocation a crash cut
  // short) is added as unusedN, as `qm rescan` does, so that the user sees it and a destroy
  // frees it; an orphaned cloud-init volume (generated data) is freed.
  void AdoptUnreferencedVolumes();
  void AdoptUnreferencedVolumes(int vmid, const std::vector<VolumeInfo>& volumes);
  Result<NoCloudSeed> RenderSeed(int vmid, const std::map<std::string, std::string>& values);
  Status WriteSeed(int vmid, const std::map<std::string, std::string>& values, TaskContext* ctx);
  // Checks for a second cloud-init drive and hashes a clear-text cipassword (in place).
  Status PrepareCloudInitKeys(const VmConfig* current, std::map<std::string, std::string>& set);
  Status DoClone(TaskContext& ctx, const CloneRequest& req, bool full);
  // Records a new VM with `lock` set, taking its id atomically; the message when taken.
  Status ReserveVm(int vmid, const std::string& lock, const std::string& taken_message);
  void ForgetVm(int vmid);
  // The first other VM whose disks are linked clones of one of `vmid`'s base images.
  std::optional<std::pair<std::string, int>> LinkedCloneUser(int vmid);
  // After QEMU exited: taps, sockets, runtime state.
  void CleanupAfterExit(int vmid);
  std::string NewMac();
  std::string NewUuid();
  Result<std::map<std::string, std::string>> AllocateDrives(TaskContext* ctx, int vmid,
                                                           const std::map<std::string, std::string>& drives,
                                                           const std::string& default_storage,
                                                           std::vector<std::string>& allocated,
                                                           const VmConfig* current = nullptr);
  Result<std::string> StartTask(const std::string& type, int vmid, const std::string& user,
                                std::function<Status(TaskContext&)> work);
  // The VM's operation lock for a synchronous API call (on a worker thread): waits behind
  // running tasks for up to kSyncLockWait, then fails with Proxmox's lock timeout text.
  Result<std::unique_ptr<VmLocks::Guard>> LockForCall(int vmid);
  static constexpr std::chrono::seconds kSyncLockWait{60};

  Store& store_;
  TaskManager& tasks_;
  StorageManager& storage_;
  QemuControl& qemu_;
  NetBackend& net_;
  ProcessRunner& runner_;
  FileSystem& fs_;
  const HostStats& host_;
  const Clock& clock_;
  AccelState& accel_;
  VmServiceOptions options_;
  Random& random_;
  VmStateVolumes states_;
  BackupKeys backup_keys_{store_};

  VmRegistry registry_;
  std::atomic<bool> stop_poller_{false};
  std::thread poller_;
  std::mutex poller_mu_;
  std::condition_variable poller_cv_;
};

}  // namespace hearth

#include "vms/backup_fleece.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "sys/crash_point.h"

namespace hearth {
namespace {

constexpr auto kConnectTimeout = std::chrono::seconds(30);

Result<std::vector<std::string>> FleecingPaths(Store& meta, int vmid) {
  HEARTH_ASSIGN_OR_RETURN(auto text, meta.GetMeta(FleecingMetaKey(vmid)));
  std::vector<std::string> out;
  if (!text || text->empty()) return out;
  auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_array())
    for (const auto& p : j)
      if (p.is_string()) out.push_back(p.get<std::string>());
  return out;
}

void RemoveFleecingImages(Store& meta, int vmid) {
  auto paths = FleecingPaths(meta, vmid);
  if (!paths) return;
  for (const auto& p : *paths)
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) spdlog::warn("VM {}: could not remove fleecing image {}", vmid, p);
  (void)meta.PutMeta(FleecingMetaKey(vmid), "");
}

const BlockNodeState* FindNode(const std::vector<BlockNodeState>& nodes, const std::string& name) {
  for (const auto& n : nodes)
    if (n.node_name == name) return &n;
  return nullptr;
}

const DirtyBitmapState* FindBitmap(const BlockNodeState& node, const std::string& name) {
  for (const auto& b : node.bitmaps)
    if (b.name == name) return &b;
  return nullptr;
}

}  // namespace

std::string BitmapMetaKey(int vmid) { return "backup-bitmap:" + std::to_string(vmid); }
std::string FleecingMetaKey(int vmid) { return "backup-fleecing:" + std::to_string(vmid); }

std::string BitmapRecord::Encode() const {
  nlohmann::json j = {{"instance", instance}, {"storage", storage}, {"fingerprint", fingerprint}, {"time", time}};
  j["disks"] = nlohmann::json::object();
  for (const auto& [k, d] : disks) j["disks"][k] = {{"bitmap", d.bitmap}, {"csum", d.csum}, {"size", d.size}};
  return j.dump();
}

std::optional<BitmapRecord> BitmapRecord::Decode(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  BitmapRecord r;
  auto str = [](const nlohmann::json& o, const char* k) {
    return o.contains(k) && o[k].is_string() ? o[k].get<std::string>() : std::string();
  };
  r.instance = str(j, "instance");
  r.storage = str(j, "storage");
  r.fingerprint = str(j, "fingerprint");
  if (!j.contains("time") || !j["time"].is_number_integer()) return std::nullopt;
  r.time = j["time"].get<int64_t>();
  if (j.contains("disks") && j["disks"].is_object())
    for (const auto& [k, d] : j["disks"].items()) {
      if (!d.is_object() || !d.contains("size") || !d["size"].is_number_unsigned()) continue;
      r.disks[k] = {str(d, "bitmap"), str(d, "csum"), d["size"].get<uint64_t>()};
    }
  return r;
}

Result<std::unique_ptr<FleecedRead>> FleecedRead::Open(QemuControl& qemu, ProcessRunner& runner, Store& meta,
                                                       BackupDatastore& store, const Options& options,
                                                       const std::vector<std::string>& keys,
                                                       const std::function<void()>& freeze,
                                                       const std::function<void()>& thaw, const Log& log) {
  const int vmid = options.vmid;
  auto pid = qemu.Pid(vmid);
  if (!pid) return Fail(Unavailable("VM " + std::to_string(vmid) + " is not running"));
  std::unique_ptr<FleecedRead> self(new FleecedRead(qemu, meta, store, options, log));
  auto stat = qemu.Stats(*pid);
  self->instance_ = std::to_string(*pid) + ":" + std::to_string(stat ? stat->start_ticks : 0);
  // What a backup cut short by a crash left in this QEMU goes first (its ids would clash).
  HEARTH_TRY(DetachFleecing(qemu, vmid).map_error([](Error e) { return e.WithContext("cleaning up an earlier backup"); }));
  RemoveFleecingImages(meta, vmid);

  HEARTH_ASSIGN_OR_RETURN(auto nodes, QueryBlockNodes(qemu, vmid));
  std::optional<BitmapRecord> record;
  if (auto text = meta.GetMeta(BitmapMetaKey(vmid)); text && *text) record = BitmapRecord::Decode(**text);
  std::string fingerprint = store.chunks().key() ? store.chunks().key()->fingerprint() : "";
  std::optional<BackupManifest> last;  // the newest stored backup of the VM, read once
  if (options.newest)
    if (auto m = store.Manifest(*options.newest)) last = *m;

  std::vector<std::string> paths;
  for (const auto& key : keys) {
    FleeceDisk d;
    d.drive_key = key;
    HEARTH_ASSIGN_OR_RETURN(d.node, qemu.BlockNodeName(vmid, key));
    const BlockNodeState* node = FindNode(nodes, d.node);
    if (!node || node->virtual_size == 0) {
      // Not open in QEMU (an efidisk0 of a SeaBIOS VM): nothing writes it; the caller reads
      // its image as it is.
      log(key + ": not opened by QEMU, read from its image");
      continue;
    }
    // Which bitmap, if any, says what changed since the last backup (the header's rules).
    std::string why;
    const BitmapRecord::Disk* rd = record && record->disks.count(key) ? &record->disks.at(key) : nullptr;
    if (!record) why = "no dirty bitmap yet";
    else if (record->instance != self->instance_) why = "the VM was started again since its last backup";
    else if (record->storage != options.storage) why = "the last backup went to storage '" + record->storage + "'";
    else if (record->fingerprint != fingerprint) why = "the encryption key changed";
    else if (!last || last->id.time != record->time) why = "the backup the bitmap counts from is not the newest";
    else if (!rd) why = "no dirty bitmap for this disk yet";
    else if (rd->size != node->virtual_size) why = "the disk's size changed";
    else if (const DirtyBitmapState* b = FindBitmap(*node, rd->bitmap); !b) why = "the dirty bitmap is gone";
    else if (b->inconsistent || !b->recording) why = "the dirty bitmap is not recording";
    else {
      const BackupFileEntry* f = nullptr;
      for (const auto& e : last->files)
        if (e.filename == "drive-" + key + ".img.fidx") f = &e;
      if (!f || f->csum != rd->csum) why = "the last backup's index of this disk is not the one the bitmap counts from";
    }
    if (why.empty()) {
      d.export_bitmap = rd->bitmap;
      self->previous_[key] = last->id;
    } else {
      log(key + ": reading the whole disk (" + why + ")");
    }
    // In QEMU's memory only, as Proxmox's: a bitmap stored in the qcow2 would make
    // `qemu-img snapshot -a` (a stopped VM's rollback) fail with "Device has active dirty
    // bitmaps", and changes made while QEMU is down would go unseen anyway.
    d.new_bitmap = kBitmapPrefix + std::to_string(options.time);
    HEARTH_TRY(RemoveBitmaps(qemu, vmid, *node, d.export_bitmap));
    d.fleece_path = options.fleecing_dir + "/" + std::to_string(vmid) + "-" + key + ".qcow2";
    paths.push_back(d.fleece_path);
    self->disks_.push_back(std::move(d));
  }

  if (self->disks_.empty())
    return Fail(MakeError(ErrorCode::kNotImplemented, "QEMU reports none of the disks as a block node"));
  // Recorded before they exist, so that a crash at any point leaves them findable.
  if (::mkdir(options.fleecing_dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Fail(Internal("cannot create " + options.fleecing_dir + ": " + std::strerror(errno)));
  HEARTH_TRY(meta.PutMeta(FleecingMetaKey(vmid), nlohmann::json(paths).dump()));
  // A failure from here returns and destroys `self`, whose destructor detaches what was
  // attached, removes the images and, once the point in time was taken, rolls back the bitmaps.
  for (const auto& d : self->disks_) {
    const BlockNodeState* node = FindNode(nodes, d.node);
    std::vector<std::string> argv = {"qemu-img", "create", "-q", "-f", "qcow2", d.fleece_path,
                                     std::to_string(node->virtual_size)};
    HEARTH_ASSIGN_OR_RETURN(ProcessResult r, runner.Run(argv, {}));
    if (r.exit_code != 0) return Fail(Internal(d.drive_key + ": unable to make the fleecing image: " + DescribeFailure(argv, r)));
    ::chmod(d.fleece_path.c_str(), 0600);
  }
  HEARTH_TRY(AttachFleecing(qemu, vmid, self->disks_));
  CrashPoint("backup.fleecing-attached");
  freeze();
  Status point = TakePointInTime(qemu, vmid, self->disks_);
  thaw();
  HEARTH_TRY(point);
  self->point_taken_ = true;  // from here a failure must give the frozen bitmaps back their changes
  CrashPoint("backup.point-in-time");
  self->socket_ = options.run_dir + "/backup-" + std::to_string(vmid) + ".nbd";
  HEARTH_TRY(ExportFleecing(qemu, vmid, self->disks_, self->socket_));
  CrashPoint("backup.exported");
  return self;
}

bool FleecedRead::Covers(const std::string& key) const {
  for (const auto& d : disks_)
    if (d.drive_key == key) return true;
  return false;
}

Result<FleecedRead::DiskRead> FleecedRead::Connect(const std::string& key) {
  const FleeceDisk* disk = nullptr;
  for (const auto& d : disks_)
    if (d.drive_key == key) disk = &d;
  if (!disk) return Fail(Internal(key + ": not part of this backup's point in time"));
  DiskRead out;
  HEARTH_ASSIGN_OR_RETURN(out.nbd, NbdImage::ConnectUnix(socket_, key, kConnectTimeout, disk->export_bitmap));
  if (disk->export_bitmap.empty()) return out;
  HEARTH_ASSIGN_OR_RETURN(out.previous, store_.ReadIndex(previous_.at(key), "drive-" + key));
  HEARTH_ASSIGN_OR_RETURN(out.dirty, out.nbd->DirtyChunks(out.previous->chunk_size));
  return out;
}

Status FleecedRead::Release() {
  if (released_) return Ok();
  released_ = true;
  Status st = DetachFleecing(qemu_, options_.vmid);
  ::unlink(socket_.c_str());
  RemoveFleecingImages(meta_, options_.vmid);
  return st;
}

Status FleecedRead::Commit(const BackupManifest& m) {
  HEARTH_TRY(Release());
  HEARTH_TRY(CommitBitmaps(qemu_, options_.vmid, disks_));
  committed_ = true;
  BitmapRecord r;
  r.instance = instance_;
  r.storage = options_.storage;
  r.fingerprint = m.key_fingerprint;
  r.time = m.id.time;
  for (const auto& d : disks_)
    for (const auto& f : m.files)
      if (f.filename == "drive-" + d.drive_key + ".img.fidx") r.disks[d.drive_key] = {d.new_bitmap, f.csum, f.image_size};
  return meta_.PutMeta(BitmapMetaKey(options_.vmid), r.Encode());
}

FleecedRead::~FleecedRead() {
  if (committed_) return;
  if (auto st = Release(); !st) spdlog::warn("VM {}: backup teardown: {}", options_.vmid, st.error().message);
  if (!point_taken_) return;  // the transaction is atomic: without it no bitmap changed
  if (auto st = RollbackBitmaps(qemu_, options_.vmid, disks_); !st)
    spdlog::warn("VM {}: could not give the dirty bitmaps back their changes ({}): the next backup reads every disk whole",
                 options_.vmid, st.error().message);
}

void RecoverFleecing(QemuControl& qemu, Store& meta, int vmid) {
  auto paths = FleecingPaths(meta, vmid);
  if (!paths || paths->empty()) return;
  if (qemu.Pid(vmid)) {
    if (auto st = DetachFleecing(qemu, vmid); !st)
      spdlog::warn("VM {}: could not detach the fleecing images of an interrupted backup: {}", vmid, st.error().message);
    // Its bitmaps count from an instant no stored backup has: none is trusted any more, and
    // none should go on costing QEMU memory and work until the next backup.
    (void)meta.PutMeta(BitmapMetaKey(vmid), "");
    if (auto nodes = QueryBlockNodes(qemu, vmid))
      for (const auto& n : *nodes) (void)RemoveBitmaps(qemu, vmid, n);
  }
  RemoveFleecingImages(meta, vmid);
  ::unlink((qemu.run_dir() + "/backup-" + std::to_string(vmid) + ".nbd").c_str());
}

}  // namespace hearth

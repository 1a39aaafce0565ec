#include "jobs/replica_receiver.h"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "model/vm_snapshot.h"
#include "model/volume_id.h"

namespace hearth {
namespace {

// The job's replication snapshots among `snaps`, oldest first.
std::vector<std::string> JobSnapshots(const std::vector<std::string>& snaps, const std::string& jobid) {
  std::vector<std::pair<int64_t, std::string>> mine;
  for (const auto& s : snaps)
    if (auto p = ParseReplicationSnapshotName(s); p && p->first == jobid) mine.emplace_back(p->second, s);
  std::sort(mine.begin(), mine.end());
  std::vector<std::string> out;
  for (auto& [t, s] : mine) out.push_back(std::move(s));
  return out;
}

Result<int> GuestOf(const std::string& jobid) {
  size_t dash = jobid.find('-');
  auto guest = dash == std::string::npos ? std::nullopt : ParseInt(jobid.substr(0, dash));
  auto snap_check = ParseReplicationSnapshotName(ReplicationSnapshotName(jobid, 1));
  if (!guest || !snap_check || snap_check->first != jobid)
    return Fail(FieldError("id", "invalid format - invalid replication job id '" + jobid + "'"));
  return static_cast<int>(*guest);
}

}  // namespace

Result<std::shared_ptr<StoragePlugin>> ReplicaReceiver::CheckVolume(int guest, const std::string& volid) {
  HEARTH_ASSIGN_OR_RETURN(VolumeId id, ParseVolumeId(volid));
  HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, storage_(id.storage));
  auto v = ParseDirVolname(id.volname);
  if (!v) return Fail(Internal("volume '" + volid + "' - " + v.error().message));
  if (v->content != ContentType::kImages)
    return Fail(Internal("volume '" + volid + "' has wrong vtype (" + ContentTypeName(v->content) +
                                " != 'images')"));
  if (v->vmid != guest) return Fail(Internal("volume '" + volid + "' has wrong owner"));
  if (!st->CanReplicate(id.volname)) return Fail(Internal("storage '" + id.storage + "' is not replicatable"));
  return st;
}

Result<std::map<std::string, std::vector<std::string>>> ReplicaReceiver::Prepare(
    const std::string& jobid, const std::vector<std::string>& volids, const std::vector<std::string>& scan,
    int64_t last_sync, bool remove, const std::string& source, const std::function<void(const std::string&)>& log) {
  HEARTH_ASSIGN_OR_RETURN(int guest, GuestOf(jobid));
  if (volids.empty() && !remove) return Fail(InvalidArgument("no volumes specified"));
  if (is_local_guest_(guest)) return Fail(FailedPrecondition("guest '" + std::to_string(guest) + "' is on local node"));
  // One source per guest: two nodes sending the same vmid here would overwrite each other.
  std::string kept_path = config_dir_ + "/" + std::to_string(guest) + ".json";
  nlohmann::json kept;
  if (auto text = fs_.Read(kept_path, 1 << 22)) kept = nlohmann::json::parse(*text, nullptr, false);
  if (kept.is_object() && kept.value("source", "") != "" && !source.empty() && kept.value("source", "") != source)
    return Fail(FailedPrecondition("guest '" + std::to_string(guest) + "' is replicated here from node '" +
                                   kept.value("source", "") + "' (job " + kept.value("jobid", "") +
                                   "): remove that job's copies first"));
  std::map<std::string, std::vector<std::string>> out;
  std::map<std::string, std::shared_ptr<StoragePlugin>> storages;
  for (const auto& id : scan)  // storages an earlier run used; gone or foreign ones are skipped
    if (auto st = storage_(id)) storages[id] = *st;
  std::string keep = last_sync > 0 ? ReplicationSnapshotName(jobid, last_sync) : "";
  for (const auto& volid : volids) {
    HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, CheckVolume(guest, volid));
    std::string volname = volid.substr(volid.find(':') + 1);
    storages[st->id()] = st;
    if (!st->Info(volname)) continue;  // not here yet: the first run sends it whole
    HEARTH_ASSIGN_OR_RETURN(auto all, st->VolumeSnapshotNames(volname));
    std::vector<std::string> mine = JobSnapshots(all, jobid);
    if (remove) {
      if (mine.empty()) continue;  // not this job's copy: never touched
      log("delete stale volume '" + volid + "'");
      HEARTH_TRY(st->FreeVolume(volname));
      continue;
    }
    if (!keep.empty() && std::find(mine.begin(), mine.end(), keep) != mine.end()) {
      for (const auto& s : mine)
        if (s != keep) {
          log("delete stale replication snapshot '" + s + "' on " + volid);
          HEARTH_TRY(st->VolumeSnapshotDelete(volname, s));
        }
      mine = {keep};
    } else if (!keep.empty() && !mine.empty()) {
      log("expected snapshot " + keep + " not present for " + volid + ", not removing others");
    }
    out[volid] = mine;
  }
  // Volumes an earlier run sent that the guest no longer has (a disk removed or moved), or,
  // when the job goes, every copy it made.
  std::set<std::string> wanted;
  if (!remove) wanted.insert(volids.begin(), volids.end());
  for (const auto& [id, st] : storages) {
    HEARTH_ASSIGN_OR_RETURN(auto images, st->List(ContentType::kImages, guest));
    for (const auto& img : images) {
      if (wanted.count(img.volid)) continue;
      std::string volname = img.volid.substr(img.volid.find(':') + 1);
      auto snaps = st->VolumeSnapshotNames(volname);
      if (!snaps || JobSnapshots(*snaps, jobid).empty()) continue;
      log("delete stale volume '" + img.volid + "'");
      HEARTH_TRY(st->FreeVolume(volname));
    }
  }
  if (remove && kept.is_object() && kept.value("jobid", "") == jobid) (void)fs_.Remove(kept_path);
  return out;
}

Status ReplicaReceiver::Receive(int guest, const std::string& volid, const std::string& snap, const std::string& base,
                                const std::string& stream_file) {
  if (is_local_guest_(guest)) return Fail(FailedPrecondition("guest '" + std::to_string(guest) + "' is on local node"));
  HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, CheckVolume(guest, volid));
  auto p = ParseReplicationSnapshotName(snap);
  if (!p || (!base.empty() && !ParseReplicationSnapshotName(base)))
    return Fail(FieldError(p ? "base" : "snapshot", "invalid format - not a replication snapshot name"));
  return st->ImportVolume(volid.substr(volid.find(':') + 1), snap, base, stream_file);
}

Status ReplicaReceiver::Finalize(const std::string& jobid, const std::vector<std::string>& volids, int64_t last_sync,
                                 const std::string& source, const std::string& config,
                                 const std::function<void(const std::string&)>& log) {
  HEARTH_ASSIGN_OR_RETURN(int guest, GuestOf(jobid));
  if (is_local_guest_(guest)) return Fail(FailedPrecondition("guest '" + std::to_string(guest) + "' is on local node"));
  std::string keep = ReplicationSnapshotName(jobid, last_sync);
  for (const auto& volid : volids) {
    HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, CheckVolume(guest, volid));
    std::string volname = volid.substr(volid.find(':') + 1);
    HEARTH_ASSIGN_OR_RETURN(auto all, st->VolumeSnapshotNames(volname));
    std::vector<std::string> mine = JobSnapshots(all, jobid);
    if (std::find(mine.begin(), mine.end(), keep) == mine.end())
      return Fail(FailedPrecondition("volume '" + volid + "' has no snapshot '" + keep + "'"));
    for (const auto& s : mine)
      if (s != keep) {
        log("delete stale replication snapshot '" + s + "' on " + volid);
        HEARTH_TRY(st->VolumeSnapshotDelete(volname, s));
      }
  }
  HEARTH_TRY(fs_.MakeDirs(config_dir_, 0700));
  nlohmann::json meta = {{"guest", guest}, {"jobid", jobid}, {"source", source},
                         {"last_sync", last_sync}, {"volumes", volids}, {"config", config}};
  return WriteFileAtomic(fs_, config_dir_ + "/" + std::to_string(guest) + ".json",
                         meta.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

}  // namespace hearth

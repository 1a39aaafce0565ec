#include "jobs/replication_scheduler.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "core/strings.h"
#include "core/time_format.h"
#include "core/units.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;

// A multi-line message (an error with its cause) stays one entry: later lines are indented.
std::string Indented(const std::string& msg) {
  std::string out;
  for (char c : msg) {
    out += c;
    if (c == '\n') out += "    ";
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == '\n')) out.pop_back();
  return out;
}

// The job's log for one run: truncated at the start, one flushed line per message.
class JobLog {
 public:
  JobLog(const std::string& path, std::string jobid) : jobid_(std::move(jobid)) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd_ < 0) spdlog::warn("unable to open replication log '{}' - {}", path, strerror(errno));
  }
  ~JobLog() {
    if (fd_ >= 0) ::close(fd_);
  }
  JobLog(const JobLog&) = delete;  // one owner of the descriptor: pass it as AsFunction()
  JobLog& operator=(const JobLog&) = delete;
  ReplicationLog AsFunction() const {
    return [this](const std::string& msg) { (*this)(msg); };
  }
  void operator()(const std::string& msg) const {
    if (fd_ < 0) return;
    std::string stamp = FormatUnixTime(::time(nullptr), "%Y-%m-%d %H:%M:%S", /*utc=*/false);
    // One line per message: a newline inside (a multi-line error) starts a continuation.
    std::string line = stamp + " " + jobid_ + ": " + Indented(msg) + "\n";
    (void)!::write(fd_, line.data(), line.size());
  }

 private:
  std::string jobid_;
  int fd_ = -1;
};

std::string TargetTid(const std::string& node) { return "local/" + node; }

}  // namespace

ReplicationScheduler::ReplicationScheduler(Store& store, VmService& vms, StorageManager& storage, FileSystem& fs,
                                           const Clock& clock, std::string node, std::string data_dir,
                                           MakeStorageFn make_storage)
    : store_(store), vms_(vms), storage_(storage), fs_(fs), clock_(clock), node_(std::move(node)),
      data_dir_(std::move(data_dir)), make_storage_(std::move(make_storage)),
      replicator_(vms, storage, clock, node_) {}

Status ReplicationScheduler::Load() {
  auto read = [&](const char* key) -> Result<nlohmann::json> {
    HEARTH_ASSIGN_OR_RETURN(auto text, store_.GetMeta(key));
    if (!text || text->empty()) return nlohmann::json::object();
    auto doc = nlohmann::json::parse(*text, nullptr, false);
    if (!doc.is_object()) return Fail(Internal(std::string("stored ") + key + " is not a JSON object"));
    return doc;
  };
  HEARTH_ASSIGN_OR_RETURN(nlohmann::json jobs, read(kJobsKey));
  HEARTH_ASSIGN_OR_RETURN(nlohmann::json state, read(kStateKey));
  HEARTH_ASSIGN_OR_RETURN(nlohmann::json remotes, read(kRemotesKey));
  std::lock_guard lock(mu_);
  jobs_.clear();
  state_.clear();
  remotes_.clear();
  for (const auto& [id, j] : jobs.items()) {
    auto job = ReplicationJob::FromJson(j);
    if (!job) {
      spdlog::warn("skipping stored replication job '{}': {}", id, job.error().message);
      continue;
    }
    jobs_[job->id] = std::move(*job);
  }
  for (const auto& [id, s] : state.items()) {
    if (!jobs_.count(id)) continue;  // purge_old_states
    ReplicationState st = ReplicationState::FromJson(s);
    if (st.running) {  // the daemon stopped during this run: it counts as failed, and retries
      st.running = false;
      ++st.fail_count;
      st.error = "the run was cut short: the daemon stopped during it";
    }
    state_[id] = std::move(st);
  }
  for (const auto& [node, r] : remotes.items()) {
    auto remote = ReplicationRemote::FromJson(r);
    if (!remote) {
      spdlog::warn("skipping stored replication remote '{}': {}", node, remote.error().message);
      continue;
    }
    remotes_[remote->node] = std::move(*remote);
  }
  return fs_.MakeDirs(data_dir_ + "/replicate", 0700);
}

Status ReplicationScheduler::PersistJobsLocked() {
  nlohmann::json doc = nlohmann::json::object();
  for (const auto& [id, j] : jobs_) doc[id] = j.ToJson();
  return store_.PutMeta(kJobsKey, doc.dump());
}

Status ReplicationScheduler::PersistStateLocked() {
  nlohmann::json doc = nlohmann::json::object();
  for (const auto& [id, s] : state_) doc[id] = s.ToJson();
  return store_.PutMeta(kStateKey, doc.dump());
}

Status ReplicationScheduler::PersistRemotesLocked() {
  nlohmann::json doc = nlohmann::json::object();
  for (const auto& [node, r] : remotes_) doc[node] = r.ToJson(/*with_secret=*/true);
  return store_.PutMeta(kRemotesKey, doc.dump());
}

void ReplicationScheduler::Start() {
  {
    std::lock_guard lock(mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
}

void ReplicationScheduler::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<ReplicationJob> ReplicationScheduler::List() const {
  std::lock_guard lock(mu_);
  std::vector<ReplicationJob> out;
  for (const auto& [id, j] : jobs_) out.push_back(j);
  return out;
}

Result<ReplicationJob> ReplicationScheduler::Get(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Fail(Internal("no such replication job '" + id + "'"));
  return it->second;
}

Status ReplicationScheduler::Create(ReplicationJob job) {
  std::string vmid = std::to_string(job.guest);
  if (!vms_.Exists(job.guest)) return Fail(Internal("Guest '" + vmid + "' does not exist."));
  if (job.target == node_) return Fail(Internal("Source and target must not be identical"));
  {
    std::lock_guard lock(mu_);
    if (!remotes_.count(job.target))
      return Fail(Internal("Target '" + job.target +
                           "' does not exist. (Name it first as a replication remote: POST "
                           "/cluster/hearth/replication-remotes, or `hearth replicate remote add`.)"));
  }
  if (!job.source.empty() && job.source != node_)
    return Fail(Internal("Source '" + job.source + "' does not match current node of guest '" + vmid + "' (" + node_ + ")"));
  HEARTH_ASSIGN_OR_RETURN(auto volids, vms_.ReplicatableVolumes(job.guest));
  if (volids.empty()) return Fail(Internal("No replicatable volumes found"));
  job.source = node_;
  std::lock_guard lock(mu_);
  if (jobs_.count(job.id)) return Fail(Internal("replication job '" + job.id + "' already exists"));
  for (const auto& [id, other] : jobs_)
    if (other.guest == job.guest && other.target == job.target)
      return Fail(Internal("replication job for guest '" + vmid + "' to target '" + TargetTid(job.target) +
                           "' already exists"));
  std::string id = job.id;
  jobs_[id] = std::move(job);
  if (auto st = PersistJobsLocked(); !st) {
    jobs_.erase(id);
    return st;
  }
  cv_.notify_all();
  return Ok();
}

Status ReplicationScheduler::Update(const std::string& id, const std::map<std::string, std::string>& set,
                                    const std::vector<std::string>& remove) {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Fail(Internal("no such job '" + id + "'"));
  HEARTH_ASSIGN_OR_RETURN(ReplicationJob updated, UpdateReplicationJob(it->second, set, remove));
  ReplicationJob before = it->second;
  it->second = std::move(updated);
  if (auto st = PersistJobsLocked(); !st) {
    it->second = std::move(before);
    return st;
  }
  cv_.notify_all();
  return Ok();
}

Status ReplicationScheduler::Delete(const std::string& id, bool keep, bool force) {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  if (force) {
    if (it == jobs_.end()) return Ok();
    ReplicationJob before = it->second;
    jobs_.erase(it);
    if (auto st = PersistJobsLocked(); !st) {
      jobs_[id] = std::move(before);
      return st;
    }
    state_.erase(id);
    (void)PersistStateLocked();
    return Ok();
  }
  if (it == jobs_.end()) return Fail(Internal("no such job '" + id + "'"));
  ReplicationJob before = it->second;
  it->second.remove_job = keep ? "local" : "full";
  if (auto st = PersistJobsLocked(); !st) {
    it->second = std::move(before);
    return st;
  }
  cv_.notify_all();
  return Ok();
}

Status ReplicationScheduler::GuestDestroy(int vmid, bool purge) {
  std::lock_guard lock(mu_);
  std::vector<std::string> ids;
  for (const auto& [id, job] : jobs_)
    if (job.guest == vmid) ids.push_back(id);
  if (ids.empty()) return Ok();
  if (!purge)
    return Fail(Internal("There is a replication job '" + ids.front() + "' for guest '" + std::to_string(vmid) +
                         "' - Please remove that first."));
  auto before = jobs_;
  for (const auto& id : ids) jobs_.erase(id);
  if (auto st = PersistJobsLocked(); !st) {
    jobs_ = std::move(before);
    return st;
  }
  for (const auto& id : ids) state_.erase(id);
  (void)PersistStateLocked();
  return Ok();
}

nlohmann::json ReplicationScheduler::StatusJsonLocked(const ReplicationJob& job) const {
  nlohmann::json j = job.ToJson();
  if (!j.contains("source")) j["source"] = node_;
  ReplicationState s;
  if (auto it = state_.find(job.id); it != state_.end()) s = it->second;
  j["vmtype"] = "qemu";
  j["next_sync"] = s.running ? 0 : NextSync(job, s);
  j["last_sync"] = s.last_sync;
  j["last_try"] = s.last_try;
  j["fail_count"] = s.fail_count;
  if (s.duration) j["duration"] = *s.duration;
  if (!s.error.empty()) j["error"] = s.error;
  if (s.running) j["pid"] = static_cast<int>(::getpid());
  return j;
}

nlohmann::json ReplicationScheduler::StatusList(std::optional<int> guest) const {
  std::lock_guard lock(mu_);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [id, job] : jobs_) {
    if (guest && job.guest != *guest) continue;
    out.push_back(StatusJsonLocked(job));
  }
  return out;
}

Result<nlohmann::json> ReplicationScheduler::StatusOf(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Fail(Internal("no such replication job '" + id + "'"));
  return StatusJsonLocked(it->second);
}

std::string ReplicationScheduler::LogPath(const std::string& id) const { return data_dir_ + "/replicate/" + id; }

Status ReplicationScheduler::ScheduleNow(const std::string& id) {
  std::lock_guard lock(mu_);
  if (!jobs_.count(id)) return Fail(Internal("no such replication job '" + id + "'"));
  auto& s = state_[id];
  if (!s.schedule_now) {
    s.schedule_now = true;
    HEARTH_TRY(PersistStateLocked());
  }
  cv_.notify_all();
  return Ok();
}

std::vector<ReplicationRemote> ReplicationScheduler::Remotes() const {
  std::lock_guard lock(mu_);
  std::vector<ReplicationRemote> out;
  for (const auto& [node, r] : remotes_) out.push_back(r);
  return out;
}

Result<ReplicationRemote> ReplicationScheduler::GetRemote(const std::string& node) const {
  std::lock_guard lock(mu_);
  auto it = remotes_.find(node);
  if (it == remotes_.end()) return Fail(Internal("no such replication remote '" + node + "'"));
  return it->second;
}

Status ReplicationScheduler::CheckPathTarget(const std::string& path) const {
  // A directory target that is, holds or lies inside one of this node's storages (or the
  // data dir) would receive onto, or on removal free, the very disks it copies.
  std::error_code ec;
  fs::path want = fs::weakly_canonical(path, ec);
  if (ec) return Fail(FieldError("path", "cannot resolve '" + path + "': " + ec.message()));
  auto overlaps = [&](const std::string& other) {
    std::error_code e;
    fs::path o = fs::weakly_canonical(other, e);
    if (e) return false;
    auto inside = [](const fs::path& a, const fs::path& b) {  // a is b or lies within it
      std::string as = a.lexically_normal().string(), bs = b.lexically_normal().string();
      while (as.size() > 1 && as.back() == '/') as.pop_back();
      while (bs.size() > 1 && bs.back() == '/') bs.pop_back();
      return as == bs || (as.size() > bs.size() && as.compare(0, bs.size(), bs) == 0 &&
                          (bs == "/" || as[bs.size()] == '/'));
    };
    return inside(want, o) || inside(o, want);
  };
  if (overlaps(data_dir_))
    return Fail(FieldError("path", "'" + path + "' overlaps hearth's data dir '" + data_dir_ +
                                       "': a replication target needs a directory of its own"));
  for (const auto& e : storage_.Entries())
    if (auto p = e.config.options.find("path"); p != e.config.options.end() && overlaps(p->second))
      return Fail(FieldError("path", "'" + path + "' overlaps storage '" + e.config.id + "' ('" + p->second +
                                         "'): a replication target needs a directory of its own"));
  return Ok();
}

Status ReplicationScheduler::PutRemote(ReplicationRemote remote, bool create) {
  if (remote.node == node_) return Fail(FieldError("node", "'" + node_ + "' is this node"));
  if (remote.IsPath()) HEARTH_TRY(CheckPathTarget(remote.path));
  std::lock_guard lock(mu_);
  auto it = remotes_.find(remote.node);
  if (create && it != remotes_.end()) return Fail(Internal("replication remote '" + remote.node + "' already exists"));
  if (!create && it == remotes_.end()) return Fail(Internal("no such replication remote '" + remote.node + "'"));
  std::optional<ReplicationRemote> before;
  if (it != remotes_.end()) before = it->second;
  std::string node = remote.node;
  remotes_[node] = std::move(remote);
  if (auto st = PersistRemotesLocked(); !st) {
    if (before) remotes_[node] = std::move(*before);
    else remotes_.erase(node);
    return st;
  }
  return Ok();
}

Status ReplicationScheduler::DeleteRemote(const std::string& node) {
  std::lock_guard lock(mu_);
  auto it = remotes_.find(node);
  if (it == remotes_.end()) return Fail(Internal("no such replication remote '" + node + "'"));
  for (const auto& [id, job] : jobs_)
    if (job.target == node)
      return Fail(Internal("replication remote '" + node + "' is the target of job '" + id + "' - remove that first"));
  ReplicationRemote before = it->second;
  remotes_.erase(it);
  if (auto st = PersistRemotesLocked(); !st) {
    remotes_[node] = std::move(before);
    return st;
  }
  return Ok();
}

Result<std::unique_ptr<ReplicationTarget>> ReplicationScheduler::TargetFor(const std::string& node) {
  HEARTH_ASSIGN_OR_RETURN(ReplicationRemote r, GetRemote(node));
  if (r.IsPath()) {
    HEARTH_TRY(CheckPathTarget(r.path));  // storages may have been added since
    return MakePathTarget(r, make_storage_, fs_);
  }
  return MakeNodeTarget(r);
}

void ReplicationScheduler::RunOne(const ReplicationJob& job) {
  JobLog job_log(LogPath(job.id), job.id);
  ReplicationLog log = job_log.AsFunction();
  ReplicationState state;
  {
    // Runs are told apart by their start second (the snapshot names): a run right after the
    // last one waits for the next second (bounded: a clock set back fails the run instead).
    int64_t previous;
    {
      std::lock_guard lock(mu_);
      const auto& s = state_[job.id];
      previous = std::max(s.last_sync, s.last_try);
    }
    for (int i = 0; i < 30 && clock_.UnixSeconds() <= previous; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  int64_t start = clock_.UnixSeconds();
  {
    std::lock_guard lock(mu_);
    auto& s = state_[job.id];
    s.last_try = start;
    s.schedule_now = false;
    s.running = true;
    state = s;
    if (auto st = PersistStateLocked(); !st) spdlog::error("replication state: {}", st.error().message);
  }
  auto t0 = std::chrono::steady_clock::now();
  log("start replication job");
  auto target = TargetFor(job.target);
  Status result = Ok();
  if (!job.remove_job.empty()) {
    result = replicator_.Remove(job, state, target ? target->get() : nullptr, log);
  } else if (!target) {
    result = Fail(target.error());
  } else {
    auto synced = [&](const ReplicationState& s) {
      std::lock_guard lock(mu_);
      auto& stored = state_[job.id];
      stored.last_sync = s.last_sync;
      stored.volumes = s.volumes;
      if (auto st = PersistStateLocked(); !st) spdlog::error("replication state: {}", st.error().message);
    };
    auto stats = replicator_.Run(job, state, **target, log, synced);
    if (stats)
      log("sent " + HumanBytes(stats->bytes) + " (" + std::to_string(stats->full) + " full, " +
          std::to_string(stats->incremental) + " incremental)");
    else
      result = Fail(stats.error());
  }
  double duration = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  duration = std::round(duration * 1000) / 1000;
  if (result) log("end replication job");
  else log("end replication job with error: " + result.error().message);

  std::lock_guard lock(mu_);
  auto& s = state_[job.id];
  s.running = false;
  s.duration = duration;
  if (!result) {
    ++s.fail_count;
    s.error = result.error().message;
    if (!state.volumes.empty()) s.volumes = state.volumes;
    spdlog::warn("{}: replication job error - {}", job.id, s.error);
  } else if (!job.remove_job.empty()) {
    // Removed: the job and its state go (record_job_end).
    state_.erase(job.id);
    jobs_.erase(job.id);
    if (auto st = PersistJobsLocked(); !st) spdlog::error("replication jobs: {}", st.error().message);
  } else {
    s.fail_count = 0;
    s.error.clear();
    s.last_sync = state.last_sync;
    s.volumes = state.volumes;
  }
  if (auto st = PersistStateLocked(); !st) spdlog::error("replication state: {}", st.error().message);
}

void ReplicationScheduler::Loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    int64_t now = clock_.UnixSeconds();
    std::optional<ReplicationJob> due;
    int64_t due_at = 0;
    std::optional<int64_t> earliest;
    for (const auto& [id, job] : jobs_) {
      if (job.target == node_ && job.remove_job.empty()) continue;
      ReplicationState s;
      if (auto it = state_.find(id); it != state_.end()) s = it->second;
      int64_t next = NextSync(job, s);
      if (next == 0) continue;
      if (next <= now && (!due || next < due_at)) {
        due = job;
        due_at = next;
      } else if (next > now && (!earliest || next < *earliest)) {
        earliest = next;
      }
    }
    if (due) {
      lock.unlock();
      RunOne(*due);
      lock.lock();
      continue;
    }
    // Woken by changes; at most a minute asleep, so a changed wall clock is noticed.
    auto wait = std::chrono::seconds(60);
    if (earliest) wait = std::min(wait, std::chrono::seconds(std::max<int64_t>(*earliest - now, 0)));
    cv_.wait_for(lock, wait + std::chrono::milliseconds(5));
  }
}

}  // namespace hearth

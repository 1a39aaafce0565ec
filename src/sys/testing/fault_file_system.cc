#include "sys/testing/fault_file_system.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace hearth {

namespace {

Status Errno(const std::string& what, const std::string& path, int err) {
  return Fail(Internal(what + " '" + path + "': " + strerror(err) + " (injected)"));
}

const char* OpName(FaultFileSystem::Op op) {
  static const char* const kNames[] = {"open", "write", "fsync", "close", "rename", "remove", "fsync dir", "mkdir"};
  return kNames[static_cast<int>(op)];
}

}  // namespace

class FaultWritableFile final : public WritableFile {
 public:
  FaultWritableFile(FaultFileSystem& fs, std::unique_ptr<WritableFile> base, std::string path)
      : fs_(fs), base_(std::move(base)), path_(std::move(path)) {}  // registered by Open
  ~FaultWritableFile() override {
    (void)Close();
    std::lock_guard lock(fs_.mu_);
    fs_.open_.erase(this);
  }

  Status Append(std::string_view data) override {
    std::lock_guard lock(fs_.mu_);
    if (dead_) return Errno("write", path_, EIO);
    if (auto err = fs_.Inject(FaultFileSystem::Op::kAppend)) return *err;
    if (fs_.short_write_) {
      size_t n = std::min(*fs_.short_write_, data.size());
      fs_.short_write_.reset();
      if (base_->Append(data.substr(0, n))) Appended(n);
      return Errno("write", path_, ENOSPC);
    }
    HEARTH_TRY(base_->Append(data));
    Appended(data.size());
    return Ok();
  }

  Status Sync() override {
    std::lock_guard lock(fs_.mu_);
    if (dead_) return Errno("fsync", path_, EIO);
    if (auto err = fs_.Inject(FaultFileSystem::Op::kSync)) return *err;
    HEARTH_TRY(base_->Sync());
    if (!path_.empty()) fs_.Synced(path_);
    return Ok();
  }

  Status Close() override {
    std::lock_guard lock(fs_.mu_);
    if (closed_) return Ok();
    closed_ = true;
    // The kernel closes the descriptor whatever happens (also for a process that crashed):
    // the base file is closed either way; only the result is injected.
    Status st = base_->Close();
    if (dead_) return Ok();
    if (auto err = fs_.Inject(FaultFileSystem::Op::kClose)) return *err;
    return st;
  }

 private:
  friend class FaultFileSystem;
  void Appended(uint64_t n) {  // fs_.mu_ held
    if (!path_.empty()) fs_.Appended(path_, n);
  }
  FaultFileSystem& fs_;
  std::unique_ptr<WritableFile> base_;
  std::string path_;     // GUARDED_BY(fs_.mu_): its name now ("" once removed)
  bool closed_ = false;  // GUARDED_BY(fs_.mu_)
  bool dead_ = false;    // GUARDED_BY(fs_.mu_): the power went while it was open
};

std::string FaultFileSystem::Normal(const std::string& path) {
  std::string p = std::filesystem::path(path).lexically_normal().string();
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

void FaultFileSystem::FailNext(Op op, int err, int skip, int count) {
  std::lock_guard lock(mu_);
  auto& plan = planned_[op];
  plan.assign(static_cast<size_t>(skip), 0);
  plan.insert(plan.end(), static_cast<size_t>(count), err);
}

void FaultFileSystem::ShortWriteNext(size_t bytes) {
  std::lock_guard lock(mu_);
  short_write_ = bytes;
}

void FaultFileSystem::CrashAt(uint64_t n) {
  std::lock_guard lock(mu_);
  crash_at_ = n;
}

uint64_t FaultFileSystem::mutations() const {
  std::lock_guard lock(mu_);
  return mutations_;
}

std::optional<Status> FaultFileSystem::Inject(Op op) {
  uint64_t n = mutations_++;
  if (crash_at_ && n >= *crash_at_) return Errno(OpName(op), "after the crash", EIO);
  auto& plan = planned_[op];
  if (plan.empty()) return std::nullopt;
  int err = plan.front();
  plan.erase(plan.begin());
  if (err == 0) return std::nullopt;
  return Errno(OpName(op), "planned fault", err);
}

void FaultFileSystem::Appended(const std::string& path, uint64_t bytes) { files_[path].size += bytes; }

void FaultFileSystem::Synced(const std::string& path) {
  auto& f = files_[path];
  f.synced_size = f.size;
}

std::optional<std::string> FaultFileSystem::DurableContent(const std::string& path) {
  auto content = base_.Read(path);
  if (!content) return std::nullopt;
  if (auto it = files_.find(path); it != files_.end() && it->second.synced_size < content->size())
    content->resize(it->second.synced_size);
  return std::move(*content);
}

Result<std::unique_ptr<WritableFile>> FaultFileSystem::Open(const std::string& path, OpenMode mode, int perms) {
  std::lock_guard lock(mu_);
  if (auto err = Inject(Op::kOpen)) return Fail(err->error());
  std::string p = Normal(path);
  bool existed = base_.Exists(p);
  std::optional<uint64_t> old_size;
  if (existed && mode == OpenMode::kAppend)
    if (auto content = base_.Read(p)) old_size = content->size();
  HEARTH_ASSIGN_OR_RETURN(auto file, base_.Open(p, mode, perms));
  if (!existed) dir_changes_.push_back({'c', p, "", std::nullopt});
  auto [it, fresh] = files_.try_emplace(p);
  if (mode == OpenMode::kTruncate) {
    // The truncation may reach the disk before the new data does: until the next Sync, a
    // power cut leaves the file empty (the worst case; ext4's auto_da_alloc often saves
    // the old content, XFS does not).
    it->second = FileState{};
  } else if (fresh && old_size) {
    it->second.size = it->second.synced_size = *old_size;  // what was there is durable
  }
  auto wrapped = std::make_unique<FaultWritableFile>(*this, std::move(file), p);
  open_.insert(wrapped.get());
  return std::unique_ptr<WritableFile>(std::move(wrapped));
}

Result<std::string> FaultFileSystem::Read(const std::string& path, size_t max_bytes) {
  return base_.Read(path, max_bytes);
}

Result<std::unique_ptr<SequentialFile>> FaultFileSystem::OpenSequential(const std::string& path) {
  return base_.OpenSequential(path);  // reads are not faulted (see the header)
}

Status FaultFileSystem::Rename(const std::string& from_path, const std::string& to_path) {
  std::lock_guard lock(mu_);
  if (auto err = Inject(Op::kRename)) return *err;
  std::string from = Normal(from_path), to = Normal(to_path);
  std::optional<std::string> replaced = DurableContent(to);
  HEARTH_TRY(base_.Rename(from, to));
  dir_changes_.push_back({'r', from, to, std::move(replaced)});
  files_.erase(to);
  if (auto node = files_.extract(from)) {
    node.key() = to;
    files_.insert(std::move(node));
  }
  for (FaultWritableFile* f : open_) {
    if (f->path_ == to) f->path_.clear();  // the replaced file lives on, nameless, until closed
    if (f->path_ == from) f->path_ = to;
  }
  return Ok();
}

Status FaultFileSystem::Remove(const std::string& path) {
  std::lock_guard lock(mu_);
  if (auto err = Inject(Op::kRemove)) return *err;
  std::string p = Normal(path);
  std::optional<std::string> content = DurableContent(p);  // what a power cut brings back
  HEARTH_TRY(base_.Remove(p));
  dir_changes_.push_back({'d', p, "", std::move(content)});
  files_.erase(p);
  for (FaultWritableFile* f : open_)
    if (f->path_ == p) f->path_.clear();
  return Ok();
}

Status FaultFileSystem::SyncDir(const std::string& dir) {
  std::lock_guard lock(mu_);
  if (auto err = Inject(Op::kSyncDir)) return *err;
  std::string d = Normal(dir);
  HEARTH_TRY(base_.SyncDir(d));
  std::erase_if(dir_changes_, [&](const DirChange& c) { return ParentDir(c.kind == 'r' ? c.to : c.path) == d; });
  return Ok();
}

Status FaultFileSystem::MakeDirs(const std::string& path, int perms) {
  std::lock_guard lock(mu_);
  if (auto err = Inject(Op::kMakeDirs)) return *err;
  return base_.MakeDirs(path, perms);
}

bool FaultFileSystem::Exists(const std::string& path) { return base_.Exists(path); }

void FaultFileSystem::PowerCut() {
  std::lock_guard lock(mu_);
  auto write = [&](const std::string& path, const std::string& content) {
    if (auto f = base_.Open(path, OpenMode::kTruncate)) {
      (void)(*f)->Append(content);
      (void)(*f)->Close();
    }
  };
  for (FaultWritableFile* f : open_) f->dead_ = true;
  // File data first (at the files' current names), then the directory changes, newest first.
  for (const auto& [path, f] : files_) {
    if (f.size > f.synced_size)
      if (auto content = base_.Read(path)) write(path, content->substr(0, f.synced_size));
  }
  for (auto it = dir_changes_.rbegin(); it != dir_changes_.rend(); ++it) {
    switch (it->kind) {
      case 'c':
        (void)base_.Remove(it->path);
        break;
      case 'r':
        (void)base_.Rename(it->to, it->path);
        if (it->replaced) write(it->to, *it->replaced);
        break;
      case 'd':
        if (it->replaced) write(it->path, *it->replaced);
        break;
    }
  }
  files_.clear();
  dir_changes_.clear();
  planned_.clear();
  short_write_.reset();
  crash_at_.reset();
}

}  // namespace hearth

#include "sys/testing/fault_file_system.h"

#include <cerrno>
#include <cstring>

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
      : fs_(fs), base_(std::move(base)), path_(std::move(path)) {}

  Status Append(std::string_view data) override {
    std::lock_guard lock(fs_.mu_);
    if (auto err = fs_.Inject(FaultFileSystem::Op::kAppend)) return *err;
    if (fs_.short_write_) {
      size_t n = std::min(*fs_.short_write_, data.size());
      fs_.short_write_.reset();
      if (base_->Append(data.substr(0, n))) fs_.Appended(path_, n);
      return Errno("write", path_, ENOSPC);
    }
    HEARTH_TRY(base_->Append(data));
    fs_.Appended(path_, data.size());
    return Ok();
  }

  Status Sync() override {
    std::lock_guard lock(fs_.mu_);
    if (auto err = fs_.Inject(FaultFileSystem::Op::kSync)) return *err;
    HEARTH_TRY(base_->Sync());
    fs_.Synced(path_);
    return Ok();
  }

  Status Close() override {
    std::lock_guard lock(fs_.mu_);
    if (closed_) return Ok();
    closed_ = true;
    // A crashed process closes nothing on purpose, but the kernel closes its descriptors:
    // the base file is closed either way; only the result is injected.
    Status st = base_->Close();
    if (auto err = fs_.Inject(FaultFileSystem::Op::kClose)) return *err;
    return st;
  }

 private:
  FaultFileSystem& fs_;
  std::unique_ptr<WritableFile> base_;
  std::string path_;
  bool closed_ = false;
};

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

bool FaultFileSystem::crashed() const {
  std::lock_guard lock(mu_);
  return crash_at_ && mutations_ > *crash_at_;
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
  f.before.reset();
}

Result<std::unique_ptr<WritableFile>> FaultFileSystem::Open(const std::string& path, OpenMode mode, int perms) {
  std::lock_guard lock(mu_);
  if (auto err = Inject(Op::kOpen)) return Fail(err->error());
  bool existed = base_.Exists(path);
  std::optional<std::string> old;
  if (existed && mode != OpenMode::kCreateNew) {
    auto content = base_.Read(path);
    if (content) old = std::move(*content);
  }
  HEARTH_ASSIGN_OR_RETURN(auto file, base_.Open(path, mode, perms));
  if (!existed) dir_changes_.push_back({'c', path, "", std::nullopt});
  auto [it, fresh] = files_.try_emplace(path);
  if (mode == OpenMode::kTruncate) {
    // The old content is what a power cut before the next Sync leaves (ext4's
    // auto_da_alloc makes that likely; an empty file is the other outcome).
    if (!it->second.before) it->second.before = old.value_or("");
    it->second.size = 0;
  } else if (fresh && old) {
    it->second.size = it->second.synced_size = old->size();  // what was there is durable
  }
  return std::unique_ptr<WritableFile>(std::make_unique<FaultWritableFile>(*this, std::move(file), path));
}

Result<std::string> FaultFileSystem::Read(const std::string& path, size_t max_bytes) {
  return base_.Read(path, max_bytes);
}

Status FaultFileSystem::Rename(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  if (auto err = Inject(Op::kRename)) return *err;
  std::optional<std::string> replaced;
  if (base_.Exists(to))
    if (auto content = base_.Read(to)) replaced = std::move(*content);
  HEARTH_TRY(base_.Rename(from, to));
  dir_changes_.push_back({'r', from, to, std::move(replaced)});
  files_.erase(to);
  if (auto node = files_.extract(from)) {
    node.key() = to;
    files_.insert(std::move(node));
  }
  return Ok();
}

Status FaultFileSystem::Remove(const std::string& path) {
  std::lock_guard lock(mu_);
  if (auto err = Inject(Op::kRemove)) return *err;
  std::optional<std::string> content;
  if (auto c = base_.Read(path)) {
    content = std::move(*c);
    // A power cut brings back the file as it was on disk: without what was never synced.
    if (auto it = files_.find(path); it != files_.end())
      content = it->second.before ? *it->second.before : content->substr(0, it->second.synced_size);
  }
  HEARTH_TRY(base_.Remove(path));
  dir_changes_.push_back({'d', path, "", std::move(content)});
  files_.erase(path);
  return Ok();
}

Status FaultFileSystem::SyncDir(const std::string& dir) {
  std::lock_guard lock(mu_);
  if (auto err = Inject(Op::kSyncDir)) return *err;
  HEARTH_TRY(base_.SyncDir(dir));
  std::erase_if(dir_changes_, [&](const DirChange& c) { return ParentDir(c.kind == 'r' ? c.to : c.path) == dir; });
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
  // File data first (at the files' current names), then the directory changes, newest first.
  for (const auto& [path, f] : files_) {
    if (f.before) {
      write(path, *f.before);
    } else if (f.size > f.synced_size) {
      if (auto content = base_.Read(path)) write(path, content->substr(0, f.synced_size));
    }
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

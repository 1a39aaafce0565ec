#include "backup/image_backup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "core/strings.h"
#include "core/units.h"
#include "sys/unique_fd.h"

namespace hearth {
namespace {

// Progress about every 10% of the image.
class Progress {
 public:
  Progress(const BackupLog& log, std::string label, uint64_t total) : log_(log), label_(std::move(label)), total_(total) {}
  void At(uint64_t done, const std::string& extra) {
    if (!log_ || total_ == 0) return;
    int pct = static_cast<int>(done * 100 / total_);
    if (pct < next_ && done < total_) return;
    next_ = pct / 10 * 10 + 10;
    log_(label_ + ": " + std::to_string(pct) + "% (" + FormatSize(done) + " of " + FormatSize(total_) + ")" + extra);
  }

 private:
  const BackupLog& log_;
  std::string label_;
  uint64_t total_;
  int next_ = 10;
};

// Chunks hashed, compressed and checked at once, one per core (at most 4): the reader (an NBD
// connection, a file) and the writer stay on the caller's thread, in image order.
size_t Parallelism() { return std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 4); }

}  // namespace

Result<FixedIndex> BackupImage(ChunkStore& store, uint64_t size, const ImageReader& read, const std::string& label,
                               const BackupLog& log, ImageBackupStats* stats, const IncrementalBase* base) {
  if (size > FixedIndex::kMaxImage) return Fail(InvalidArgument(label + ": image too large"));
  FixedIndex index;
  index.size = size;
  const size_t chunk_count = static_cast<size_t>((size + index.chunk_size - 1) / index.chunk_size);
  if (base && (!base->previous || !base->dirty || base->previous->size != size ||
               base->previous->chunk_size != index.chunk_size || base->previous->digests.size() != chunk_count ||
               base->dirty->size() != chunk_count))
    return Fail(InvalidArgument(label + ": the previous backup does not match the image (size or chunks)"));
  ImageBackupStats local;
  ImageBackupStats& s = stats ? *stats : local;
  Progress progress(log, label, size);
  // Up to two chunks per worker in flight; each finished one is taken in order. A failure
  // returns after the chunks in flight end (a std::async future waits when destroyed).
  std::deque<std::future<Result<ChunkStore::Inserted>>> inflight;
  uint64_t done = 0;
  // Two equal chunks of one image may be stored at once by two workers (the same bytes,
  // renamed into place twice): the later one counts as reused, as it would have serially.
  std::set<ChunkDigest> seen;
  auto take_one = [&]() -> Status {
    HEARTH_ASSIGN_OR_RETURN(ChunkStore::Inserted in, inflight.front().get());
    inflight.pop_front();
    if (!seen.insert(in.digest).second && !in.existed) {
      in.existed = true;
      in.stored_bytes = 0;
    }
    size_t len = static_cast<size_t>(index.ChunkBytes(index.digests.size()));
    index.digests.push_back(in.digest);
    ++s.chunks;
    if (in.existed) ++s.reused;
    s.bytes_stored += in.stored_bytes;
    done += len;
    progress.At(done, ", " + std::to_string(s.chunks - s.reused) + " of " + std::to_string(s.chunks) + " chunks new");
    return Ok();
  };
  const size_t window = 2 * Parallelism();
  // The previous backup's chunks of the clean areas, touched first: a GC that is marking
  // keeps them (its sweep spares what is newer than its start minus the grace period). In
  // parallel: with a cold cache each touch is a directory and an inode read. A chunk that is
  // missing (a damaged store) is read from the image after all.
  std::vector<char> reuse(chunk_count, 0);
  if (base) {
    std::vector<std::thread> touchers;
    const size_t n = 2 * Parallelism();
    for (size_t t = 0; t < n; ++t)
      touchers.emplace_back([&, t] {
        for (size_t i = t; i < chunk_count; i += n)
          if (!(*base->dirty)[i] && store.Touch(base->previous->digests[i])) reuse[i] = 1;
      });
    for (auto& th : touchers) th.join();
  }
  for (uint64_t off = 0; off < size; off += index.chunk_size) {
    size_t len = static_cast<size_t>(std::min<uint64_t>(index.chunk_size, size - off));
    if (size_t i = static_cast<size_t>(off / index.chunk_size); reuse[i]) {
      std::promise<Result<ChunkStore::Inserted>> ready;
      ready.set_value(ChunkStore::Inserted{base->previous->digests[i], /*existed=*/true, 0});
      inflight.push_back(ready.get_future());
      ++s.unchanged;
      if (inflight.size() >= window) HEARTH_TRY(take_one());
      continue;
    }
    HEARTH_ASSIGN_OR_RETURN(std::string data, read(off, len).map_error([&](Error e) { return e.WithContext(label); }));
    if (data.size() != len) return Fail(Internal(label + ": short read at offset " + std::to_string(off)));
    s.bytes_read += len;
    inflight.push_back(std::async(std::launch::async, [&store, data = std::move(data)] { return store.Insert(data); }));
    if (inflight.size() >= window) HEARTH_TRY(take_one());
  }
  while (!inflight.empty()) HEARTH_TRY(take_one());
  HEARTH_TRY(store.Sync());
  return index;
}

Result<FixedIndex> BackupRawFile(ChunkStore& store, const std::string& path, const std::string& label,
                                 const BackupLog& log, ImageBackupStats* stats) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Fail(Internal(label + ": cannot open " + path + ": " + std::strerror(errno)));
  off_t end = ::lseek(fd.get(), 0, SEEK_END);  // a block device's size too
  if (end < 0) return Fail(Internal(label + ": cannot size " + path + ": " + std::strerror(errno)));
  auto read = [&](uint64_t offset, size_t len) -> Result<std::string> {
    std::string buf(len, '\0');
    size_t got = 0;
    while (got < len) {
      ssize_t n = ::pread(fd.get(), buf.data() + got, len - got, static_cast<off_t>(offset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Fail(Internal("read error at offset " + std::to_string(offset) + ": " + std::strerror(errno)));
      if (n == 0) return Fail(Internal("image ended early at offset " + std::to_string(offset + got)));
      got += static_cast<size_t>(n);
    }
    return buf;
  };
  return BackupImage(store, static_cast<uint64_t>(end), read, label, log, stats);
}

Status RestoreImage(const ChunkStore& store, const FixedIndex& index, const ImageWriter& write,
                    const std::string& label, const BackupLog& log) {
  std::map<uint64_t, std::pair<ChunkDigest, ChunkDigest>> zero_digest;
  Progress progress(log, label, index.size);
  // Chunks read, decompressed and checked in parallel; written here, in order.
  struct Pending {
    size_t i;
    std::future<Result<std::string>> data;  // invalid for an all-zero chunk (nothing to write)
  };
  std::deque<Pending> inflight;
  auto write_one = [&]() -> Status {
    Pending p = std::move(inflight.front());
    inflight.pop_front();
    uint64_t len = index.ChunkBytes(p.i);
    uint64_t off = uint64_t{p.i} * index.chunk_size;
    if (p.data.valid()) {
      auto data = p.data.get();
      if (!data) return Fail(data.error().WithContext(label));
      if (data->size() != len)
        return Fail(Internal(label + ": chunk " + DigestHex(index.digests[p.i]) + " has " + std::to_string(data->size()) +
                             " bytes where the index expects " + std::to_string(len)));
      HEARTH_TRY(write(off, *data).map_error([&](Error e) { return e.WithContext(label); }));
    }
    progress.At(off + len, "");
    return Ok();
  };
  const size_t window = 2 * Parallelism();
  for (size_t i = 0; i < index.digests.size(); ++i) {
    uint64_t len = index.ChunkBytes(i);
    auto z = zero_digest.find(len);
    if (z == zero_digest.end()) {
      // Plain and (with a key) keyed: a store with a key still holds plain backups.
      std::string zeros(len, '\0');
      z = zero_digest.emplace(len, std::make_pair(Sha256Digest(zeros), store.DigestOf(zeros))).first;
    }
    Pending p{i, {}};
    if (index.digests[i] != z->second.first && index.digests[i] != z->second.second)
      p.data = std::async(std::launch::async, [&store, d = index.digests[i], enc = index.encrypted] { return store.Read(d, enc); });
    inflight.push_back(std::move(p));
    if (inflight.size() >= window) HEARTH_TRY(write_one());
  }
  while (!inflight.empty()) HEARTH_TRY(write_one());
  return Ok();
}

Status RestoreRawFile(const ChunkStore& store, const FixedIndex& index, const std::string& path,
                      const std::string& label, const BackupLog& log) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0) return Fail(Internal(label + ": cannot create " + path + ": " + std::strerror(errno)));
  auto fail = [&](Error e) -> Status {
    ::unlink(path.c_str());
    return Fail(std::move(e));
  };
  if (::ftruncate(fd.get(), static_cast<off_t>(index.size)) != 0)
    return fail(Internal(label + ": cannot size " + path + ": " + std::strerror(errno)));
  auto write = [&](uint64_t off, std::string_view data) -> Status {
    for (size_t put = 0; put < data.size();) {
      ssize_t n = ::pwrite(fd.get(), data.data() + put, data.size() - put, static_cast<off_t>(off + put));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Fail(Internal("write error on " + path + ": " + std::strerror(errno)));
      put += static_cast<size_t>(n);
    }
    return Ok();
  };
  if (auto st = RestoreImage(store, index, write, label, log); !st) return fail(st.error());
  if (::fsync(fd.get()) != 0) return fail(Internal(label + ": fsync " + path + ": " + std::strerror(errno)));
  return Ok();
}

}  // namespace hearth

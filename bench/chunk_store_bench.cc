// The chunk store on its own: 4 MiB chunks hashed (SHA-256), compressed (zstd, each level
// given) and written (temp file, fsync, rename) into a store on tmpfs, so the disk is not the
// limit; one thread, so the figure is per core. Compare with `openssl speed sha256` and
// `zstd -b1` on the same sample (bench/RESULTS.md has the commands). The sample: a file
// given on the command line, cut into chunks (e.g. the backup bench's image).
//
//   build/bench/chunk_store_bench <sample file> [MiB to use, default 512] [levels, default 1,3]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "backup/chunk_store.h"
#include "core/strings.h"
#include "sys/posix/posix_file_system.h"

using namespace hearth;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <sample file> [MiB] [levels]\n", argv[0]);
    return 2;
  }
  size_t mib = argc > 2 ? std::stoul(argv[2]) : 512;
  std::string levels = argc > 3 ? argv[3] : "1,3";
  std::ifstream in(argv[1], std::ios::binary);
  std::vector<std::string> chunks;
  for (size_t i = 0; i < mib / 4; ++i) {
    std::string c(ChunkStore::kChunkSize, '\0');
    if (!in.read(c.data(), static_cast<std::streamsize>(c.size()))) break;
    chunks.push_back(std::move(c));
  }
  if (chunks.empty()) {
    std::fprintf(stderr, "the sample is shorter than one chunk\n");
    return 2;
  }
  double total_mb = static_cast<double>(chunks.size() * ChunkStore::kChunkSize) / 1e6;
  auto now = [] { return std::chrono::steady_clock::now(); };
  auto secs = [](auto d) { return std::chrono::duration<double>(d).count(); };

  auto t0 = now();
  for (const auto& c : chunks) (void)Sha256Digest(c);
  double hash_s = secs(now() - t0);
  std::printf("%zu chunks (%.0f MB)\n", chunks.size(), total_mb);
  std::printf("sha256 only:                 %6.0f MB/s, %6.1f chunks/s\n", total_mb / hash_s, chunks.size() / hash_s);

  PosixFileSystem fs;
  for (auto level : Split(levels, ',')) {
    std::string root = "/dev/shm/hearth-chunk-bench";
    std::filesystem::remove_all(root);
    ChunkStore store(fs, root, ChunkStoreOptions{std::stoi(level)});
    uint64_t stored = 0;
    t0 = now();
    for (const auto& c : chunks) {
      auto r = store.Insert(c);
      if (!r) {
        std::fprintf(stderr, "insert: %s\n", r.error().message.c_str());
        return 1;
      }
      stored += r->stored_bytes;
    }
    (void)store.Sync();
    double s = secs(now() - t0);
    std::printf("insert, zstd level %-2s:       %6.0f MB/s, %6.1f chunks/s, stored %.0f%% of the input\n", level.c_str(),
                total_mb / s, chunks.size() / s, 100.0 * static_cast<double>(stored) / (total_mb * 1e6));
    t0 = now();
    size_t idx = 0;
    for (const auto& c : chunks) {
      auto r = store.Read(Sha256Digest(c));
      if (!r || r->size() != c.size()) {
        std::fprintf(stderr, "read of chunk %zu failed\n", idx);
        return 1;
      }
      ++idx;
    }
    s = secs(now() - t0);
    std::printf("read+check (incl. sha256):   %6.0f MB/s\n", total_mb / s);
    std::filesystem::remove_all(root);
  }
  return 0;
}

// Images into the chunk store and back: byte-identical, deduplicated, incremental by content.
#include "backup/image_backup.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "core/testing/temp_dir.h"
#include "sys/files.h"
#include "sys/posix/posix_file_system.h"

namespace hearth {
namespace {

// The whole file ("" if unreadable: the comparison then fails).
std::string Slurp(const std::string& path) { return ReadFile(path).value_or(""); }

// An image of `chunks` chunks plus a tail: zeros, repeated text and noise.
void MakeImage(const std::string& path, int chunks, uint32_t seed) {
  std::ofstream f(path, std::ios::binary);
  uint32_t x = seed;
  for (int c = 0; c < chunks; ++c) {
    std::string chunk(ChunkStore::kChunkSize, '\0');
    if (c % 3 == 1)
      for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = "hearth "[i % 7];
    if (c % 3 == 2)
      for (auto& ch : chunk) x ^= x << 13, x ^= x >> 17, x ^= x << 5, ch = static_cast<char>(x);
    f.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
  }
  f.write("tail", 4);
}

class ImageBackupTest : public ::testing::Test {
 protected:
  TempDir dir_;
  PosixFileSystem fs_;
  ChunkStore store_{fs_, dir_.Sub("store")};
};

TEST_F(ImageBackupTest, ARestoreIsByteIdenticalAndSparse) {
  std::string img = dir_.Sub("disk.raw");
  MakeImage(img, 6, 1);
  std::vector<std::string> log;
  ImageBackupStats stats;
  auto idx = BackupRawFile(store_, img, "drive-scsi0", [&](const std::string& l) { log.push_back(l); }, &stats);
  ASSERT_TRUE(idx) << idx.error().message;
  EXPECT_EQ(idx->size, 6 * ChunkStore::kChunkSize + 4);
  EXPECT_EQ(stats.chunks, 7u);
  EXPECT_EQ(stats.reused, 2u);  // the second zero chunk and the second text chunk dedup within the image
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.back().rfind("drive-scsi0: 100% (", 0), 0u) << log.back();

  std::string out = dir_.Sub("restored.raw");
  ASSERT_TRUE(RestoreRawFile(store_, *idx, out, "drive-scsi0", nullptr));
  EXPECT_EQ(Slurp(out), Slurp(img));
  struct stat st {};
  ASSERT_EQ(::stat(out.c_str(), &st), 0);
  EXPECT_LT(uint64_t(st.st_blocks) * 512, idx->size);  // the zero chunks are holes
  EXPECT_FALSE(RestoreRawFile(store_, *idx, out, "drive-scsi0", nullptr));  // never overwrites
}

TEST_F(ImageBackupTest, ASecondBackupStoresOnlyWhatChanged) {
  std::string img = dir_.Sub("disk.raw");
  MakeImage(img, 9, 2);
  ImageBackupStats first, second;
  ASSERT_TRUE(BackupRawFile(store_, img, "d", nullptr, &first));
  {
    std::fstream f(img, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(5 * ChunkStore::kChunkSize + 123);
    f.write("changed", 7);
  }
  ASSERT_TRUE(BackupRawFile(store_, img, "d", nullptr, &second));
  EXPECT_EQ(second.chunks, first.chunks);
  EXPECT_EQ(second.chunks - second.reused, 1u);
  EXPECT_LT(second.bytes_stored, first.bytes_stored / 3);
}

TEST_F(ImageBackupTest, ACorruptChunkStopsTheRestoreWithItsNameAndLeavesNoFile) {
  std::string img = dir_.Sub("disk.raw");
  MakeImage(img, 3, 3);
  auto idx = BackupRawFile(store_, img, "d", nullptr, nullptr);
  ASSERT_TRUE(idx);
  std::string victim = store_.ChunkPath(idx->digests[2]);  // the noise chunk
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('!');
  }
  std::string out = dir_.Sub("restored.raw");
  auto st = RestoreRawFile(store_, *idx, out, "drive-scsi0", nullptr);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "drive-scsi0: chunk " + DigestHex(idx->digests[2]) + " is corrupt (digest mismatch)");
  EXPECT_FALSE(std::filesystem::exists(out));
}

// An incremental read takes the previous backup's chunks where the bitmap says nothing
// changed, reads only the dirty ones, and still gives the whole image back; a chunk the
// store lost is read after all rather than referenced.
TEST_F(ImageBackupTest, AnIncrementalReadsOnlyDirtyChunks) {
  std::string img = dir_.Sub("disk.raw");
  MakeImage(img, 8, 3);
  auto first = BackupRawFile(store_, img, "drive-scsi0", nullptr, nullptr);
  ASSERT_TRUE(first) << first.error().message;
  // The guest changes chunk 5 (and the bitmap also marks chunk 2, which did not change).
  {
    std::fstream f(img, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(5 * ChunkStore::kChunkSize + 100);
    f.write("changed", 7);
  }
  std::string content = Slurp(img);
  std::vector<bool> dirty(first->digests.size(), false);
  dirty[2] = dirty[5] = true;
  std::vector<uint64_t> reads;
  auto reader = [&](uint64_t off, size_t len) -> Result<std::string> {
    reads.push_back(off);
    return content.substr(off, len);
  };
  IncrementalBase base{&*first, &dirty};
  ImageBackupStats stats;
  auto second = BackupImage(store_, content.size(), reader, "drive-scsi0", nullptr, &stats, &base);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(reads, (std::vector<uint64_t>{2 * ChunkStore::kChunkSize, 5 * ChunkStore::kChunkSize}));
  EXPECT_EQ(stats.unchanged, 7u);
  EXPECT_EQ(stats.bytes_read, 2 * ChunkStore::kChunkSize);
  EXPECT_NE(second->digests[5], first->digests[5]);
  std::string out = dir_.Sub("restored.raw");
  ASSERT_TRUE(RestoreRawFile(store_, *second, out, "drive-scsi0", nullptr));
  EXPECT_EQ(Slurp(out), content);

  // A clean chunk that the store no longer has is read, not referenced.
  // (Chunk 2 is noise: no other chunk of the image shares its digest.)
  ASSERT_TRUE(std::filesystem::remove(store_.ChunkPath(first->digests[2])));
  std::fill(dirty.begin(), dirty.end(), false);
  reads.clear();
  auto third = BackupImage(store_, content.size(), reader, "drive-scsi0", nullptr, nullptr, &base);
  ASSERT_TRUE(third) << third.error().message;
  EXPECT_EQ(reads, std::vector<uint64_t>{2 * ChunkStore::kChunkSize});
  EXPECT_TRUE(store_.Contains(first->digests[2]));

  // A previous index of another size is refused, not mixed in.
  auto wrong = BackupImage(store_, content.size() - 4, reader, "drive-scsi0", nullptr, nullptr, &base);
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("does not match"), std::string::npos);
}

}  // namespace
}  // namespace hearth

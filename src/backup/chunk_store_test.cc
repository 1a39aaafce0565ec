// ChunkStore and FixedIndex on a real directory, with faults and power cuts injected through
// the FileSystem seam.
#include "backup/chunk_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "backup/fixed_index.h"
#include "core/testing/temp_dir.h"
#include "sys/posix/posix_file_system.h"
#include "sys/testing/fault_file_system.h"

namespace hearth {
namespace {

std::string Pattern(size_t n, int seed) {
  std::string s(n, '\0');
  uint32_t x = static_cast<uint32_t>(seed) * 2654435761u + 1;
  for (auto& c : s) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

class ChunkStoreTest : public ::testing::Test {
 protected:
  TempDir dir_;
  PosixFileSystem posix_;
  ChunkStore store_{posix_, dir_.Sub("store")};
};

TEST_F(ChunkStoreTest, StoresOnceReadsBackAndNamesChunksBySha256) {
  std::string data = Pattern(1 << 20, 1);
  auto a = store_.Insert(data);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_FALSE(a->existed);
  EXPECT_GT(a->stored_bytes, 0u);
  // The name is the SHA-256 of the content (echo -n ... | sha256sum agrees).
  EXPECT_EQ(DigestHex(Sha256Digest("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string hex = DigestHex(a->digest);
  EXPECT_TRUE(std::filesystem::exists(dir_.Sub("store/.chunks/" + hex.substr(0, 4) + "/" + hex)));
  auto b = store_.Insert(data);
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->existed);
  EXPECT_EQ(b->stored_bytes, 0u);
  auto back = store_.Read(a->digest);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, data);
  EXPECT_EQ(ParseDigestHex(hex), a->digest);
  EXPECT_FALSE(ParseDigestHex(hex.substr(1)));
  EXPECT_FALSE(ParseDigestHex(std::string(63, 'a') + "G"));
}

TEST_F(ChunkStoreTest, ZerosCompressAndRandomDataIsStoredAsItIs) {
  auto zeros = store_.Insert(std::string(ChunkStore::kChunkSize, '\0'));
  ASSERT_TRUE(zeros);
  EXPECT_LT(zeros->stored_bytes, 4096u);
  std::string noise = Pattern(ChunkStore::kChunkSize, 2);
  auto random = store_.Insert(noise);
  ASSERT_TRUE(random);
  EXPECT_EQ(random->stored_bytes, noise.size() + 16);  // no worse than raw plus the header
  EXPECT_EQ(*store_.Read(random->digest), noise);
  EXPECT_EQ(store_.Read(zeros->digest)->size(), ChunkStore::kChunkSize);
}

TEST_F(ChunkStoreTest, ACorruptByteIsAnErrorNamingTheChunk) {
  for (std::string data : {std::string(100000, 'x'), Pattern(100000, 3)}) {  // compressed and raw
    auto in = store_.Insert(data);
    ASSERT_TRUE(in);
    std::string path = store_.ChunkPath(in->digest);
    {
      std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(path) - 7));
      f.put('\x5a');
    }
    auto r = store_.Read(in->digest);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message.rfind("chunk " + DigestHex(in->digest) + " is corrupt (", 0), 0u) << r.error().message;
    // Moved aside: the next backup of this data stores it again instead of trusting it.
    EXPECT_FALSE(store_.Contains(in->digest));
    EXPECT_TRUE(std::filesystem::exists(path + ".bad"));
    auto again = store_.Insert(data);
    ASSERT_TRUE(again);
    EXPECT_FALSE(again->existed);
    EXPECT_EQ(*store_.Read(in->digest), data);
  }
  ChunkDigest none{};
  EXPECT_EQ(store_.Read(none).error().message, "chunk " + std::string(64, '0') + " is missing");
}

TEST_F(ChunkStoreTest, DiskFullLeavesNoChunkAndNoTemporaryFile) {
  FaultFileSystem faulty(posix_);
  ChunkStore store(faulty, dir_.Sub("full"));
  faulty.ShortWriteNext(1000);
  auto r = store.Insert(Pattern(100000, 4));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("writing chunk "), std::string::npos) << r.error().message;
  size_t files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir_.Sub("full")))
    if (e.is_regular_file()) ++files;
  EXPECT_EQ(files, 0u);
  EXPECT_TRUE(store.Insert(Pattern(100000, 4)));  // and the next try works
}

TEST_F(ChunkStoreTest, SyncMakesChunksSurviveAPowerCut) {
  FaultFileSystem faulty(posix_);
  ChunkStore store(faulty, dir_.Sub("cut"));
  auto kept = store.Insert(Pattern(5000, 5));
  ASSERT_TRUE(kept);
  ASSERT_TRUE(store.Sync());
  auto lost = store.Insert(Pattern(5000, 6));  // renamed, not yet durable
  ASSERT_TRUE(lost);
  faulty.PowerCut();
  EXPECT_TRUE(store.Read(kept->digest));
  EXPECT_FALSE(store.Contains(lost->digest));
}

TEST_F(ChunkStoreTest, SweepRemovesOnlyChunksNotTouchedSinceTheCutoff) {
  auto old_used = store_.Insert(Pattern(1000, 7));
  auto old_unused = store_.Insert(Pattern(1000, 8));
  auto reused = store_.Insert(Pattern(1000, 9));
  ASSERT_TRUE(old_used && old_unused && reused);
  // Age all three by two days.
  auto past = std::filesystem::file_time_type::clock::now() - std::chrono::hours(48);
  for (const auto& d : {old_used->digest, old_unused->digest, reused->digest})
    std::filesystem::last_write_time(store_.ChunkPath(d), past);
  std::ofstream(store_.ChunkPath(old_unused->digest) + ".tmp.1.2") << "half";  // a crash's leftover
  std::filesystem::last_write_time(store_.ChunkPath(old_unused->digest) + ".tmp.1.2", past);
  auto gc_start = std::chrono::system_clock::now();
  ASSERT_TRUE(store_.Touch(old_used->digest));          // mark: an index refers to it
  ASSERT_TRUE(store_.Insert(Pattern(1000, 9))->existed);  // a backup running during the GC reuses it
  auto st = store_.Sweep(gc_start - ChunkStore::kGcGrace);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st->removed, 1u);
  EXPECT_EQ(st->kept, 2u);
  EXPECT_TRUE(store_.Contains(old_used->digest));
  EXPECT_TRUE(store_.Contains(reused->digest));
  EXPECT_FALSE(store_.Contains(old_unused->digest));
  EXPECT_FALSE(std::filesystem::exists(store_.ChunkPath(old_unused->digest) + ".tmp.1.2"));
  EXPECT_EQ(store_.Touch(old_unused->digest).error().message, "chunk " + DigestHex(old_unused->digest) + " is missing");
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_F(ChunkStoreTest, AnEncryptedStoreSealsChunksAndNamesThemByKeyedId) {
  auto key = std::make_shared<const BackupKey>(*BackupKey::Generate());
  ChunkStore enc(posix_, dir_.Sub("store"), {1, key});
  std::string data;
  while (data.size() < (1 << 20)) data += "SECRET-MARKER line of a guest's disk\n";
  auto in = enc.Insert(data);
  ASSERT_TRUE(in) << in.error().message;
  EXPECT_EQ(in->digest, key->ChunkId(data));
  EXPECT_NE(in->digest, Sha256Digest(data));
  EXPECT_EQ(enc.DigestOf(data), in->digest);
  EXPECT_LT(in->stored_bytes, data.size() / 10);  // compressed before it is sealed
  std::string path = enc.ChunkPath(in->digest);
  EXPECT_EQ(Slurp(path).find("SECRET-MARKER"), std::string::npos);
  auto back = enc.Read(in->digest);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, data);
  // Plain chunks stored before the key was set stay readable.
  auto plain = store_.Insert(Pattern(4096, 3));
  ASSERT_TRUE(plain);
  EXPECT_EQ(*enc.Read(plain->digest), Pattern(4096, 3));

  // Without the key: a clear error, and the chunk is not taken for damaged.
  auto nokey = store_.Read(in->digest);
  ASSERT_FALSE(nokey);
  EXPECT_EQ(nokey.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(nokey.error().message, "chunk " + DigestHex(in->digest) + " is encrypted and no encryption key is configured");
  EXPECT_TRUE(std::filesystem::exists(path));

  // Another key: the chunk does not open (callers compare fingerprints first).
  ChunkStore other(posix_, dir_.Sub("store"), {1, std::make_shared<const BackupKey>(*BackupKey::Generate())});
  EXPECT_EQ(ChunkStore::DecodeBlob(in->digest, Slurp(path), other.key()).error().message,
            "chunk " + DigestHex(in->digest) + " is corrupt (decryption failed (wrong key or modified data))");
  // An encrypted backup's index naming a plain chunk: refused, and the chunk left alone.
  auto refused = enc.Read(plain->digest, /*encrypted_only=*/true);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message, "chunk " + DigestHex(plain->digest) + " is not encrypted, but its backup is: refused");
  EXPECT_TRUE(enc.Contains(plain->digest));

  // A changed byte of the ciphertext: found without the key (the checksum), then corrupt,
  // named, moved aside.
  std::string blob = Slurp(path);
  blob[blob.size() / 2] ^= 1;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << blob;
  EXPECT_EQ(ChunkStore::DecodeBlob(in->digest, blob, nullptr).error().message,
            "chunk " + DigestHex(in->digest) + " is corrupt (checksum mismatch)");
  auto bad = enc.Read(in->digest);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "chunk " + DigestHex(in->digest) + " is corrupt (checksum mismatch)");
  EXPECT_TRUE(std::filesystem::exists(path + ".bad"));
}

TEST_F(ChunkStoreTest, BlobsCopyToAStoreWithoutTheKeyAndReadThereWithIt) {
  auto key = std::make_shared<const BackupKey>(*BackupKey::Generate());
  ChunkStore enc(posix_, dir_.Sub("store"), {1, key});
  auto in = enc.Insert(Pattern(100000, 7));
  ASSERT_TRUE(in);
  // The copy needs no key (an offsite disk): only the blob's frame is checked.
  ChunkStore offsite(posix_, dir_.Sub("offsite"));
  auto blob = enc.ReadBlob(in->digest, nullptr);
  ASSERT_TRUE(blob) << blob.error().message;
  auto copied = offsite.InsertBlob(in->digest, *blob);
  ASSERT_TRUE(copied) << copied.error().message;
  EXPECT_EQ(copied->stored_bytes, blob->size());
  EXPECT_TRUE(offsite.InsertBlob(in->digest, *blob)->existed);
  EXPECT_FALSE(offsite.Read(in->digest));
  ChunkStore offsite_with_key(posix_, dir_.Sub("offsite"), {1, key});
  EXPECT_EQ(*offsite_with_key.Read(in->digest), Pattern(100000, 7));
  // With the key the copy is checked in full; a wrong key reads as damage.
  EXPECT_TRUE(enc.ReadBlob(in->digest, key.get()));
  EXPECT_FALSE(offsite.InsertBlob(in->digest, "not a blob"));
}

TEST(FixedIndexTest, RoundTripsAndRefusesAnythingElse) {
  FixedIndex idx;
  idx.size = 2 * ChunkStore::kChunkSize + 5;
  for (int i = 0; i < 3; ++i) idx.digests.push_back(Sha256Digest(std::to_string(i)));
  std::string bytes = EncodeFixedIndex(idx);
  auto back = DecodeFixedIndex(bytes);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->size, idx.size);
  EXPECT_EQ(back->digests, idx.digests);
  EXPECT_EQ(back->ChunkBytes(2), 5u);
  EXPECT_EQ(back->ChunkBytes(3), 0u);

  std::string flipped = bytes;
  flipped[40] ^= 1;
  EXPECT_EQ(DecodeFixedIndex(flipped).error().message, "index: checksum mismatch");
  EXPECT_EQ(DecodeFixedIndex(bytes.substr(0, bytes.size() - 1)).error().message,
            "index: length does not match the chunk count");
  EXPECT_EQ(DecodeFixedIndex("hrthfidx").error().message, "index: not an index file");
  FixedIndex wrong = idx;
  wrong.digests.pop_back();
  EXPECT_EQ(DecodeFixedIndex(EncodeFixedIndex(wrong)).error().message, "index: chunk count does not match the size");
  FixedIndex huge;
  huge.size = FixedIndex::kMaxImage + 1;
  EXPECT_EQ(DecodeFixedIndex(EncodeFixedIndex(huge)).error().message, "index: image size out of range");
}

}  // namespace
}  // namespace hearth

// The pieces of a sync from another node on a real directory: the serving side
// (BackupSyncReader), the checks of what a source sends (ChunkStore::CheckBlob,
// BackupDatastore::ParseManifest) and SyncDatastore from a source that lies.
#include <gtest/gtest.h>

#include <filesystem>

#include "backup/crypt_key.h"
#include "backup/datastore_sync.h"
#include "backup/sync_reader.h"
#include "core/testing/temp_dir.h"
#include "sys/posix/posix_file_system.h"

namespace hearth {
namespace {

constexpr int64_t kT0 = 1764662400;  // 2025-12-02T08:00:00Z

class SyncSourceTest : public ::testing::Test {
 protected:
  BackupSnapshotInfo Backup(int vmid, int64_t t, const std::string& fill, int chunks = 2) {
    FixedIndex idx;
    idx.chunk_size = 4096;
    idx.size = 4096u * static_cast<unsigned>(chunks);
    for (int c = 0; c < chunks; ++c)
      idx.digests.push_back(store_.chunks().Insert(std::string(4096, fill[static_cast<size_t>(c) % fill.size()]))->digest);
    auto w = store_.Begin(vmid, t);
    EXPECT_TRUE(w);
    EXPECT_TRUE((*w)->AddImage("drive-scsi0", idx));
    EXPECT_TRUE((*w)->AddBlob("qemu-server.conf", "memory: 512\n"));
    auto info = (*w)->Finish();
    EXPECT_TRUE(info);
    return *info;
  }
  TempDir dir_;
  PosixFileSystem fs_;
  BackupDatastore store_{fs_, dir_.Sub("a")};
  BackupDatastore offsite_{fs_, dir_.Sub("b")};
};

TEST_F(SyncSourceTest, ReaderServesOnlyTheChunksOfTheBackupAsked) {
  auto a = Backup(100, kT0, "ab");
  auto b = Backup(101, kT0, "xy");
  BackupSyncReader reader;
  auto ia = store_.ReadIndex(a.id, "drive-scsi0");
  auto ib = store_.ReadIndex(b.id, "drive-scsi0");
  auto blob = reader.Chunk(store_, a.id, ia->digests[0], "local:backup/" + a.id.Name());
  ASSERT_TRUE(blob) << blob.error().message;
  EXPECT_EQ(ChunkStore::CheckBlob(ia->digests[0], *blob, false), 4096u);
  auto refused = reader.Chunk(store_, a.id, ib->digests[0], "local:backup/" + a.id.Name());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(refused.error().message, "chunk " + DigestHex(ib->digests[0]) + " is not in backup 'local:backup/" + a.id.Name() + "'");

  auto info = BackupSyncReader::CopyInfo(store_, a.id);
  ASSERT_TRUE(info);
  EXPECT_TRUE(BackupDatastore::ParseManifest((*info)["manifest"].get<std::string>(), a.id));
  EXPECT_FALSE(BackupSyncReader::File(store_, a.id, "notes"));
  EXPECT_EQ(*BackupSyncReader::File(store_, a.id, "qemu-server.conf"), "memory: 512\n");
}

TEST_F(SyncSourceTest, ABlobIsCheckedAgainstItsDigestAndTheBackupsCryptMode) {
  auto a = Backup(100, kT0, "ab");
  auto idx = store_.ReadIndex(a.id, "drive-scsi0");
  std::string blob = *store_.chunks().ReadBlob(idx->digests[0], nullptr);
  EXPECT_TRUE(ChunkStore::CheckBlob(idx->digests[0], blob, false));
  // Another chunk's blob under this digest, a flipped byte, a plain blob in an encrypted backup.
  EXPECT_EQ(ChunkStore::CheckBlob(idx->digests[1], blob, false).error().message,
            "chunk " + DigestHex(idx->digests[1]) + " is corrupt (digest mismatch)");
  std::string flipped = blob;
  flipped.back() ^= 0x5a;
  EXPECT_FALSE(ChunkStore::CheckBlob(idx->digests[0], flipped, false));
  EXPECT_FALSE(ChunkStore::CheckBlob(idx->digests[0], blob, true));
  EXPECT_FALSE(ChunkStore::CheckBlob(idx->digests[0], blob.substr(0, 10), false));
}

TEST_F(SyncSourceTest, DedupMatchesTheCryptModeSoASealedBlobNeverStandsInForPlainData) {
  auto key = std::make_shared<const BackupKey>(*BackupKey::FromKeyFile(R"({"kdf":null,"data":"aGVhcnRoIHRlc3Qga2V5LCBmb3Igc3luYyB0ZXN0cyEh"})"));
  ChunkStore sealed_store(fs_, dir_.Sub("sealed"), ChunkStoreOptions{1, key});
  ChunkStore plain_store(fs_, dir_.Sub("plain"));
  std::string data(4096, 'z');
  auto sealed = sealed_store.Insert(data);
  ASSERT_TRUE(sealed);
  std::string sealed_blob = *sealed_store.ReadBlob(sealed->digest, key.get());
  ChunkDigest plain_digest = Sha256Digest(data);
  // A forged sealed blob under the plain digest, stored before the real data arrives: the
  // plain insert replaces it instead of deduplicating against it.
  ASSERT_TRUE(plain_store.InsertBlob(plain_digest, sealed_blob));
  EXPECT_FALSE(plain_store.ContainsAs(plain_digest, false));
  auto real = plain_store.Insert(data);
  ASSERT_TRUE(real);
  EXPECT_FALSE(real->existed);
  EXPECT_EQ(*plain_store.Read(plain_digest), data);
  // And a sealed blob named like a stored plain chunk is refused.
  auto forged = plain_store.InsertBlob(plain_digest, sealed_blob);
  ASSERT_FALSE(forged);
  EXPECT_NE(forged.error().message.find("is stored unencrypted here"), std::string::npos);
  EXPECT_EQ(*plain_store.Read(plain_digest), data);
}

TEST_F(SyncSourceTest, AManifestFromElsewhereMustNameTheBackupAndEachFileOnce) {
  auto a = Backup(100, kT0, "ab");
  std::string text = *store_.ManifestText(a.id);
  EXPECT_TRUE(BackupDatastore::ParseManifest(text, a.id));
  EXPECT_FALSE(BackupDatastore::ParseManifest(text, BackupSnapshotId{101, kT0}));
  auto j = nlohmann::json::parse(text);
  j["files"].push_back(j["files"][0]);
  auto twice = BackupDatastore::ParseManifest(j.dump(), a.id);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().message, "backup 'vm/100/2025-12-02T08:00:00Z': manifest lists a file twice");
  j = nlohmann::json::parse(text);
  j["files"][0]["filename"] = "../../etc/passwd";
  EXPECT_FALSE(BackupDatastore::ParseManifest(j.dump(), a.id));
}

// A source that answers for another backup, or swaps a chunk's blob.
class LyingSource final : public BackupSource {
 public:
  LyingSource(BackupDatastore& real, std::string lie) : real_(std::shared_ptr<BackupDatastore>(std::shared_ptr<void>(), &real), "a"), lie_(std::move(lie)) {}
  std::string Describe() const override { return "liar"; }
  Result<std::vector<BackupSnapshotInfo>> List(int vmid) override { return real_.List(vmid); }
  Result<BackupCopyInfo> CopyInfo(const BackupSnapshotId& id) override {
    auto info = real_.CopyInfo(id);
    if (info && lie_ == "image-size") info->manifest.files[0].image_size += 4096;
    return info;
  }
  Result<std::string> ReadFile(const BackupManifest& m, const std::string& f) override { return real_.ReadFile(m, f); }
  Result<std::string> ReadChunk(const BackupSnapshotId& id, const ChunkDigest& d, bool enc) override {
    auto blob = real_.ReadChunk(id, d, enc);
    if (blob && lie_ == "blob") blob->back() ^= 1;
    return blob;
  }

 private:
  LocalBackupSource real_;
  std::string lie_;
};

TEST_F(SyncSourceTest, ASourceThatLiesPublishesNothing) {
  auto a = Backup(100, kT0, "ab");
  for (const char* lie : {"image-size", "blob"}) {
    LyingSource source(store_, lie);
    BackupDatastore target(fs_, dir_.Sub(std::string("t-") + lie));
    std::vector<std::string> lines;
    auto stats = SyncDatastore(source, target, 0, [&](const std::string& l) { lines.push_back(l); }, nullptr);
    ASSERT_TRUE(stats) << lie;
    EXPECT_EQ(stats->snapshots_failed, 1u) << lie;
    EXPECT_TRUE(target.List()->empty()) << lie;
    ASSERT_FALSE(lines.empty());
    EXPECT_NE(lines[0].find("sync of vm/100/2025-12-02T08:00:00Z failed"), std::string::npos) << lines[0];
  }
}

}  // namespace
}  // namespace hearth

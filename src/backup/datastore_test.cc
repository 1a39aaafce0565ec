// BackupDatastore on a real directory: snapshots published whole, listed, protected, verified
// and collected.
#include "backup/datastore.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "backup/datastore_sync.h"
#include "backup/image_backup.h"
#include "core/testing/temp_dir.h"
#include "sys/posix/posix_file_system.h"
#include "sys/testing/fault_file_system.h"

namespace hearth {
namespace {

constexpr int64_t kT0 = 1764662400;  // 2025-12-02T08:00:00Z

class DatastoreTest : public ::testing::Test {
 protected:
  // A backup of VM `vmid` at `t` with one disk holding `chunks` chunks from `seed`.
  BackupSnapshotInfo Backup(int vmid, int64_t t, int chunks, int seed) { return BackupInto(store_, vmid, t, chunks, seed); }
  BackupSnapshotInfo BackupInto(BackupDatastore& store_, int vmid, int64_t t, int chunks, int seed) {
    std::string data;
    for (int c = 0; c < chunks; ++c) data += std::string(4096, static_cast<char>('a' + (seed + c) % 26));
    FixedIndex idx;
    idx.chunk_size = 4096;
    idx.size = data.size();
    for (int c = 0; c < chunks; ++c) idx.digests.push_back(store_.chunks().Insert(data.substr(c * 4096, 4096))->digest);
    auto w = store_.Begin(vmid, t);
    EXPECT_TRUE(w) << w.error().message;
    EXPECT_TRUE((*w)->AddImage("drive-scsi0", idx));
    EXPECT_TRUE((*w)->AddBlob("qemu-server.conf", "memory: 512\nscsi0: local:vm-" + std::to_string(vmid) + "-disk-0\n"));
    auto info = (*w)->Finish();
    EXPECT_TRUE(info) << info.error().message;
    return *info;
  }
  TempDir dir_;
  PosixFileSystem fs_;
  BackupDatastore store_{fs_, dir_.Sub("backups")};
};

TEST(BackupSnapshotIdTest, ProxmoxsNamesAndNothingElse) {
  BackupSnapshotId id{100, kT0};
  EXPECT_EQ(id.Name(), "vm/100/2025-12-02T08:00:00Z");
  EXPECT_EQ(BackupSnapshotId::Parse(id.Name()), id);
  for (const char* bad : {"vm/100/2025-12-02T08:00:00", "ct/100/2025-12-02T08:00:00Z", "vm/0100/2025-12-02T08:00:00Z",
                          "vm/100/2025-02-30T08:00:00Z", "vm/100/../x", "vm/99/2025-12-02T08:00:00Z",
                          "vm/100/2025-12-02T08:00:00Z/", "vm/100/2025-12-02 08:00:00Z"})
    EXPECT_FALSE(BackupSnapshotId::Parse(bad)) << bad;
}

TEST_F(DatastoreTest, ASnapshotIsPublishedWholeAndListed) {
  auto a = Backup(100, kT0, 3, 0);
  auto b = Backup(100, kT0 + 86400, 3, 1);
  Backup(101, kT0, 1, 5);
  EXPECT_EQ(a.size, 3 * 4096u);
  EXPECT_TRUE(std::filesystem::exists(dir_.Sub("backups/vm/100/2025-12-02T08:00:00Z/index.json")));
  auto list = store_.List(100);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, a.id);
  EXPECT_EQ((*list)[1].id, b.id);
  EXPECT_EQ(store_.List()->size(), 3u);
  EXPECT_EQ(*store_.ReadFile(a.id, "qemu-server.conf"), "memory: 512\nscsi0: local:vm-100-disk-0\n");
  EXPECT_EQ(store_.ReadIndex(a.id, "drive-scsi0")->digests.size(), 3u);
  EXPECT_EQ(store_.Begin(100, kT0).error().message, "backup 'vm/100/2025-12-02T08:00:00Z' already exists");

  // A writer that never finishes (a crash) leaves no backup anybody lists.
  auto w = store_.Begin(100, kT0 + 60);
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->AddBlob("qemu-server.conf", "x"));
  EXPECT_EQ(store_.List(100)->size(), 2u);
  (*w)->Abort();
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("backups/vm/100/.2025-12-02T08:01:00Z.tmp")));
}

TEST_F(DatastoreTest, AChangedFileIsRefusedNotUsed) {
  auto a = Backup(100, kT0, 2, 0);
  std::ofstream(dir_.Sub("backups/vm/100/2025-12-02T08:00:00Z/qemu-server.conf"), std::ios::app) << "hostpci0: x\n";
  EXPECT_EQ(store_.ReadFile(a.id, "qemu-server.conf").error().message,
            "backup 'vm/100/2025-12-02T08:00:00Z': qemu-server.conf has been modified (checksum mismatch)");
  EXPECT_EQ(store_.Manifest(BackupSnapshotId{100, kT0 + 1}).error().message,
            "backup 'vm/100/2025-12-02T08:00:01Z' does not exist");
}

TEST_F(DatastoreTest, ProtectedBackupsStayAndNotesAreKept) {
  auto a = Backup(100, kT0, 1, 0);
  ASSERT_TRUE(store_.SetProtected(a.id, true));
  ASSERT_TRUE(store_.SetNotes(a.id, "before the upgrade"));
  auto info = store_.Info(a.id);
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->is_protected);
  EXPECT_EQ(info->notes, "before the upgrade");
  EXPECT_EQ(store_.Remove(a.id).error().message, "backup 'vm/100/2025-12-02T08:00:00Z' is protected");
  ASSERT_TRUE(store_.SetProtected(a.id, false));
  ASSERT_TRUE(store_.Remove(a.id));
  EXPECT_TRUE(store_.List(100)->empty());
}

TEST_F(DatastoreTest, VerifyNamesTheDiskAndChunkAndRecordsTheResult) {
  auto a = Backup(100, kT0, 3, 0);
  auto ok = store_.Verify(a.id, "UPID:n:1");
  ASSERT_TRUE(ok);
  EXPECT_TRUE(ok->empty());
  EXPECT_EQ(store_.Info(a.id)->verify_state, "ok");
  auto idx = store_.ReadIndex(a.id, "drive-scsi0");
  std::filesystem::remove(store_.chunks().ChunkPath(idx->digests[1]));
  auto bad = store_.Verify(a.id, "UPID:n:2");
  ASSERT_TRUE(bad);
  ASSERT_EQ(bad->size(), 1u);
  EXPECT_EQ((*bad)[0], "drive-scsi0 (chunk 1): chunk " + DigestHex(idx->digests[1]) + " is missing");
  EXPECT_EQ(store_.Info(a.id)->verify_state, "failed");
  EXPECT_EQ(store_.Info(a.id)->verify_upid, "UPID:n:2");
}

TEST_F(DatastoreTest, AnEncryptedBackupNeedsItsKeyAndSaysWhichOne) {
  auto key = std::make_shared<const BackupKey>(*BackupKey::Generate());
  auto other = std::make_shared<const BackupKey>(*BackupKey::Generate());
  BackupDatastore enc(fs_, dir_.Sub("backups"), {1, key});
  auto a = BackupInto(enc, 100, kT0, 2, 0);
  EXPECT_EQ(a.id, (BackupSnapshotId{100, kT0}));
  auto m = enc.Manifest(a.id);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->key_fingerprint, key->fingerprint());
  EXPECT_EQ(enc.Info(a.id)->key_fingerprint, key->fingerprint());
  // The config is sealed on disk, plain through ReadBlob.
  std::ifstream f(dir_.Sub("backups/vm/100/2025-12-02T08:00:00Z/qemu-server.conf"), std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(f)), {});
  EXPECT_EQ(raw.find("memory"), std::string::npos);
  EXPECT_EQ(*enc.ReadBlob(a.id, "qemu-server.conf"), "memory: 512\nscsi0: local:vm-100-disk-0\n");
  EXPECT_TRUE(enc.Verify(a.id, "UPID:n:1")->empty());

  // No key, or another: refused before anything is read.
  BackupDatastore wrong(fs_, dir_.Sub("backups"), {1, other});
  EXPECT_EQ(wrong.CheckKey(*m).error().message, "wrong encryption key: backup 'vm/100/2025-12-02T08:00:00Z' was "
                                                "encrypted with key " + key->fingerprint() + ", the storage's key is " +
                                                other->fingerprint());
  EXPECT_FALSE(wrong.ReadBlob(a.id, "qemu-server.conf"));
  auto none = store_.ReadBlob(a.id, "qemu-server.conf");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message, "backup 'vm/100/2025-12-02T08:00:00Z' is encrypted (key fingerprint " +
                                      key->fingerprint() + ") and the storage has no encryption key: set its "
                                      "encryption-key to that key");
  // Verify without the key checks what it can (files, chunk checksums) and says so.
  bool without_key = false;
  auto keyless = store_.Verify(a.id, "UPID:n:3", &without_key);
  ASSERT_TRUE(keyless) << keyless.error().message;
  EXPECT_TRUE(keyless->empty());
  EXPECT_TRUE(without_key);
  EXPECT_EQ(enc.Info(a.id)->verify_upid, "UPID:n:3");
  // Listing and GC need no key.
  EXPECT_EQ(store_.List(100)->size(), 1u);
  EXPECT_TRUE(store_.GarbageCollect(std::chrono::system_clock::now()));
  EXPECT_TRUE(enc.Verify(a.id, "UPID:n:4")->empty());
}

TEST_F(DatastoreTest, WhoeverHoldsTheStoreCannotChangeAnEncryptedBackup) {
  auto key = std::make_shared<const BackupKey>(*BackupKey::Generate());
  BackupDatastore enc(fs_, dir_.Sub("backups"), {1, key});
  auto a = BackupInto(enc, 100, kT0, 3, 0);
  std::string dir = dir_.Sub("backups/vm/100/2025-12-02T08:00:00Z");
  auto slurp = [](const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), {});
  };
  auto put = [](const std::string& p, const std::string& text) { std::ofstream(p, std::ios::binary | std::ios::trunc) << text; };
  std::string manifest = slurp(dir + "/index.json");
  auto hex = [](const std::string& d) { return DigestHex(Sha256Digest(d)); };

  // A plain config in place of the sealed one, its manifest entry rewritten to match.
  std::string conf = "memory: 64\nargs: -device pwned\n";
  auto j = nlohmann::json::parse(manifest);
  for (auto& f : j["files"])
    if (f["filename"] == "qemu-server.conf") f = {{"filename", "qemu-server.conf"}, {"size", conf.size()}, {"csum", hex(conf)}, {"crypt-mode", "none"}};
  std::string sealed = slurp(dir + "/qemu-server.conf");
  put(dir + "/qemu-server.conf", conf);
  put(dir + "/index.json", j.dump(1));
  EXPECT_EQ(enc.ReadBlob(a.id, "qemu-server.conf").error().message,
            "backup 'vm/100/2025-12-02T08:00:00Z': manifest has plain files in an encrypted backup");
  // Still marked encrypted but changed: the signature no longer matches.
  for (auto& f : j["files"])
    if (f["filename"] == "qemu-server.conf") f["crypt-mode"] = "encrypt";
  put(dir + "/index.json", j.dump(1));
  EXPECT_EQ(enc.ReadBlob(a.id, "qemu-server.conf").error().message,
            "backup 'vm/100/2025-12-02T08:00:00Z': the manifest's signature does not match (it was changed)");
  EXPECT_FALSE(enc.Verify(a.id, ""));

  // The sealed config of another backup of the same VM does not open here.
  put(dir + "/index.json", manifest);
  put(dir + "/qemu-server.conf", sealed);
  auto b = BackupInto(enc, 100, kT0 + 60, 1, 1);
  std::string other_dir = dir_.Sub("backups/vm/100/2025-12-02T08:01:00Z");
  auto jb = nlohmann::json::parse(slurp(other_dir + "/index.json"));
  put(other_dir + "/qemu-server.conf", sealed);
  for (auto& f : jb["files"])
    if (f["filename"] == "qemu-server.conf") f["size"] = sealed.size(), f["csum"] = hex(sealed);
  // Even signed (with the key, which whoever swaps files lacks), the file names its backup.
  jb.erase("signature");
  jb["signature"] = key->Sign(jb.dump());
  put(other_dir + "/index.json", jb.dump(1));
  auto swapped = enc.ReadBlob(b.id, "qemu-server.conf");
  ASSERT_FALSE(swapped);
  EXPECT_EQ(swapped.error().message,
            "backup 'vm/100/2025-12-02T08:01:00Z': qemu-server.conf: decryption failed (wrong key or modified data)");
  EXPECT_TRUE(enc.ReadBlob(a.id, "qemu-server.conf"));
}

TEST_F(DatastoreTest, SyncCopiesEncryptedBackupsAsTheyAreToATargetWithoutTheKey) {
  auto key = std::make_shared<const BackupKey>(*BackupKey::Generate());
  BackupDatastore enc(fs_, dir_.Sub("backups"), {1, key});
  auto a = BackupInto(enc, 100, kT0, 3, 0);
  auto plain = Backup(101, kT0, 1, 9);  // a plain backup in the same store
  BackupDatastore offsite(fs_, dir_.Sub("offsite"));
  auto stats = SyncDatastore(enc, offsite, 0, nullptr, nullptr);
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(stats->snapshots_copied, 2u);
  EXPECT_EQ(stats->snapshots_failed, 0u);
  EXPECT_EQ(offsite.Manifest(a.id)->key_fingerprint, key->fingerprint());
  EXPECT_FALSE(offsite.ReadBlob(a.id, "qemu-server.conf"));
  EXPECT_EQ(*offsite.ReadBlob(plain.id, "qemu-server.conf"), "memory: 512\nscsi0: local:vm-101-disk-0\n");
  // With the key given to the target (the original gone), everything reads and verifies.
  std::filesystem::remove_all(dir_.Sub("backups"));
  BackupDatastore restored(fs_, dir_.Sub("offsite"), {1, key});
  EXPECT_EQ(*restored.ReadBlob(a.id, "qemu-server.conf"), "memory: 512\nscsi0: local:vm-100-disk-0\n");
  auto problems = restored.Verify(a.id, "");
  ASSERT_TRUE(problems) << problems.error().message;
  EXPECT_TRUE(problems->empty());
  EXPECT_TRUE(restored.Verify(plain.id, "")->empty());
}

TEST_F(DatastoreTest, SyncSkipsWhatTheTargetsRetentionRemovedAndStopsAVmAtItsFirstFailure) {
  auto a1 = Backup(100, kT0, 2, 0);
  auto a2 = Backup(100, kT0 + 60, 2, 10);
  auto a3 = Backup(100, kT0 + 120, 2, 20);
  auto b1 = Backup(101, kT0, 2, 30);
  auto b2 = Backup(101, kT0 + 60, 2, 40);
  auto b3 = Backup(101, kT0 + 120, 2, 50);
  BackupDatastore offsite(fs_, dir_.Sub("offsite"));
  // VM 101's middle backup lost a chunk: its copy fails, and the newer one must wait for it
  // (copied, it would make the failed one "older than the newest" and skipped forever).
  auto idx = store_.ReadIndex(b2.id, "drive-scsi0");
  std::filesystem::remove(store_.chunks().ChunkPath(idx->digests[1]));
  std::vector<std::string> lines;
  auto stats = SyncDatastore(store_, offsite, 0, [&](const std::string& l) { lines.push_back(l); }, nullptr);
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(stats->snapshots_copied, 4u);  // a1, a2, a3, b1
  EXPECT_EQ(stats->snapshots_failed, 1u);
  EXPECT_TRUE(offsite.Info(b1.id));
  EXPECT_FALSE(offsite.Info(b2.id));
  EXPECT_FALSE(offsite.Info(b3.id));
  // The target keeps only the newest of VM 100 (its own retention): the next run does not
  // bring the other two back.
  ASSERT_TRUE(offsite.Remove(a1.id));
  ASSERT_TRUE(offsite.Remove(a2.id));
  lines.clear();
  stats = SyncDatastore(store_, offsite, 100, [&](const std::string& l) { lines.push_back(l); }, nullptr);
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(stats->snapshots_copied, 0u);
  EXPECT_EQ(stats->snapshots_skipped, 2u);
  EXPECT_EQ(stats->snapshots_present, 1u);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "vm/100: skipped: 2 snapshot(s) (2025-12-02T08:00:00Z .. 2025-12-02T08:01:00Z) - older than the "
                      "newest local snapshot");
  EXPECT_FALSE(offsite.Info(a1.id));
}

TEST_F(DatastoreTest, VerifyReadsASharedChunkOnceAndNamesEveryPlaceThatNeedsIt) {
  auto a = Backup(100, kT0, 30, 0);  // chunk c and c+26 are the same data
  auto idx = store_.ReadIndex(a.id, "drive-scsi0");
  ASSERT_EQ(idx->digests[1], idx->digests[27]);
  std::filesystem::remove(store_.chunks().ChunkPath(idx->digests[1]));
  auto bad = store_.Verify(a.id, "");
  ASSERT_TRUE(bad);
  ASSERT_EQ(bad->size(), 1u);
  EXPECT_EQ((*bad)[0], "drive-scsi0 (chunks 1, 27): chunk " + DigestHex(idx->digests[1]) + " is missing");
}

TEST_F(DatastoreTest, GarbageCollectionFreesOnlyWhatNoBackupNeeds) {
  auto a = Backup(100, kT0, 3, 0);       // chunks a, b, c
  auto b = Backup(100, kT0 + 60, 3, 1);  // chunks b, c, d: shares two with a
  // Everything is two days old, as if written then.
  auto past = std::filesystem::file_time_type::clock::now() - std::chrono::hours(48);
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir_.Sub("backups/.chunks")))
    if (e.is_regular_file()) std::filesystem::last_write_time(e.path(), past);
  ASSERT_TRUE(store_.Remove(a.id));
  // A writer that started before the GC and has not written its index yet: its new chunk is
  // fresh, so the grace period keeps it.
  auto fresh = store_.chunks().Insert(std::string(4096, 'Z'));
  auto gc = store_.GarbageCollect(std::chrono::system_clock::now());
  ASSERT_TRUE(gc) << gc.error().message;
  EXPECT_EQ(gc->indexes, 1u);
  EXPECT_EQ(gc->sweep.removed, 1u);  // only a's own chunk
  EXPECT_TRUE(store_.chunks().Contains(fresh->digest));
  auto left = store_.Verify(b.id, "");
  ASSERT_TRUE(left);
  EXPECT_TRUE(left->empty());
}

}  // namespace
}  // namespace hearth

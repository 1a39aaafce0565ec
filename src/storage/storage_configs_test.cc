// StorageConfigs through the real SQLite store and the real dir driver: what the /storage
// API promises (Proxmox's texts and order of checks) and that nothing half-done is stored.
#include "storage/storage_configs.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/testing/temp_dir.h"
#include "state/sqlite/sqlite_store.h"
#include "storage/dir/dir_storage.h"
#include "sys/posix/posix_process.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;

class StorageConfigsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RegisterDirStorage(registry_);
    fs::create_directories(data_dir_);
    Open();
  }
  void Open() {
    configs_.reset();
    store_.reset();
    manager_ = std::make_unique<StorageManager>("n1");
    store_ = std::move(*SqliteStore::Open(dir_.Sub("hearth.db")));
    configs_ = std::make_unique<StorageConfigs>(*store_, registry_, *manager_, StorageDeps{&runner_, "n1", data_dir_});
    warnings_.clear();
    ASSERT_TRUE(configs_->Load(&warnings_));
  }
  template <class R>
  std::string Message(const R& r) { return r ? "" : r.error().message; }

  TempDir dir_;
  std::string data_dir_ = dir_.Sub("data");
  PosixProcessRunner runner_;
  StorageRegistry registry_;
  std::unique_ptr<StorageManager> manager_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<StorageConfigs> configs_;
  std::vector<std::string> warnings_;
};

TEST_F(StorageConfigsTest, FirstStartWritesLocalAtTheDataDirWithItsOwnLayout) {
  auto local = manager_->Find("local");
  ASSERT_TRUE(local);
  EXPECT_EQ(local->config.type, "dir");
  EXPECT_EQ(local->config.Get("path"), data_dir_);
  EXPECT_EQ(local->config.Get("content"), "backup,images,import,iso,snippets,vztmpl");
  EXPECT_EQ(store_->ListStorages()->size(), 1u);
  EXPECT_TRUE(fs::is_directory(data_dir_ + "/iso"));  // not template/iso: ISOs stay where they were
  EXPECT_EQ(*(*manager_->Get("local"))->Path("iso/x.iso"), data_dir_ + "/iso/x.iso");
  std::string digest = configs_->Digest();
  EXPECT_EQ(digest.size(), 40u);
  Open();  // written once: a restart reads it back
  EXPECT_EQ(store_->ListStorages()->size(), 1u);
  EXPECT_EQ(configs_->Digest(), digest);
}

TEST_F(StorageConfigsTest, CreateActivatesPersistsAndUsesProxmoxsLayout) {
  std::string path = dir_.Sub("tank");
  std::vector<std::string> warnings;
  auto made = configs_->Create("tank", "dir", {{"path", path + "/"}, {"content", "iso,images,rootdir"}}, &warnings);
  ASSERT_TRUE(made) << made.error().message;
  EXPECT_EQ(made->Get("path"), path);  // canonical
  EXPECT_EQ(warnings, std::vector<std::string>{});
  EXPECT_TRUE(fs::is_directory(path + "/template/iso"));
  EXPECT_TRUE(fs::is_directory(path + "/images"));
  EXPECT_TRUE(fs::is_directory(path + "/private"));
  auto tank = manager_->Get("tank");
  ASSERT_TRUE(tank);
  EXPECT_EQ(*(*tank)->Path("iso/d.iso"), path + "/template/iso/d.iso");
  Open();
  ASSERT_TRUE(manager_->Find("tank"));
  EXPECT_EQ(manager_->Find("tank")->config.Get("content"), "images,iso,rootdir");
}

TEST_F(StorageConfigsTest, CreateRefusesWhatCannotWorkAndStoresNothing) {
  std::string missing = dir_.Sub("nowhere");
  auto st = configs_->Create("gone", "dir", {{"path", missing}, {"create-base-path", "0"}}, nullptr);
  EXPECT_EQ(Message(st), "create storage failed: unable to activate storage 'gone' - directory '" + missing +
                                      "' does not exist or is unreachable");
  EXPECT_FALSE(manager_->Find("gone"));
  EXPECT_EQ(store_->ListStorages()->size(), 1u);

  auto dup = configs_->Create("local", "dir", {{"path", dir_.Sub("x")}}, nullptr);
  EXPECT_EQ(Message(dup), "create storage failed: storage ID 'local' already defined");
  // Parameter errors come first, even for an existing id (Proxmox checks them outside the lock).
  auto bad = configs_->Create("local", "dir", {{"path", dir_.Sub("x")}, {"vgname", "vg"}}, nullptr);
  EXPECT_EQ(Message(bad), "unexpected property 'vgname'");
  auto nodriver = configs_->Create("nas", "nfs", {{"server", "10.0.0.1"}, {"export", "/srv"}, {"path", dir_.Sub("nas")}},
                                   nullptr);
  EXPECT_EQ(Message(nodriver), "create storage failed: storage type 'nfs' has no driver in this hearth build yet");
  EXPECT_EQ(store_->ListStorages()->size(), 1u);
}

TEST_F(StorageConfigsTest, UpdateChangesTheLiveDriverAndChecksTheDigest) {
  ASSERT_TRUE(configs_->Create("tank", "dir", {{"path", dir_.Sub("tank")}, {"content", "images"}}, nullptr));
  auto before = *manager_->Get("tank");
  EXPECT_FALSE(before->Supports(ContentType::kIso));
  std::string digest = configs_->Digest();
  ASSERT_TRUE(configs_->Update("tank", {{"content", "images,iso"}}, {}, digest, nullptr));
  EXPECT_TRUE(before->Supports(ContentType::kIso));  // the same object: in-flight work keeps its locks
  EXPECT_NE(configs_->Digest(), digest);
  auto stale = configs_->Update("tank", {{"content", "images"}}, {}, digest, nullptr);
  EXPECT_EQ(Message(stale),
            "update storage failed: detected modified configuration - file changed by other user? Try again.");
  EXPECT_EQ(Message(configs_->Update("tank", {{"path", "/x"}}, {}, "", nullptr)),
            "update storage failed: can't change value of fixed parameter 'path'");
  EXPECT_EQ(Message(configs_->Update("nope", {{"disable", "1"}}, {}, "", nullptr)),
            "update storage failed: storage 'nope' does not exist");

  ASSERT_TRUE(configs_->Update("tank", {{"disable", "1"}}, {}, "", nullptr));
  EXPECT_EQ(Message(manager_->Get("tank")), "storage 'tank' is disabled");
  EXPECT_TRUE(manager_->Find("tank"));  // still configured, still listed
  ASSERT_TRUE(configs_->Update("tank", {{"nodes", "n2,n3"}}, {"disable"}, "", nullptr));
  EXPECT_EQ(Message(manager_->Get("tank")), "storage 'tank' is not available on node 'n1'");
  ASSERT_TRUE(configs_->Update("tank", {{"nodes", "n1,n2"}}, {}, "", nullptr));
  EXPECT_TRUE(manager_->Get("tank"));
  Open();
  EXPECT_EQ(manager_->Find("tank")->config.Get("nodes"), "n1,n2");
}

TEST_F(StorageConfigsTest, DeleteKeepsTheVolumesAndAHeldDriverStaysUsable) {
  std::string path = dir_.Sub("tank");
  ASSERT_TRUE(configs_->Create("tank", "dir", {{"path", path}, {"content", "images"}}, nullptr));
  auto held = *manager_->Get("tank");
  auto vol = held->AllocImage(100, "raw", 1 << 20, "", nullptr);
  ASSERT_TRUE(vol) << vol.error().message;
  ASSERT_TRUE(configs_->Delete("tank"));
  EXPECT_EQ(Message(manager_->Get("tank")), "storage 'tank' does not exist");
  EXPECT_TRUE(fs::exists(path + "/images/100/vm-100-disk-0.raw"));
  EXPECT_TRUE(held->Info(*vol));  // an operation that started before the delete finishes
  EXPECT_EQ(Message(configs_->Delete("tank")), "delete storage failed: storage 'tank' does not exist");
  Open();
  EXPECT_FALSE(manager_->Find("tank"));
}

TEST_F(StorageConfigsTest, ARecordThatDoesNotParseIsSkippedWithAWarningAndCanBeDeleted) {
  ASSERT_TRUE(store_->CreateStorage({"bad", "dir: bad\n\tpath relative/path\n"}));
  Open();
  EXPECT_FALSE(manager_->Find("bad"));
  EXPECT_TRUE(manager_->Find("local"));
  ASSERT_FALSE(warnings_.empty());
  EXPECT_NE(warnings_.back().find("storage 'bad'"), std::string::npos) << warnings_.back();
  ASSERT_TRUE(configs_->Delete("bad"));
}

}  // namespace
}  // namespace hearth

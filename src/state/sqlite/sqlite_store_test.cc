#include "state/sqlite/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "core/testing/temp_dir.h"

namespace hearth {
namespace {

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = std::move(*SqliteStore::Open(dir_.Sub("hearth.db"))); }
  TempDir dir_;
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(SqliteStoreTest, VmCreateIsUniqueAndUpdateChecksExpectedText) {
  ASSERT_TRUE(store_->CreateVm({100, "n1", "cores: 1\n"}));
  auto dup = store_->CreateVm({100, "n1", "cores: 2\n"});
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, ErrorCode::kAlreadyExists);
  EXPECT_TRUE(store_->UpdateVm({100, "n1", "cores: 2\n"}, std::string("cores: 1\n")));
  auto stale = store_->UpdateVm({100, "n1", "cores: 3\n"}, std::string("cores: 1\n"));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::kAborted);
  EXPECT_EQ(store_->ListVms()->at(0).conf, "cores: 2\n");
  ASSERT_TRUE(store_->DeleteVm(100));
  EXPECT_TRUE(store_->ListVms()->empty());
}

TEST_F(SqliteStoreTest, StoragesAreUniqueOrderedAndUpdateChecksExpectedText) {
  ASSERT_TRUE(store_->CreateStorage({"tank", "btrfs: tank\n\tpath /mnt/tank\n"}));
  ASSERT_TRUE(store_->CreateStorage({"local", "dir: local\n\tpath /var/lib/hearth\n"}));
  auto dup = store_->CreateStorage({"tank", "dir: tank\n\tpath /x\n"});
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(dup.error().message, "storage ID 'tank' already defined");
  auto list = *store_->ListStorages();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, "local");
  EXPECT_EQ(list[1].section, "btrfs: tank\n\tpath /mnt/tank\n");

  EXPECT_TRUE(store_->UpdateStorage({"tank", "btrfs: tank\n\tpath /mnt/t2\n"}, std::string("btrfs: tank\n\tpath /mnt/tank\n")));
  auto stale = store_->UpdateStorage({"tank", "x"}, std::string("btrfs: tank\n\tpath /mnt/tank\n"));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::kAborted);
  auto missing = store_->UpdateStorage({"nope", "x"}, std::nullopt);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->ListStorages()->at(1).section, "btrfs: tank\n\tpath /mnt/t2\n");

  ASSERT_TRUE(store_->DeleteStorage("tank"));
  EXPECT_EQ(store_->DeleteStorage("tank").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->ListStorages()->size(), 1u);
}

TEST(SqliteStoreMigration, AVersionOneDatabaseGainsStoragesAndKeepsItsRecords) {
  // What a data dir of the releases before storage records holds: schema 1, some VMs.
  TempDir dir;
  std::string path = dir.Sub("hearth.db");
  {
    auto store = std::move(*SqliteStore::Open(path));
    ASSERT_TRUE(store->CreateVm({100, "n1", "cores: 1\n"}));
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TABLE storages; PRAGMA user_version=1;", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);

  auto store = std::move(*SqliteStore::Open(path));
  EXPECT_EQ(store->ListVms()->at(0).conf, "cores: 1\n");
  EXPECT_TRUE(store->ListStorages()->empty());
  EXPECT_TRUE(store->CreateStorage({"local", "dir: local\n\tpath /x\n"}));
}

TEST_F(SqliteStoreTest, SurvivesReopen) {
  ASSERT_TRUE(store_->CreateVm({101, "n1", "name: a\n"}));
  ASSERT_TRUE(store_->PutUser({"alice@pve", true, true, "$y$hash"}));
  store_.reset();
  store_ = std::move(*SqliteStore::Open(dir_.Sub("hearth.db")));
  EXPECT_EQ(store_->ListVms()->size(), 1u);
  EXPECT_TRUE(store_->GetUser("alice@pve")->value().admin);
}

TEST_F(SqliteStoreTest, QuickCheckFindsADamagedFile) {
  // Found by a break-it pass: a damaged users table made every login fail as "authentication
  // failure" with nothing logged; the daemon now checks at start and says what is wrong.
  for (int i = 0; i < 200; ++i)
    ASSERT_TRUE(store_->PutUser({"user" + std::to_string(i) + "@pve", true, false, std::string(200, 'h')}));
  EXPECT_TRUE(store_->QuickCheck());
  store_.reset();  // checkpoints the WAL into the main file
  {
    std::fstream f(dir_.Sub("hearth.db"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(2 * 4096 + 8);  // into the b-tree pages after the schema
    std::string junk(1024, '\xde');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  auto reopened = SqliteStore::Open(dir_.Sub("hearth.db"));
  ASSERT_TRUE(reopened);
  auto st = (*reopened)->QuickCheck();
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("damaged"), std::string::npos) << st.error().message;
}

TEST_F(SqliteStoreTest, GroupCommitKeepsEveryAcknowledgedWriteAndOnlyThose) {
  // Many threads' durable writes share commits; a failing write (a duplicate id, a stale
  // update) must not undo the others in its batch, and every Ok must survive a reopen.
  std::mutex mu;
  std::set<int> created;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        int vmid = 1000 + t * 100 + i;
        ASSERT_TRUE(store_->CreateVm({vmid, "n1", "name: a\n"}));
        EXPECT_FALSE(store_->CreateVm({vmid, "n1", "name: dup\n"}));
        EXPECT_FALSE(store_->UpdateVm({vmid, "n1", "name: c\n"}, std::string("name: stale\n")));
        ASSERT_TRUE(store_->UpdateVm({vmid, "n1", "name: b\n"}, std::string("name: a\n")));
        std::lock_guard lock(mu);
        created.insert(vmid);
      }
    });
  for (auto& th : threads) th.join();
  store_.reset();
  store_ = std::move(*SqliteStore::Open(dir_.Sub("hearth.db")));
  auto vms = store_->ListVms();
  ASSERT_TRUE(vms);
  std::set<int> stored;
  for (const auto& vm : *vms) {
    stored.insert(vm.vmid);
    EXPECT_EQ(vm.conf, "name: b\n") << vm.vmid;
  }
  EXPECT_EQ(stored, created);
}

TEST_F(SqliteStoreTest, SequenceIsAtomicAcrossThreads) {
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<uint64_t> seen;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        uint64_t v = *store_->NextSequence("x");
        std::lock_guard l(mu);
        seen.insert(v);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(seen.size(), 400u);
  EXPECT_EQ(*seen.rbegin(), 400u);
}

TEST_F(SqliteStoreTest, TasksListNewestFirstWithFilters) {
  ASSERT_TRUE(store_->InsertTask({"U1", "n", "qmstart", "100", "root@pam", 10, 0, "", 100}));
  ASSERT_TRUE(store_->InsertTask({"U2", "n", "qmstop", "101", "root@pam", 20, 0, "", 101}));
  ASSERT_TRUE(store_->FinishTask("U1", 11, "boom"));
  auto all = store_->ListTasks({});
  ASSERT_TRUE(all);
  EXPECT_EQ(all->second, 2u);
  EXPECT_EQ(all->first[0].upid, "U2");
  TaskFilter errors;
  errors.errors_only = true;
  EXPECT_EQ(store_->ListTasks(errors)->first.at(0).upid, "U1");
  TaskFilter by_vm;
  by_vm.vmid = 101;
  EXPECT_EQ(store_->ListTasks(by_vm)->second, 1u);
  EXPECT_EQ(store_->UnfinishedTasks()->size(), 1u);
}

// PVE's check_task_user: a user sees its own and its tokens' tasks, a token only its own;
// userfilter is a plain substring ('%' and '_' are not wildcards).
TEST_F(SqliteStoreTest, TaskOwnersAndUserFilter) {
  ASSERT_TRUE(store_->InsertTask({"A", "n", "qmstart", "1", "a@pve", 1, 0, "", 0}));
  ASSERT_TRUE(store_->InsertTask({"B", "n", "qmstart", "1", "a@pve!ci", 2, 0, "", 0}));
  ASSERT_TRUE(store_->InsertTask({"C", "n", "qmstart", "1", "ba@pve", 3, 0, "", 0}));
  ASSERT_TRUE(store_->InsertTask({"D", "n", "qmstart", "1", "a@pve!other", 4, 0, "", 0}));
  ASSERT_TRUE(store_->InsertTask({"E", "n", "qmstart", "1", "x_y@pve", 5, 0, "", 0}));
  auto ids = [&](TaskFilter f) {
    std::string out;
    auto r = store_->ListTasks(f);
    if (!r) return "error: " + r.error().message;
    for (const auto& t : r->first) out += t.upid;
    return out;
  };
  TaskFilter user;
  user.owner = "a@pve";
  EXPECT_EQ(ids(user), "DBA");
  TaskFilter token;
  token.owner = "a@pve!ci";
  EXPECT_EQ(ids(token), "B");
  TaskFilter like;
  like.user = "_";
  EXPECT_EQ(ids(like), "E");
  like.user = "A@PVE";
  EXPECT_EQ(ids(like), "DCBA");
}

TEST_F(SqliteStoreTest, MetaIfAbsentKeepsFirstValue) {
  EXPECT_EQ(*store_->PutMetaIfAbsent("k", "first"), "first");
  EXPECT_EQ(*store_->PutMetaIfAbsent("k", "second"), "first");
}

TEST(SqliteStoreFullDisk, AcknowledgedWritesAreExactlyTheStoredOnes) {
  // On a full disk SQLite may roll a whole group-commit batch back (SQLITE_FULL): then no
  // write of the batch may be acknowledged. A small tmpfs makes the disk really full.
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a tmpfs";
  TempDir dir;
  std::string mnt = dir.Sub("small");
  std::filesystem::create_directory(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=2m") != 0) GTEST_SKIP() << "cannot mount tmpfs";
  struct Unmount {
    std::string at;
    ~Unmount() { ::umount2(at.c_str(), MNT_DETACH); }
  } unmount{mnt};
  auto store = SqliteStore::Open(mnt + "/hearth.db");
  ASSERT_TRUE(store);
  std::mutex mu;
  std::set<int> acked;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  const std::string big(16 * 1024, 'x');
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        int vmid = 1000 + t * 100 + i;
        if ((*store)->CreateVm({vmid, "n1", "description: " + big + "\n"})) {
          std::lock_guard lock(mu);
          acked.insert(vmid);
        } else {
          ++failures;
        }
      }
    });
  for (auto& th : threads) th.join();
  ASSERT_GT(failures.load(), 0) << "the disk never filled up";
  ASSERT_FALSE(acked.empty());
  store->reset();
  auto reopened = SqliteStore::Open(mnt + "/hearth.db");
  ASSERT_TRUE(reopened) << reopened.error().message;
  std::set<int> stored;
  auto vms = (*reopened)->ListVms();  // named: a range-for over *temporary would dangle
  ASSERT_TRUE(vms);
  for (const auto& vm : *vms) stored.insert(vm.vmid);
  EXPECT_EQ(stored, acked);
}

}  // namespace
}  // namespace hearth

// Power-cut tests for SqliteStore, in the manner of SQLite's crash tests: run a workload,
// lose power at one file operation, restore what a real disk would hold (PowerCutVfs),
// restart and check what a user would see. Repeated for every operation of the workload.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/strings.h"
#include "core/testing/temp_dir.h"
#include "state/sqlite/sqlite_store.h"
#include "state/sqlite/testing/power_cut_vfs.h"

namespace hearth {
namespace {

// Everything a user can see through the Store, one entry per record, comparable as a whole.
using State = std::map<std::string, std::string>;

// The meta keys the workloads use (the Store cannot list meta keys).
const std::vector<std::string> kMetaKeys = {"cluster-name", "registry", "node-key", "seq:vmid"};

// A write that returns a value, as a step's Status.
template <typename T>
Status Done(const Result<T>& r) {
  if (!r) return Fail(r.error());
  return Ok();
}

template <typename T>
T Value(Result<T> r, const char* what) {
  if (!r) {
    ADD_FAILURE() << what << ": " << r.error().message;
    return T{};
  }
  return std::move(*r);
}

State ReadState(SqliteStore& store) {
  State s;
  for (const auto& vm : Value(store.ListVms(), "list vms"))
    s["vm " + std::to_string(vm.vmid)] = vm.node + " " + vm.conf;
  for (const auto& u : Value(store.ListUsers(), "list users")) {
    s["user " + u.userid] = Join({std::to_string(u.enabled), std::to_string(u.admin), u.password_hash, u.email,
                                  u.firstname, u.lastname, u.comment, std::to_string(u.expire)},
                                 " ");
    for (const auto& t : Value(store.ListTokens(u.userid), "list tokens"))
      s["token " + t.tokenid] = Join({t.userid, t.secret_hash, std::to_string(t.expire), t.comment}, " ");
  }
  for (const auto& key : kMetaKeys)
    if (auto v = Value(store.GetMeta(key), "get meta")) s["meta " + key] = *v;
  TaskFilter all;
  all.limit = 1000;
  auto tasks = Value(store.ListTasks(all), "list tasks");
  for (const auto& t : tasks.first)
    s["task " + t.upid] = Join({t.node, t.type, t.id, t.user, std::to_string(t.starttime), std::to_string(t.endtime),
                                t.exitstatus, std::to_string(t.vmid)},
                               " ");
  return s;
}

std::string Describe(const State& s) {
  std::string out;
  for (const auto& [key, value] : s) out += "  " + key + " = " + value.substr(0, 60) + "\n";
  return out;
}

// What `PRAGMA integrity_check` says, through a connection of its own.
std::string IntegrityCheck(const std::string& db) {
  sqlite3* raw = nullptr;
  std::string out;
  if (sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK ||
      sqlite3_exec(
          raw, "PRAGMA integrity_check",
          [](void* out, int, char** values, char**) {
            *static_cast<std::string*>(out) += values[0] ? values[0] : "NULL";
            return 0;
          },
          &out, nullptr) != SQLITE_OK)
    out = std::string("error: ") + sqlite3_errmsg(raw);
  sqlite3_close(raw);
  return out;
}

struct Env {
  std::string db;
  std::unique_ptr<SqliteStore> store;  // null while the daemon is down or could not open it
};

enum class Kind {
  kDurable,   // the Store promises it survives a power cut once it returns Ok
  kLossy,     // may be lost in a power cut unless a later durable write returned Ok
  kNoChange,  // changes nothing a user sees (a checkpoint, a restart)
};

struct Step {
  std::string what;
  Kind kind;
  std::function<Status(Env&)> run;
};

Step Write(Kind kind, std::string what, std::function<Status(SqliteStore&)> write) {
  return {std::move(what), kind, [write](Env& env) -> Status {
            if (!env.store) return Fail(Unavailable("the store is not open"));
            return write(*env.store);
          }};
}
Step Durable(std::string what, std::function<Status(SqliteStore&)> write) {
  return Write(Kind::kDurable, std::move(what), std::move(write));
}
Step Lossy(std::string what, std::function<Status(SqliteStore&)> write) {
  return Write(Kind::kLossy, std::move(what), std::move(write));
}

// A checkpoint by another connection, as the admin verbs' or the sqlite3 shell's: it copies
// the -wal file into the database, and the next write restarts the -wal file from its start.
Step Checkpoint(int mode) {
  return {"checkpoint " + std::to_string(mode), Kind::kNoChange, [mode](Env& env) -> Status {
            sqlite3* raw = nullptr;
            int rc = sqlite3_open_v2(env.db.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr);
            if (rc == SQLITE_OK) rc = sqlite3_wal_checkpoint_v2(raw, nullptr, mode, nullptr, nullptr);
            std::string msg = sqlite3_errmsg(raw);
            sqlite3_close(raw);
            if (rc != SQLITE_OK) return Fail(Internal("checkpoint: " + msg));
            return Ok();
          }};
}

// A clean daemon restart: the last connection to close checkpoints and deletes the -wal
// file, and the next open creates a new one.
Step Restart() {
  return {"restart", Kind::kNoChange, [](Env& env) -> Status {
            env.store.reset();
            auto store = SqliteStore::Open(env.db);
            if (!store) return Fail(store.error());
            env.store = std::move(*store);
            return Ok();
          }};
}

std::string Conf(const std::string& name, int cores, size_t description = 0) {
  // A long description spreads a record over overflow pages, so one commit writes several.
  return "name: " + name + "\ncores: " + std::to_string(cores) + "\n" +
         (description ? "description: " + std::string(description, 'd') + "\n" : "");
}

std::vector<Step> DurableWorkload() {
  return {
      Durable("put user root", [](SqliteStore& s) { return s.PutUser({"root@pam", true, true, ""}); }),
      Durable("put meta cluster-name", [](SqliteStore& s) { return s.PutMeta("cluster-name", "alpha"); }),
      Durable("create vm 100", [](SqliteStore& s) { return s.CreateVm({100, "n1", Conf("web", 1)}); }),
      Durable("create vm 101", [](SqliteStore& s) { return s.CreateVm({101, "n1", Conf("db", 2, 9000)}); }),
      Durable("update vm 100",
              [](SqliteStore& s) { return s.UpdateVm({100, "n1", Conf("web", 2)}, Conf("web", 1)); }),
      Durable("put token root!ci",
              [](SqliteStore& s) { return s.PutToken({"root@pam!ci", "root@pam", "hash-ci", 0, "ci"}); }),
      Lossy("create vm 102 placeholder",
            [](SqliteStore& s) { return s.CreateVm({102, "n1", "lock: create\n"}, /*durable=*/false); }),
      Durable("complete vm 102",
              [](SqliteStore& s) { return s.UpdateVm({102, "n1", Conf("cache", 1)}, std::string("lock: create\n")); }),
      Checkpoint(SQLITE_CHECKPOINT_PASSIVE),
      Durable("put meta cluster-name again", [](SqliteStore& s) { return s.PutMeta("cluster-name", "beta"); }),
      Durable("delete vm 101", [](SqliteStore& s) { return s.DeleteVm(101); }),
      Durable("put user alice",
              [](SqliteStore& s) { return s.PutUser({"alice@pve", true, false, "$y$a", "alice@example.com"}); }),
      Durable("create vm 103", [](SqliteStore& s) { return s.CreateVm({103, "n2", Conf("big", 4, 20000)}); }),
      Durable("update vm 103",
              [](SqliteStore& s) { return s.UpdateVm({103, "n2", Conf("big", 8, 15000)}, std::nullopt); }),
      Durable("put token alice!cli",
              [](SqliteStore& s) { return s.PutToken({"alice@pve!cli", "alice@pve", "hash-cli", 99, ""}); }),
      Durable("delete token root!ci", [](SqliteStore& s) { return s.DeleteToken("root@pam!ci"); }),
      Checkpoint(SQLITE_CHECKPOINT_TRUNCATE),
      Durable("update vm 100 again",
              [](SqliteStore& s) { return s.UpdateVm({100, "n1", Conf("web", 4)}, Conf("web", 2)); }),
      Durable("create vm 104", [](SqliteStore& s) { return s.CreateVm({104, "n1", Conf("mail", 1)}); }),
      Durable("put meta registry", [](SqliteStore& s) { return s.PutMeta("registry", "r1"); }),
      Durable("reserve vmids", [](SqliteStore& s) { return Done(s.NextSequence("vmid", 10)); }),
      Durable("create node key", [](SqliteStore& s) { return Done(s.PutMetaIfAbsent("node-key", "k1")); }),
      Restart(),
      Durable("delete vm 103", [](SqliteStore& s) { return s.DeleteVm(103); }),
      Durable("disable alice",
              [](SqliteStore& s) { return s.PutUser({"alice@pve", false, false, "$y$a", "alice@example.com"}); }),
      Durable("create vm 105", [](SqliteStore& s) { return s.CreateVm({105, "n2", Conf("ci", 2, 5000)}); }),
      Checkpoint(SQLITE_CHECKPOINT_FULL),
      Durable("update vm 104",
              [](SqliteStore& s) { return s.UpdateVm({104, "n2", Conf("mail", 1)}, Conf("mail", 1)); }),
      Durable("put meta registry again", [](SqliteStore& s) { return s.PutMeta("registry", "r2"); }),
      Durable("reserve more vmids", [](SqliteStore& s) { return Done(s.NextSequence("vmid", 10)); }),
      Durable("delete vm 100", [](SqliteStore& s) { return s.DeleteVm(100); }),
      Durable("create vm 106", [](SqliteStore& s) { return s.CreateVm({106, "n1", Conf("dns", 1)}); }),
      Durable("put user bob", [](SqliteStore& s) { return s.PutUser({"bob@pve", true, false, "$y$b"}); }),
      Durable("update vm 106",
              [](SqliteStore& s) { return s.UpdateVm({106, "n1", Conf("dns", 2)}, Conf("dns", 1)); }),
  };
}

Status StartTask(SqliteStore& s, const std::string& upid, int64_t start) {
  return s.InsertTask({upid, "n1", "qmstart", "100", "root@pam", start, 0, "", 100});
}

// Task records between durable writes, checkpoints and a restart; it ends with task writes
// that nothing makes durable.
std::vector<Step> TaskWorkload() {
  auto finish = [](SqliteStore& s, const char* upid, int64_t end, const char* status) {
    return s.FinishTask(upid, end, status);
  };
  return {
      Durable("put user root", [](SqliteStore& s) { return s.PutUser({"root@pam", true, true, ""}); }),
      Lossy("start U1", [](SqliteStore& s) { return StartTask(s, "U1", 10); }),
      Lossy("start U2", [](SqliteStore& s) { return StartTask(s, "U2", 20); }),
      Lossy("finish U1", [=](SqliteStore& s) { return finish(s, "U1", 11, "OK"); }),
      Durable("create vm 100", [](SqliteStore& s) { return s.CreateVm({100, "n1", Conf("web", 1)}); }),
      Lossy("finish U2", [=](SqliteStore& s) { return finish(s, "U2", 21, "boom"); }),
      Lossy("start U3", [](SqliteStore& s) { return StartTask(s, "U3", 30); }),
      Lossy("start U4", [](SqliteStore& s) { return StartTask(s, "U4", 40); }),
      Lossy("finish U3", [=](SqliteStore& s) { return finish(s, "U3", 31, "OK"); }),
      Checkpoint(SQLITE_CHECKPOINT_PASSIVE),
      Lossy("start U5", [](SqliteStore& s) { return StartTask(s, "U5", 50); }),
      Lossy("finish U4", [=](SqliteStore& s) { return finish(s, "U4", 41, "OK"); }),
      Lossy("prune", [](SqliteStore& s) { return Done(s.PruneTasks(35, 2)); }),
      Durable("put meta cluster-name", [](SqliteStore& s) { return s.PutMeta("cluster-name", "alpha"); }),
      Lossy("start U6", [](SqliteStore& s) { return StartTask(s, "U6", 60); }),
      Restart(),
      Lossy("finish U5", [=](SqliteStore& s) { return finish(s, "U5", 51, "OK"); }),
      Lossy("start U7", [](SqliteStore& s) { return StartTask(s, "U7", 70); }),
      Checkpoint(SQLITE_CHECKPOINT_TRUNCATE),
      Lossy("finish U6", [=](SqliteStore& s) { return finish(s, "U6", 61, "stopped"); }),
      Lossy("start U8", [](SqliteStore& s) { return StartTask(s, "U8", 80); }),
      Lossy("finish U7", [=](SqliteStore& s) { return finish(s, "U7", 71, "OK"); }),
  };
}

class PowerCutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vfs_ = &PowerCutVfs::Install();
    vfs_->Reset();
  }
  void TearDown() override { PowerCutVfs::Uninstall(); }

  std::string FreshDb(const std::string& name) {
    std::filesystem::create_directory(dir_.Sub(name));
    return dir_.Sub(name) + "/hearth.db";
  }

  // Runs `steps` once without a cut to learn the states after each prefix and the number of
  // file operations, then once per cut point, checking each recovery.
  void CutEverywhere(const std::vector<Step>& steps) {
    auto start = std::chrono::steady_clock::now();
    std::vector<State> prefix;  // prefix[k]: the state after the first k steps
    uint64_t total = 0;
    {
      vfs_->Reset();
      Env env{FreshDb("reference")};
      auto store = SqliteStore::Open(env.db);
      ASSERT_TRUE(store) << store.error().message;
      env.store = std::move(*store);
      prefix.push_back(ReadState(*env.store));
      for (const auto& step : steps) {
        ASSERT_TRUE(step.run(env)) << step.what;
        prefix.push_back(ReadState(*env.store));
        // Distinct states make "which prefix is this" exact.
        if (step.kind != Kind::kNoChange) {
          ASSERT_NE(prefix.back(), prefix[prefix.size() - 2]) << step.what;
        }
      }
      env.store.reset();
      total = vfs_->ops();  // including the closing checkpoint and the -wal file's deletion
      ASSERT_GT(total, steps.size()) << "the store's files do not go through the VFS";
    }
    for (uint64_t cut = 0; cut <= total && !HasFailure(); ++cut) {
      SCOPED_TRACE("power cut at file operation " + std::to_string(cut) + " of " + std::to_string(total));
      vfs_->Reset();
      vfs_->ArmCutAt(cut);
      Env env{FreshDb("cut" + std::to_string(cut))};
      std::vector<bool> ok;  // returned Ok, having started while the power was on
      size_t powered = 0;    // steps started while the power was on
      if (auto store = SqliteStore::Open(env.db)) env.store = std::move(*store);
      for (const auto& step : steps) {
        // The daemon goes on after the cut, as it would until the machine dies, to exercise
        // the error paths; those later steps are not Ok "before the cut", but one that needed
        // no write (deleting what does not exist) may rightly return Ok.
        bool power_on = !vfs_->cut();
        powered += power_on;
        uint64_t before = vfs_->ops();
        bool step_ok = static_cast<bool>(step.run(env));
        if (!power_on && step_ok && step.kind != Kind::kNoChange) {
          EXPECT_EQ(vfs_->ops(), before) << step.what << " returned Ok although the disk refused its writes";
        }
        ok.push_back(power_on && step_ok);
      }
      env.store.reset();
      // The workload is single-threaded, so every run performs the same operations.
      EXPECT_EQ(vfs_->cut(), cut < total);
      vfs_->PowerCut();
      CheckRecovery(steps, prefix, ok, powered, env.db);
      std::filesystem::remove_all(dir_.Sub("cut" + std::to_string(cut)));
      ++cut_points_;
    }
    std::printf("[ power cut ] %llu cut points, %d lost acknowledged lossy writes, %.1f s\n",
                static_cast<unsigned long long>(cut_points_), lost_lossy_,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }

  // After the power comes back: the daemon opens the file, which must be sound, hold every
  // durable write that returned Ok, and equal the state after some prefix of the workload.
  void CheckRecovery(const std::vector<Step>& steps, const std::vector<State>& prefix, const std::vector<bool>& ok,
                     size_t powered, const std::string& db) {
    size_t durable_end = 0;  // every durable step that returned Ok is before it
    for (size_t i = 0; i < ok.size(); ++i)
      if (ok[i] && steps[i].kind == Kind::kDurable) durable_end = i + 1;
    // Steps before `first_failed` returned Ok. That one failed, and its outcome is unknown to
    // the caller: it may or may not be there, if it ran with the power on.
    size_t first_failed = std::find(ok.begin(), ok.end(), false) - ok.begin();
    size_t latest = std::min(first_failed + 1, powered);
    auto store = SqliteStore::Open(db);
    ASSERT_TRUE(store) << "the daemon cannot open its database: " << store.error().message;
    State state = ReadState(**store);
    EXPECT_EQ(IntegrityCheck(db), "ok");
    // The latest allowed prefix that matches (equal states are those around kNoChange steps).
    std::optional<size_t> match;
    for (size_t k = durable_end; k <= latest; ++k)
      if (prefix[k] == state) match = k;
    if (!match) {
      ADD_FAILURE() << "the recovered state is not the one after any of steps " << durable_end << ".." << latest
                    << " (first failed step: " << (first_failed < steps.size() ? steps[first_failed].what : "none")
                    << ")\nrecovered:\n"
                    << Describe(state) << "expected at least:\n"
                    << Describe(prefix[durable_end]);
    } else if (*match < first_failed) {
      ++lost_lossy_;
    }
    // The daemon goes on after a power cut: it can write again.
    EXPECT_TRUE((*store)->PutMeta("cluster-name", "after the cut"));
  }

  PowerCutVfs* vfs_ = nullptr;
  TempDir dir_;
  uint64_t cut_points_ = 0;
  int lost_lossy_ = 0;  // cut points where writes that returned Ok without a promise were lost
};

TEST_F(PowerCutTest, DurableWritesSurviveAPowerCutAtEveryFileOperation) {
  CutEverywhere(DurableWorkload());
}

TEST_F(PowerCutTest, TaskRecordsMayBeLostButNeverCorruptTheFile) {
  CutEverywhere(TaskWorkload());
  // Task writes are not synced, so some cut points must lose acknowledged ones: otherwise
  // the VFS would not be losing unsynced data and the durable test would prove nothing.
  EXPECT_GT(lost_lossy_, 0);
}

TEST_F(PowerCutTest, ConcurrentDurableWritesSurviveAPowerCut) {
  // Threads' durable writes share group commits; a cut may fail a whole batch. Every write
  // that returned Ok must survive, and no record may be half-written.
  constexpr int kThreads = 4, kPerThread = 8;
  auto run = [&](const std::string& db, std::set<int>* created, std::set<int>* updated) {
    auto store = SqliteStore::Open(db);
    if (!store) return;
    std::mutex mu;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          int vmid = 1000 + t * 100 + i;
          if (!(*store)->CreateVm({vmid, "n1", Conf("a", 1, 3000)})) return;
          {
            std::lock_guard lock(mu);
            created->insert(vmid);
          }
          if (!(*store)->UpdateVm({vmid, "n1", Conf("b", 2, 3000)}, Conf("a", 1, 3000))) return;
          std::lock_guard lock(mu);
          updated->insert(vmid);
        }
      });
    for (auto& th : threads) th.join();
  };
  std::set<int> created, updated;
  vfs_->Reset();
  run(FreshDb("reference"), &created, &updated);
  ASSERT_EQ(updated.size(), static_cast<size_t>(kThreads * kPerThread));
  uint64_t total = vfs_->ops();  // varies with the batching, so the cuts are a spread
  for (uint64_t cut = 0; cut < total && !HasFailure(); cut += std::max<uint64_t>(1, total / 100)) {
    SCOPED_TRACE("power cut at file operation " + std::to_string(cut) + " of about " + std::to_string(total));
    std::string db = FreshDb("concurrent" + std::to_string(cut));
    vfs_->Reset();
    vfs_->ArmCutAt(cut);
    created.clear();
    updated.clear();
    run(db, &created, &updated);
    vfs_->PowerCut();
    auto store = SqliteStore::Open(db);
    ASSERT_TRUE(store) << store.error().message;
    EXPECT_EQ(IntegrityCheck(db), "ok");
    std::set<int> stored;
    for (const auto& vm : Value((*store)->ListVms(), "list vms")) {
      stored.insert(vm.vmid);
      if (updated.count(vm.vmid)) {
        EXPECT_EQ(vm.conf, Conf("b", 2, 3000)) << vm.vmid;
      } else {
        EXPECT_TRUE(vm.conf == Conf("a", 1, 3000) || vm.conf == Conf("b", 2, 3000)) << vm.vmid;
      }
    }
    for (int vmid : created) EXPECT_TRUE(stored.count(vmid)) << "acknowledged VM " << vmid << " was lost";
  }
}

}  // namespace
}  // namespace hearth

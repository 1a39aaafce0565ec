#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "state/store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace hearth {

// SQLite in WAL mode with two connections, each guarded by its own mutex: one for writes
// (short transactions; the daemon keeps hot data in memory, so contention stays low) and
// one for reads, which see the last commit and never wait behind a write's fsync. Schema changes are numbered
// migrations applied at open. Other processes (the local admin verbs) may open the same file.
//
// Durability: writes of what must survive a power cut (VMs, users, tokens, meta) return only
// once the write-ahead log is fsynced. Concurrent ones share that fsync (group commit): the
// first to arrive runs every queued write in one transaction, each in its own savepoint.
// Task records are written without waiting for the disk (like PVE's task logs); a crash may
// lose the newest ones, never corrupt the file.
class SqliteStore final : public Store {
 public:
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& path);
  // PRAGMA quick_check: an error naming SQLite's first complaint if the file is damaged (a
  // disk error, a copy taken mid-write). Milliseconds for a homelab's database; the daemon
  // runs it at start, so damage is reported there rather than as failed logins later.
  Status QuickCheck();
  ~SqliteStore() override;

  Result<std::vector<VmRecord>> ListVms() override;
  Status CreateVm(const VmRecord& vm, bool durable = true) override;
  Status UpdateVm(const VmRecord& vm, const std::optional<std::string>& expected_conf) override;
  Status DeleteVm(int vmid) override;

  Result<std::vector<StorageRecord>> ListStorages() override;
  Status CreateStorage(const StorageRecord& storage) override;
  Status UpdateStorage(const StorageRecord& storage, const std::optional<std::string>& expected_section) override;
  Status DeleteStorage(const std::string& id) override;

  Result<std::optional<UserRecord>> GetUser(const std::string& userid) override;
  Result<std::vector<UserRecord>> ListUsers() override;
  Status PutUser(const UserRecord& user) override;
  Result<std::optional<TokenRecord>> GetToken(const std::string& tokenid) override;
  Result<std::vector<TokenRecord>> ListTokens(const std::string& userid) override;
  Status PutToken(const TokenRecord& token) override;
  Status DeleteToken(const std::string& tokenid) override;

  Status InsertTask(const TaskRecord& task) override;
  Status FinishTask(const std::string& upid, int64_t endtime, const std::string& exitstatus) override;
  Result<std::optional<TaskRecord>> GetTask(const std::string& upid) override;
  Result<std::pair<std::vector<TaskRecord>, size_t>> ListTasks(const TaskFilter& filter) override;
  Result<std::vector<TaskRecord>> UnfinishedTasks() override;
  Result<std::vector<std::string>> PruneTasks(int64_t before, size_t keep) override;

  Result<std::optional<std::string>> GetMeta(const std::string& key) override;
  Status PutMeta(const std::string& key, const std::string& value) override;
  Result<std::string> PutMetaIfAbsent(const std::string& key, const std::string& value) override;
  Result<uint64_t> NextSequence(const std::string& name, uint64_t count = 1) override;

 private:
  SqliteStore() = default;
  Status Migrate();
  struct Waiter {
    const std::function<Status()>* write;
    Status result = Ok();
    bool done = false;
  };
  // Runs `write` (which uses w_; w_.mu is held) in a durable, possibly shared, commit.
  Status Durable(const std::function<Status()>& write);
  void CommitBatch(const std::vector<Waiter*>& batch);
  struct Conn {
    std::mutex mu;
    sqlite3* db = nullptr;                                 // GUARDED_BY(mu)
    std::unordered_map<std::string, sqlite3_stmt*> stmts;  // GUARDED_BY(mu): SQL text -> prepared statement
  };
  class Stmt;
  Conn w_;  // writes, and reads that belong to a write (PutMetaIfAbsent, NextSequence)
  Conn r_;  // reads only (query_only)
  std::mutex group_mu_;
  std::condition_variable group_cv_;
  std::vector<Waiter*> queue_;  // GUARDED_BY(group_mu_)
  bool leader_active_ = false;  // GUARDED_BY(group_mu_)
};

}  // namespace hearth

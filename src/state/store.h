// Store: everything hearth must remember, behind one interface so that a cluster can swap
// the single-node SQLite implementation for etcd. Every mutating call is one transaction:
// it happens whole or not at all. Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace hearth {

struct VmRecord {
  int vmid = 0;
  std::string node;
  std::string conf;  // the config file text (model/vm_config.h)
};

// One configured storage: its id and its section in Proxmox's storage.cfg format
// (model/storage_config.h PrintStorageSection), so an export is a valid storage.cfg.
struct StorageRecord {
  std::string id;       // "local", "tank"
  std::string section;  // "dir: local\n\tpath /var/lib/hearth\n..."
};

struct UserRecord {
  std::string userid;  // "alice@pve"
  bool enabled = true;
  bool admin = false;
  std::string password_hash;  // crypt(3) string; empty for pam users
  std::string email, firstname, lastname, comment;
  int64_t expire = 0;
};

struct TokenRecord {
  std::string tokenid;  // "alice@pve!ci"
  std::string userid;
  std::string secret_hash;  // SHA-256 hex of the secret
  int64_t expire = 0;
  std::string comment;
};

struct TaskRecord {
  std::string upid;
  std::string node;
  std::string type, id, user;
  int64_t starttime = 0;
  int64_t endtime = 0;     // 0 while running
  std::string exitstatus;  // empty while running
  int vmid = 0;            // 0 if not about a VM
};

struct TaskFilter {
  int vmid = 0;
  std::string type;
  std::string user;  // userfilter: case-insensitive substring of the task's user (PVE)
  // Visibility: non-empty limits the list to this user's tasks and its tokens' tasks, or,
  // for a token ("user@realm!name"), to that token's tasks alone.
  std::string owner;
  bool errors_only = false;
  bool running_only = false;
  int64_t since = 0, until = 0;
  size_t start = 0, limit = 50;
};

class Store {
 public:
  virtual ~Store() = default;

  virtual Result<std::vector<VmRecord>> ListVms() = 0;
  // Fails with kAlreadyExists if the vmid is taken (on any node). Durable when it returns,
  // unless `durable` is false: then the record may be lost in a power cut (a placeholder
  // that a later durable write completes, such as a create's `lock: create`), but it is
  // never half-written and a later durable write makes it durable too.
  virtual Status CreateVm(const VmRecord& vm, bool durable = true) = 0;
  // Replaces the config; with `expected_conf`, only if the stored text still equals it
  // (kAborted otherwise) — the optimistic check behind `digest`.
  virtual Status UpdateVm(const VmRecord& vm, const std::optional<std::string>& expected_conf) = 0;
  virtual Status DeleteVm(int vmid) = 0;

  // Storages, in id order. Create fails with kAlreadyExists; Update with kNotFound, or with
  // kAborted when `expected_section` is given and the stored text differs (the `digest`
  // check); Delete with kNotFound. All durable when they return.
  virtual Result<std::vector<StorageRecord>> ListStorages() = 0;
  virtual Status CreateStorage(const StorageRecord& storage) = 0;
  virtual Status UpdateStorage(const StorageRecord& storage, const std::optional<std::string>& expected_section) = 0;
  virtual Status DeleteStorage(const std::string& id) = 0;

  virtual Result<std::optional<UserRecord>> GetUser(const std::string& userid) = 0;
  virtual Result<std::vector<UserRecord>> ListUsers() = 0;
  virtual Status PutUser(const UserRecord& user) = 0;
  virtual Result<std::optional<TokenRecord>> GetToken(const std::string& tokenid) = 0;
  virtual Result<std::vector<TokenRecord>> ListTokens(const std::string& userid) = 0;
  virtual Status PutToken(const TokenRecord& token) = 0;
  virtual Status DeleteToken(const std::string& tokenid) = 0;

  virtual Status InsertTask(const TaskRecord& task) = 0;
  virtual Status FinishTask(const std::string& upid, int64_t endtime, const std::string& exitstatus) = 0;
  virtual Result<std::optional<TaskRecord>> GetTask(const std::string& upid) = 0;
  // Newest first. Returns the page and the total number of matches.
  virtual Result<std::pair<std::vector<TaskRecord>, size_t>> ListTasks(const TaskFilter& filter) = 0;
  virtual Result<std::vector<TaskRecord>> UnfinishedTasks() = 0;
  // Deletes finished tasks that started before `before` and are not among the newest
  // `keep` tasks; returns their UPIDs (so their logs can go too).
  virtual Result<std::vector<std::string>> PruneTasks(int64_t before, size_t keep) = 0;

  // Small named values: keys, settings.
  virtual Result<std::optional<std::string>> GetMeta(const std::string& key) = 0;
  virtual Status PutMeta(const std::string& key, const std::string& value) = 0;
  // Sets the value only if the key is absent; returns the value now stored.
  virtual Result<std::string> PutMetaIfAbsent(const std::string& key, const std::string& value) = 0;
  // Atomically advances a named counter (starts at 1) by `count` and returns the first of
  // the `count` numbers reserved for the caller.
  virtual Result<uint64_t> NextSequence(const std::string& name, uint64_t count = 1) = 0;
};

}  // namespace hearth

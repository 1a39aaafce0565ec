#include "state/sqlite/sqlite_store.h"

#include <sqlite3.h>

#include <initializer_list>
#include <vector>

#include "core/strings.h"

namespace hearth {
namespace {

// Numbered migrations: index i upgrades user_version i -> i+1. Never edit a released one.
const std::vector<const char*> kMigrations = {
    R"sql(
    CREATE TABLE vms (vmid INTEGER PRIMARY KEY, node TEXT NOT NULL, conf TEXT NOT NULL);
    CREATE TABLE users (userid TEXT PRIMARY KEY, enabled INTEGER NOT NULL, admin INTEGER NOT NULL,
                        password_hash TEXT NOT NULL, email TEXT NOT NULL DEFAULT '',
                        firstname TEXT NOT NULL DEFAULT '', lastname TEXT NOT NULL DEFAULT '',
                        comment TEXT NOT NULL DEFAULT '', expire INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE tokens (tokenid TEXT PRIMARY KEY, userid TEXT NOT NULL, secret_hash TEXT NOT NULL,
                         expire INTEGER NOT NULL DEFAULT 0, comment TEXT NOT NULL DEFAULT '');
    CREATE TABLE tasks (upid TEXT PRIMARY KEY, node TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL,
                        user TEXT NOT NULL, starttime INTEGER NOT NULL, endtime INTEGER NOT NULL DEFAULT 0,
                        exitstatus TEXT NOT NULL DEFAULT '', vmid INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX tasks_by_time ON tasks (starttime DESC);
    CREATE INDEX tasks_by_vmid ON tasks (vmid, starttime DESC);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    )sql",
    R"sql(
    CREATE TABLE storages (id TEXT PRIMARY KEY, section TEXT NOT NULL);
    )sql",
};

Error SqlError(sqlite3* db, const std::string& what) {
  return Internal("sqlite: " + what + ": " + sqlite3_errmsg(db));
}

}  // namespace

// A prepared statement with typed binders, taken from the store's cache (compiling SQL
// costs more than running these small statements) and reset for the next use when done.
// Used only while that connection's mutex is held.
class SqliteStore::Stmt {
 public:
  Stmt(Conn& conn, const char* sql) : db_(conn.db) {
    auto it = conn.stmts.find(sql);
    if (it != conn.stmts.end()) {
      st_ = it->second;
      rc_ = SQLITE_OK;
      return;
    }
    rc_ = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st_, nullptr);
    if (rc_ == SQLITE_OK) conn.stmts.emplace(sql, st_);
  }
  ~Stmt() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  int Step() { return sqlite3_step(st_); }
  std::string Text(int col) {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(st_, col));
    return p ? std::string(p, sqlite3_column_bytes(st_, col)) : std::string();
  }
  int64_t Int(int col) { return sqlite3_column_int64(st_, col); }

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
  int rc_;
};

namespace {

// One connection with the daemon's settings; `pragmas` run after opening.
Result<sqlite3*> OpenConnection(const std::string& path, int flags, std::initializer_list<const char*> pragmas) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Fail(Unavailable("cannot open database '" + path + "': " + msg));
  }
  sqlite3_busy_timeout(db, 10000);  // other processes (admin verbs) may hold the write lock briefly
  for (const char* pragma : pragmas) {
    if (sqlite3_exec(db, pragma, nullptr, nullptr, nullptr) != SQLITE_OK) {
      auto e = SqlError(db, pragma);
      sqlite3_close(db);
      return Fail(e);
    }
  }
  return db;
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path) {
  std::unique_ptr<SqliteStore> store(new SqliteStore());
  HEARTH_ASSIGN_OR_RETURN(store->w_.db,
                          OpenConnection(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                         {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON"}));
  HEARTH_TRY(store->Migrate());
  // Reads get their own connection: in WAL mode they see the last commit and never wait for
  // a write's fsync, so the I/O threads' reads (tasks, users, tokens) do not stall behind it.
  HEARTH_ASSIGN_OR_RETURN(store->r_.db, OpenConnection(path, SQLITE_OPEN_READWRITE, {"PRAGMA query_only=1"}));
  return store;
}

Status SqliteStore::QuickCheck() {
  std::lock_guard lock(r_.mu);
  Stmt s(r_, "PRAGMA quick_check(1)");
  int rc = s.Step();
  if (rc != SQLITE_ROW) return Fail(Internal(std::string("the database is damaged: ") + sqlite3_errmsg(r_.db)));
  std::string verdict = s.Text(0);
  if (verdict != "ok") return Fail(Internal("the database is damaged: " + verdict));
  return Ok();
}

SqliteStore::~SqliteStore() {
  for (Conn* c : {&w_, &r_}) {
    for (auto& [sql, st] : c->stmts) sqlite3_finalize(st);
    sqlite3_close(c->db);
  }
}

Status SqliteStore::Durable(const std::function<Status()>& write) {
  Waiter me{&write};
  std::unique_lock lock(group_mu_);
  queue_.push_back(&me);
  while (!me.done) {
    if (leader_active_) {
      group_cv_.wait(lock);
      continue;
    }
    // Lead: everything queued so far goes into one transaction and one fsync.
    leader_active_ = true;
    std::vector<Waiter*> batch;
    batch.swap(queue_);
    lock.unlock();
    CommitBatch(batch);
    lock.lock();
    for (Waiter* w : batch) w->done = true;
    leader_active_ = false;
    group_cv_.notify_all();
  }
  return me.result;
}

void SqliteStore::CommitBatch(const std::vector<Waiter*>& batch) {
  std::lock_guard lock(w_.mu);
  auto exec = [&](const char* sql) { return sqlite3_exec(w_.db, sql, nullptr, nullptr, nullptr) == SQLITE_OK; };
  // FULL: the commit fsyncs the write-ahead log before it returns (NORMAL, used for task
  // records, only syncs at checkpoints).
  exec("PRAGMA synchronous=FULL");
  if (!exec("BEGIN IMMEDIATE")) {
    Error e = SqlError(w_.db, "begin");
    for (Waiter* w : batch) w->result = Fail(e);
    exec("PRAGMA synchronous=NORMAL");
    return;
  }
  for (Waiter* w : batch) {
    // Each write in its own savepoint: one failing write does not undo the others.
    if (!exec("SAVEPOINT w")) {
      w->result = Fail(SqlError(w_.db, "savepoint"));
    } else {
      w->result = (*w->write)();
      if (!w->result) exec("ROLLBACK TO w");
      exec("RELEASE w");
    }
    if (sqlite3_get_autocommit(w_.db)) {
      // SQLite rolled the whole transaction back (SQLITE_FULL, IOERR, NOMEM): every write of
      // the batch is lost, including those that said Ok, and none may run outside it.
      Error e = w->result ? SqlError(w_.db, "write") : w->result.error();
      for (Waiter* all : batch) all->result = Fail(e);
      exec("PRAGMA synchronous=NORMAL");
      return;
    }
  }
  if (!exec("COMMIT")) {
    Error e = SqlError(w_.db, "commit");
    exec("ROLLBACK");
    for (Waiter* w : batch)
      if (w->result) w->result = Fail(e);
  }
  exec("PRAGMA synchronous=NORMAL");
}

Status SqliteStore::Migrate() {
  std::lock_guard lock(w_.mu);
  if (sqlite3_exec(w_.db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) return Fail(SqlError(w_.db, "begin"));
  int64_t version = 0;
  {
    Stmt v(w_, "PRAGMA user_version");
    v.Step();
    version = v.Int(0);
  }
  if (version == static_cast<int64_t>(kMigrations.size())) {
    // Up to date: write nothing, so that a daemon on a full disk still starts.
    sqlite3_exec(w_.db, "ROLLBACK", nullptr, nullptr, nullptr);
    return Ok();
  }
  for (size_t i = version; i < kMigrations.size(); ++i) {
    if (sqlite3_exec(w_.db, kMigrations[i], nullptr, nullptr, nullptr) != SQLITE_OK) {
      auto e = SqlError(w_.db, "migration " + std::to_string(i + 1));
      sqlite3_exec(w_.db, "ROLLBACK", nullptr, nullptr, nullptr);
      return Fail(e);
    }
  }
  std::string set = "PRAGMA user_version=" + std::to_string(kMigrations.size());
  sqlite3_exec(w_.db, set.c_str(), nullptr, nullptr, nullptr);
  if (sqlite3_exec(w_.db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return Fail(SqlError(w_.db, "commit"));
  return Ok();
}

Result<std::vector<VmRecord>> SqliteStore::ListVms() {
  std::lock_guard lock(r_.mu);
  Stmt s(r_, "SELECT vmid, node, conf FROM vms ORDER BY vmid");
  std::vector<VmRecord> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back({static_cast<int>(s.Int(0)), s.Text(1), s.Text(2)});
  if (rc != SQLITE_DONE) return Fail(SqlError(r_.db, "list vms"));
  return out;
}

Status SqliteStore::CreateVm(const VmRecord& vm, bool durable) {
  auto insert = [&]() -> Status {
    Stmt s(w_, "INSERT INTO vms (vmid, node, conf) VALUES (?, ?, ?)");
    int rc = s.Bind(1, int64_t{vm.vmid}).Bind(2, vm.node).Bind(3, vm.conf).Step();
    if (rc == SQLITE_CONSTRAINT) return Fail(AlreadyExists("VM " + std::to_string(vm.vmid) + " already exists"));
    if (rc != SQLITE_DONE) return Fail(SqlError(w_.db, "create vm"));
    return Ok();
  };
  if (durable) return Durable(insert);
  std::lock_guard lock(w_.mu);
  return insert();
}

Status SqliteStore::UpdateVm(const VmRecord& vm, const std::optional<std::string>& expected) {
  return Durable([&]() -> Status {
    Stmt s(w_, expected ? "UPDATE vms SET node = ?, conf = ? WHERE vmid = ? AND conf = ?"
                         : "UPDATE vms SET node = ?, conf = ? WHERE vmid = ?");
    s.Bind(1, vm.node).Bind(2, vm.conf).Bind(3, int64_t{vm.vmid});
    if (expected) s.Bind(4, *expected);
    if (s.Step() != SQLITE_DONE) return Fail(SqlError(w_.db, "update vm"));
    if (sqlite3_changes(w_.db) == 0) {
      if (expected) return Fail(Aborted("VM " + std::to_string(vm.vmid) + " was changed concurrently"));
      return Fail(NotFound("VM " + std::to_string(vm.vmid) + " does not exist"));
    }
    return Ok();
  });
}

Status SqliteStore::DeleteVm(int vmid) {
  return Durable([&]() -> Status {
    Stmt s(w_, "DELETE FROM vms WHERE vmid = ?");
    if (s.Bind(1, int64_t{vmid}).Step() != SQLITE_DONE) return Fail(SqlError(w_.db, "delete vm"));
    return Ok();
  });
}

Result<std::vector<StorageRecord>> SqliteStore::ListStorages() {
  std::lock_guard lock(r_.mu);
  Stmt s(r_, "SELECT id, section FROM storages ORDER BY id");
  std::vector<StorageRecord> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back({s.Text(0), s.Text(1)});
  if (rc != SQLITE_DONE) return Fail(SqlError(r_.db, "list storages"));
  return out;
}

Status SqliteStore::CreateStorage(const StorageRecord& st) {
  return Durable([&]() -> Status {
    Stmt s(w_, "INSERT INTO storages (id, section) VALUES (?, ?)");
    int rc = s.Bind(1, st.id).Bind(2, st.section).Step();
    if (rc == SQLITE_CONSTRAINT) return Fail(AlreadyExists("storage ID '" + st.id + "' already defined"));
    if (rc != SQLITE_DONE) return Fail(SqlError(w_.db, "create storage"));
    return Ok();
  });
}

Status SqliteStore::UpdateStorage(const StorageRecord& st, const std::optional<std::string>& expected) {
  return Durable([&]() -> Status {
    Stmt s(w_, expected ? "UPDATE storages SET section = ? WHERE id = ? AND section = ?"
                         : "UPDATE storages SET section = ? WHERE id = ?");
    s.Bind(1, st.section).Bind(2, st.id);
    if (expected) s.Bind(3, *expected);
    if (s.Step() != SQLITE_DONE) return Fail(SqlError(w_.db, "update storage"));
    if (sqlite3_changes(w_.db) > 0) return Ok();
    Stmt e(w_, "SELECT 1 FROM storages WHERE id = ?");
    if (e.Bind(1, st.id).Step() == SQLITE_ROW)
      return Fail(Aborted("storage '" + st.id + "' was changed concurrently"));
    return Fail(NotFound("storage '" + st.id + "' does not exist"));
  });
}

Status SqliteStore::DeleteStorage(const std::string& id) {
  return Durable([&]() -> Status {
    Stmt s(w_, "DELETE FROM storages WHERE id = ?");
    if (s.Bind(1, id).Step() != SQLITE_DONE) return Fail(SqlError(w_.db, "delete storage"));
    if (sqlite3_changes(w_.db) == 0) return Fail(NotFound("storage '" + id + "' does not exist"));
    return Ok();
  });
}

static UserRecord ReadUser(auto& s) {
  UserRecord u;
  u.userid = s.Text(0);
  u.enabled = s.Int(1) != 0;
  u.admin = s.Int(2) != 0;
  u.password_hash = s.Text(3);
  u.email = s.Text(4);
  u.firstname = s.Text(5);
  u.lastname = s.Text(6);
  u.comment = s.Text(7);
  u.expire = s.Int(8);
  return u;
}

#define USER_COLUMNS "userid, enabled, admin, password_hash, email, firstname, lastname, comment, expire"

Result<std::optional<UserRecord>> SqliteStore::GetUser(const std::string& userid) {
  std::lock_guard lock(r_.mu);
  Stmt s(r_, "SELECT " USER_COLUMNS " FROM users WHERE userid = ?");
  int rc = s.Bind(1, userid).Step();
  if (rc == SQLITE_ROW) return std::optional<UserRecord>(ReadUser(s));
  if (rc != SQLITE_DONE) return Fail(SqlError(r_.db, "get user"));
  return std::optional<UserRecord>();
}

Result<std::vector<UserRecord>> SqliteStore::ListUsers() {
  std::lock_guard lock(r_.mu);
  Stmt s(r_, "SELECT " USER_COLUMNS " FROM users ORDER BY userid");
  std::vector<UserRecord> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadUser(s));
  if (rc != SQLITE_DONE) return Fail(SqlError(r_.db, "list users"));
  return out;
}

Status SqliteStore::PutUser(const UserRecord& u) {
  return Durable([&]() -> Status {
    Stmt s(w_, "INSERT OR REPLACE INTO users (" USER_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    s.Bind(1, u.userid).Bind(2, int64_t{u.enabled}).Bind(3, int64_t{u.admin}).Bind(4, u.password_hash);
    s.Bind(5, u.email).Bind(6, u.firstname).Bind(7, u.lastname).Bind(8, u.comment).Bind(9, u.expire);
    if (s.Step() != SQLITE_DONE) return Fail(SqlError(w_.db, "put user"));
    return Ok();
  });
}

Result<std::optional<TokenRecord>> SqliteStore::GetToken(const std::string& tokenid) {
  std::lock_guard lock(r_.mu);
  Stmt s(r_, "SELECT tokenid, userid, secret_hash, expire, comment FROM tokens WHERE tokenid = ?");
  int rc = s.Bind(1, tokenid).Step();
  if (rc == SQLITE_ROW) return std::optional<TokenRecord>(TokenRecord{s.Text(0), s.Text(1), s.Text(2), s.Int(3), s.Text(4)});
  if (rc != SQLITE_DONE) return Fail(SqlError(r_.db, "get token"));
  return std::optional<TokenRecord>();
}

Result<std::vector<TokenRecord>> SqliteStore::ListTokens(const std::string& userid) {
  std::lock_guard lock(r_.mu);
  Stmt s(r_, "SELECT tokenid, userid, secret_hash, expire, comment FROM tokens WHERE userid = ? ORDER BY tokenid");
  std::vector<TokenRecord> out;
  s.Bind(1, userid);
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back({s.Text(0), s.Text(1), s.Text(2), s.Int(3), s.Text(4)});
  if (rc != SQLITE_DONE) return Fail(SqlError(r_.db, "list tokens"));
  return out;
}

Status SqliteStore::PutToken(const TokenRecord& t) {
  return Durable([&]() -> Status {
    Stmt s(w_, "INSERT OR REPLACE INTO tokens (tokenid, userid, secret_hash, expire, comment) VALUES (?, ?, ?, ?, ?)");
    if (s.Bind(1, t.tokenid).Bind(2, t.userid).Bind(3, t.secret_hash).Bind(4, t.expire).Bind(5, t.comment).Step() !=
        SQLITE_DONE)
      return Fail(SqlError(w_.db, "put token"));
    return Ok();
  });
}

Status SqliteStore::DeleteToken(const std::string& tokenid) {
  return Durable([&]() -> Status {
    Stmt s(w_, "DELETE FROM tokens WHERE tokenid = ?");
    if (s.Bind(1, tokenid).Step() != SQLITE_DONE) return Fail(SqlError(w_.db, "delete token"));
    return Ok();
  });
}

#define TASK_COLUMNS "upid, node, type, id, user, starttime, endtime, exitstatus, vmid"

static TaskRecord ReadTask(auto& s) {
  return TaskRecord{s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Text(4), s.Int(5), s.Int(6), s.Text(7),
                    static_cast<int>(s.Int(8))};
}

Status SqliteStore::InsertTask(const TaskRecord& t) {
  std::lock_guard lock(w_.mu);
  Stmt s(w_, "INSERT INTO tasks (" TASK_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s.Bind(1, t.upid).Bind(2, t.node).Bind(3, t.type).Bind(4, t.id).Bind(5, t.user).Bind(6, t.starttime);
  s.Bind(7, t.endtime).Bind(8, t.exitstatus).Bind(9, int64_t{t.vmid});
  if (s.Step() != SQLITE_DONE) return Fail(SqlError(w_.db, "insert task"));
  return Ok();
}

Status SqliteStore::FinishTask(const std::string& upid, int64_t endtime, const std::string& exitstatus) {
  std::lock_guard lock(w_.mu);
  Stmt s(w_, "UPDATE tasks SET endtime = ?, exitstatus = ? WHERE upid = ?");
  if (s.Bind(1, endtime).Bind(2, exitstatus).Bind(3, upid).Step() != SQLITE_DONE)
    return Fail(SqlError(w_.db, "finish task"));
  return Ok();
}

Result<std::optional<TaskRecord>> SqliteStore::GetTask(const std::string& upid) {
  std::lock_guard lock(r_.mu);
  Stmt s(r_, "SELECT " TASK_COLUMNS " FROM tasks WHERE upid = ?");
  int rc = s.Bind(1, upid).Step();
  if (rc == SQLITE_ROW) return std::optional<TaskRecord>(ReadTask(s));
  if (rc != SQLITE_DONE) return Fail(SqlError(r_.db, "get task"));
  return std::optional<TaskRecord>();
}

Result<std::pair<std::vector<TaskRecord>, size_t>> SqliteStore::ListTasks(const TaskFilter& f) {
  std::lock_guard lock(r_.mu);
  std::string where = " WHERE 1=1";
  if (f.vmid) where += " AND vmid = ?1";
  if (!f.type.empty()) where += " AND type = ?2";
  // instr, not LIKE: '%' and '_' in a user name are not wildcards.
  if (!f.user.empty()) where += " AND instr(lower(user), lower(?3)) > 0";
  bool owner_is_token = f.owner.find('!', f.owner.rfind('@') == std::string::npos ? 0 : f.owner.rfind('@')) != std::string::npos;
  if (!f.owner.empty())
    where += owner_is_token ? " AND user = ?8" : " AND (user = ?8 OR substr(user, 1, length(?8) + 1) = ?8 || '!')";
  if (f.errors_only) where += " AND endtime != 0 AND exitstatus != 'OK'";
  if (f.running_only) where += " AND endtime = 0";
  if (f.since) where += " AND starttime >= ?4";
  if (f.until) where += " AND starttime <= ?5";
  auto bind = [&](Stmt& s) {
    if (f.vmid) s.Bind(1, int64_t{f.vmid});
    if (!f.type.empty()) s.Bind(2, f.type);
    if (!f.user.empty()) s.Bind(3, f.user);
    if (f.since) s.Bind(4, f.since);
    if (f.until) s.Bind(5, f.until);
    if (!f.owner.empty()) s.Bind(8, f.owner);
  };
  std::string count_sql = "SELECT count(*) FROM tasks" + where;
  Stmt c(r_, count_sql.c_str());
  bind(c);
  if (c.Step() != SQLITE_ROW) return Fail(SqlError(r_.db, "count tasks"));
  size_t total = static_cast<size_t>(c.Int(0));
  std::string sql = "SELECT " TASK_COLUMNS " FROM tasks" + where + " ORDER BY starttime DESC, rowid DESC LIMIT ?6 OFFSET ?7";
  Stmt s(r_, sql.c_str());
  bind(s);
  s.Bind(6, static_cast<int64_t>(f.limit)).Bind(7, static_cast<int64_t>(f.start));
  std::vector<TaskRecord> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadTask(s));
  if (rc != SQLITE_DONE) return Fail(SqlError(r_.db, "list tasks"));
  return std::make_pair(std::move(out), total);
}

Result<std::vector<TaskRecord>> SqliteStore::UnfinishedTasks() {
  std::lock_guard lock(r_.mu);
  Stmt s(r_, "SELECT " TASK_COLUMNS " FROM tasks WHERE endtime = 0");
  std::vector<TaskRecord> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadTask(s));
  if (rc != SQLITE_DONE) return Fail(SqlError(r_.db, "unfinished tasks"));
  return out;
}

Result<std::vector<std::string>> SqliteStore::PruneTasks(int64_t before, size_t keep) {
  std::lock_guard lock(w_.mu);
  const char* where =
      " WHERE endtime != 0 AND starttime < ?1 AND upid NOT IN "
      "(SELECT upid FROM tasks ORDER BY starttime DESC, rowid DESC LIMIT ?2)";
  std::string select = std::string("SELECT upid FROM tasks") + where;
  Stmt s(w_, select.c_str());
  s.Bind(1, before).Bind(2, static_cast<int64_t>(keep));
  std::vector<std::string> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(s.Text(0));
  if (rc != SQLITE_DONE) return Fail(SqlError(w_.db, "prune tasks"));
  std::string del = std::string("DELETE FROM tasks") + where;
  Stmt d(w_, del.c_str());
  if (d.Bind(1, before).Bind(2, static_cast<int64_t>(keep)).Step() != SQLITE_DONE) return Fail(SqlError(w_.db, "prune tasks"));
  return out;
}

Result<std::optional<std::string>> SqliteStore::GetMeta(const std::string& key) {
  std::lock_guard lock(r_.mu);
  Stmt s(r_, "SELECT value FROM meta WHERE key = ?");
  int rc = s.Bind(1, key).Step();
  if (rc == SQLITE_ROW) return std::optional<std::string>(s.Text(0));
  if (rc != SQLITE_DONE) return Fail(SqlError(r_.db, "get meta"));
  return std::optional<std::string>();
}

Status SqliteStore::PutMeta(const std::string& key, const std::string& value) {
  return Durable([&]() -> Status {
    Stmt s(w_, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
    if (s.Bind(1, key).Bind(2, value).Step() != SQLITE_DONE) return Fail(SqlError(w_.db, "put meta"));
    return Ok();
  });
}

// Durable like PutMeta: a caller may hand the stored value out (a key, a secret), so a power
// cut must not replace it with another.
Result<std::string> SqliteStore::PutMetaIfAbsent(const std::string& key, const std::string& value) {
  std::string stored;
  HEARTH_TRY(Durable([&]() -> Status {
    Stmt ins(w_, "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)");
    if (ins.Bind(1, key).Bind(2, value).Step() != SQLITE_DONE) return Fail(SqlError(w_.db, "put meta"));
    Stmt s(w_, "SELECT value FROM meta WHERE key = ?");
    if (s.Bind(1, key).Step() != SQLITE_ROW) return Fail(SqlError(w_.db, "get meta"));
    stored = s.Text(0);
    return Ok();
  }));
  return stored;
}

// Durable, so that no number is handed out twice, even across a power cut. Durable() also
// makes a failed commit fail the call: with RETURNING, the first step returns the row before
// the statement ends, so in autocommit mode the commit would run only in the Stmt's
// sqlite3_reset, whose error nobody sees, and after an I/O error or on a full disk the next
// call would hand the same numbers out again. Hence, too, the second step to the end.
Result<uint64_t> SqliteStore::NextSequence(const std::string& name, uint64_t count) {
  std::string key = "seq:" + name;
  uint64_t first = 0;
  HEARTH_TRY(Durable([&]() -> Status {
    // The stored value is the last number handed out.
    Stmt s(w_,
           "INSERT INTO meta (key, value) VALUES (?1, CAST(?2 AS TEXT)) "
           "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + ?2 RETURNING value");
    if (s.Bind(1, key).Bind(2, static_cast<int64_t>(count)).Step() != SQLITE_ROW)
      return Fail(SqlError(w_.db, "sequence"));
    auto last = ParseUint(s.Text(0));
    if (s.Step() != SQLITE_DONE) return Fail(SqlError(w_.db, "sequence"));
    if (!last) return Fail(Internal("sequence '" + name + "' holds a non-number"));
    first = *last - count + 1;
    return Ok();
  }));
  return first;
}

}  // namespace hearth

// NbdServer: a read-only NBD server on an abstract unix socket, serving the disks of one
// backup to one VM's QEMU while a live restore streams them in (docs/design/backup.md,
// "Live restore"; protocol in backup/nbd_session.h).
//
// Why an abstract socket: QEMU drops to its -runas user after it opened its disks, and must be
// able to reconnect as that user (after a hearth restart) to a socket under a data directory
// that user cannot enter. An abstract name has no file permissions, so who may connect is
// checked on the peer's credentials (SO_PEERCRED) instead: until RestrictToPeer, only
// processes of the uids in Options::uids (root: QEMU before it drops privileges); after it,
// only that one process (the VM's QEMU, whatever its uid).
//
// Thread-safety: the public methods may be called from any thread. The server runs one
// thread to accept and one per connection (at most Options::max_connections); the destructor
// closes every connection and joins them.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "backup/chunk_store.h"
#include "backup/fixed_index.h"
#include "backup/nbd_session.h"
#include "core/result.h"

namespace hearth {

// Decoded chunks, least recently used dropped first, shared by the exports of one server.
// The stream job reads 512 KiB at a time, so without it each 4 MiB chunk would be read,
// checked and decompressed eight times. Thread-safe.
class ChunkCache {
 public:
  explicit ChunkCache(size_t capacity) : capacity_(capacity) {}
  std::shared_ptr<const std::string> Get(const ChunkDigest& digest);
  void Put(const ChunkDigest& digest, std::shared_ptr<const std::string> data);

 private:
  std::mutex mu_;
  size_t capacity_;
  std::list<std::pair<ChunkDigest, std::shared_ptr<const std::string>>> lru_;  // GUARDED_BY(mu_), newest first
};

// One disk of a backup, read chunk by chunk from the store. All-zero chunks are answered
// without reading (their digest says so). A chunk that is missing or fails its check is the
// read's error, naming the chunk and `label` ("drive-scsi0").
class BackupImageExport : public NbdExport {
 public:
  BackupImageExport(std::shared_ptr<const ChunkStore> store, FixedIndex index, std::shared_ptr<ChunkCache> cache,
                    std::string label);
  uint64_t size() const override { return index_.size; }
  Status Read(uint64_t offset, uint32_t len, std::string* out) override;

 private:
  Result<std::shared_ptr<const std::string>> Chunk(size_t i);
  std::shared_ptr<const ChunkStore> store_;
  FixedIndex index_;
  std::shared_ptr<ChunkCache> cache_;
  std::string label_;
  ChunkDigest zero_plain_{}, zero_keyed_{};  // of a full-size chunk of zeros
};

class NbdServer {
 public:
  struct Options {
    std::string abstract_name;  // the socket's name in the abstract namespace (no leading NUL)
    std::set<uid_t> uids;       // who may connect before RestrictToPeer
    pid_t peer = 0;             // set: RestrictToPeer(peer) from the start
    int max_connections = 8;
    std::chrono::seconds handshake_timeout{30};  // to finish negotiating; none once reading
  };
  // Listens at once; connections are served until the server is destroyed. Errors: the name
  // is taken (another server, or a leftover of this one not yet gone) or too long.
  static Result<std::unique_ptr<NbdServer>> Start(NbdExportTable exports, Options options, NbdLog log);
  ~NbdServer();
  NbdServer(const NbdServer&) = delete;
  NbdServer& operator=(const NbdServer&) = delete;

  // From now on only process `pid` is served; connections of any other process are closed.
  void RestrictToPeer(pid_t pid);
  int connections_served() const { return served_.load(); }

 private:
  struct Conn {
    int fd = -1;
    pid_t pid = 0;
    std::thread thread;
    std::atomic<bool> done{false};
  };
  NbdServer(NbdExportTable exports, Options options, NbdLog log, int listen_fd, int wake_fd[2]);
  void AcceptLoop();
  void Serve(Conn* conn);
  void Reap(bool all);  // joins finished connection threads (all: every one)
  bool Allowed(pid_t pid, uid_t uid) const;

  NbdExportTable exports_;
  Options options_;
  NbdLog log_;
  int listen_fd_;
  int wake_[2];
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::list<std::unique_ptr<Conn>> conns_;  // GUARDED_BY(mu_)
  pid_t peer_ = 0;                          // GUARDED_BY(mu_): 0 = not restricted yet
  std::atomic<bool> stopping_{false};
  std::atomic<int> served_{0};
};

// The abstract socket name a live restore of `vmid` serves on: unique per data directory,
// so two daemons (tests) on one host do not collide.
std::string LiveRestoreSocketName(const std::string& data_dir, int vmid);

}  // namespace hearth

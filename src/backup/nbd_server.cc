// NbdServer and BackupImageExport: sockets and chunks around ServeNbdSession.
#include "backup/nbd_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace hearth {
namespace {

constexpr size_t kCacheCapacity = 16;  // 64 MiB of 4 MiB chunks

// A connected socket as an NbdStream; reads give up at the handshake deadline until the
// session says negotiation is over.
class SocketStream : public NbdStream {
 public:
  SocketStream(int fd, std::chrono::seconds handshake) : fd_(fd), deadline_(Clock::now() + handshake) {}
  Status ReadExact(void* buf, size_t len) override {
    auto* p = static_cast<char*>(buf);
    while (len) {
      if (!negotiated_) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
        pollfd pfd{fd_, POLLIN, 0};
        int r = left > 0 ? ::poll(&pfd, 1, static_cast<int>(left)) : 0;
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return Fail(Unavailable("the client did not finish negotiating in time"));
        if (r < 0) return Fail(Internal(std::string("poll: ") + std::strerror(errno)));
      }
      ssize_t n = ::recv(fd_, p, len, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Fail(Unavailable(std::string("read: ") + std::strerror(errno)));
      if (n == 0) return Fail(Unavailable("the client closed the connection"));
      p += n;
      len -= static_cast<size_t>(n);
    }
    return Ok();
  }
  Status WriteAll(const void* buf, size_t len) override {
    const auto* p = static_cast<const char*>(buf);
    while (len) {
      ssize_t n = ::send(fd_, p, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Fail(Unavailable(std::string("write: ") + std::strerror(errno)));
      p += n;
      len -= static_cast<size_t>(n);
    }
    return Ok();
  }
  void Negotiated() override { negotiated_ = true; }

 private:
  using Clock = std::chrono::steady_clock;
  int fd_;
  Clock::time_point deadline_;
  bool negotiated_ = false;
};

sockaddr_un AbstractAddress(const std::string& name, socklen_t* len) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  a.sun_path[0] = '\0';
  std::memcpy(a.sun_path + 1, name.data(), name.size());
  // QEMU's "tight" default: the name is exactly its bytes, not padded with NULs.
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return a;
}

}  // namespace

std::shared_ptr<const std::string> ChunkCache::Get(const ChunkDigest& digest) {
  std::lock_guard lock(mu_);
  for (auto it = lru_.begin(); it != lru_.end(); ++it) {
    if (it->first != digest) continue;
    lru_.splice(lru_.begin(), lru_, it);
    return lru_.front().second;
  }
  return nullptr;
}

void ChunkCache::Put(const ChunkDigest& digest, std::shared_ptr<const std::string> data) {
  std::lock_guard lock(mu_);
  for (const auto& [d, v] : lru_)
    if (d == digest) return;
  lru_.emplace_front(digest, std::move(data));
  while (lru_.size() > capacity_) lru_.pop_back();
}

BackupImageExport::BackupImageExport(std::shared_ptr<const ChunkStore> store, FixedIndex index,
                                     std::shared_ptr<ChunkCache> cache, std::string label)
    : store_(std::move(store)), index_(std::move(index)), cache_(std::move(cache)), label_(std::move(label)) {
  // Plain and (with a key) keyed: a store with a key still holds plain backups.
  std::string zeros(index_.chunk_size, '\0');
  zero_plain_ = Sha256Digest(zeros);
  zero_keyed_ = store_->DigestOf(zeros);
}

Result<std::shared_ptr<const std::string>> BackupImageExport::Chunk(size_t i) {
  const ChunkDigest& d = index_.digests[i];
  if (auto hit = cache_->Get(d)) return hit;
  HEARTH_ASSIGN_OR_RETURN(std::string data, store_->Read(d, index_.encrypted).map_error([&](Error e) {
    return e.WithContext(label_);
  }));
  if (data.size() != index_.ChunkBytes(i))
    return Fail(Internal(label_ + ": chunk " + DigestHex(d) + " has " + std::to_string(data.size()) +
                         " bytes where the index expects " + std::to_string(index_.ChunkBytes(i))));
  auto shared = std::make_shared<const std::string>(std::move(data));
  cache_->Put(d, shared);
  return shared;
}

Status BackupImageExport::Read(uint64_t offset, uint32_t len, std::string* out) {
  uint64_t end = offset + len;
  while (offset < end) {
    size_t i = static_cast<size_t>(offset / index_.chunk_size);
    uint64_t in_chunk = offset - uint64_t{i} * index_.chunk_size;
    uint64_t n = std::min<uint64_t>(end - offset, index_.ChunkBytes(i) - in_chunk);
    const ChunkDigest& d = index_.digests[i];
    // Only a full-size chunk can match the zero digests computed for the full size; a short
    // last chunk of zeros is read like any other.
    if (index_.ChunkBytes(i) == index_.chunk_size && (d == zero_plain_ || d == zero_keyed_)) {
      out->append(n, '\0');
    } else {
      HEARTH_ASSIGN_OR_RETURN(auto chunk, Chunk(i));
      out->append(*chunk, in_chunk, n);
    }
    offset += n;
  }
  return Ok();
}

std::string LiveRestoreSocketName(const std::string& data_dir, int vmid) {
  ChunkDigest h = Sha256Digest(data_dir);
  return "hearth/" + DigestHex(h).substr(0, 16) + "/live-restore/" + std::to_string(vmid);
}

Result<std::unique_ptr<NbdServer>> NbdServer::Start(NbdExportTable exports, Options options, NbdLog log) {
  if (options.abstract_name.empty() || options.abstract_name.size() > sizeof(sockaddr_un::sun_path) - 1)
    return Fail(InvalidArgument("NBD socket name '" + options.abstract_name + "' is empty or too long"));
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail(Internal(std::string("socket: ") + std::strerror(errno)));
  socklen_t len;
  sockaddr_un a = AbstractAddress(options.abstract_name, &len);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd, 16) != 0) {
    int e = errno;
    ::close(fd);
    if (e == EADDRINUSE) return Fail(FailedPrecondition("NBD socket @" + options.abstract_name + " is in use by another server"));
    return Fail(Internal("NBD socket @" + options.abstract_name + ": " + std::strerror(e)));
  }
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC) != 0) {
    ::close(fd);
    return Fail(Internal(std::string("pipe: ") + std::strerror(errno)));
  }
  return std::unique_ptr<NbdServer>(new NbdServer(std::move(exports), std::move(options), std::move(log), fd, wake));
}

NbdServer::NbdServer(NbdExportTable exports, Options options, NbdLog log, int listen_fd, int wake_fd[2])
    : exports_(std::move(exports)), options_(std::move(options)), log_(std::move(log)), listen_fd_(listen_fd) {
  peer_ = options_.peer;
  wake_[0] = wake_fd[0];
  wake_[1] = wake_fd[1];
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

NbdServer::~NbdServer() {
  stopping_ = true;
  char c = 0;
  (void)!::write(wake_[1], &c, 1);
  acceptor_.join();
  {
    std::lock_guard lock(mu_);
    for (auto& conn : conns_) ::shutdown(conn->fd, SHUT_RDWR);  // unblocks their reads and writes
  }
  Reap(true);
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

bool NbdServer::Allowed(pid_t pid, uid_t uid) const {
  if (peer_) return pid == peer_;
  return options_.uids.count(uid) > 0;
}

void NbdServer::RestrictToPeer(pid_t pid) {
  std::lock_guard lock(mu_);
  peer_ = pid;
  for (auto& conn : conns_)
    if (!conn->done && conn->pid != pid) ::shutdown(conn->fd, SHUT_RDWR);
}

void NbdServer::Reap(bool all) {
  std::list<std::unique_ptr<Conn>> finished;
  {
    std::lock_guard lock(mu_);
    for (auto it = conns_.begin(); it != conns_.end();) {
      if (all || (*it)->done) {
        finished.push_back(std::move(*it));
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : finished) {
    c->thread.join();
    ::close(c->fd);
  }
}

void NbdServer::AcceptLoop() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    int r = ::poll(fds, 2, 1000);
    Reap(false);
    if (r <= 0 || !(fds[0].revents & POLLIN)) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ucred cred{};
    socklen_t clen = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) {
      ::close(fd);
      continue;
    }
    std::lock_guard lock(mu_);
    if (!Allowed(cred.pid, cred.uid) || static_cast<int>(conns_.size()) >= options_.max_connections) {
      if (log_)
        log_("NBD: refused a connection from pid " + std::to_string(cred.pid) + " (uid " + std::to_string(cred.uid) +
             (Allowed(cred.pid, cred.uid) ? "): too many connections" : "): not the restored VM's QEMU"));
      ::close(fd);
      continue;
    }
    timeval tv{120, 0};  // a client that stops reading its replies does not hold a thread forever
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    auto conn = std::make_unique<Conn>();
    conn->fd = fd;
    conn->pid = cred.pid;
    Conn* c = conn.get();
    conns_.push_back(std::move(conn));
    c->thread = std::thread([this, c] { Serve(c); });
  }
}

void NbdServer::Serve(Conn* conn) {
  ++served_;
  SocketStream io(conn->fd, options_.handshake_timeout);
  Status st = ServeNbdSession(io, exports_, log_);
  if (!st && !stopping_ && log_) log_("NBD: connection from pid " + std::to_string(conn->pid) + " ended: " + st.error().message);
  conn->done = true;
}

}  // namespace hearth

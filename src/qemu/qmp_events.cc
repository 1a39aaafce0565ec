#include "qemu/qmp_events.h"

#include <sys/socket.h>

#include "qemu/argv.h"
#include "qemu/replies.h"

namespace hearth {

Result<std::optional<nlohmann::json>> QmpEventHub::Subscription::Next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return !queue_.empty() || closed_; });
  if (!queue_.empty()) {
    nlohmann::json e = std::move(queue_.front());
    queue_.pop_front();
    return std::optional<nlohmann::json>(std::move(e));
  }
  if (closed_) return Fail(Unavailable(closed_why_));
  return std::optional<nlohmann::json>();
}

QmpEventHub::~QmpEventHub() {
  std::map<int, std::shared_ptr<Conn>> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [vmid, c] : conns_)
      if (!c->done) ::shutdown(c->fd, SHUT_RDWR);
    all.swap(conns_);
  }
  for (auto& [vmid, c] : all)
    if (c->reader.joinable()) c->reader.join();
}

Result<std::shared_ptr<QmpEventHub::Subscription>> QmpEventHub::Subscribe(int vmid, std::set<std::string> names,
                                                                          std::chrono::milliseconds connect_timeout) {
  auto sub = std::make_shared<Subscription>();
  sub->names_ = std::move(names);
  std::vector<std::shared_ptr<Conn>> finished;
  {
    std::lock_guard lock(mu_);
    // Readers of connections QEMU closed are joined here, so none piles up.
    for (auto it = conns_.begin(); it != conns_.end();) {
      if (it->second->done && it->first != vmid) {
        finished.push_back(it->second);
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
    auto it = conns_.find(vmid);
    if (it != conns_.end() && !it->second->done) {
      it->second->subs.push_back(sub);
      for (auto& f : finished) f->reader.join();
      return sub;
    }
    if (it != conns_.end()) {
      finished.push_back(it->second);
      conns_.erase(it);
    }
  }
  for (auto& f : finished) f->reader.join();

  // Connect outside the lock: a VM whose QEMU hangs delays only its own callers.
  std::string path = RuntimePathsFor(run_dir_, vmid).qmp_event;
  auto sock = UnixLineSocket::Connect(path, connect_timeout);
  if (!sock)
    return Fail(Unavailable("VM " + std::to_string(vmid) + " has no QMP event monitor (" + sock.error().message +
                            "); it is not running, or was started by an older hearth: restart it"));
  auto greeting = sock->ReadLine(connect_timeout);
  if (!greeting || greeting->find("\"QMP\"") == std::string::npos)
    return Fail(Unavailable("VM " + std::to_string(vmid) + ": unexpected greeting on the QMP event monitor"));
  HEARTH_TRY(sock->Write("{\"execute\":\"qmp_capabilities\"}\n", connect_timeout));
  while (true) {
    HEARTH_ASSIGN_OR_RETURN(std::string line, sock->ReadLine(connect_timeout));
    QmpLine msg = ReadQmpLine(line);
    if (msg.kind == QmpLine::Kind::kReturn) break;
    if (msg.kind == QmpLine::Kind::kError) return Fail(Unavailable("qmp_capabilities on the event monitor: " + msg.error));
  }

  std::lock_guard lock(mu_);
  auto it = conns_.find(vmid);
  if (it != conns_.end() && !it->second->done) {
    // Another caller connected meanwhile; ours is dropped (the socket closes with `sock`).
    it->second->subs.push_back(sub);
    return sub;
  }
  if (it != conns_.end()) {
    // Its reader already ended (it was done); it holds no lock we hold, so joining is safe.
    if (it->second->reader.joinable()) it->second->reader.join();
    conns_.erase(it);
  }
  auto conn = std::make_shared<Conn>();
  conn->fd = sock->fd();
  conn->subs.push_back(sub);
  conns_[vmid] = conn;
  conn->reader = std::thread([this, conn, s = std::move(*sock)]() mutable { Read(conn, std::move(s)); });
  return sub;
}

void QmpEventHub::Read(std::shared_ptr<Conn> conn, UnixLineSocket sock) {
  std::string why;
  while (true) {
    // Events can be hours apart; a timeout only means "nothing yet".
    auto line = sock.ReadLine(std::chrono::hours(1));
    if (!line) {
      if (line.error().message == "got timeout") continue;
      why = line.error().message;
      break;
    }
    QmpLine msg = ReadQmpLine(*line);
    if (msg.kind != QmpLine::Kind::kEvent) continue;
    std::lock_guard lock(mu_);
    Deliver(*conn, msg.value);
  }
  std::lock_guard lock(mu_);
  conn->done = true;  // before `sock` closes the descriptor: Forget must not shut down a reused fd
  Close(*conn, "QEMU closed its event monitor (" + why + ")");
}

void QmpEventHub::Deliver(Conn& conn, const nlohmann::json& event) {
  std::string name = QmpEventName(event);
  for (auto it = conn.subs.begin(); it != conn.subs.end();) {
    auto sub = it->lock();
    if (!sub) {
      it = conn.subs.erase(it);
      continue;
    }
    ++it;
    if (!sub->names_.empty() && !sub->names_.count(name)) continue;
    std::lock_guard lock(sub->mu_);
    if (sub->queue_.size() >= Subscription::kMaxQueued) sub->queue_.pop_front();
    sub->queue_.push_back(event);
    sub->cv_.notify_all();
  }
}

void QmpEventHub::Close(Conn& conn, const std::string& why) {
  for (auto& w : conn.subs)
    if (auto sub = w.lock()) {
      std::lock_guard lock(sub->mu_);
      sub->closed_ = true;
      sub->closed_why_ = why;
      sub->cv_.notify_all();
    }
  conn.subs.clear();
}

void QmpEventHub::Forget(int vmid) {
  std::shared_ptr<Conn> conn;
  {
    std::lock_guard lock(mu_);
    auto it = conns_.find(vmid);
    if (it == conns_.end()) return;
    conn = it->second;
    conns_.erase(it);
    if (!conn->done) ::shutdown(conn->fd, SHUT_RDWR);
  }
  if (conn->reader.joinable()) conn->reader.join();
}

bool QmpEventHub::Connected(int vmid) {
  std::lock_guard lock(mu_);
  auto it = conns_.find(vmid);
  return it != conns_.end() && !it->second->done;
}

}  // namespace hearth

// QmpEventHub: one long-lived QMP connection per running VM, on the VM's second monitor
// (`<run_dir>/<vmid>.qmp-event`, see RuntimePaths::qmp_event), that delivers QEMU's events
// (JOB_STATUS_CHANGE, BLOCK_JOB_READY, BLOCK_JOB_COMPLETED, BLOCK_JOB_ERROR, SHUTDOWN,
// BLOCK_IO_ERROR, ...) to whoever waits for them.
//
// Why a second monitor: QEMU serves one client per monitor socket. Commands keep using short
// connections on the first one (QemuSupervisor), so an operation that waits minutes for a
// block job never locks out status queries; QEMU broadcasts every event to every monitor.
//
// Use: Subscribe first, then issue the command whose events you want (no window in which an
// event could be missed), then Next() until the one that ends the wait. The connection is made
// by the first Subscribe for a VM and kept until QEMU closes it (the VM stopped) or Forget.
//
// Thread-safe. One reader thread per connected VM, blocked in read(); it ends when QEMU closes
// the socket or the hub shuts the socket down (Forget, destructor).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "sys/unix_socket.h"

namespace hearth {

class QmpEventHub {
 public:
  explicit QmpEventHub(std::string run_dir) : run_dir_(std::move(run_dir)) {}
  ~QmpEventHub();
  QmpEventHub(const QmpEventHub&) = delete;
  QmpEventHub& operator=(const QmpEventHub&) = delete;

  // Events of one VM, in the order QEMU sent them. Keeps at most kMaxQueued (oldest dropped).
  class Subscription {
   public:
    // The next event (the whole message: "event", "data", "timestamp"); nullopt when none
    // came within `timeout` (the subscription stays usable); kUnavailable once the connection
    // is gone (QEMU exited) and every queued event was taken.
    Result<std::optional<nlohmann::json>> Next(std::chrono::milliseconds timeout);
    static constexpr size_t kMaxQueued = 4096;

   private:
    friend class QmpEventHub;
    std::set<std::string> names_;  // empty = every event
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<nlohmann::json> queue_;
    bool closed_ = false;
    std::string closed_why_;
  };

  // Subscribes to the VM's events named in `names` (all when empty), connecting to its event
  // monitor first if needed. kUnavailable when the VM has no event monitor (not running, or
  // started by a hearth without one: "restart the VM"). Dropping the pointer unsubscribes.
  Result<std::shared_ptr<Subscription>> Subscribe(int vmid, std::set<std::string> names,
                                                  std::chrono::milliseconds connect_timeout = std::chrono::seconds(5));
  // Closes the VM's event connection (the VM stopped); its subscriptions end.
  void Forget(int vmid);
  // Whether a reader is connected for the VM (tests, diagnostics).
  bool Connected(int vmid);

 private:
  struct Conn {
    int fd = -1;
    std::thread reader;
    std::vector<std::weak_ptr<Subscription>> subs;
    bool done = false;
  };
  void Read(std::shared_ptr<Conn> conn, UnixLineSocket sock);
  void Deliver(Conn& conn, const nlohmann::json& event);
  static void Close(Conn& conn, const std::string& why);

  std::string run_dir_;
  std::mutex mu_;
  std::map<int, std::shared_ptr<Conn>> conns_;
};

}  // namespace hearth

// VmLocks: serialises operations on one VM; operations on different VMs run in parallel.
//
// Waiters are served first-come first-served. Tasks wait as long as it takes: a queue, not
// a lock with a timeout, so 20 concurrent operations on one VM all complete (Proxmox's
// "can't lock file ... got timeout" is the failure this replaces). Synchronous API calls,
// which hold an HTTP request open, wait with a deadline (AcquireFor); a waiter that gives
// up leaves the queue without disturbing the order of the others.
//
// A caller that needs several VMs takes their locks in ascending vmid order (TaskManager
// does), so two such callers can never wait on each other.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>

namespace hearth {

class VmLocks {
 public:
  class Guard {
   public:
    Guard(VmLocks* owner, int vmid) : owner_(owner), vmid_(vmid) {}
    ~Guard() { owner_->Release(vmid_); }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    VmLocks* owner_;
    int vmid_;
  };

  // Blocks until this caller's turn. Thread-safe.
  std::unique_ptr<Guard> Acquire(int vmid);
  // Like Acquire, but gives up after `timeout` and returns null.
  std::unique_ptr<Guard> AcquireFor(int vmid, std::chrono::milliseconds timeout);
  // The lock if nobody holds or waits for it, else null; never blocks.
  std::unique_ptr<Guard> TryAcquire(int vmid);
  // True if some operation holds or waits for the VM's lock.
  bool Busy(int vmid);

 private:
  struct Queue {
    uint64_t next_ticket = 0;
    uint64_t serving = 0;
    std::set<uint64_t> abandoned;  // tickets whose holders gave up waiting
  };
  void Release(int vmid);
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, Queue> queues_;  // GUARDED_BY(mu_)
};

}  // namespace hearth

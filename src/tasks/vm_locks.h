// VmLocks: serialises operations on one VM; operations on different VMs run in parallel.
//
// Waiters are served first-come first-served and wait as long as it takes: a queue, not a
// lock with a timeout, so 20 concurrent operations on one VM all complete (Proxmox's
// "can't lock file ... got timeout" is the failure this replaces).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

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
  // True if some operation holds or waits for the VM's lock.
  bool Busy(int vmid);

 private:
  struct Queue {
    uint64_t next_ticket = 0;
    uint64_t serving = 0;
  };
  void Release(int vmid);
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, Queue> queues_;  // GUARDED_BY(mu_)
};

}  // namespace hearth

#include "tasks/vm_locks.h"

namespace hearth {

std::unique_ptr<VmLocks::Guard> VmLocks::Acquire(int vmid) {
  std::unique_lock lock(mu_);
  Queue& q = queues_[vmid];
  uint64_t ticket = q.next_ticket++;
  cv_.wait(lock, [&] { return queues_[vmid].serving == ticket; });
  return std::make_unique<Guard>(this, vmid);
}

bool VmLocks::Busy(int vmid) {
  std::lock_guard lock(mu_);
  auto it = queues_.find(vmid);
  return it != queues_.end() && it->second.serving != it->second.next_ticket;
}

void VmLocks::Release(int vmid) {
  std::lock_guard lock(mu_);
  Queue& q = queues_[vmid];
  ++q.serving;
  if (q.serving == q.next_ticket) queues_.erase(vmid);  // idle: drop the entry
  cv_.notify_all();
}

}  // namespace hearth

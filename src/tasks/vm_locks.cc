#include "tasks/vm_locks.h"

namespace hearth {

std::unique_ptr<VmLocks::Guard> VmLocks::Acquire(int vmid) {
  std::unique_lock lock(mu_);
  uint64_t ticket = queues_[vmid].next_ticket++;
  cv_.wait(lock, [&] { return queues_[vmid].serving == ticket; });
  return std::make_unique<Guard>(this, vmid);
}

std::unique_ptr<VmLocks::Guard> VmLocks::AcquireFor(int vmid, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  uint64_t ticket = queues_[vmid].next_ticket++;
  if (cv_.wait_for(lock, timeout, [&] { return queues_[vmid].serving == ticket; }))
    return std::make_unique<Guard>(this, vmid);
  // Give the ticket back: when its turn comes, Release skips it.
  queues_[vmid].abandoned.insert(ticket);
  return nullptr;
}

std::unique_ptr<VmLocks::Guard> VmLocks::TryAcquire(int vmid) {
  std::lock_guard lock(mu_);
  Queue& q = queues_[vmid];
  if (q.serving != q.next_ticket) return nullptr;
  ++q.next_ticket;
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
  while (q.abandoned.erase(q.serving)) ++q.serving;
  if (q.serving == q.next_ticket) queues_.erase(vmid);  // idle: drop the entry
  cv_.notify_all();
}

}  // namespace hearth

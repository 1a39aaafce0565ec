#include "jobs/job_loop.h"

#include <algorithm>

namespace hearth {

void JobLoop::Start() {
  {
    std::lock_guard lock(mu_);
    stop_ = false;
    woken_ = true;
  }
  thread_ = std::thread([this] { Run(); });
}

void JobLoop::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void JobLoop::Wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void JobLoop::Run() {
  std::optional<int64_t> next;
  std::unique_lock lock(mu_);
  while (!stop_) {
    int64_t now = clock_.UnixSeconds();
    if (woken_ || (next && *next <= now)) {
      woken_ = false;
      lock.unlock();
      next = tick_(now);
      if (next && *next <= now) next = now + 1;  // never a busy loop on a job that stays due
      lock.lock();
      continue;
    }
    auto wait = std::chrono::seconds(60);
    if (next) wait = std::min(wait, std::chrono::seconds(std::max<int64_t>(*next - now, 0)));
    // A few milliseconds past the second, so the clock has reached it when we wake.
    cv_.wait_for(lock, wait + std::chrono::milliseconds(5), [this] { return stop_ || woken_; });
  }
}

}  // namespace hearth

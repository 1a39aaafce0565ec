// The thread behind a job scheduler: calls `tick(now)` at start, whenever Wake() is called and
// when the time it last asked for comes; `tick` runs what is due and returns when it wants to
// be called next (nullopt: only when woken). It sleeps at most a minute at a time, so a wall
// clock that jumps is noticed. `tick` runs on the loop's thread without the loop's lock.
// Thread-safety: Start/Stop from one owner; Wake from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "sys/clock.h"

namespace hearth {

class JobLoop {
 public:
  using Tick = std::function<std::optional<int64_t>(int64_t now)>;
  JobLoop(const Clock& clock, Tick tick) : clock_(clock), tick_(std::move(tick)) {}
  ~JobLoop() { Stop(); }
  JobLoop(const JobLoop&) = delete;
  JobLoop& operator=(const JobLoop&) = delete;

  void Start();
  void Stop();
  void Wake();

 private:
  void Run();

  const Clock& clock_;
  Tick tick_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;   // GUARDED_BY(mu_)
  bool woken_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace hearth

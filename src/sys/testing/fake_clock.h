// A Clock that only moves when told to.
#pragma once

#include <atomic>

#include "sys/clock.h"

namespace hearth {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t now = 1700000000) : now_(now) {}
  int64_t UnixSeconds() const override { return now_; }
  std::chrono::steady_clock::time_point Monotonic() const override {
    return std::chrono::steady_clock::time_point(std::chrono::seconds(now_));
  }
  void Advance(int64_t seconds) { now_ += seconds; }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace hearth

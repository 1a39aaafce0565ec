// Clock: wall time and monotonic time behind one seam, so task timeouts and ticket
// lifetimes can be tested with simulated time (sys/testing/fake_clock.h).
#pragma once

#include <chrono>
#include <cstdint>

namespace hearth {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t UnixSeconds() const = 0;
  virtual std::chrono::steady_clock::time_point Monotonic() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t UnixSeconds() const override;
  std::chrono::steady_clock::time_point Monotonic() const override { return std::chrono::steady_clock::now(); }
};

}  // namespace hearth

// Clock: wall time and monotonic time behind one seam, so task timeouts, rates and ticket
// lifetimes can be tested with simulated time (sys/testing/fake_clock.h). Every decision
// that depends on time reads it here. Deadlines of a single blocking call (a socket read,
// a child process, a poll(2) timeout) use std::chrono::steady_clock directly: the kernel
// waits in real time, so a fake clock could not make them end sooner.
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

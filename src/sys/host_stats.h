// HostStats: what hearth reads about the host and its processes (Linux's /proc and
// sysconf), behind one interface so handlers and the VM poller can be tested with fixed
// figures, and so that reading /proc happens in one place (sys/posix/proc_host_stats.h).
// Implementations are thread-safe. A value that cannot be read is 0 / empty / nullopt,
// never an exception: a node status page must not fail because /proc/cpuinfo is odd.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>

namespace hearth {

struct HostMemory {
  uint64_t total = 0;      // bytes
  uint64_t available = 0;  // bytes the kernel could give without swapping (MemAvailable)
};

// One process, from /proc/<pid>/stat.
struct ProcessStat {
  char state = '?';          // R, S, D, Z (zombie: exited, not reaped), ...
  uint64_t cpu_ticks = 0;    // utime + stime, in clock ticks (ClockTicksPerSecond)
  uint64_t start_ticks = 0;  // start time in clock ticks since boot
  uint64_t rss_bytes = 0;
};

class HostStats {
 public:
  virtual ~HostStats() = default;
  virtual int OnlineCpus() const = 0;
  virtual HostMemory Memory() const = 0;
  virtual double UptimeSeconds() const = 0;
  virtual std::array<double, 3> LoadAverage() const = 0;  // 1, 5 and 15 minutes
  virtual std::string CpuModel() const = 0;               // "unknown" if not found
  virtual std::string KernelVersion() const = 0;          // /proc/version's line
  virtual long ClockTicksPerSecond() const = 0;
  // nullopt if there is no such process.
  virtual std::optional<ProcessStat> Process(int pid) const = 0;
  // The arguments, NUL-separated as the kernel keeps them; nullopt if there is no such process.
  virtual std::optional<std::string> CommandLine(int pid) const = 0;
  // The paths of the regular files the process has open (/proc/<pid>/fd); nullopt if they
  // cannot be read. The default knows none (fakes).
  virtual std::optional<std::set<std::string>> OpenFiles(int pid) const {
    (void)pid;
    return std::nullopt;
  }
};

// Parses one /proc/<pid>/stat line (the command name may hold spaces and parentheses:
// fields are counted after the last ')'). `page_size` converts the RSS from pages.
std::optional<ProcessStat> ParseProcStat(const std::string& line, uint64_t page_size);

}  // namespace hearth

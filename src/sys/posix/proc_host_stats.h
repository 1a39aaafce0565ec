#pragma once

#include "sys/host_stats.h"

namespace hearth {

// HostStats from Linux's /proc and sysconf(3); stateless, so one instance serves every thread.
class ProcHostStats final : public HostStats {
 public:
  int OnlineCpus() const override;
  HostMemory Memory() const override;
  double UptimeSeconds() const override;
  std::array<double, 3> LoadAverage() const override;
  std::string CpuModel() const override;
  std::string KernelVersion() const override;
  long ClockTicksPerSecond() const override;
  std::optional<ProcessStat> Process(int pid) const override;
  std::optional<std::string> CommandLine(int pid) const override;
  std::optional<std::set<std::string>> OpenFiles(int pid) const override;
};

}  // namespace hearth

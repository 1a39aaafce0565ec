#include "sys/host_stats.h"

#include "core/strings.h"

namespace hearth {

std::optional<ProcessStat> ParseProcStat(const std::string& line, uint64_t page_size) {
  size_t p = line.rfind(')');
  if (p == std::string::npos || p + 2 > line.size()) return std::nullopt;
  // Fields after the command: state(0) ppid(1) ... utime(11) stime(12) ... starttime(19) vsize(20) rss(21)
  auto f = SplitAny(line.substr(p + 2), " \n");
  if (f.size() < 22 || f[0].size() != 1) return std::nullopt;
  auto utime = ParseUint(f[11]), stime = ParseUint(f[12]), start = ParseUint(f[19]), rss = ParseUint(f[21]);
  if (!utime || !stime || !start || !rss) return std::nullopt;
  ProcessStat s;
  s.state = f[0][0];
  s.cpu_ticks = *utime + *stime;
  s.start_ticks = *start;
  s.rss_bytes = *rss * page_size;
  return s;
}

}  // namespace hearth

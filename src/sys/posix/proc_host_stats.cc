#include "sys/posix/proc_host_stats.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>

#include "core/strings.h"
#include "sys/files.h"

namespace hearth {
namespace {

// The first number of a /proc file ("12345.67 ..."), 0 if there is none.
double LeadingNumber(const std::string& path) {
  auto text = ReadFile(path);
  return text ? std::strtod(text->c_str(), nullptr) : 0;
}

}  // namespace

int ProcHostStats::OnlineCpus() const { return static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN))); }

HostMemory ProcHostStats::Memory() const {
  // MemAvailable (what PVE's read_meminfo subtracts for "used"); sysconf's free pages only
  // if the kernel does not say (before 3.14).
  HostMemory m;
  uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  m.total = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * page;
  m.available = static_cast<uint64_t>(sysconf(_SC_AVPHYS_PAGES)) * page;
  if (auto info = ReadFile("/proc/meminfo")) {
    size_t p = info->find("\nMemAvailable:");
    if (p != std::string::npos) m.available = std::strtoull(info->c_str() + p + 14, nullptr, 10) * 1024;
  }
  return m;
}

double ProcHostStats::UptimeSeconds() const { return LeadingNumber("/proc/uptime"); }

std::array<double, 3> ProcHostStats::LoadAverage() const {
  std::array<double, 3> load{};
  if (auto text = ReadFile("/proc/loadavg")) {
    auto parts = SplitAny(*text, " ");
    for (size_t i = 0; i < 3 && i < parts.size(); ++i) load[i] = std::strtod(parts[i].c_str(), nullptr);
  }
  return load;
}

std::string ProcHostStats::CpuModel() const {
  auto info = ReadFile("/proc/cpuinfo");
  if (!info) return "unknown";
  size_t p = info->find("model name");
  if (p == std::string::npos) return "unknown";
  size_t colon = info->find(':', p), nl = info->find('\n', p);
  if (colon == std::string::npos || colon > nl) return "unknown";
  return std::string(Trim(info->substr(colon + 1, nl - colon - 1)));
}

std::string ProcHostStats::KernelVersion() const {
  auto text = ReadFile("/proc/version");
  return text ? std::string(Trim(*text)) : "";
}

long ProcHostStats::ClockTicksPerSecond() const { return sysconf(_SC_CLK_TCK); }

std::optional<ProcessStat> ProcHostStats::Process(int pid) const {
  auto text = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return std::nullopt;
  return ParseProcStat(*text, static_cast<uint64_t>(sysconf(_SC_PAGESIZE)));
}

std::optional<std::string> ProcHostStats::CommandLine(int pid) const {
  auto text = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  if (!text) return std::nullopt;
  return *text;
}

std::optional<std::set<std::string>> ProcHostStats::OpenFiles(int pid) const {
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return std::nullopt;
  std::set<std::string> out;
  // Bounded: a process has at most RLIMIT_NOFILE descriptors.
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char target[4096];
    ssize_t n = ::readlink((dir + "/" + e->d_name).c_str(), target, sizeof target - 1);
    if (n <= 0 || target[0] != '/') continue;  // sockets, pipes, anon inodes
    out.emplace(target, static_cast<size_t>(n));
  }
  ::closedir(d);
  return out;
}

}  // namespace hearth

#include "qemu/kvm_probe.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>

#include "kvm_probe_guest.h"
#include "sys/files.h"

namespace hearth {
namespace {

constexpr int kExpectedExit = (0x21 << 1) | 1;  // isa-debug-exit: (value << 1) | 1

struct Run {
  bool ok = false;
  double seconds = 0;
  std::string detail;
};

Run RunGuest(ProcessRunner& runner, const std::string& qemu, const std::string& image, const std::string& accel,
             std::chrono::seconds limit) {
  ProcessOptions opt;
  opt.timeout = limit;
  auto start = std::chrono::steady_clock::now();
  auto r = runner.Run({qemu, "-accel", accel, "-machine", "pc", "-cpu", "qemu64",
                       "-nodefaults", "-no-user-config", "-display", "none", "-m", "80", "-serial", "stdio",
                       "-drive", "file=" + image + ",format=raw,if=ide", "-device",
                       "isa-debug-exit,iobase=0xf4,iosize=4"},
                      opt);
  Run out;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!r) {
    out.detail = r.error().message;
    return out;
  }
  if (r->timed_out) {
    out.detail = "did not finish within " + std::to_string(limit.count()) + " s";
    return out;
  }
  out.ok = r->exit_code == kExpectedExit && r->out.find("RPLM") != std::string::npos;
  if (!out.ok) out.detail = "exit " + std::to_string(r->exit_code) + ": " + r->err.substr(0, 300);
  return out;
}

}  // namespace

KvmProbeResult ProbeKvm(ProcessRunner& runner, FileSystem& fs, const std::string& qemu, const std::string& work_dir,
                        std::chrono::seconds limit) {
  KvmProbeResult res;
  int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    res.reason = "/dev/kvm is not available";
    return res;
  }
  close(fd);
  std::string image = work_dir + "/kvm-probe.img";
  if (auto st = WriteFileAtomic(fs, image, std::string_view(reinterpret_cast<const char*>(kKvmProbeGuest), sizeof kKvmProbeGuest)); !st) {
    res.reason = st.error().message;
    return res;
  }
  Run kvm = RunGuest(runner, qemu, image, "kvm", limit);
  Run tcg = RunGuest(runner, qemu, image, "tcg", limit);
  (void)fs.Remove(image);
  res.kvm_seconds = kvm.seconds;
  res.tcg_seconds = tcg.seconds;
  if (!kvm.ok) {
    res.reason = "the KVM probe guest failed: " + kvm.detail;
  } else if (tcg.ok && kvm.seconds > tcg.seconds) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "KVM ran the probe guest slower than TCG (%.2f s vs %.2f s): broken nested virtualisation",
                  kvm.seconds, tcg.seconds);
    res.reason = buf;
  } else {
    res.usable = true;
  }
  return res;
}

}  // namespace hearth

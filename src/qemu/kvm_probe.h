// Is KVM usable here? Opening /dev/kvm is not enough: on some nested setups it opens but a
// normal kernel never finishes booting. So hearth runs a tiny guest (kvm_probe_guest.S)
// under KVM and TCG, each with a time limit, and uses KVM only if it finishes correctly and
// no slower than TCG.
#pragma once

#include <chrono>
#include <string>

#include "sys/process.h"
#include "sys/file_system.h"

namespace hearth {

struct KvmProbeResult {
  bool usable = false;
  std::string reason;  // why not, for the log and /nodes/{node}/status
  double kvm_seconds = 0, tcg_seconds = 0;
};

KvmProbeResult ProbeKvm(ProcessRunner& runner, FileSystem& fs, const std::string& qemu_binary, const std::string& work_dir,
                        std::chrono::seconds limit = std::chrono::seconds(10));

}  // namespace hearth

#pragma once

#include "sys/process.h"

namespace hearth {

// fork/exec with pipes; thread-safe (each call owns its pipes). Children get a clean signal
// mask, close every other fd, and run in their own process group so a timeout kills the
// whole group.
class PosixProcessRunner final : public ProcessRunner {
 public:
  Result<ProcessResult> Run(const std::vector<std::string>& argv, const ProcessOptions& options) override;
  Result<int> SpawnDetached(const std::vector<std::string>& argv, const std::string& log_path) override;
};

}  // namespace hearth

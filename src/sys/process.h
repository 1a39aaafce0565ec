// ProcessRunner: starts programs from argv vectors — never through a shell — with a time
// limit, optional stdin, and captured stdout/stderr. Programs run by Run() are killed if the
// daemon dies; SpawnDetached() programs (VMs) outlive it.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/result.h"

namespace hearth {

struct ProcessOptions {
  std::chrono::milliseconds timeout{60000};  // killed (SIGKILL) when exceeded
  std::string stdin_data;
  std::map<std::string, std::string> extra_env;
  // Called with each complete line of stderr as it arrives (progress output).
  std::function<void(const std::string&)> on_stderr_line;
  std::function<void(const std::string&)> on_stdout_line;
  size_t max_output = 16 << 20;  // bytes kept per stream
  int umask = -1;  // the program's umask; -1 keeps ours (hearth runs with 077)
  // Open descriptors to give the program as its stdin / stdout instead of pipes (streams of
  // any size to or from a file: `zfs send > file`, `zfs recv < file`); they stay the caller's.
  // With stdin_fd, stdin_data is ignored; with stdout_fd, `out` stays empty.
  int stdin_fd = -1;
  int stdout_fd = -1;
};

struct ProcessResult {
  int exit_code = -1;  // -1 if killed by a signal
  int signal = 0;
  bool timed_out = false;
  std::string out;
  std::string err;
};

class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;
  // Fails only if the program could not be started; a non-zero exit is a ProcessResult.
  virtual Result<ProcessResult> Run(const std::vector<std::string>& argv, const ProcessOptions& options) = 0;
  // Starts a long-lived program detached from us (new session, not our child: it survives
  // the daemon), stdin from /dev/null, stdout and stderr appended to `log_path`.
  // Returns its pid.
  virtual Result<int> SpawnDetached(const std::vector<std::string>& argv, const std::string& log_path) = 0;
};

// "qemu-img: exit 1: <last stderr line>" — for error messages.
std::string DescribeFailure(const std::vector<std::string>& argv, const ProcessResult& r);

}  // namespace hearth

// The pure helpers of sys/process.h (the runner itself is an adapter: sys/posix).
#include "sys/process.h"

#include "core/strings.h"

namespace hearth {

std::string DescribeFailure(const std::vector<std::string>& argv, const ProcessResult& r) {
  std::string prog = argv.empty() ? "?" : argv[0];
  std::string what = r.timed_out ? "timed out" : r.signal ? "killed by signal " + std::to_string(r.signal)
                                                         : "exit " + std::to_string(r.exit_code);
  std::string detail(Trim(r.err.empty() ? r.out : r.err));
  if (detail.size() > 2000) detail = "..." + detail.substr(detail.size() - 2000);
  return prog + ": " + what + (detail.empty() ? "" : ": " + detail);
}

}  // namespace hearth

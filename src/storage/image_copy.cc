#include "storage/image_copy.h"

#include <cstdlib>

#include "core/pattern.h"

namespace hearth {

std::string QemuImageFormat(const std::string& format) {
  return format == "qcow2" || format == "vmdk" ? format : "raw";
}

Result<uint64_t> ImageVirtualSize(ProcessRunner& runner, const std::string& path, const std::string& format) {
  auto info = runner.Run({"qemu-img", "info", "-U", "--output=json", "-f", QemuImageFormat(format), path}, {});
  if (!info) return Fail(Internal("copy disk: " + info.error().message));
  if (info->exit_code != 0) return Fail(Internal("copy disk: " + DescribeFailure({"qemu-img"}, *info)));
  static const Pattern vsize(R"re("virtual-size":\s*([0-9]{1,19}))re");
  auto m = vsize.Search(info->out);
  if (!m || m->empty()) return Fail(Internal("copy disk: qemu-img info gave no virtual size for '" + path + "'"));
  return std::stoull((*m)[0]);
}

Status ConvertImage(ProcessRunner& runner, const std::string& src_path, const std::string& src_format,
                    const std::string& dst_path, const std::string& format, bool existing_target,
                    const ProgressFn& progress, const std::string& src_snapshot) {
  ProcessOptions opt;
  opt.timeout = std::chrono::hours(24);
  int last_reported = -10;
  opt.on_stdout_line = [&](const std::string& line) {
    // qemu-img -p prints "    (12.34/100%)"
    size_t open = line.find('(');
    if (open == std::string::npos || line.find('/', open) == std::string::npos || !progress) return;
    int pct = std::atoi(line.c_str() + open + 1);
    if (pct >= last_reported + 10) {
      last_reported = pct - pct % 10;
      progress("copied " + std::to_string(last_reported) + "%");
    }
  };
  std::vector<std::string> argv = {"qemu-img", "convert", "-p"};
  if (existing_target) argv.push_back("-n");
  argv.insert(argv.end(), {"-U", "-f", QemuImageFormat(src_format), "-O", format});
  // An internal snapshot (qemu-server's qemu_img_convert with a snapname on qcow2).
  if (!src_snapshot.empty()) argv.insert(argv.end(), {"-l", "snapshot.name=" + src_snapshot});
  argv.insert(argv.end(), {src_path, dst_path});
  auto r = runner.Run(argv, opt);
  if (!r) return Fail(Internal("copy disk: " + r.error().message));
  if (r->exit_code != 0) return Fail(Internal("copy disk: " + DescribeFailure({"qemu-img"}, *r)));
  return Ok();
}

}  // namespace hearth

#include "cloudinit/seed_writer.h"

#include <unistd.h>

#include <filesystem>

#include "sys/file_system.h"
#include "sys/files.h"
#include "sys/random_source.h"

namespace hearth {

Status WriteNoCloudSeed(ProcessRunner& runner, FileSystem& fs, const NoCloudSeed& seed, const std::string& dest_path,
                        const std::string& dest_format, const std::string& tmp_dir) {
  std::string work = tmp_dir + "/.cidata-" + RandomHex(16);
  HEARTH_TRY(MakeDirs(work + "/files", 0700));
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{work};
  std::vector<std::string> files = {"user-data", "meta-data", "network-config"};
  HEARTH_TRY(WriteFileAtomic(fs, work + "/files/user-data", seed.user_data, 0600));
  HEARTH_TRY(WriteFileAtomic(fs, work + "/files/meta-data", seed.meta_data, 0600));
  HEARTH_TRY(WriteFileAtomic(fs, work + "/files/network-config", seed.network_config, 0600));
  if (!seed.vendor_data.empty()) {
    HEARTH_TRY(WriteFileAtomic(fs, work + "/files/vendor-data", seed.vendor_data, 0600));
    files.push_back("vendor-data");
  }
  std::string iso = work + "/seed.iso";
  std::vector<std::string> argv = {"xorriso", "-as", "mkisofs", "-quiet", "-o", iso, "-V", "cidata", "-J", "-r"};
  for (const auto& f : files) argv.push_back(work + "/files/" + f);
  auto r = runner.Run(argv, {});
  if (!r) return Fail(r.error().WithContext("cloud-init seed"));
  if (r->exit_code != 0) return Fail(Internal("cloud-init seed: " + DescribeFailure(argv, *r)));
  // A name of its own: two writers of the same drive (a start and a PUT cloudinit) never
  // share a staging file; the rename makes the last one win whole.
  std::string staged = dest_path + ".new-" + RandomHex(12);
  std::vector<std::string> convert = {"qemu-img", "convert", "-q", "-f", "raw", "-O", dest_format, iso, staged};
  r = runner.Run(convert, {});
  if (!r || r->exit_code != 0) {
    ::unlink(staged.c_str());
    return Fail(r ? Internal("cloud-init seed: " + DescribeFailure(convert, *r)) : r.error());
  }
  if (::rename(staged.c_str(), dest_path.c_str()) != 0) {
    ::unlink(staged.c_str());
    return Fail(Internal("cloud-init seed: cannot replace " + dest_path));
  }
  return Ok();
}

}  // namespace hearth

// Golden files: tests/golden/qemu/NAME.conf -> NAME.argv (one argument per line).
// NAME ending in "-kvm" builds for a KVM host. UPDATE_GOLDEN=1 rewrites the .argv files;
// review the diff. `local:` volumes resolve to /var/lib/hearth/<storage layout>.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/strings.h"
#include "model/drive.h"
#include "model/vm_config.h"
#include "model/volume_id.h"
#include "qemu/argv.h"

#ifndef HEARTH_GOLDEN_DIR
#error "HEARTH_GOLDEN_DIR must be defined"
#endif

namespace hearth {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

QemuLaunch LaunchFor(int vmid, const VmConfig& cfg) {
  QemuLaunch l;
  l.vmid = vmid;
  l.config = cfg.values;
  for (const auto& [k, v] : cfg.values) {
    std::string vol = DriveVolume(k, v);
    if (vol.empty()) continue;
    auto id = ParseVolumeId(vol);
    auto dv = ParseDirVolname(id->volname);
    l.drives[k] = HostPathBinding("/var/lib/hearth/" + dv->RelativePath(), dv->format);
  }
  for (const auto& [k, v] : cfg.values)
    if (StartsWith(k, "net") && v.find("bridge=") != std::string::npos)
      l.taps[std::stoi(k.substr(3))] = "tap" + std::to_string(vmid) + "i" + k.substr(3);
  return l;
}

TEST(QemuArgvGolden, AllFilesMatch) {
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(HEARTH_GOLDEN_DIR)) {
    if (entry.path().extension() != ".conf") continue;
    std::string name = entry.path().stem().string();
    SCOPED_TRACE(name);
    auto cfg = ParseConfFile(Slurp(entry.path()));
    ASSERT_TRUE(cfg) << cfg.error().message;
    QemuHostInfo host;
    host.kvm = EndsWith(name, "-kvm");
    host.run_dir = "/run/hearth";
    host.runas = "hearth-qemu";
    host.ovmf_dir = "/usr/share/OVMF";
    auto argv = BuildQemuArgv(LaunchFor(100, *cfg), host);
    std::string got;
    if (argv) {
      for (const auto& a : *argv) got += a + "\n";
    } else {
      got = "ERROR " + argv.error().message + "\n";
      for (const auto& [f, m] : argv.error().fields) got += "FIELD " + f + ": " + m + "\n";
    }
    fs::path golden = entry.path();
    golden.replace_extension(".argv");
    if (std::getenv("UPDATE_GOLDEN")) {
      std::ofstream(golden) << got;
    } else {
      EXPECT_EQ(got, Slurp(golden));
    }
    ++checked;
  }
  EXPECT_GE(checked, 5);
}

TEST(QemuArgv, EscapesCommasInPaths) {
  EXPECT_EQ(EscapeQemuOpt("/a,b/c"), "/a,,b/c");
}

}  // namespace
}  // namespace hearth

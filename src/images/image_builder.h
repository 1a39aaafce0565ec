// ImageBuilder: builds cloud-init-ready Debian disk images from Debian's packages (what
// Packer does in a typical homelab) and keeps them in a cache keyed by the recipe's hash.
//
// Steps (see docs/design/images.md): mmdebstrap builds the root filesystem; hearth writes
// its configuration files directly and runs fixed commands in it with chroot (argv only: no
// recipe value ever reaches a shell); the root filesystem goes into an MBR-partitioned disk
// with extlinux, so the VM boots through its firmware like an upstream cloud image; the
// result is a compressed qcow2. One build runs at a time.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "core/result.h"
#include "model/image_recipe.h"
#include "sys/file_system.h"
#include "sys/process.h"

namespace hearth {

struct CachedImage {
  std::string hash;
  std::string path;
  uint64_t size = 0;
  int64_t created = 0;
  std::string recipe;  // ImageRecipe::Canonical()
};

class ImageBuilder {
 public:
  using LogFn = std::function<void(const std::string&)>;
  ImageBuilder(ProcessRunner& runner, FileSystem& fs, std::string cache_dir)
      : runner_(runner), fs_(fs), cache_dir_(std::move(cache_dir)) {}

  // The cached image for `recipe` (qcow2 path), building it first if needed (minutes).
  // `built` tells whether this call built it.
  Result<std::string> Ensure(const ImageRecipe& recipe, const LogFn& log, bool* built = nullptr);
  std::vector<CachedImage> List() const;

 private:
  Status Build(const ImageRecipe& recipe, const std::string& work, const std::string& out, const LogFn& log);
  Status Customize(const ImageRecipe& recipe, const std::string& rootfs, const LogFn& log);
  Status MakeBootableDisk(const ImageRecipe& recipe, const std::string& rootfs, const std::string& raw,
                          const std::string& work, const LogFn& log);
  Status Run(const std::vector<std::string>& argv, const LogFn& log, std::chrono::seconds timeout,
             const std::string& stdin_data = "");

  ProcessRunner& runner_;
  FileSystem& fs_;
  std::string cache_dir_;
  std::mutex build_mu_;
};

}  // namespace hearth

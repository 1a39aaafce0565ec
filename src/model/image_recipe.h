// The recipe for a cloud-init-ready Debian template image (`hearth image build`), and the
// hash that names its cache entry: an unchanged recipe is never built twice.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace hearth {

struct ImageRecipe {
  std::string release = "bookworm";
  std::vector<std::string> packages;  // extra Debian packages, sorted and unique
  std::string locale = "C.UTF-8";
  std::string keyboard = "us";
  std::string timezone = "Etc/UTC";
  int ssh_port = 22;
  uint64_t disk_size = uint64_t{2} << 30;  // the image's disk; clones grow it with resize

  // Canonical text (stable field order); Hash() is its SHA-256, hex, 16 chars.
  std::string Canonical() const;
  std::string Hash() const;
};

// Validates each field (names the field on error) and normalises the package list. Values
// end up in files inside the image, never in a shell.
Result<ImageRecipe> MakeImageRecipe(const std::string& release, const std::string& packages, const std::string& locale,
                                    const std::string& keyboard, const std::string& timezone, int ssh_port,
                                    uint64_t disk_size);

// The packages every hearth image has (cloud-init, the guest agent, sshd, growpart, ...).
const std::vector<std::string>& BaseImagePackages();

}  // namespace hearth

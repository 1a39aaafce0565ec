// File helpers with the crash-safety rule of DESIGN.md: a file is written to a temporary
// name, fsynced and renamed, so readers see the old or the new content, never half.
#pragma once

#include <string>

#include "core/result.h"

namespace hearth {

Status WriteFileAtomic(const std::string& path, std::string_view content, int mode = 0644);
Result<std::string> ReadFile(const std::string& path);
Status MakeDirs(const std::string& path, int mode = 0755);
bool PathExists(const std::string& path);

struct FsSpace {
  uint64_t total = 0, avail = 0, used = 0;
};
Result<FsSpace> FilesystemSpace(const std::string& path);

}  // namespace hearth

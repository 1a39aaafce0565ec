#pragma once

#include "sys/file_system.h"

namespace hearth {

// FileSystem on open(2)/write(2)/fsync(2)/rename(2); stateless, so one instance serves every
// thread. Descriptors are close-on-exec (QEMUs started by the daemon never inherit them).
class PosixFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<WritableFile>> Open(const std::string& path, OpenMode mode, int perms = 0600) override;
  Result<std::string> Read(const std::string& path, size_t max_bytes = 64 << 20) override;
  Result<std::unique_ptr<SequentialFile>> OpenSequential(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Remove(const std::string& path) override;
  Status SyncDir(const std::string& dir) override;
  Status MakeDirs(const std::string& path, int perms = 0700) override;
  bool Exists(const std::string& path) override;
};

}  // namespace hearth

// NftBackend: runs an nftables script as one transaction (all of it, or nothing).
#pragma once

#include <string>

#include "core/result.h"

namespace hearth {

class NftBackend {
 public:
  virtual ~NftBackend() = default;
  // Runs `script` (nft's own syntax, as `nft -f`); on error nothing changed and the error is
  // nft's message.
  virtual Status Run(const std::string& script) = 0;
  // The same, without committing (nft -c): the kernel checks the script, nothing changes.
  virtual Status Check(const std::string& script) = 0;
};

// The implementation on Debian's libnftables (the library `nft` itself uses). Thread-safe:
// each call has its own context.
class LibNftables final : public NftBackend {
 public:
  Status Run(const std::string& script) override { return Execute(script, false); }
  Status Check(const std::string& script) override { return Execute(script, true); }

 private:
  static Status Execute(const std::string& script, bool dry_run);
};

}  // namespace hearth

// UPID: Proxmox's task id, "UPID:<node>:<PID>:<PSTART>:<STARTTIME>:<type>:<id>:<user>:".
// PID, PSTART and STARTTIME are upper-case hex, at least 8 digits; the trailing colon is
// part of the format (clients split into exactly 9 pieces).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace hearth {

struct Upid {
  std::string node;
  uint64_t pid = 0;
  uint64_t pstart = 0;
  int64_t starttime = 0;
  std::string type;
  std::string id;
  std::string user;  // "root@pam" or "root@pam!token"

  std::string ToString() const;
};

Result<Upid> ParseUpid(std::string_view text);

}  // namespace hearth

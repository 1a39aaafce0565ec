// The head of a `btrfs send` stream (the kernel's send.h format: "btrfs-stream\0", a le32
// version, then commands of a le32 length, le16 type and le32 CRC followed by TLV attributes
// of le16 type and le16 length). The first command names the one subvolume the stream makes:
// SUBVOL (1) for a full stream, SNAPSHOT (2) for one relative to a parent. A replication
// target reads it before `btrfs receive` runs, so a hostile stream cannot make a subvolume
// under another name (and `receive -e` stops at the end of this first stream).
// Pure; never reads past `head`. Fuzzed by fuzz/fuzz_send_stream.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace hearth {

struct SendStreamHead {
  bool incremental = false;  // SNAPSHOT rather than SUBVOL
  std::string path;          // the subvolume's name as the stream gives it
};

// `head`: at least the stream's first 64 KiB (or all of it, if shorter).
Result<SendStreamHead> ParseSendStreamHead(std::string_view head);

}  // namespace hearth

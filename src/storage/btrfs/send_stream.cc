#include "storage/btrfs/send_stream.h"

#include <cstdint>

namespace hearth {
namespace {

constexpr std::string_view kMagic("btrfs-stream\0", 13);
constexpr uint16_t kCmdSubvol = 1, kCmdSnapshot = 2;
constexpr uint16_t kAttrPath = 15;

uint32_t Le32(std::string_view s, size_t at) {
  return static_cast<uint32_t>(static_cast<uint8_t>(s[at])) | static_cast<uint32_t>(static_cast<uint8_t>(s[at + 1])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(s[at + 2])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(s[at + 3])) << 24;
}
uint16_t Le16(std::string_view s, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(s[at]) | static_cast<uint8_t>(s[at + 1]) << 8);
}

}  // namespace

Result<SendStreamHead> ParseSendStreamHead(std::string_view head) {
  auto bad = [](const std::string& why) { return Fail(InvalidArgument("not a btrfs send stream: " + why)); };
  if (head.size() < kMagic.size() + 4 || head.substr(0, kMagic.size()) != kMagic) return bad("no stream header");
  uint32_t version = Le32(head, kMagic.size());
  if (version < 1 || version > 3) return bad("unknown version " + std::to_string(version));
  size_t at = kMagic.size() + 4;
  if (head.size() - at < 10) return bad("no first command");
  uint32_t len = Le32(head, at);
  uint16_t cmd = Le16(head, at + 4);
  at += 10;
  if (cmd != kCmdSubvol && cmd != kCmdSnapshot) return bad("the first command makes no subvolume");
  if (len > head.size() - at) return bad("first command too long");
  std::string_view attrs = head.substr(at, len);
  for (size_t p = 0; attrs.size() - p >= 4;) {
    uint16_t type = Le16(attrs, p), n = Le16(attrs, p + 2);
    p += 4;
    if (n > attrs.size() - p) return bad("truncated attribute");
    if (type == kAttrPath) {
      SendStreamHead out;
      out.incremental = cmd == kCmdSnapshot;
      out.path = std::string(attrs.substr(p, n));
      if (out.path.empty() || out.path.find('/') != std::string::npos || out.path == "." || out.path == "..")
        return bad("subvolume name '" + out.path + "' is not a plain name");
      return out;
    }
    p += n;
  }
  return bad("the first command names no subvolume");
}

}  // namespace hearth

// FixedIndex: one disk image of a backup as the ordered digests of its fixed-size chunks
// (Proxmox Backup Server's ".fidx" in purpose, not in bytes). The file is
//   "hrthfidx" | version u32 = 1 | chunk size u32 | image size u64 | count u64 |
//   count x 32-byte SHA-256 digests | SHA-256 of everything before it
// little-endian. Decoding treats the bytes as hostile: every size is bounded and checked
// against the others before anything is allocated, and the trailing checksum must match.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backup/chunk_store.h"
#include "core/result.h"

namespace hearth {

struct FixedIndex {
  uint64_t size = 0;                          // the image's bytes
  uint32_t chunk_size = ChunkStore::kChunkSize;  // every chunk but the last is this long
  std::vector<ChunkDigest> digests;           // ceil(size / chunk_size) of them
  // Not in the file: set from the manifest's crypt-mode when read from a backup. The chunks
  // of an encrypted backup must all be encrypted (ChunkStore::Read's encrypted_only).
  bool encrypted = false;

  static constexpr uint64_t kMaxImage = uint64_t{64} << 40;  // 64 TiB
  // Bytes of chunk `i` (the last one may be shorter).
  uint64_t ChunkBytes(size_t i) const;
};

std::string EncodeFixedIndex(const FixedIndex& index);
// Errors: "index: <what is wrong>".
Result<FixedIndex> DecodeFixedIndex(std::string_view bytes);

}  // namespace hearth

#include "backup/fixed_index.h"

#include <cstring>

namespace hearth {
namespace {

constexpr char kMagic[8] = {'h', 'r', 't', 'h', 'f', 'i', 'd', 'x'};
constexpr size_t kHeader = 8 + 4 + 4 + 8 + 8;

template <typename T>
void PutLe(std::string& out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
template <typename T>
T GetLe(const char* p) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

}  // namespace

uint64_t FixedIndex::ChunkBytes(size_t i) const {
  uint64_t start = uint64_t{i} * chunk_size;
  return start >= size ? 0 : std::min<uint64_t>(chunk_size, size - start);
}

std::string EncodeFixedIndex(const FixedIndex& index) {
  std::string out(kMagic, sizeof kMagic);
  PutLe<uint32_t>(out, 1);
  PutLe<uint32_t>(out, index.chunk_size);
  PutLe<uint64_t>(out, index.size);
  PutLe<uint64_t>(out, index.digests.size());
  for (const auto& d : index.digests) out.append(reinterpret_cast<const char*>(d.data()), d.size());
  ChunkDigest sum = Sha256Digest(out);
  out.append(reinterpret_cast<const char*>(sum.data()), sum.size());
  return out;
}

Result<FixedIndex> DecodeFixedIndex(std::string_view b) {
  auto bad = [](const std::string& why) { return Fail(Internal("index: " + why)); };
  if (b.size() < kHeader + 32 || std::memcmp(b.data(), kMagic, sizeof kMagic) != 0) return bad("not an index file");
  if (GetLe<uint32_t>(b.data() + 8) != 1) return bad("unsupported version");
  FixedIndex idx;
  idx.chunk_size = GetLe<uint32_t>(b.data() + 12);
  idx.size = GetLe<uint64_t>(b.data() + 16);
  uint64_t count = GetLe<uint64_t>(b.data() + 24);
  if (idx.chunk_size == 0 || idx.chunk_size > ChunkStore::kMaxChunk) return bad("chunk size out of range");
  if (idx.size > FixedIndex::kMaxImage) return bad("image size out of range");
  if (count != (idx.size + idx.chunk_size - 1) / idx.chunk_size) return bad("chunk count does not match the size");
  if (b.size() != kHeader + count * 32 + 32) return bad("length does not match the chunk count");
  ChunkDigest sum = Sha256Digest(b.substr(0, b.size() - 32));
  if (std::memcmp(sum.data(), b.data() + b.size() - 32, 32) != 0) return bad("checksum mismatch");
  idx.digests.resize(count);
  for (uint64_t i = 0; i < count; ++i) std::memcpy(idx.digests[i].data(), b.data() + kHeader + i * 32, 32);
  return idx;
}

}  // namespace hearth

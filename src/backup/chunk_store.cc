#include "backup/chunk_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>
#include <zstd.h>

#include <atomic>
#include <cstring>
#include <filesystem>


namespace hearth {
namespace {

// The blob around a chunk's content: magic, encoding, reserved bytes, plain size (LE).
constexpr char kMagic[8] = {'h', 'r', 't', 'h', 'c', 'h', 'k', '1'};
constexpr size_t kHeader = 16;
// Encodings: the payload raw or zstd-compressed, and the same sealed with the store's key:
// then the header is followed by the SHA-256 of what follows it (a check anyone can make,
// as Proxmox Backup Server's CRC of encrypted chunks: verify and sync without the key) and
// the sealed payload (iv | tag | ciphertext, the 16-byte header as associated data).
constexpr uint8_t kRaw = 0, kZstd = 1, kCryptRaw = 2, kCryptZstd = 3;
constexpr size_t kSealOverhead = BackupKey::kIvBytes + BackupKey::kTagBytes;
constexpr size_t kSealSum = 32;

void PutLe32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t GetLe32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

std::string Corrupt(const ChunkDigest& d, const std::string& why) {
  return "chunk " + DigestHex(d) + " is corrupt (" + why + ")";
}

// Whether the chunk file at `path` is sealed (from its header); nullopt when it cannot be
// read or is no chunk blob. Dedup matches the crypt mode too (ChunkStore::PutBlob).
std::optional<bool> StoredEncrypted(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char head[kHeader];
  ssize_t n = ::pread(fd, head, sizeof head, 0);
  ::close(fd);
  if (n != static_cast<ssize_t>(kHeader)) return std::nullopt;
  return ChunkStore::BlobEncrypted(std::string_view(head, kHeader));
}

}  // namespace

ChunkDigest Sha256Digest(std::string_view data) {
  ChunkDigest out{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

std::string DigestHex(const ChunkDigest& digest) {
  static const char* hex = "0123456789abcdef";
  std::string s;
  s.reserve(64);
  for (uint8_t b : digest) {
    s += hex[b >> 4];
    s += hex[b & 15];
  }
  return s;
}

std::optional<ChunkDigest> ParseDigestHex(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  ChunkDigest d{};
  for (size_t i = 0; i < 64; ++i) {
    char c = hex[i];
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return std::nullopt;
    d[i / 2] = static_cast<uint8_t>(i % 2 ? (d[i / 2] | v) : (v << 4));
  }
  return d;
}

ChunkStore::ChunkStore(FileSystem& fs, std::string root, ChunkStoreOptions options)
    : fs_(fs), root_(std::move(root)), options_(options) {}

std::string ChunkStore::ChunkPath(const ChunkDigest& digest) const {
  std::string hex = DigestHex(digest);
  return root_ + "/.chunks/" + hex.substr(0, 4) + "/" + hex;
}

bool ChunkStore::ContainsAs(const ChunkDigest& digest, bool encrypted) const {
  return StoredEncrypted(ChunkPath(digest)) == encrypted;
}

bool ChunkStore::Contains(const ChunkDigest& digest) const { return fs_.Exists(ChunkPath(digest)); }

ChunkDigest ChunkStore::DigestOf(std::string_view data) const {
  return options_.key ? options_.key->ChunkId(data) : Sha256Digest(data);
}

Result<ChunkStore::Inserted> ChunkStore::Insert(std::string_view data) {
  if (data.size() > kMaxChunk) return Fail(InvalidArgument("chunk of " + std::to_string(data.size()) + " bytes is too large"));
  ChunkDigest digest = DigestOf(data);
  // Already there (in this crypt mode): mark it used now, so a GC running meanwhile keeps it.
  if (StoredEncrypted(ChunkPath(digest)) == (options_.key != nullptr)) {
    std::error_code ec;
    std::filesystem::last_write_time(ChunkPath(digest), std::filesystem::file_time_type::clock::now(), ec);
    if (!ec) return Inserted{digest, true, 0};
    // Removed by a GC between the check and the touch: store it again.
  }
  std::string payload;
  payload.resize(ZSTD_compressBound(data.size()));
  size_t n = ZSTD_compress(payload.data(), payload.size(), data.data(), data.size(), options_.zstd_level);
  bool compressed = !ZSTD_isError(n) && n < data.size();
  if (compressed) payload.resize(n);
  else payload.assign(data);
  const BackupKey* key = options_.key.get();
  std::string blob(kMagic, sizeof kMagic);
  blob += static_cast<char>(key ? (compressed ? kCryptZstd : kCryptRaw) : (compressed ? kZstd : kRaw));
  blob.append(3, '\0');
  PutLe32(blob, static_cast<uint32_t>(data.size()));
  if (key) {
    HEARTH_ASSIGN_OR_RETURN(std::string sealed, key->Seal(payload, blob));
    ChunkDigest sum = Sha256Digest(sealed);
    blob.append(reinterpret_cast<const char*>(sum.data()), sum.size());
    blob += sealed;
  } else {
    blob += payload;
  }
  return PutBlob(digest, blob);
}

Result<ChunkStore::Inserted> ChunkStore::InsertBlob(const ChunkDigest& digest, std::string_view blob) {
  if (blob.size() < kHeader || std::memcmp(blob.data(), kMagic, sizeof kMagic) != 0 ||
      static_cast<uint8_t>(blob[8]) > kCryptZstd || blob.size() > kMaxChunk + kHeader + 1024)
    return Fail(Internal(Corrupt(digest, "not a chunk blob")));
  return PutBlob(digest, blob);
}

Result<ChunkStore::Inserted> ChunkStore::PutBlob(const ChunkDigest& digest, std::string_view blob) {
  Inserted r;
  r.digest = digest;
  std::string path = ChunkPath(r.digest);
  // Dedup matches the crypt mode as well as the name. A plain chunk was checked against its
  // name (SHA-256) when it was stored, so it is kept; a sealed one could only be checked by
  // its frame (a sync from another node, without the key), so it never stands in for plain
  // data: a plain blob of the same name replaces it. A sealed blob named like a stored plain
  // chunk is refused (one of the two is forged, and it is not the plain one).
  bool sealed = BlobEncrypted(blob).value_or(false);
  if (auto stored = StoredEncrypted(path)) {
    if (*stored == sealed) {
      std::error_code ec;
      std::filesystem::last_write_time(path, std::filesystem::file_time_type::clock::now(), ec);
      if (!ec) {
        r.existed = true;
        return r;
      }
    } else if (!*stored) {
      return Fail(Internal("chunk " + DigestHex(digest) + " is stored unencrypted here: refusing an encrypted chunk of the same name"));
    }
  }
  std::string dir = ParentDir(path);
  if (!fs_.Exists(dir)) HEARTH_TRY(fs_.MakeDirs(dir).map_error([&](Error e) { return e.WithContext("chunk store " + root_); }));
  static std::atomic<uint64_t> sequence{0};
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(sequence.fetch_add(1));
  auto fail = [&](Error e) -> Error {
    (void)fs_.Remove(tmp);
    return e.WithContext("writing chunk " + DigestHex(r.digest));
  };
  auto file = fs_.Open(tmp, OpenMode::kCreateNew, 0600);
  if (!file) return Fail(fail(file.error()));
  Status st = (*file)->Append(blob);
  if (st) st = (*file)->Sync();
  if (Status closed = (*file)->Close(); st && !closed) st = closed;
  if (st) st = fs_.Rename(tmp, path);
  if (!st) return Fail(fail(st.error()));
  {
    std::lock_guard lock(dirty_mu_);
    dirty_dirs_.insert(dir);
  }
  r.stored_bytes = blob.size();
  return r;
}

Result<std::string> ChunkStore::Read(const ChunkDigest& digest, bool encrypted_only) const {
  auto blob = fs_.Read(ChunkPath(digest), kMaxChunk + kHeader + 1024);
  if (!blob) {
    if (blob.error().code == ErrorCode::kNotFound) return Fail(NotFound("chunk " + DigestHex(digest) + " is missing"));
    return Fail(Internal(Corrupt(digest, blob.error().message)));
  }
  auto content = DecodeBlob(digest, *blob, options_.key.get(), encrypted_only);
  // A chunk that fails its check is moved aside, so that the next backup holding this data
  // writes it again instead of trusting the broken copy (Proxmox Backup Server's ".bad").
  // A missing key says nothing about the chunk.
  if (!content && content.error().code == ErrorCode::kInternal)
    (void)fs_.Rename(ChunkPath(digest), ChunkPath(digest) + ".bad");
  return content;
}

Result<std::string> ChunkStore::ReadBlob(const ChunkDigest& digest, const BackupKey* key) const {
  auto blob = fs_.Read(ChunkPath(digest), kMaxChunk + kHeader + 1024);
  if (!blob) {
    if (blob.error().code == ErrorCode::kNotFound) return Fail(NotFound("chunk " + DigestHex(digest) + " is missing"));
    return Fail(Internal(Corrupt(digest, blob.error().message)));
  }
  auto checked = DecodeBlob(digest, *blob, key, false);
  // Without the key an encrypted blob is checked by its frame and checksum (DecodeBlob did).
  if (!checked && checked.error().code == ErrorCode::kFailedPrecondition) return std::move(*blob);
  if (!checked) {
    (void)fs_.Rename(ChunkPath(digest), ChunkPath(digest) + ".bad");
    return Fail(checked.error());
  }
  return std::move(*blob);
}

std::optional<bool> ChunkStore::BlobEncrypted(std::string_view blob) {
  if (blob.size() < kHeader || std::memcmp(blob.data(), kMagic, sizeof kMagic) != 0) return std::nullopt;
  uint8_t encoding = static_cast<uint8_t>(blob[8]);
  if (encoding > kCryptZstd) return std::nullopt;
  return encoding == kCryptRaw || encoding == kCryptZstd;
}

Result<uint32_t> ChunkStore::CheckBlob(const ChunkDigest& digest, std::string_view blob, bool encrypted) {
  if (blob.size() < kHeader || blob.size() > kMaxChunk + kHeader + 1024 || std::memcmp(blob.data(), kMagic, sizeof kMagic) != 0)
    return Fail(Internal(Corrupt(digest, "not a chunk blob")));
  uint8_t encoding = static_cast<uint8_t>(blob[8]);
  bool sealed = encoding == kCryptRaw || encoding == kCryptZstd;
  if (encoding <= kCryptZstd && sealed != encrypted)
    return Fail(Internal(Corrupt(digest, encrypted ? "a plain chunk in an encrypted backup" : "an encrypted chunk in a plain backup")));
  auto checked = DecodeBlob(digest, blob, nullptr, encrypted);
  // Sealed: DecodeBlob checked the frame and the checksum, then stopped for want of a key.
  if (!checked && !(sealed && checked.error().code == ErrorCode::kFailedPrecondition)) return Fail(checked.error());
  return GetLe32(blob.data() + 12);
}

Result<std::string> ChunkStore::DecodeBlob(const ChunkDigest& digest, std::string_view b, const BackupKey* key,
                                           bool encrypted_only) {
  if (b.size() < kHeader || std::memcmp(b.data(), kMagic, sizeof kMagic) != 0)
    return Fail(Internal(Corrupt(digest, "not a chunk blob")));
  uint8_t encoding = static_cast<uint8_t>(b[8]);
  uint32_t size = GetLe32(b.data() + 12);
  if (size > kMaxChunk) return Fail(Internal(Corrupt(digest, "size out of range")));
  if (encoding > kCryptZstd) return Fail(Internal(Corrupt(digest, "unknown encoding")));
  bool encrypted = encoding == kCryptRaw || encoding == kCryptZstd;
  // An encrypted backup's chunks are all encrypted: a plain one in its index was put there.
  // (Not a damaged chunk: it may be a plain backup's, so it is not moved aside.)
  if (encrypted_only && !encrypted)
    return Fail(FailedPrecondition("chunk " + DigestHex(digest) + " is not encrypted, but its backup is: refused"));
  std::string opened;
  std::string_view payload = b.substr(kHeader);
  if (encrypted) {
    if (payload.size() < kSealSum + kSealOverhead) return Fail(Internal(Corrupt(digest, "truncated")));
    std::string_view sealed = payload.substr(kSealSum);
    ChunkDigest sum = Sha256Digest(sealed);
    if (std::memcmp(sum.data(), payload.data(), kSealSum) != 0) return Fail(Internal(Corrupt(digest, "checksum mismatch")));
    if (!key)
      return Fail(FailedPrecondition("chunk " + DigestHex(digest) + " is encrypted and no encryption key is configured"));
    auto plain = key->Open(sealed, b.substr(0, kHeader));
    if (!plain) return Fail(Internal(Corrupt(digest, plain.error().message)));
    opened = std::move(*plain);
    payload = opened;
  }
  std::string out;
  if (encoding == kRaw || encoding == kCryptRaw) {
    out = std::string(payload);
  } else {
    out.resize(size);
    size_t n = ZSTD_decompress(out.data(), out.size(), payload.data(), payload.size());
    if (ZSTD_isError(n)) return Fail(Internal(Corrupt(digest, std::string("zstd: ") + ZSTD_getErrorName(n))));
    out.resize(n);
  }
  if (out.size() != size) return Fail(Internal(Corrupt(digest, "wrong size")));
  // An encrypted chunk is named by the keyed id; a plain one by its SHA-256, with or
  // without a key (a store keeps the plain chunks of backups made before its key was set).
  ChunkDigest actual = encrypted ? key->ChunkId(out) : Sha256Digest(out);
  if (actual != digest) return Fail(Internal(Corrupt(digest, "digest mismatch")));
  return out;
}

Status ChunkStore::Touch(const ChunkDigest& digest) {
  std::error_code ec;
  std::filesystem::last_write_time(ChunkPath(digest), std::filesystem::file_time_type::clock::now(), ec);
  if (ec) return Fail(NotFound("chunk " + DigestHex(digest) + " is missing"));
  return Ok();
}

Status ChunkStore::Sync() {
  std::set<std::string> dirs;
  {
    std::lock_guard lock(dirty_mu_);
    dirs.swap(dirty_dirs_);
  }
  bool made_chunks_dir = !dirs.empty();
  for (const auto& d : dirs) {
    if (auto st = fs_.SyncDir(d); !st) {
      std::lock_guard lock(dirty_mu_);
      dirty_dirs_.insert(dirs.begin(), dirs.end());
      return Fail(st.error().WithContext("chunk store " + root_));
    }
  }
  // The prefix directories themselves may be new.
  if (made_chunks_dir) HEARTH_TRY(fs_.SyncDir(root_ + "/.chunks"));
  return Ok();
}

Result<ChunkStore::SweepStats> ChunkStore::Sweep(std::chrono::system_clock::time_point cutoff) {
  namespace fs = std::filesystem;
  SweepStats stats;
  std::error_code ec;
  fs::path chunks = root_ + "/.chunks";
  if (!fs::exists(chunks, ec)) return stats;
  // file_time_type's clock is not system_clock; convert through "now" on both.
  auto cutoff_ft = fs::file_time_type::clock::now() - (std::chrono::system_clock::now() - cutoff);
  for (const auto& prefix : fs::directory_iterator(chunks, ec)) {
    if (!prefix.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(prefix.path(), ec)) {
      std::error_code fec;
      auto mtime = f.last_write_time(fec);
      if (fec) continue;
      uint64_t size = f.file_size(fec);
      std::string name = f.path().filename().string();
      bool tmp = name.find(".tmp.") != std::string::npos;
      if (!tmp && !ParseDigestHex(name)) continue;  // not ours: left alone
      if (mtime < cutoff_ft) {
        if (fs_.Remove(f.path().string())) {
          if (!tmp) {
            ++stats.removed;
            stats.removed_bytes += size;
          }
        }
      } else if (!tmp) {
        ++stats.kept;
        stats.kept_bytes += size;
      }
    }
  }
  if (ec) return Fail(Internal("chunk store " + root_ + ": " + ec.message()));
  return stats;
}

}  // namespace hearth

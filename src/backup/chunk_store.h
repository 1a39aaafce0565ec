// ChunkStore: content-addressed, deduplicated storage of disk-image chunks (issue 10; design
// in docs/design/backup.md). A chunk is up to 4 MiB of a disk image, named by the SHA-256 of
// its plain content and stored once however many backups hold it, zstd-compressed, at
//   <root>/.chunks/<first 4 hex digits>/<64 hex digits>
// as Proxmox Backup Server lays out its datastores. Every read checks the content against
// its name, so a changed byte is an error naming the chunk, never wrong data.
//
// Durability: a chunk is written to a temporary file, fsynced and renamed into place, so a
// reader sees a whole chunk or none; Sync() then makes the renames durable (one fsync per
// directory touched), and must run before anything that refers to the new chunks (an index,
// a manifest) is written.
//
// Garbage collection (Proxmox's two phases): Touch() every chunk that an index refers to,
// then Sweep(cutoff) removes the chunks whose modification time is older than `cutoff`.
// Insert() touches a chunk that is already there, so a backup running during a GC keeps what
// it reuses as long as the grace period between the cutoff and the GC's start is longer than
// the backup (kGcGrace).
//
// Encryption (ChunkStoreOptions::key, backup/crypt_key.h): chunks are named by the keyed
// HMAC of their content instead of its SHA-256 and stored sealed with AES-256-GCM (the blob's
// header authenticated with them). A store may hold both kinds (backups made before a key was
// set keep their plain chunks); reading an encrypted chunk needs the key it was made with.
// Sync copies blobs as they are stored, so an offsite copy needs no key and reveals nothing.
//
// Thread-safety: every method is safe from any thread and from several processes on the same
// root; two inserts of one chunk race harmlessly (same content, atomic rename).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "backup/crypt_key.h"
#include "core/result.h"
#include "sys/file_system.h"

namespace hearth {

using ChunkDigest = std::array<uint8_t, 32>;

// SHA-256 of `data`.
ChunkDigest Sha256Digest(std::string_view data);
std::string DigestHex(const ChunkDigest& digest);
// 64 lowercase hex digits, nothing else.
std::optional<ChunkDigest> ParseDigestHex(std::string_view hex);

struct ChunkStoreOptions {
  int zstd_level = 1;  // bench/chunk_store_bench: level 1 is the fastest that still pays off
  std::shared_ptr<const BackupKey> key;  // set: new chunks are encrypted, and encrypted ones readable
};

class ChunkStore {
 public:
  static constexpr size_t kChunkSize = 4 << 20;  // Proxmox's fixed chunk size for VM images
  static constexpr size_t kMaxChunk = 16 << 20;  // larger chunks are refused, stored or read
  // Longer than any backup: Proxmox's is 24 h 5 min (its chunks' atime may lag a day).
  static constexpr std::chrono::hours kGcGrace{25};

  ChunkStore(FileSystem& fs, std::string root, ChunkStoreOptions options = {});
  const std::string& root() const { return root_; }
  std::string ChunkPath(const ChunkDigest& digest) const;
  const BackupKey* key() const { return options_.key.get(); }
  // The name Insert gives `data`: its SHA-256, or with a key its keyed HMAC.
  ChunkDigest DigestOf(std::string_view data) const;

  struct Inserted {
    ChunkDigest digest{};
    bool existed = false;       // deduplicated: nothing written
    uint64_t stored_bytes = 0;  // on disk (compressed), 0 when it existed
  };
  // Stores `data` (at most kMaxChunk bytes) under its digest unless it is there already.
  // Errors name the file ("writing chunk <hex>: No space left on device"); nothing is left
  // behind on failure.
  Result<Inserted> Insert(std::string_view data);
  // The chunk's plain content, checked against its digest. Errors: "chunk <hex> is missing",
  // "chunk <hex> is corrupt (<why>)"; a corrupt chunk is renamed to "<hex>.bad" so that the
  // next backup of the same data stores it again. An encrypted chunk without the key:
  // kFailedPrecondition "chunk <hex> is encrypted and no encryption key is configured".
  // A chunk sealed with another key reads as corrupt, so callers check the backup's key
  // fingerprint first (BackupDatastore does) before they read its chunks.
  // `encrypted_only` (the chunks of an encrypted backup): a plain chunk is corrupt.
  Result<std::string> Read(const ChunkDigest& digest, bool encrypted_only = false) const;
  bool Contains(const ChunkDigest& digest) const;
  // Present and stored in this crypt mode (a sync asks so: a sealed blob never stands in for
  // plain data, see InsertBlob).
  bool ContainsAs(const ChunkDigest& digest, bool encrypted) const;
  // The content of a chunk blob as stored (hostile input: bounded, checked against `digest`;
  // `key` decrypts an encrypted blob and is not needed for a plain one).
  static Result<std::string> DecodeBlob(const ChunkDigest& digest, std::string_view blob, const BackupKey* key,
                                        bool encrypted_only = false);
  // The blob as stored, for a copy to another store: checked in full when it is plain or
  // `key` is given (the key the backup was made with), otherwise its frame and the checksum
  // of its sealed payload (an offsite copy needs no key). A blob that fails is renamed
  // "<hex>.bad" as Read does.
  Result<std::string> ReadBlob(const ChunkDigest& digest, const BackupKey* key) const;
  // A blob received from another store (hostile input): a plain one is decoded and must hash
  // to `digest`; an encrypted one is checked by its frame and the checksum of its sealed
  // payload (its content needs the key). `encrypted` (a chunk of an encrypted backup): a plain
  // blob is refused, and the other way round. Returns the content's length the blob declares.
  // Errors: kInternal "chunk <hex> is corrupt (<why>)".
  // Whether a blob with a valid frame is sealed (nullopt: not a chunk blob).
  static std::optional<bool> BlobEncrypted(std::string_view blob);
  static Result<uint32_t> CheckBlob(const ChunkDigest& digest, std::string_view blob, bool encrypted);
  // Stores a blob that ReadBlob gave (another store's) under `digest`, unless it is there (then
  // touches it, as Insert does). The blob's frame is checked; its content is the caller's word
  // (CheckBlob). Dedup matches the crypt mode too: a plain blob replaces a sealed one of the
  // same name; a sealed blob named like a stored plain chunk is refused (kInternal).
  Result<Inserted> InsertBlob(const ChunkDigest& digest, std::string_view blob);
  // GC's mark: sets the chunk's modification time to now. "chunk <hex> is missing" if absent.
  Status Touch(const ChunkDigest& digest);
  // Makes every chunk inserted so far durable (fsync of the directories they were renamed in).
  Status Sync();

  struct SweepStats {
    uint64_t removed = 0, removed_bytes = 0, kept = 0, kept_bytes = 0;
  };
  // GC's sweep: removes chunks last modified before `cutoff`, and temporary files left by a
  // crash that are older than it.
  Result<SweepStats> Sweep(std::chrono::system_clock::time_point cutoff);

 private:
  Result<Inserted> PutBlob(const ChunkDigest& digest, std::string_view blob);
  FileSystem& fs_;
  std::string root_;
  ChunkStoreOptions options_;
  std::mutex dirty_mu_;
  std::set<std::string> dirty_dirs_;  // GUARDED_BY(dirty_mu_): renamed into, not yet fsynced
};

}  // namespace hearth

// BackupDatastore: the backups kept in one place (a storage of content `backup`): a
// ChunkStore plus one directory per backup snapshot, laid out as Proxmox Backup Server's
// datastores are,
//   <root>/.chunks/…                                  the chunks (ChunkStore)
//   <root>/vm/<vmid>/<YYYY-MM-DDTHH:MM:SSZ>/           one backup of a VM
//       index.json                                     the manifest, written last
//       drive-scsi0.img.fidx                           one FixedIndex per disk
//       qemu-server.conf                               the VM config as it was
//       notes, .protected, verify.json                 what may change afterwards
// and named by Proxmox's backup volume ids, "<storage>:backup/vm/<vmid>/<time>".
//
// A snapshot is written into "<root>/vm/<vmid>/.<time>.tmp/" and renamed into place once its
// manifest is durable, so a crash leaves either a whole backup or a temporary directory that
// the next garbage collection removes (its chunks are protected by the GC grace period while
// a writer may still be running). The manifest lists every file with its size and SHA-256,
// so a changed index or config is found before it is used.
//
// Encryption: with a key (ChunkStoreOptions::key) a backup's chunks and its small files
// (the VM config) are sealed, and the manifest records the key's fingerprint; the indexes,
// manifest, notes and verify state stay plain (they hold chunk ids, sizes and checksums),
// so GC, prune, listing and sync need no key. Reading a backup's content with a key of
// another fingerprint, or without a key, fails before anything is read (CheckKey).
//
// Thread-safety: every method is safe from any thread; one writer per snapshot name.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backup/chunk_store.h"
#include "backup/fixed_index.h"
#include "core/result.h"
#include "sys/file_system.h"

namespace hearth {

// "vm/<vmid>/<time>" with the time as RFC 3339 UTC ("2026-12-02T08:00:00Z").
struct BackupSnapshotId {
  int vmid = 0;
  int64_t time = 0;  // unix seconds
  std::string Name() const;
  // "vm/100/2026-12-02T08:00:00Z" (also the tail of a backup volid); nothing else parses.
  static std::optional<BackupSnapshotId> Parse(std::string_view name);
  bool operator<(const BackupSnapshotId& o) const { return vmid != o.vmid ? vmid < o.vmid : time < o.time; }
  bool operator==(const BackupSnapshotId& o) const { return vmid == o.vmid && time == o.time; }
};
std::string Rfc3339Utc(int64_t unix_seconds);

struct BackupFileEntry {
  std::string filename;  // "drive-scsi0.img.fidx", "qemu-server.conf"
  uint64_t size = 0;     // bytes of the file
  std::string csum;      // SHA-256 hex of the file
  uint64_t image_size = 0;  // for .fidx: the image's bytes
  bool encrypted = false;   // "crypt-mode": "encrypt": a sealed blob, or an index of sealed chunks
};

struct BackupManifest {
  BackupSnapshotId id;
  std::vector<BackupFileEntry> files;
  std::string key_fingerprint;  // "" when not encrypted
  std::string signature;        // encrypted: BackupKey::Sign of signed_text
  std::string signed_text;      // the manifest without its signature, as signed
};

struct BackupSnapshotInfo {
  BackupSnapshotId id;
  uint64_t size = 0;  // the images' bytes (what a restore writes)
  std::string notes;
  bool is_protected = false;
  std::string verify_state, verify_upid;  // "" when never verified; "ok" or "failed"
  std::string key_fingerprint;            // "" when not encrypted
};

class BackupDatastore {
 public:
  BackupDatastore(FileSystem& fs, std::string root, ChunkStoreOptions options = {});
  ChunkStore& chunks() { return chunks_; }
  const std::string& root() const { return root_; }

  class Writer {
   public:
    // Stores an image's index ("drive-scsi0" -> "drive-scsi0.img.fidx").
    Status AddImage(const std::string& drive, const FixedIndex& index);
    // Stores a small file ("qemu-server.conf"), sealed when the store has a key.
    Status AddBlob(const std::string& filename, const std::string& content);
    // Stores a file of another store's backup as it was stored there (sync): `entry` says
    // what it is; `bytes` must match its size and checksum.
    Status CopyFile(const BackupFileEntry& entry, const std::string& bytes);
    // The fingerprint the manifest records: the store key's by default; a sync sets the
    // source backup's.
    void SetKeyFingerprint(std::string fingerprint) { key_fingerprint_ = std::move(fingerprint); }
    // A copy's manifest signature (the source's; the same manifest text is written).
    void SetSignature(std::string signature) { signature_ = std::move(signature); }
    // Notes and protection published with the snapshot (a sync: a crash right after Finish
    // must not leave the copy unprotected, where its own prune could remove it).
    Status SetNotes(const std::string& notes);
    Status SetProtected(bool on);
    // Writes the manifest and publishes the snapshot. Fails if it already exists.
    Result<BackupSnapshotInfo> Finish();
    // Removes what was written (the chunks stay until a GC finds nobody needs them).
    void Abort();
    ~Writer();
    const BackupSnapshotId& id() const { return id_; }

   private:
    friend class BackupDatastore;
    Writer(BackupDatastore& store, BackupSnapshotId id, std::string tmp_dir);
    Status Put(const std::string& filename, const std::string& content, uint64_t image_size, bool encrypted);
    BackupDatastore& store_;
    BackupSnapshotId id_;
    std::string tmp_dir_;
    std::vector<BackupFileEntry> files_;
    std::string key_fingerprint_, signature_;
    uint64_t image_bytes_ = 0;
    bool done_ = false;
  };
  // Starts a snapshot of `vmid` at `time`. "backup 'vm/100/…' already exists" if taken.
  Result<std::unique_ptr<Writer>> Begin(int vmid, int64_t time);

  // Every finished snapshot (of `vmid`, or all when 0), oldest first.
  Result<std::vector<BackupSnapshotInfo>> List(int vmid = 0);
  Result<BackupSnapshotInfo> Info(const BackupSnapshotId& id);
  // The manifest, checked. "backup 'vm/100/…' does not exist".
  Result<BackupManifest> Manifest(const BackupSnapshotId& id);
  // index.json as stored (what a sync copies and the other side parses with ParseManifest).
  Result<std::string> ManifestText(const BackupSnapshotId& id);
  // The manifest in `text`, which must describe backup `id` (hostile input: a manifest from
  // another node is checked as one read from disk). Errors: kInternal "backup '<id>': manifest …".
  static Result<BackupManifest> ParseManifest(std::string_view text, const BackupSnapshotId& id);
  // A file of the snapshot as stored, checked against the manifest ("… has been modified").
  Result<std::string> ReadFile(const BackupSnapshotId& id, const std::string& filename);
  // The content of a small file (AddBlob), decrypted when it was sealed (after CheckKey).
  Result<std::string> ReadBlob(const BackupSnapshotId& id, const std::string& filename);
  // Whether this store's key can read the backup `m` describes: ok when it is not encrypted
  // or the fingerprints match and the manifest's signature is right; otherwise
  // kFailedPrecondition naming both fingerprints ("wrong encryption key: …") or saying that
  // the storage has none, or kInternal for a signature that does not match.
  Status CheckKey(const BackupManifest& m) const;
  Result<FixedIndex> ReadIndex(const BackupSnapshotId& id, const std::string& drive);
  // Removes a snapshot; refused while it is protected (Proxmox's text).
  Status Remove(const BackupSnapshotId& id);
  Status SetNotes(const BackupSnapshotId& id, const std::string& notes);
  Status SetProtected(const BackupSnapshotId& id, bool on);
  // Reads every chunk of every image of the snapshot and records the result (verify.json).
  // Returns the problems found, each naming the disk and the chunk; empty when all is well.
  // An encrypted backup without its key is checked without it (`without_key` says so):
  // files against the manifest, chunks against their frame and checksum.
  Result<std::vector<std::string>> Verify(const BackupSnapshotId& id, const std::string& upid,
                                          bool* without_key = nullptr);

  struct GcStats {
    uint64_t indexes = 0;
    ChunkStore::SweepStats sweep;
  };
  // Marks the chunks of every index (finished snapshots and writers still running), then
  // sweeps what nobody touched since `start - kGcGrace`; leftover temporary snapshots older
  // than the grace period are removed first. `start` is the GC's own start time.
  Result<GcStats> GarbageCollect(std::chrono::system_clock::time_point start);

 private:
  std::string Dir(const BackupSnapshotId& id) const;
  // ReadFile with the manifest already read (one read of index.json per operation).
  Result<std::string> ReadFileOf(const BackupManifest& m, const std::string& filename);
  FileSystem& fs_;
  std::string root_;
  ChunkStore chunks_;
};

}  // namespace hearth

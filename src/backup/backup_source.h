// Where a sync reads backups from: a datastore on this node (LocalBackupSource) or one on
// another hearth node read over its API (jobs/remote_backup_source.h). SyncDatastore copies
// from either with the same checks, so "what a valid copy is" is decided in one place.
//
// Answers are checked against what the caller asked for: the manifest names the backup asked
// for and a file matches its manifest entry (size, SHA-256); a remote source checks what it
// received, the local one what it read from disk. Chunk blobs are checked by SyncDatastore
// itself (ChunkStore::CheckBlob and the index's chunk length), whatever the source.
// Thread-safety: one source per sync run, used from that run's thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backup/datastore.h"
#include "core/result.h"

namespace hearth {

// What a copy of one backup needs besides its files and chunks.
struct BackupCopyInfo {
  BackupManifest manifest;
  std::string notes;  // in full
  bool is_protected = false;
};

class BackupSource {
 public:
  virtual ~BackupSource() = default;
  // For the task log: "storage 'local'" or "remote 'nodeb' storage 'backup'".
  virtual std::string Describe() const = 0;
  // The finished backups (of `vmid`, or all when 0), oldest first. Notes may be cut to their
  // first line (the content listing's); CopyInfo has them in full.
  virtual Result<std::vector<BackupSnapshotInfo>> List(int vmid) = 0;
  virtual Result<BackupCopyInfo> CopyInfo(const BackupSnapshotId& id) = 0;
  // A file `manifest` lists, as stored, checked against its entry.
  virtual Result<std::string> ReadFile(const BackupManifest& manifest, const std::string& filename) = 0;
  // The blob of a chunk one of the backup's indexes names, as stored (`encrypted`: the
  // backup's crypt mode; the local source checks its blobs in full when it holds the key).
  virtual Result<std::string> ReadChunk(const BackupSnapshotId& id, const ChunkDigest& digest, bool encrypted) = 0;
};

// A datastore on this node. Chunks of an encrypted backup are checked in full when the store
// holds the key they were made with, else by their frame and checksum.
class LocalBackupSource final : public BackupSource {
 public:
  // `store` may be a non-owning pointer (aliasing an empty shared_ptr) when the caller keeps it.
  LocalBackupSource(std::shared_ptr<BackupDatastore> store, std::string name)
      : store_(std::move(store)), name_(std::move(name)) {}
  std::string Describe() const override { return "storage '" + name_ + "'"; }
  Result<std::vector<BackupSnapshotInfo>> List(int vmid) override { return store_->List(vmid); }
  Result<BackupCopyInfo> CopyInfo(const BackupSnapshotId& id) override;
  Result<std::string> ReadFile(const BackupManifest& manifest, const std::string& filename) override {
    return store_->ReadFile(manifest.id, filename);
  }
  Result<std::string> ReadChunk(const BackupSnapshotId& id, const ChunkDigest& digest, bool encrypted) override;

 private:
  std::shared_ptr<BackupDatastore> store_;
  std::string name_;
  const BackupKey* key_ = nullptr;  // the key of the backup CopyInfo was last asked about, when it is the store's
};

}  // namespace hearth

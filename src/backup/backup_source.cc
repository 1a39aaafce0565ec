#include "backup/backup_source.h"

namespace hearth {

Result<BackupCopyInfo> LocalBackupSource::CopyInfo(const BackupSnapshotId& id) {
  BackupCopyInfo out;
  HEARTH_ASSIGN_OR_RETURN(out.manifest, store_->Manifest(id));
  HEARTH_ASSIGN_OR_RETURN(BackupSnapshotInfo info, store_->Info(id));
  out.notes = info.notes;
  out.is_protected = info.is_protected;
  // Encrypted chunks are checked in full only with the key they were made with.
  key_ = store_->CheckKey(out.manifest) ? store_->chunks().key() : nullptr;
  return out;
}

Result<std::string> LocalBackupSource::ReadChunk(const BackupSnapshotId&, const ChunkDigest& digest, bool encrypted) {
  HEARTH_ASSIGN_OR_RETURN(std::string blob, store_->chunks().ReadBlob(digest, encrypted ? key_ : nullptr));
  // ReadBlob checked the content; the crypt mode must still be the backup's.
  if (ChunkStore::BlobEncrypted(blob) != encrypted)
    return Fail(Internal("chunk " + DigestHex(digest) + " is corrupt (" +
                         (encrypted ? "a plain chunk in an encrypted backup)" : "an encrypted chunk in a plain backup)")));
  return blob;
}

}  // namespace hearth

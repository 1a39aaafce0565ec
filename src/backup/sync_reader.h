// The serving side of a pull: what another hearth node syncing from this one reads, at
//   GET /nodes/{node}/storage/{storage}/hearth/backup?volume=        CopyInfo as JSON
//   GET …/hearth/backup-file?volume=&file=                           a file the manifest lists
//   GET …/hearth/chunk?volume=&digest=                               a chunk blob as stored
// (docs/reference/hearth-sync.md B1). A chunk is only served to a reader of a backup whose
// indexes name it, Proxmox Backup Server's registered-chunk rule (proxmox-backup
// src/api2/reader/mod.rs "download chunk {digest} not allowed"): the right to read one VM's
// backups is not a right to probe for any digest in the store.
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backup/datastore.h"
#include "core/result.h"

namespace hearth {

class BackupSyncReader {
 public:
  static constexpr uint64_t kMaxFile = 64 << 20;  // an 8 TiB disk's index; larger ones are not served (v1)

  // {"manifest": "<index.json as stored>", "notes": "<full>", "protected": 0|1}.
  static Result<nlohmann::json> CopyInfo(BackupDatastore& store, const BackupSnapshotId& id);
  // A file the backup's manifest lists, checked against it. kNotFound for another name.
  static Result<std::string> File(BackupDatastore& store, const BackupSnapshotId& id, const std::string& filename);
  // The blob of `digest` as stored (plain ones checked in full, encrypted ones by their frame;
  // a damaged one is moved aside and answers "chunk <hex> is corrupt (…)"). kPermissionDenied
  // "chunk <hex> is not in backup '<volid>'" unless one of the backup's indexes names it.
  Result<std::string> Chunk(BackupDatastore& store, const BackupSnapshotId& id, const ChunkDigest& digest,
                            const std::string& volid);

 private:
  // The digests of a backup's indexes, sorted; the last few backups asked about are kept.
  Result<std::shared_ptr<const std::vector<ChunkDigest>>> Digests(BackupDatastore& store, const BackupSnapshotId& id);
  static constexpr size_t kCached = 4;
  std::mutex mu_;
  std::list<std::pair<std::string, std::shared_ptr<const std::vector<ChunkDigest>>>> cache_;  // GUARDED_BY(mu_), newest first
};

}  // namespace hearth

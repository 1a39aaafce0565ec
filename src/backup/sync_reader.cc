#include "backup/sync_reader.h"

#include <algorithm>

#include "core/strings.h"

namespace hearth {

Result<nlohmann::json> BackupSyncReader::CopyInfo(BackupDatastore& store, const BackupSnapshotId& id) {
  HEARTH_ASSIGN_OR_RETURN(std::string text, store.ManifestText(id));
  HEARTH_TRY(BackupDatastore::ParseManifest(text, id).map([](auto&&) {}));
  HEARTH_ASSIGN_OR_RETURN(BackupSnapshotInfo info, store.Info(id));
  return nlohmann::json{{"manifest", text}, {"notes", info.notes}, {"protected", info.is_protected ? 1 : 0}};
}

Result<std::string> BackupSyncReader::File(BackupDatastore& store, const BackupSnapshotId& id, const std::string& filename) {
  HEARTH_ASSIGN_OR_RETURN(BackupManifest m, store.Manifest(id));
  for (const auto& f : m.files) {
    if (f.filename != filename) continue;
    if (f.size > kMaxFile) return Fail(Internal("file too large for sync: " + filename + " (" + std::to_string(f.size) + " bytes)"));
    return store.ReadFile(id, filename);
  }
  return Fail(NotFound("backup '" + id.Name() + "' has no file '" + filename + "'"));
}

Result<std::shared_ptr<const std::vector<ChunkDigest>>> BackupSyncReader::Digests(BackupDatastore& store,
                                                                                 const BackupSnapshotId& id) {
  std::string key = store.root() + "\n" + id.Name();
  {
    std::lock_guard lock(mu_);
    for (auto it = cache_.begin(); it != cache_.end(); ++it)
      if (it->first == key) {
        cache_.splice(cache_.begin(), cache_, it);
        return cache_.front().second;
      }
  }
  HEARTH_ASSIGN_OR_RETURN(BackupManifest m, store.Manifest(id));
  auto digests = std::make_shared<std::vector<ChunkDigest>>();
  for (const auto& f : m.files) {
    if (!EndsWith(f.filename, ".img.fidx")) continue;
    // The same bound as File: a larger index is not served, so it is not read here either.
    if (f.size > kMaxFile) return Fail(Internal("file too large for sync: " + f.filename + " (" + std::to_string(f.size) + " bytes)"));
    HEARTH_ASSIGN_OR_RETURN(FixedIndex index, store.ReadIndex(id, f.filename.substr(0, f.filename.size() - 9)));
    digests->insert(digests->end(), index.digests.begin(), index.digests.end());
  }
  std::sort(digests->begin(), digests->end());
  digests->erase(std::unique(digests->begin(), digests->end()), digests->end());
  std::lock_guard lock(mu_);
  cache_.emplace_front(key, digests);
  if (cache_.size() > kCached) cache_.pop_back();
  return std::shared_ptr<const std::vector<ChunkDigest>>(digests);
}

Result<std::string> BackupSyncReader::Chunk(BackupDatastore& store, const BackupSnapshotId& id, const ChunkDigest& digest,
                                            const std::string& volid) {
  HEARTH_ASSIGN_OR_RETURN(auto digests, Digests(store, id));
  if (!std::binary_search(digests->begin(), digests->end(), digest))
    return Fail(PermissionDenied("chunk " + DigestHex(digest) + " is not in backup '" + volid + "'"));
  return store.chunks().ReadBlob(digest, nullptr);
}

}  // namespace hearth

// Reading another hearth node's backups over its API, for a pull sync into a storage here
// (VmService::PullBackups): the remote is a node registered under
// /cluster/hearth/replication-remotes (host, port, pinned certificate fingerprint, API token),
// `remote_store` a storage of content backup there. It serves (docs/api/backup-sync.md)
//   GET /nodes/{node}/storage/{store}/content?content=backup[&vmid=]   the list
//   GET …/hearth/backup?volume=          manifest, notes, protection
//   GET …/hearth/backup-file?volume=&file=, …/hearth/chunk?volume=&digest=
// Everything received is hostile input: bodies are bounded before they are read (16 MiB of
// JSON, a chunk blob's maximum, the file size the manifest states), volids must name
// `remote_store` and parse, the manifest must name the backup asked for and is parsed by the
// datastore's own checks, files must match it, chunks are checked as ChunkStore::CheckBlob
// does (plain ones hash to their digest). Text the remote sends into the task log is cut to
// 200 characters with control characters replaced.
// Thread-safety: one source per sync run (one kept-alive HTTPS connection), used from that
// run's thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "backup/backup_source.h"
#include "core/result.h"
#include "jobs/replication_job.h"

namespace hearth {

// Requests that get no answer for this long fail (the run fails naming the remote).
constexpr std::chrono::seconds kRemoteSyncTimeout{120};

// "remote 'x' is a directory, not a hearth node" for a path remote. Connects lazily.
Result<std::unique_ptr<BackupSource>> MakeRemoteBackupSource(const ReplicationRemote& remote, const std::string& remote_store);

// Control characters replaced by '?', cut to `max` characters (log injection).
std::string SanitizeRemoteText(std::string_view text, size_t max = 200);

}  // namespace hearth

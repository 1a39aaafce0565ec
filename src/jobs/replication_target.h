// Where a replication job sends a guest's volumes (jobs/replicator.h runs it): another hearth
// node over its API, or a directory on a btrfs file system of this host (a USB disk, a
// second pool). Both speak the three steps of jobs/replica_receiver.h.
//
// The node target talks HTTPS to the target's API with an API token (Authorization:
// PVEAPIToken=...), trusting only the certificate with the pinned SHA-256 fingerprint, at
// POST /nodes/{node}/hearth/replication/{prepare,receive,finalize} (docs/api/replication.md).
// Streams are sent as the request body, rate-limited.
// Thread-safety: one target per run, used from that run's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "http/https_client.h"
#include "jobs/replica_receiver.h"
#include "jobs/replication_job.h"
#include "model/storage_config.h"
#include "storage/plugin.h"

namespace hearth {

using ReplicationLog = std::function<void(const std::string&)>;

class ReplicationTarget {
 public:
  virtual ~ReplicationTarget() = default;
  // For the log: "node 'b' (10.0.0.2:8006)" or "directory '/mnt/usb'".
  virtual std::string Describe() const = 0;
  // Whether the transfer goes over the network (the job's rate limit applies).
  virtual bool Remote() const = 0;
  // ReplicaReceiver::Prepare on the target; `source` is this node's name.
  virtual Result<std::map<std::string, std::vector<std::string>>> Prepare(const std::string& jobid,
                                                                          const std::vector<std::string>& volids,
                                                                          const std::vector<std::string>& scan,
                                                                          int64_t last_sync, bool remove,
                                                                          const std::string& source,
                                                                          const ReplicationLog& log) = 0;
  // `progress` gets the bytes of `stream_file` sent so far; `rate_bps` 0 = no limit.
  virtual Status Receive(int guest, const std::string& volid, const std::string& snap, const std::string& base,
                         const std::string& stream_file, uint64_t rate_bps,
                         const std::function<void(uint64_t)>& progress) = 0;
  virtual Status Finalize(const std::string& jobid, const std::vector<std::string>& volids, int64_t last_sync,
                          const std::string& source, const std::string& config, const ReplicationLog& log) = 0;
};

// Makes the driver for a storage config (the daemon passes its registry's Make).
using MakeStorageFn = std::function<Result<std::shared_ptr<StoragePlugin>>(const StorageConfig& config)>;

// A directory target: each source storage `<id>` becomes a btrfs storage at `<path>/<id>`,
// the guests' configs go to `<path>/replica`. `path` must be on btrfs ("'<path>/<id>' is not
// a btrfs file system" otherwise).
std::unique_ptr<ReplicationTarget> MakePathTarget(const ReplicationRemote& remote, MakeStorageFn make_storage,
                                                  FileSystem& fs);
// An HTTPS client for a node remote: its certificate pinned by `fingerprint` (system CAs
// without one), an IPv6 host bracketed. Connects lazily.
Result<std::unique_ptr<HttpsClient>> ConnectRemote(const ReplicationRemote& remote);
// A node target; connects lazily.
Result<std::unique_ptr<ReplicationTarget>> MakeNodeTarget(const ReplicationRemote& remote);

}  // namespace hearth

// A storage replication job, as Proxmox's /cluster/replication has them (pve-guest-common
// src/PVE/ReplicationConfig.pm, ReplicationState.pm; facts in docs/reference/pve-replication.md):
// the job's configuration, its run state, and the target node it sends to. Pure: fields from
// the API with Proxmox's checks and texts, the stored JSON forms, and the schedule with
// Proxmox's failure backoff. The runner is replicator.h, the scheduler replication_scheduler.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "model/vm_snapshot.h"  // ReplicationSnapshotName

namespace hearth {

struct ReplicationJob {
  std::string id;  // "<guest>-<jobnum>", canonical (leading zeros dropped)
  int guest = 0;
  int jobnum = 0;
  std::string target;    // node name
  std::string schedule;  // calendar event; "" = Proxmox's default "*/15"
  std::optional<double> rate;  // MB/s (10^6 bytes), >= 1; none = unlimited
  std::string comment;
  bool disable = false;
  std::string remove_job;  // "", "local" or "full": marked for removal, the scheduler cleans up
  std::string source;      // node the guest was on when the job last ran

  std::string Schedule() const { return schedule.empty() ? "*/15" : schedule; }
  // The stored config form, and GET /cluster/replication's entry (type, id, guest, jobnum, ...).
  nlohmann::json ToJson() const;
  static Result<ReplicationJob> FromJson(const nlohmann::json& j);
};

// Run state of one job on the source node (ReplicationState.pm's job state).
struct ReplicationState {
  int64_t last_sync = 0;  // start time of the last successful run (its snapshots' timestamp)
  int64_t last_try = 0;   // start time of the last attempt
  int fail_count = 0;
  std::optional<double> duration;  // seconds of the last run
  std::string error;               // of the last failed run
  std::vector<std::string> volumes;  // replicated by the last run (Proxmox keeps storeid_list)
  bool schedule_now = false;         // POST .../schedule_now: due at once
  bool running = false;              // while a run goes (stored: found set at start, the run was cut short)
  nlohmann::json ToJson() const;
  static ReplicationState FromJson(const nlohmann::json& j);
};

// A node outside this one that jobs may target (hearth's own: until the cluster layer knows
// its members, a target node is named here). Either another hearth node reached over its API
// (`host`, `port`, `fingerprint` of its TLS certificate, `apitoken` "user@realm!name=secret"
// with Datastore.Allocate there), or a local directory on btrfs (`path`, e.g. a USB disk).
struct ReplicationRemote {
  std::string node;
  std::string host;
  int port = 8006;
  std::string fingerprint;
  std::string apitoken;  // never returned by the API
  std::string path;
  bool IsPath() const { return !path.empty(); }
  nlohmann::json ToJson(bool with_secret) const;
  static Result<ReplicationRemote> FromJson(const nlohmann::json& j);
};

// "100-0" -> (100, 0); Proxmox's pve-replication-job-id with its texts ("invalid replication
// job id '<id>'", "... (guest IDs < 100 are reserved)").
Result<std::pair<int, int>> ParseReplicationJobId(const std::string& id);

// POST /cluster/replication's fields: id, type (local), target, schedule, rate, comment,
// disable, remove_job, source. Errors name the field.
Result<ReplicationJob> MakeReplicationJob(const std::map<std::string, std::string>& fields);
// PUT: `set` over `current` and `remove` (the `delete` list); target and type are fixed
// ("unable to delete required option 'target'", "no such option 'x'").
Result<ReplicationJob> UpdateReplicationJob(const ReplicationJob& current, const std::map<std::string, std::string>& set,
                                            const std::vector<std::string>& remove);
const std::vector<std::string>& ReplicationJobFields();

// POST /cluster/hearth/replication-remotes' fields: node, host, port, fingerprint, apitoken, path.
Result<ReplicationRemote> MakeReplicationRemote(const std::map<std::string, std::string>& fields);
const std::vector<std::string>& ReplicationRemoteFields();

// When the job runs next (ReplicationState.pm job_status): 1 when marked for removal or asked
// to run now (schedule_now); after failures last_try + 5, 10, 15, then every 30 minutes;
// otherwise the schedule's next event after last_try; 0 = never (disabled, or the schedule
// has no further event).
int64_t NextSync(const ReplicationJob& job, const ReplicationState& state);

}  // namespace hearth

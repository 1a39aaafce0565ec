// A datastore job: verify, garbage collection, offsite sync, prune or a restore drill of the
// backups on one storage, on a calendar schedule. Beyond Proxmox VE, whose storages have no such jobs;
// Proxmox Backup Server has them (verify jobs with `ignore-verified` and `outdated-after`,
// sync jobs, prune jobs, a datastore's `gc-schedule`: proxmox-backup
// src/api2/config/{verify,sync,prune}.rs), and hearth takes its field names, in the job
// shape of /cluster/backup. API: /cluster/hearth/datastore-jobs (docs/api/datastore-jobs.md).
// Pure: the fields, their checks (errors name the field, in Proxmox's words) and the JSON
// forms. The scheduler is datastore_job_scheduler.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace hearth {

struct DatastoreJob {
  std::string id;
  std::string type;      // "verify", "gc", "sync", "prune" or "drill"
  std::string storage;   // the storage holding the backups
  std::string schedule;  // calendar event text, as given
  bool enabled = true;
  bool repeat_missed = false;
  std::string comment;
  std::string node;  // runs only on this node; "" on every node
  int vmid = 0;      // verify, sync, prune: only this VM's backups (0: all); drill: required
  // verify: skip backups verified before, unless that is older than `outdated_after` days.
  bool ignore_verified = true;
  std::optional<int> outdated_after;
  std::string target;         // sync: the storage copied to (required unless `remote`)
  // sync from another hearth node (a pull into `storage`): a node of
  // /cluster/hearth/replication-remotes and its storage to read (both required together).
  std::string remote, remote_store;
  std::string prune_backups;  // prune (required), sync (after the copy, on the target; a pull: on `storage`)
  // drill (VmService::RestoreDrill): the scratch VMID (0: the first free from 999900000),
  // the serial line to wait for when the guest has no agent, the seconds to wait.
  int scratch_vmid = 0;
  std::string marker;
  int timeout = 900;

  // State (not part of the API's entry).
  int64_t last_run = 0;
  std::string last_upid;

  std::optional<int64_t> NextEvent(int64_t after) const;  // first event strictly after
  std::string Node() const { return node; }
  // {"id","type","storage","schedule","enabled":1,...}: booleans and integers as numbers,
  // prune-backups as an object (as /cluster/backup's entries).
  nlohmann::json ToApiJson() const;
  nlohmann::json ToStoredJson() const;  // the entry plus the state
  static Result<DatastoreJob> FromStoredJson(const nlohmann::json& j);
};

// The API's field names (id and type included).
const std::vector<std::string>& DatastoreJobFields();
// POST: every field checked ("property is missing and it is not optional" for id, type,
// storage, schedule, a sync's target (or remote with remote-store), a prune's prune-backups and a drill's vmid; a field the type does not
// take: "property is not allowed for type 'x'").
Result<DatastoreJob> MakeDatastoreJob(const std::map<std::string, std::string>& fields);
// PUT: `set` over `current`, then `remove` (the `delete` list of optional fields; "delete:
// unknown option 'x'", and id, type, storage and schedule cannot be deleted). The type and
// id do not change ("type: the type of a job cannot change").
Result<DatastoreJob> UpdateDatastoreJob(const DatastoreJob& current, const std::map<std::string, std::string>& set,
                                        const std::vector<std::string>& remove);

}  // namespace hearth

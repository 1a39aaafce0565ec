// Route registration. Each Register* function adds the routes of one area to the router;
// handlers translate between the wire format and the services and do nothing else.
#pragma once

#include <functional>
#include <string>

#include "access/access_service.h"
#include "api/response_cache.h"
#include "api/router.h"
#include "images/image_builder.h"
#include "jobs/backup_scheduler.h"
#include "jobs/datastore_job_scheduler.h"
#include "jobs/replica_receiver.h"
#include "jobs/replication_scheduler.h"
#include "jobs/snapshot_scheduler.h"
#include "firewall/firewall.h"
#include "net/host_network.h"
#include "sys/host_stats.h"
#include "storage/storage_configs.h"
#include "storage/storage_manager.h"
#include "tasks/task_manager.h"
#include "vms/vm_service.h"
#include "vms/vzdump_options.h"

namespace hearth {

// Facts about this node that the read-only endpoints report.
struct NodeFacts {
  std::string node;
  std::string version = "8.4.1";  // the PVE version we are compatible with
  std::string release = "8.4";
  std::string repoid = "0";       // hearth's git revision
  std::string hearth_version;
  std::string ssl_fingerprint;
  std::string data_dir;
  const AccelState* accel = nullptr;
};

struct ApiServices {
  AccessService& access;
  TaskManager& tasks;
  VmService& vms;
  StorageManager& storage;
  StorageConfigs& storage_configs;
  ImageBuilder& images;
  const HostStats& host;
  NodeFacts facts;
  ResponseCache cache;
  SnapshotScheduler* snapshot_schedules = nullptr;  // null: the routes answer 501
  ReplicationScheduler* replication = nullptr;       // null: the routes answer 501
  ReplicaReceiver* replica_receiver = nullptr;       // this node as a replication target
  BackupScheduler* backup_jobs = nullptr;            // null: the routes answer 501
  DatastoreJobScheduler* datastore_jobs = nullptr;   // null: the routes answer 501
  HostNetwork* network = nullptr;                    // null: no /nodes/{node}/network routes
  FirewallService* firewall = nullptr;               // null: no firewall routes
};

// The version a cached VM listing is valid for: VM state changes and the current second
// (uptimes, node and storage usage move with time).
uint64_t ListingVersion(const ApiServices& s);

void RegisterAccessRoutes(Router& r, ApiServices& s);
void RegisterClusterRoutes(Router& r, ApiServices& s);
void RegisterNodeRoutes(Router& r, ApiServices& s);
void RegisterTaskRoutes(Router& r, ApiServices& s);
void RegisterVmRoutes(Router& r, ApiServices& s);
void RegisterStorageRoutes(Router& r, ApiServices& s);
void RegisterStorageConfigRoutes(Router& r, ApiServices& s);
void RegisterVmSnapshotRoutes(Router& r, ApiServices& s);
void RegisterAgentRoutes(Router& r, ApiServices& s);
void RegisterImageRoutes(Router& r, ApiServices& s);
void RegisterSnapshotScheduleRoutes(Router& r, ApiServices& s);
void RegisterReplicationRoutes(Router& r, ApiServices& s);
void RegisterBackupRoutes(Router& r, ApiServices& s);
void RegisterBackupSyncRoutes(Router& r, ApiServices& s);
void RegisterBackupJobRoutes(Router& r, ApiServices& s);
void RegisterDatastoreJobRoutes(Router& r, ApiServices& s);
void RegisterNetworkRoutes(Router& r, ApiServices& s);
void RegisterFirewallRoutes(Router& r, ApiServices& s);

// GET /hearth/routes: the route table itself (method, path, auth), for tooling and tests.
void RegisterIntrospectionRoutes(Router& r);

inline void RegisterAllRoutes(Router& r, ApiServices& s) {
  RegisterAccessRoutes(r, s);
  RegisterClusterRoutes(r, s);
  RegisterNodeRoutes(r, s);
  RegisterTaskRoutes(r, s);
  RegisterVmRoutes(r, s);
  RegisterVmSnapshotRoutes(r, s);
  RegisterStorageRoutes(r, s);
  RegisterStorageConfigRoutes(r, s);
  RegisterAgentRoutes(r, s);
  RegisterImageRoutes(r, s);
  RegisterSnapshotScheduleRoutes(r, s);
  RegisterReplicationRoutes(r, s);
  RegisterBackupRoutes(r, s);
  RegisterBackupSyncRoutes(r, s);
  RegisterBackupJobRoutes(r, s);
  RegisterDatastoreJobRoutes(r, s);
  RegisterNetworkRoutes(r, s);
  RegisterFirewallRoutes(r, s);
  RegisterIntrospectionRoutes(r);
}

// Shared JSON shapes.
nlohmann::json ConfigValueJson(const std::string& key, const std::string& value);
nlohmann::json VmResourceJson(const VmStatusInfo& s, const std::string& node);
ApiReply Data(nlohmann::json data);
ParamSpec NodeParam();
ParamSpec VmidParam();
// pve-storage-id, required (CheckStorageId: "invalid format - storage ID 'x' ...").
ParamSpec StorageParam();
// The per-key privilege checks of a VM create (current == null) or config change, for
// users other than root@pam: 403 for a missing privilege, 500 "only root can set 'X'
// config" for keys that reach the host (args, serial devices, PCI, ...), as Proxmox.
Status CheckVmConfigPrivileges(const ApiServices& s, const Identity& who, int vmid,
                               const std::map<std::string, std::string>& set, const std::vector<std::string>& del,
                               const std::map<std::string, std::string>* current);

// The vzdump options (vms/vzdump_options.h) as route parameters, and back out of a request.
// `with_node` adds the option `node` (a job's; the vzdump call has it in its path).
std::vector<ParamSpec> VzdumpOptionSpecs(bool with_node);
VzdumpOptions VzdumpOptionsOf(const Params& params);

// PVE's check_volume_access (pve-storage PVE/Storage.pm) for one volume of `storage`.
bool MayAccessVolume(const ApiServices& s, const Identity& who, const std::string& storage, const VolumeInfo& v);

// Proxmox's check for calls that make the node reach out to a URL (query-url-metadata,
// download-url): Sys.Audit and Sys.Modify on "/", or Sys.AccessNetwork on the node.
Status CheckNetworkAccess(const ApiServices& s, const Identity& who, const std::string& node);

}  // namespace hearth

// Backup sync between storages and between hearth nodes (beyond Proxmox VE; Proxmox Backup
// Server's sync jobs: docs/reference/hearth-sync.md, docs/api/backup-sync.md):
//   POST /nodes/{node}/storage/{storage}/hearth/sync         copy to `target`, or pull from `remote`
//   GET  /nodes/{node}/storage/{storage}/hearth/backup       what a pulling node reads: the manifest,
//   GET  …/hearth/backup-file, GET …/hearth/chunk            the files and the chunks, as stored
// The three GETs answer a node pulling from this one; each checks PVE's volume access
// (Datastore.Allocate on the storage, or Datastore.AllocateSpace there plus VM.Backup on the
// backup's VM), so a token for one VM reads only that VM's backups.
#include <algorithm>
#include <cctype>

#include "api/handlers/handlers.h"
#include "backup/sync_reader.h"
#include "jobs/remote_backup_source.h"
#include "model/retention.h"

namespace hearth {
namespace {

// Bytes as they are stored, answered as application/octet-stream.
ApiReply RawReply(std::string bytes) {
  ApiReply reply;
  reply.raw = std::move(bytes);
  return reply;
}

ParamSpec VolumeSpec() { return Required(MaxLen(PString("volume", "The backup's volume id."), 512)); }

// The backup `volume` names, on this route's storage, readable by the caller.
Result<BackupSnapshotId> ReadableBackup(const ApiServices& s, const ApiContext& c) {
  std::string storage = *c.params.Get("storage");
  std::string volid = *c.params.Get("volume");
  std::string prefix = storage + ":backup/";
  auto id = volid.rfind(prefix, 0) == 0 ? BackupSnapshotId::Parse(volid.substr(prefix.size())) : std::nullopt;
  if (!id) return Fail(FieldError("volume", "not a backup volume id of storage '" + storage + "'"));
  VolumeInfo v;
  v.content = ContentType::kBackup;
  v.vmid = id->vmid;
  if (!MayAccessVolume(s, *c.who, storage, v))
    return Fail(PermissionDenied("Permission check failed (/storage/" + storage + ", Datastore.AllocateSpace + /vms/" +
                                 std::to_string(id->vmid) + ", VM.Backup)"));
  return *id;
}

}  // namespace

void RegisterBackupSyncRoutes(Router& r, ApiServices& s) {
  auto reader = std::make_shared<BackupSyncReader>();

  r.Add({"GET", "/nodes/{node}/storage/{storage}/hearth/backup", {NodeParam(), StorageParam(), VolumeSpec()}, false, "",
         "", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(BackupSnapshotId id, ReadableBackup(s, c));
           HEARTH_ASSIGN_OR_RETURN(auto store, s.vms.BackupStoreForSync(*c.params.Get("storage")));
           HEARTH_ASSIGN_OR_RETURN(nlohmann::json info, BackupSyncReader::CopyInfo(*store, id));
           return Data(std::move(info));
         },
         "A backup's manifest (index.json as stored), notes and protection, for a node syncing from this one."})
      .lane = Lane::kWork;

  r.Add({"GET", "/nodes/{node}/storage/{storage}/hearth/backup-file",
         {NodeParam(), StorageParam(), VolumeSpec(), Required(MaxLen(PString("file"), 128))}, false, "", "", true, true,
         false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(BackupSnapshotId id, ReadableBackup(s, c));
           std::string file = *c.params.Get("file");
           bool name_ok = !file.empty() && file[0] != '.' && std::all_of(file.begin(), file.end(), [](unsigned char ch) {
             return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.';
           });
           if (!name_ok) return Fail(FieldError("file", "invalid backup file name '" + file + "'"));
           HEARTH_ASSIGN_OR_RETURN(auto store, s.vms.BackupStoreForSync(*c.params.Get("storage")));
           return BackupSyncReader::File(*store, id, file).map(RawReply);
         },
         "A file of a backup as stored (application/octet-stream), only one its manifest lists."})
      .lane = Lane::kWork;

  r.Add({"GET", "/nodes/{node}/storage/{storage}/hearth/chunk",
         {NodeParam(), StorageParam(), VolumeSpec(), Required(MaxLen(PString("digest"), 64))}, false, "", "", true, true,
         false,
         [&s, reader](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(BackupSnapshotId id, ReadableBackup(s, c));
           auto digest = ParseDigestHex(*c.params.Get("digest"));
           if (!digest) return Fail(FieldError("digest", "value does not match the regex pattern (64 lowercase hex digits)"));
           HEARTH_ASSIGN_OR_RETURN(auto store, s.vms.BackupStoreForSync(*c.params.Get("storage")));
           return reader->Chunk(*store, id, *digest, *c.params.Get("volume")).map(RawReply);
         },
         "A chunk blob as stored (application/octet-stream), only one the backup's indexes name."})
      .lane = Lane::kWork;

  r.Add({"POST", "/nodes/{node}/storage/{storage}/hearth/sync",
         {NodeParam(), StorageParam(), [] { ParamSpec t = StorageParam(); t.name = "target"; t.optional = true; return t; }(),
          MaxLen(PString("remote", "A node of /cluster/hearth/replication-remotes to pull from."), 63),
          [] { ParamSpec t = StorageParam(); t.name = "remote-store"; t.optional = true; return t; }(),
          PInt("vmid", 100, 999999999), MaxLen(PString("prune-backups"), 1024)},
         false, "Datastore.Audit", "/storage/{storage}", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           const Params& p = c.params;
           std::string storage = *p.Get("storage");
           std::optional<KeepOptions> prune;
           if (auto pb = p.Get("prune-backups")) {
             HEARTH_ASSIGN_OR_RETURN(prune, ParseKeepOptionsParam("prune-backups", *pb));
           }
           int vmid = static_cast<int>(p.Int("vmid"));
           if (auto remote = p.Get("remote")) {
             if (p.Has("target")) return Fail(FieldError("target", "property is not allowed with 'remote'"));
             if (!p.Has("remote-store")) return Fail(FieldError("remote-store", "property is missing and it is not optional"));
             // A pull writes into `storage` and may prune it; it uses this node's credential
             // on the remote, which only those who may configure remotes may spend.
             if (!s.access.Allowed(*c.who, "/storage/" + storage, "Datastore.Allocate"))
               return Fail(PermissionDenied("Permission check failed (/storage/" + storage + ", Datastore.Allocate)"));
             if (!s.access.Allowed(*c.who, "/", "Sys.Modify"))
               return Fail(PermissionDenied("Permission check failed (/, Sys.Modify)"));
             if (!s.replication) return Fail(MakeError(ErrorCode::kNotImplemented, "remotes are not available on this node"));
             HEARTH_ASSIGN_OR_RETURN(ReplicationRemote rm, s.replication->GetRemote(*remote).map_error([&](Error e) {
               return FieldError("remote", e.message);
             }));
             HEARTH_ASSIGN_OR_RETURN(auto source, MakeRemoteBackupSource(rm, *p.Get("remote-store")));
             HEARTH_ASSIGN_OR_RETURN(std::string upid, s.vms.PullBackups(storage, std::shared_ptr<BackupSource>(std::move(source)),
                                                                         vmid, prune, c.who->AuthId()));
             return Data(upid);
           }
           if (p.Has("remote-store")) return Fail(FieldError("remote-store", "property is only allowed with 'remote'"));
           auto target = p.Get("target");
           if (!target) return Fail(FieldError("target", "property is missing and it is not optional"));
           // Reading what is copied: PVE's volume access (all backups: Datastore.Allocate; one
           // VM's: AllocateSpace plus VM.Backup), then room on the target.
           VolumeInfo v;
           v.content = ContentType::kBackup;
           v.vmid = vmid;
           if (!MayAccessVolume(s, *c.who, storage, v))
             return Fail(PermissionDenied("Permission check failed (/storage/" + storage + ", Datastore.Allocate)"));
           std::string need = prune ? "Datastore.Allocate" : "Datastore.AllocateSpace";
           if (!s.access.Allowed(*c.who, "/storage/" + *target, need))
             return Fail(PermissionDenied("Permission check failed (/storage/" + *target + ", " + need + ")"));
           HEARTH_ASSIGN_OR_RETURN(std::string upid, s.vms.SyncBackups(storage, *target, vmid, prune, c.who->AuthId()));
           return Data(upid);
         },
         "Copy backups to another storage (offsite: a NAS share, a USB disk), only what it lacks, then prune there; or, "
         "with 'remote', pull a remote hearth node's backups into this storage."});
}

}  // namespace hearth

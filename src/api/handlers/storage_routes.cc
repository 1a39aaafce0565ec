#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "api/handlers/handlers.h"
#include "api/multipart.h"
#include "http/downloader.h"
#include "core/strings.h"
#include "core/units.h"
#include "model/storage_config.h"
#include "sys/files.h"
#include "sys/random_source.h"
#include "sys/crash_point.h"

namespace hearth {
namespace {

// "<storage>:backup/vm/<vmid>/<time>": a snapshot of the backup datastore.
bool IsBackupVolid(const std::string& volid) {
  auto colon = volid.find(':');
  return colon != std::string::npos && volid.compare(colon + 1, 7, "backup/") == 0 &&
         BackupSnapshotId::Parse(std::string_view(volid).substr(colon + 8));
}

// The `volume` parameter as a volume id: a full one ("local:100/vm-100-disk-0.qcow2") must name
// the storage of the path (Proxmox: "storage ID mismatch (a != b)"); anything else is a
// volname on that storage (a backup's volname holds ':' in its time).
Result<std::string> VolumeParam(const ApiContext& c) {
  std::string storage = *c.params.Get("storage"), volume = *c.params.Get("volume");
  auto colon = volume.find(':');
  auto slash = volume.find('/');
  if (colon == std::string::npos || (slash != std::string::npos && slash < colon)) return storage + ":" + volume;
  std::string sid = volume.substr(0, colon);
  if (sid != storage) return Fail(FieldError("volume", "storage ID mismatch (" + sid + " != " + storage + ")"));
  return volume;
}

}  // namespace

namespace {

// One storage as PVE::Storage::storage_info reports it: disabled storages and those not
// allowed on this node are never queried (enabled 0, active 0, zeros). Usage is a statvfs;
// activation happened at start, create or update, not here (this runs on an I/O thread).
nlohmann::json StorageInfoJson(const StorageEntry& e, const std::string& node, bool with_format) {
  const StorageConfig& c = e.config;
  bool enabled = c.EnabledOn(node);
  nlohmann::json j = {{"storage", c.id}, {"type", c.type}, {"content", c.Get("content", "none")},
                      {"shared", c.Shared() ? 1 : 0}, {"enabled", enabled ? 1 : 0}, {"active", 0},
                      {"total", 0}, {"used", 0}, {"avail", 0}};
  if (!enabled) return j;
  if (with_format)
    if (const StorageTypeSpec* spec = FindStorageType(c.type); spec && !spec->formats.empty()) {
      std::vector<std::string> supported(spec->formats.begin(), spec->formats.end());
      std::sort(supported.begin(), supported.end());
      std::string def = e.plugin->DefaultFormat();
      nlohmann::json legacy = nlohmann::json::object();
      for (const auto& f : supported) legacy[f] = 1;
      j["formats"] = {{"supported", supported}, {"default", def}};
      j["format"] = nlohmann::json::array({legacy, def});
    }
  auto u = e.plugin->Usage();
  if (u && u->active) {
    j["active"] = 1;
    j["total"] = u->total;
    j["used"] = u->used;
    j["avail"] = u->avail;
  }
  return j;
}

nlohmann::json VolumeJson(const VolumeInfo& v) {
  nlohmann::json j = {{"volid", v.volid}, {"content", ContentTypeName(v.content)}, {"format", v.format},
                      {"size", v.size}, {"used", v.used}, {"ctime", v.ctime}};
  if (v.vmid) j["vmid"] = v.vmid;
  if (!v.parent.empty()) j["parent"] = v.parent;
  return j;
}

Result<std::string> FileDigest(const std::string& path, const std::string& algorithm) {
  const EVP_MD* md = EVP_get_digestbyname(algorithm.c_str());
  if (!md) return Fail(FieldError("checksum-algorithm", "unsupported checksum algorithm '" + algorithm + "'"));
  std::ifstream f(path, std::ios::binary);
  if (!f) return Fail(Internal("cannot read " + path));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, md, nullptr);
  std::vector<char> buf(1 << 20);
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (f.gcount() > 0) EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(f.gcount()));
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_DigestFinal_ex(ctx, out, &n);
  EVP_MD_CTX_free(ctx);
  return HexEncode(std::string_view(reinterpret_cast<char*>(out), n));
}

std::string TempPath(const std::string& dir, const std::string& tag) { return dir + "/." + tag + "-" + RandomHex(16); }

}  // namespace

// PVE's check_volume_access (pve-storage): disk images need Datastore.Allocate, or
// Datastore.Audit plus VM.Config.Disk on the owning VM; backups need AllocateSpace plus
// VM.Backup; ISOs, templates and import images need Audit or AllocateSpace; the rest
// (snippets) need Datastore.Allocate.
bool MayAccessVolume(const ApiServices& s, const Identity& who, const std::string& storage, const VolumeInfo& v) {
  std::string sp = "/storage/" + storage;
  if (s.access.Allowed(who, sp, "Datastore.Allocate")) return true;
  std::string vm = "/vms/" + std::to_string(v.vmid);
  switch (v.content) {
    case ContentType::kImages:
    case ContentType::kRootdir:
      return v.vmid && s.access.Allowed(who, sp, "Datastore.Audit") && s.access.Allowed(who, vm, "VM.Config.Disk");
    case ContentType::kBackup:
      return v.vmid && s.access.Allowed(who, sp, "Datastore.AllocateSpace") && s.access.Allowed(who, vm, "VM.Backup");
    case ContentType::kIso:
    case ContentType::kVztmpl:
    case ContentType::kImport:
      return s.access.AllowedAny(who, sp, "Datastore.Audit|Datastore.AllocateSpace");
    default:
      return false;
  }
}

void RegisterStorageRoutes(Router& r, ApiServices& s) {
  auto storage_param = [] { return StorageParam(); };

  // pve-storage PVE/API2/Storage/Status.pm index (docs/reference/pve-storage.md 4.2).
  ParamSpec content_filter = PString("content");
  content_filter.check = [](const std::string& v) -> std::string {
    for (const auto& ct : SplitAny(v, ",; "))
      if (!ct.empty() && !ParseContentType(ct)) return "invalid format - invalid content type '" + ct + "'";
    return "";
  };
  ParamSpec storage_filter = StorageParam();
  storage_filter.optional = true;
  ParamSpec target = NodeParam();
  target.name = "target";
  target.optional = true;
  r.Add({"GET", "/nodes/{node}/storage",
         {NodeParam(), content_filter, PBool("enabled"), storage_filter, target, PBool("format")},
         false, "", "", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           const std::string& node = s.facts.node;
           std::vector<ContentType> wanted;
           for (const auto& ct : SplitAny(c.params.GetOr("content", ""), ",; "))
             if (auto t = ParseContentType(ct)) wanted.push_back(*t);
           auto want_id = c.params.Get("storage");
           std::string target = c.params.GetOr("target", "");
           bool only_enabled = c.params.Bool("enabled"), with_format = c.params.Bool("format");
           nlohmann::json out = nlohmann::json::array();
           bool found = false;
           for (const auto& e : s.storage.Entries()) {
             // storage_info: with a content filter, only enabled storages holding one of them.
             if (!wanted.empty()) {
               bool holds = false;
               for (auto t : wanted) holds = holds || e.plugin->Supports(t);
               if (!holds || !e.config.EnabledOn(node)) continue;
             }
             if (want_id && *want_id == e.config.id) found = true;
             if (!s.access.AllowedAny(*c.who, "/storage/" + e.config.id, "Datastore.Audit|Datastore.AllocateSpace"))
               continue;
             if (want_id && *want_id != e.config.id) continue;
             if (only_enabled && e.config.Disabled()) continue;  // Proxmox looks at `disable` only
             if (!target.empty() && target != node && target != "localhost" &&
                 !(e.config.Shared() && e.config.EnabledOn(node) && e.config.EnabledOn(target)))
               continue;
             nlohmann::json j = StorageInfoJson(e, node, with_format);
             if (j["total"].get<uint64_t>() > 0)
               j["used_fraction"] = j["used"].get<double>() / j["total"].get<double>();
             out.push_back(std::move(j));
           }
           if (want_id && !found) return Fail(FieldError("storage", "No such storage."));
           return Data(out);
         },
         "Storages of this node with usage."});

  r.Add({"GET", "/nodes/{node}/storage/{storage}", {NodeParam(), storage_param()}, false, "Datastore.Audit|Datastore.AllocateSpace",
         "/storage/{storage}", true, true, false,
         [](ApiContext&) -> Result<ApiReply> {
           nlohmann::json out = nlohmann::json::array();
           for (const char* d : {"content", "status", "upload"}) out.push_back({{"subdir", d}});
           return Data(out);
         },
         "Storage index."});

  r.Add({"GET", "/nodes/{node}/storage/{storage}/status", {NodeParam(), storage_param()}, false, "Datastore.Audit|Datastore.AllocateSpace",
         "/storage/{storage}", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           // Every storage, disabled ones too (storage_info without a content filter).
           auto e = s.storage.Find(*c.params.Get("storage"));
           if (!e) return Fail(FieldError("storage", "No such storage."));
           nlohmann::json j = StorageInfoJson(*e, s.facts.node, false);
           j.erase("storage");
           // Beyond Proxmox: what the disk images could grow to (their virtual sizes), beside
           // `used`, so thin overcommit is visible. Only here: it lists the images.
           if (j["active"] == 1) {
             uint64_t provisioned = 0;
             if (auto vols = e->plugin->List(ContentType::kImages, 0))
               for (const auto& v : *vols) provisioned += v.size;
             j["provisioned"] = provisioned;
           }
           return Data(j);
         },
         "Storage usage."});

  r.Add({"GET", "/nodes/{node}/storage/{storage}/content",
         {NodeParam(), storage_param(), PString("content"), PInt("vmid", 100, 999999999)}, false, "Datastore.Audit|Datastore.AllocateSpace",
         "/storage/{storage}", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, s.storage.Get(*c.params.Get("storage")));
           std::optional<ContentType> content;
           if (auto ct = c.params.Get("content")) {
             content = ParseContentType(*ct);
             if (!content) return Fail(FieldError("content", "unknown content type '" + *ct + "'"));
           }
           int vmid = static_cast<int>(c.params.Int("vmid"));
           HEARTH_ASSIGN_OR_RETURN(auto vols, st->List(content, vmid));
           std::vector<std::pair<std::string, nlohmann::json>> items;
           for (const auto& v : vols)
             if (MayAccessVolume(s, *c.who, st->id(), v)) items.emplace_back(ToLower(v.volid), VolumeJson(v));
           // The backup datastore's snapshots, in PBS's shape (PBSPlugin list_volumes).
           if ((!content || *content == ContentType::kBackup) && st->Supports(ContentType::kBackup)) {
             HEARTH_ASSIGN_OR_RETURN(auto backups, s.vms.ListBackups(st->id(), vmid));
             for (const auto& b : backups) {
               VolumeInfo owner;
               owner.content = ContentType::kBackup;
               owner.vmid = b.id.vmid;
               if (!MayAccessVolume(s, *c.who, st->id(), owner)) continue;
               std::string volid = BackupVolid(st->id(), b.id);
               nlohmann::json j = {{"volid", volid}, {"content", "backup"}, {"format", "pbs-vm"}, {"size", b.size},
                                   {"ctime", b.id.time}, {"vmid", b.id.vmid}, {"subtype", "qemu"}};
               if (!b.notes.empty()) j["notes"] = b.notes.substr(0, b.notes.find('\n'));
               if (b.is_protected) j["protected"] = 1;
               if (!b.verify_state.empty()) j["verification"] = {{"state", b.verify_state}, {"upid", b.verify_upid}};
               if (!b.key_fingerprint.empty()) j["encrypted"] = b.key_fingerprint;  // PBSPlugin: the fingerprint
               items.emplace_back(ToLower(volid), j);
             }
           }
           std::stable_sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
           nlohmann::json out = nlohmann::json::array();
           for (auto& [key, j] : items) out.push_back(std::move(j));
           return Data(out);
         },
         "Volumes on a storage."});

  r.Add({"GET", "/nodes/{node}/storage/{storage}/content/{volume*}", {NodeParam(), storage_param(), Required(PString("volume"))},
         false, "", "", true, true, false,  // PVE: any user, then check_volume_access
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(std::string volid, VolumeParam(c));
           if (IsBackupVolid(volid)) {
             std::string sid = volid.substr(0, volid.find(':'));
             for (const auto& b : s.vms.ListBackups(sid, 0).value_or(std::vector<BackupSnapshotInfo>{})) {
               if (BackupVolid(sid, b.id) != volid) continue;
               VolumeInfo owner;
               owner.content = ContentType::kBackup;
               owner.vmid = b.id.vmid;
               if (!MayAccessVolume(s, *c.who, sid, owner))
                 return Fail(PermissionDenied("Permission check failed (/storage/" + sid + ", Datastore.Allocate)"));
               return Data({{"format", "pbs-vm"}, {"size", b.size}, {"used", b.size}, {"notes", b.notes},
                              {"protected", b.is_protected ? 1 : 0}});
             }
             return Fail(Internal("volume '" + volid + "' does not exist"));
           }
           HEARTH_ASSIGN_OR_RETURN(VolumeInfo v, s.storage.InfoOf(volid));
           if (!MayAccessVolume(s, *c.who, volid.substr(0, volid.find(':')), v))
             return Fail(PermissionDenied("Permission check failed (/storage/" + volid.substr(0, volid.find(':')) +
                                          ", Datastore.Allocate)"));
           return Data({{"path", v.path}, {"format", v.format}, {"size", v.size}, {"used", v.used}});
         },
         "One volume's attributes."});

  // pve-storage API2/Storage/Content.pm delete: the removal is task "imgdel"
  // ("<owner vmid>@<storage>" or "<storage>"); with `delay`, the call waits up to that many
  // seconds and answers null when the task ended well, or its error.
  r.Add({"DELETE", "/nodes/{node}/storage/{storage}/content/{volume*}",
         {NodeParam(), storage_param(), Required(PString("volume")), PInt("delay", 1, 30)}, false, "", "", true, true,
         false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(std::string volid, VolumeParam(c));
           std::string sid = *c.params.Get("storage");
           bool backup = IsBackupVolid(volid);
           int owner = 0;
           if (backup) owner = BackupSnapshotId::Parse(volid.substr(sid.size() + 8))->vmid;
           else if (auto v = ParseVolumeId(volid)) owner = VolumeOwner(*v);
           // A backup with an owner: the space and the VM's backup right (Proxmox).
           if (backup && owner) {
             if (!s.access.Allowed(*c.who, "/storage/" + sid, "Datastore.AllocateSpace"))
               return Fail(PermissionDenied("Permission check failed (/storage/" + sid + ", Datastore.AllocateSpace)"));
             if (!s.access.Allowed(*c.who, "/vms/" + std::to_string(owner), "VM.Backup"))
               return Fail(PermissionDenied("Permission check failed (/vms/" + std::to_string(owner) + ", VM.Backup)"));
           } else if (!s.access.Allowed(*c.who, "/storage/" + sid, "Datastore.Allocate")) {
             return Fail(PermissionDenied("Permission check failed (/storage/" + sid + ", Datastore.Allocate)"));
           }
           TaskSpec spec;
           spec.type = "imgdel";
           spec.id = (owner ? std::to_string(owner) + "@" : std::string()) + sid;
           spec.user = c.who->AuthId();
           HEARTH_ASSIGN_OR_RETURN(std::string upid, s.tasks.Start(spec, [&s, volid, backup](TaskContext& ctx) -> Status {
             // Under the owner VM's lock, and never a volume some VM still uses.
             HEARTH_TRY(backup ? s.vms.RemoveBackup(volid) : s.vms.DeleteVolume(volid));
             ctx.Log("Removed volume '" + volid + "'");
             return Ok();
           }));
           if (!c.params.Has("delay")) return Data(upid);
           auto exit = s.tasks.WaitFinished(upid, std::chrono::seconds(c.params.Int("delay")));
           if (!exit) return Data(upid);  // still running
           if (*exit == "OK" || StartsWith(*exit, "WARNINGS")) return Data(nullptr);
           return Fail(Internal(*exit));
         },
         "Delete a volume."})
      .lane = Lane::kWait;  // may wait for the task (delay)

  // Backup notes and protection (pve-storage API2/Storage/Content.pm updateattributes).
  r.Add({"PUT", "/nodes/{node}/storage/{storage}/content/{volume*}",
         {NodeParam(), storage_param(), Required(PString("volume")), PString("notes"), PBool("protected")}, false,
         "Datastore.AllocateSpace", "/storage/{storage}", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(std::string volid, VolumeParam(c));
           if (!IsBackupVolid(volid)) {
             if (c.params.Has("notes")) return Fail(Internal("only backups can have notes"));
             if (c.params.Has("protected")) return Fail(Internal("only backups support attribute 'protected'"));
             return Data(nullptr);
           }
           std::optional<bool> prot;
           if (c.params.Has("protected")) prot = c.params.Bool("protected");
           HEARTH_TRY(s.vms.UpdateBackup(volid, c.params.Get("notes"), prot));
           return Data(nullptr);
         },
         "Update a volume's attributes (backups: notes, protected)."});

  r.Add({"POST", "/nodes/{node}/storage/{storage}/content",
         {NodeParam(), storage_param(), Required(PInt("vmid", 100, 999999999)), Required(PString("filename")),
          Required(PString("size")), PEnum("format", {"raw", "qcow2", "subvol", "vmdk"})},
         false, "Datastore.AllocateSpace", "/storage/{storage}", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, s.storage.Get(*c.params.Get("storage")));
           std::string size_text = *c.params.Get("size");
           // PVE: "\d+[MG]?" where a bare number means KiB.
           std::optional<uint64_t> size;
           if (!size_text.empty() && std::isdigit(static_cast<unsigned char>(size_text.back()))) {
             if (auto kib = ParseUint(size_text)) size = *kib * kKiB;
           } else
             size = ParseSize(size_text);
           if (!size || *size == 0) return Fail(FieldError("size", "invalid size '" + size_text + "'"));
           int vmid = static_cast<int>(c.params.Int("vmid"));
           std::string filename = *c.params.Get("filename");
           std::string format = c.params.GetOr("format", st->DefaultFormat());
           std::string name;
           if (auto dot = filename.rfind('.'); dot != std::string::npos) {
             format = filename.substr(dot + 1);
             name = filename.substr(0, dot);
           } else {
             name = filename;
           }
           auto dn = ParseDiskName(name);
           if (!dn || dn->vmid != vmid)
             return Fail(FieldError("filename", "illegal name '" + filename + "' - should be 'vm-" + std::to_string(vmid) + "-*'"));
           HEARTH_ASSIGN_OR_RETURN(std::string volname, st->AllocImage(vmid, format, *size, name, nullptr));
           return Data(st->id() + ":" + volname);
         },
         "Allocate a disk image."});

  auto& metadata = r.Add({"GET", "/nodes/{node}/query-url-metadata",
         {NodeParam(), MaxLen(Required(PString("url")), 4096), PBool("verify-certificates")},
         false, "", "", true, true, false,
         [](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(UrlMetadata m, QueryUrlMetadata(*c.params.Get("url"), c.params.Bool("verify-certificates", true)));
           nlohmann::json out = {{"filename", m.filename}};
           if (!m.mimetype.empty()) out["mimetype"] = m.mimetype;
           if (m.size) out["size"] = m.size;
           return Data(out);
         },
         "Name, type and size of a URL's file (HEAD request), before a download-url."});
  metadata.lane = Lane::kWait;  // an outbound request: up to 30 s, never on an I/O thread
  metadata.authorize = [&s](const ApiContext& c) { return CheckNetworkAccess(s, *c.who, *c.params.Get("node")); };

  auto& download = r.Add({"POST", "/nodes/{node}/storage/{storage}/download-url",
         {NodeParam(), storage_param(), Required(PString("url")), Required(PEnum("content", {"iso", "vztmpl", "import"})),
          Required(PString("filename")), PString("checksum"),
          PEnum("checksum-algorithm", {"md5", "sha1", "sha224", "sha256", "sha384", "sha512"}), PString("compression"),
          PBool("verify-certificates")},
         false, "Datastore.AllocateTemplate", "/storage/{storage}", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, s.storage.Get(*c.params.Get("storage")));
           std::string url = *c.params.Get("url");
           HEARTH_TRY(ParseHttpUrl(url));
           if (c.params.Has("compression"))
             return Fail(FieldError("compression", "decompressing downloads is not supported yet"));
           std::string checksum = c.params.GetOr("checksum", ""), algo = c.params.GetOr("checksum-algorithm", "");
           static const std::vector<std::string> algorithms = {"md5", "sha1", "sha224", "sha256", "sha384", "sha512"};
           if (!algo.empty() && std::find(algorithms.begin(), algorithms.end(), algo) == algorithms.end())
             return Fail(FieldError("checksum-algorithm", "value '" + algo + "' does not have a value in the enumeration '" +
                                                              Join(algorithms, ", ") + "'"));
           if (checksum.empty() != algo.empty())
             return Fail(FieldError("checksum", "'checksum' and 'checksum-algorithm' go together"));
           auto content = *ParseContentType(*c.params.Get("content"));
           std::string name = *c.params.Get("filename");
           std::string dir = content == ContentType::kIso ? "iso" : content == ContentType::kImport ? "import" : "vztmpl";
           if (!ParseDirVolname(dir + "/" + name)) return Fail(FieldError("filename", "invalid file name '" + name + "'"));
           if (!st->Supports(content))
             return Fail(FieldError("content", "storage '" + st->id() + "' does not support content type '" + ContentTypeName(content) + "'"));
           if (st->Info(dir + "/" + name)) return Fail(Internal("refusing to override existing file '" + name + "'"));
           DownloadOptions opt;
           opt.verify_certificates = c.params.Bool("verify-certificates", true);
           TaskSpec spec{"download", "", c.who->AuthId()};
           auto upid = s.tasks.Start(spec, [st, url, name, content, checksum, algo, opt](TaskContext& ctx) mutable -> Status {
             std::string staged = TempPath(st->TempDir(), "download");
             ctx.Log("downloading " + url + " to " + name);
             int last = -10;
             opt.progress = [&](uint64_t done, uint64_t total) {
               if (!total) return;
               int pct = static_cast<int>(done * 100 / total);
               if (pct >= last + 10) {
                 last = pct - pct % 10;
                 ctx.Log("downloaded " + std::to_string(done >> 20) + " of " + std::to_string(total >> 20) + " MiB (" +
                         std::to_string(last) + "%)");
               }
             };
             opt.cancelled = [&ctx] { return ctx.cancelled(); };
             HEARTH_ASSIGN_OR_RETURN(uint64_t bytes, DownloadToFile(url, staged, opt));
             ctx.Log("received " + std::to_string(bytes) + " bytes");
             if (!checksum.empty()) {
               auto digest = FileDigest(staged, algo);
               if (!digest || ToLower(*digest) != ToLower(checksum)) {
                 unlink(staged.c_str());
                 if (!digest) return Fail(digest.error());
                 return Fail(InvalidArgument("checksum mismatch: got '" + *digest + "' != expected '" + checksum + "'"));
               }
               ctx.Log(algo + " checksum verified");
             }
             auto volid = st->ImportFile(content, name, staged);
             if (!volid) {
               unlink(staged.c_str());
               return Fail(volid.error());
             }
             CrashPoint("download.imported");
             ctx.Log("stored as " + *volid);
             return Ok();
           });
           HEARTH_ASSIGN_OR_RETURN(std::string id, std::move(upid));
           return Data(id);
         },
         "Download a file (ISO, import image, template) from a URL, with checksum verification."});
  download.authorize = [&s](const ApiContext& c) { return CheckNetworkAccess(s, *c.who, *c.params.Get("node")); };

  r.Add({"POST", "/nodes/{node}/storage/{storage}/upload",
         {NodeParam(), storage_param(), PEnum("content", {"iso", "vztmpl", "import", "snippets"}), PString("filename"),
          PString("checksum"), PEnum("checksum-algorithm", {"md5", "sha1", "sha224", "sha256", "sha384", "sha512"}),
          PString("tmpfilename")},
         false, "Datastore.AllocateTemplate", "/storage/{storage}", true, true, /*csrf_exempt=*/true,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, s.storage.Get(*c.params.Get("storage")));
           if (c.request->body_file.empty()) return Fail(InvalidArgument("upload must be a multipart/form-data POST"));
           HEARTH_ASSIGN_OR_RETURN(MultipartForm form,
                                   ParseMultipartFile(c.request->body_file, c.request->Header("content-type")));
           // Form fields, validated like query parameters.
           std::string content = form.fields.count("content") ? std::string(Trim(form.fields["content"])) : c.params.GetOr("content", "");
           auto ct = ParseContentType(content);
           if (!ct || (*ct != ContentType::kIso && *ct != ContentType::kVztmpl && *ct != ContentType::kImport &&
                       *ct != ContentType::kSnippets))
             return Fail(FieldError("content", "value '" + content + "' does not have a value in the enumeration 'iso, vztmpl, import, snippets'"));
           if (!st->Supports(*ct))
             return Fail(FieldError("content", "storage '" + st->id() + "' does not support '" + content + "' content"));
           const MultipartFile* file = nullptr;
           for (const auto& f : form.files)
             if (f.field == "filename") file = &f;
           if (!file) return Fail(FieldError("filename", "property is missing and it is not optional"));
           std::string name =
               NormalizeContentFilename(form.fields.count("filename") ? form.fields["filename"] : file->filename);
           HEARTH_TRY(CheckUploadFileName(*ct, name));  // before the task, as PVE
           std::string checksum = form.fields.count("checksum") ? std::string(Trim(form.fields["checksum"])) : c.params.GetOr("checksum", "");
           std::string algo = form.fields.count("checksum-algorithm") ? std::string(Trim(form.fields["checksum-algorithm"]))
                                                                      : c.params.GetOr("checksum-algorithm", "");
           static const std::vector<std::string> algorithms = {"md5", "sha1", "sha224", "sha256", "sha384", "sha512"};
           if (!algo.empty() && std::find(algorithms.begin(), algorithms.end(), algo) == algorithms.end())
             return Fail(FieldError("checksum-algorithm", "value '" + algo + "' does not have a value in the enumeration '" +
                                                              Join(algorithms, ", ") + "'"));
           if (checksum.empty() != algo.empty())
             return Fail(FieldError("checksum", "'checksum' and 'checksum-algorithm' go together"));
           // The server deletes the spooled body after this handler; the task gets its own copy,
           // punched out of the body as it goes (the server checked the space up front).
           HEARTH_TRY(MakeDirs(st->TempDir()));
           std::string staged = TempPath(st->TempDir(), "staged");
           HEARTH_TRY(CopyFileRange(c.request->body_file, file->offset, file->size, staged, /*punch_source=*/true));
           CrashPoint("upload.staged");
           TaskSpec spec{"imgcopy", "", c.who->AuthId()};
           uint64_t size = file->size;
           auto upid = s.tasks.Start(spec, [st, staged, name, ct, checksum, algo, size](TaskContext& ctx) -> Status {
             ctx.Log("received " + name + " (" + std::to_string(size) + " bytes)");
             if (!checksum.empty()) {
               auto digest = FileDigest(staged, algo);
               if (!digest) {
                 unlink(staged.c_str());
                 return Fail(digest.error());
               }
               if (ToLower(*digest) != ToLower(checksum)) {
                 unlink(staged.c_str());
                 return Fail(InvalidArgument("checksum mismatch: got '" + *digest + "' != expected '" + checksum + "'"));
               }
               ctx.Log(algo + " checksum verified");
             }
             auto volid = st->ImportFile(*ct, name, staged);
             if (!volid) {
               unlink(staged.c_str());
               return Fail(volid.error());
             }
             CrashPoint("upload.imported");
             ctx.Log("stored as " + *volid);
             return Ok();
           });
           if (!upid) unlink(staged.c_str());
           HEARTH_ASSIGN_OR_RETURN(std::string id, std::move(upid));
           return Data(id);
         },
         "Upload a file (multipart/form-data, field `filename`)."});
}

}  // namespace hearth

#include "jobs/remote_backup_source.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "backup/sync_reader.h"
#include "core/strings.h"
#include "http/https_client.h"
#include "jobs/replication_target.h"

namespace hearth {

std::string SanitizeRemoteText(std::string_view text, size_t max) {
  std::string out(text.substr(0, max));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  if (text.size() > max) out += "...";
  return out;
}

namespace {

constexpr uint64_t kMaxJson = 16 << 20;
constexpr uint64_t kMaxBlob = ChunkStore::kMaxChunk + 16 + 1024;

class RemoteBackupSource final : public BackupSource {
 public:
  RemoteBackupSource(ReplicationRemote remote, std::string store, std::unique_ptr<HttpsClient> client)
      : remote_(std::move(remote)), store_(std::move(store)), client_(std::move(client)) {}

  std::string Describe() const override {
    return "remote '" + remote_.node + "' (" + remote_.host + ":" + std::to_string(remote_.port) + ") storage '" + store_ + "'";
  }

  Result<std::vector<BackupSnapshotInfo>> List(int vmid) override {
    std::string query = "content=backup";
    if (vmid) query += "&vmid=" + std::to_string(vmid);
    HEARTH_ASSIGN_OR_RETURN(HttpResponse r, Get(Base() + "/content?" + query, kMaxJson));
    HEARTH_ASSIGN_OR_RETURN(nlohmann::json data, JsonData(r));
    if (!data.is_array()) return Fail(Unexpected("the backup listing is not a list"));
    std::vector<BackupSnapshotInfo> out;
    for (const auto& e : data) {
      if (!e.is_object() || !e.contains("volid") || !e["volid"].is_string()) return Fail(Unexpected("a listed backup has no volid"));
      HEARTH_ASSIGN_OR_RETURN(BackupSnapshotId id, IdOf(e["volid"].get<std::string>()));
      if (vmid && id.vmid != vmid) continue;
      BackupSnapshotInfo info;
      info.id = id;
      if (e.contains("size") && e["size"].is_number_unsigned()) info.size = e["size"].get<uint64_t>();
      if (e.contains("notes") && e["notes"].is_string()) info.notes = e["notes"].get<std::string>().substr(0, 1 << 16);
      info.is_protected = e.contains("protected") && e["protected"] == 1;
      if (e.contains("encrypted") && e["encrypted"].is_string()) info.key_fingerprint = e["encrypted"].get<std::string>().substr(0, 128);
      out.push_back(std::move(info));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    out.erase(std::unique(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id == b.id; }), out.end());
    return out;
  }

  Result<BackupCopyInfo> CopyInfo(const BackupSnapshotId& id) override {
    HEARTH_ASSIGN_OR_RETURN(HttpResponse r, Get(Base() + "/hearth/backup?volume=" + PercentEncode(Volid(id)), kMaxJson));
    HEARTH_ASSIGN_OR_RETURN(nlohmann::json data, JsonData(r));
    if (!data.is_object() || !data.contains("manifest") || !data["manifest"].is_string())
      return Fail(Unexpected("no manifest for " + id.Name()));
    BackupCopyInfo out;
    HEARTH_ASSIGN_OR_RETURN(out.manifest, BackupDatastore::ParseManifest(data["manifest"].get<std::string>(), id));
    if (data.contains("notes") && data["notes"].is_string()) out.notes = data["notes"].get<std::string>().substr(0, 1 << 16);
    out.is_protected = data.contains("protected") && data["protected"] == 1;
    return out;
  }

  Result<std::string> ReadFile(const BackupManifest& m, const std::string& filename) override {
    const BackupFileEntry* entry = nullptr;
    for (const auto& f : m.files)
      if (f.filename == filename) entry = &f;
    if (!entry) return Fail(NotFound("backup '" + m.id.Name() + "' has no file '" + filename + "'"));
    if (entry->size > BackupSyncReader::kMaxFile)
      return Fail(Internal(m.id.Name() + "/" + filename + ": file too large for sync (" + std::to_string(entry->size) + " bytes)"));
    HEARTH_ASSIGN_OR_RETURN(HttpResponse r, Get(Base() + "/hearth/backup-file?volume=" + PercentEncode(Volid(m.id)) +
                                                    "&file=" + PercentEncode(filename),
                                                std::max<uint64_t>(entry->size, 1 << 16)));
    HEARTH_TRY(Binary(r));
    if (r.body.size() != entry->size || DigestHex(Sha256Digest(r.body)) != entry->csum)
      return Fail(Internal(Describe() + ": " + m.id.Name() + "/" + filename + " does not match its manifest (size or checksum)"));
    return std::move(r.body);
  }

  Result<std::string> ReadChunk(const BackupSnapshotId& id, const ChunkDigest& digest, bool) override {
    HEARTH_ASSIGN_OR_RETURN(HttpResponse r, Get(Base() + "/hearth/chunk?volume=" + PercentEncode(Volid(id)) +
                                                    "&digest=" + DigestHex(digest),
                                                kMaxBlob));
    HEARTH_TRY(Binary(r));
    return std::move(r.body);  // SyncDatastore checks it (CheckBlob) before it is stored
  }

 private:
  std::string Base() const {
    return "/api2/json/nodes/" + PercentEncode(remote_.node) + "/storage/" + PercentEncode(store_);
  }
  std::string Volid(const BackupSnapshotId& id) const { return store_ + ":backup/" + id.Name(); }

  Result<BackupSnapshotId> IdOf(const std::string& volid) const {
    std::string prefix = store_ + ":backup/";
    auto id = volid.rfind(prefix, 0) == 0 ? BackupSnapshotId::Parse(volid.substr(prefix.size())) : std::nullopt;
    if (!id) return Fail(Unexpected("it listed a backup volid '" + SanitizeRemoteText(volid, 120) + "' of another shape"));
    return *id;
  }

  Error Unexpected(const std::string& what) const { return Internal(Describe() + ": unexpected answer: " + what); }

  Result<HttpResponse> Get(const std::string& target, uint64_t max_body) {
    HttpRequest req;
    req.method = "GET";
    req.target = target;
    req.headers = {{"authorization", "PVEAPIToken=" + remote_.apitoken}};
    client_->SetLimits(max_body, kRemoteSyncTimeout);
    return client_->Send(req).map_error([&](Error e) { return Unavailable(Describe() + ": " + e.message); });
  }

  // The remote's error (its JSON message) in the task log's terms.
  Error Refusal(const HttpResponse& r) const {
    std::string why = r.reason;
    auto body = nlohmann::json::parse(r.body.substr(0, 1 << 16), nullptr, false);
    if (body.is_object() && body.contains("message") && body["message"].is_string())
      why = std::string(Trim(body["message"].get<std::string>()));
    if (body.is_object() && body.contains("errors") && body["errors"].is_object())
      for (const auto& [k, v] : body["errors"].items()) why += " " + k + ": " + (v.is_string() ? v.get<std::string>() : v.dump());
    if (r.status == 401) why = "authentication failed (check the remote's apitoken): " + why;
    if (r.status == 501) why = "it does not serve backup sync (an older hearth?): " + why;
    Error e = Unavailable(Describe() + " answered " + std::to_string(r.status) + ": " + SanitizeRemoteText(why));
    if (r.status == 403) e.code = ErrorCode::kPermissionDenied;
    return e;
  }

  Result<nlohmann::json> JsonData(const HttpResponse& r) const {
    if (r.status != 200) return Fail(Refusal(r));
    auto body = nlohmann::json::parse(r.body, nullptr, false);
    if (!body.is_object() || !body.contains("data")) return Fail(Unexpected("not a JSON answer"));
    return body["data"];
  }

  Status Binary(const HttpResponse& r) const {
    if (r.status != 200) return Fail(Refusal(r));
    return Ok();
  }

  ReplicationRemote remote_;
  std::string store_;
  std::unique_ptr<HttpsClient> client_;
};

}  // namespace

Result<std::unique_ptr<BackupSource>> MakeRemoteBackupSource(const ReplicationRemote& remote, const std::string& remote_store) {
  if (remote.IsPath())
    return Fail(FieldError("remote", "remote '" + remote.node + "' is a directory, not a hearth node: sync to a storage there with 'target'"));
  HEARTH_ASSIGN_OR_RETURN(auto client, ConnectRemote(remote));
  return std::unique_ptr<BackupSource>(std::make_unique<RemoteBackupSource>(remote, remote_store, std::move(client)));
}

}  // namespace hearth

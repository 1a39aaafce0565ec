#include "jobs/replication_target.h"

#include <mutex>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "http/https_client.h"

namespace hearth {
namespace {

class PathTarget final : public ReplicationTarget {
 public:
  PathTarget(ReplicationRemote remote, MakeStorageFn make_storage, FileSystem& fs)
      : remote_(std::move(remote)), make_storage_(std::move(make_storage)),
        receiver_([this](const std::string& id) { return Storage(id); }, [](int) { return false; }, fs,
                  remote_.path + "/replica") {}

  std::string Describe() const override { return "directory '" + remote_.path + "'"; }
  bool Remote() const override { return false; }
  Result<std::map<std::string, std::vector<std::string>>> Prepare(const std::string& jobid,
                                                                  const std::vector<std::string>& volids,
                                                                  const std::vector<std::string>& scan,
                                                                  int64_t last_sync, bool remove,
                                                                  const std::string& source,
                                                                  const ReplicationLog& log) override {
    return receiver_.Prepare(jobid, volids, scan, last_sync, remove, source, log);
  }
  Status Receive(int guest, const std::string& volid, const std::string& snap, const std::string& base,
                 const std::string& stream_file, uint64_t, const std::function<void(uint64_t)>&) override {
    return receiver_.Receive(guest, volid, snap, base, stream_file);
  }
  Status Finalize(const std::string& jobid, const std::vector<std::string>& volids, int64_t last_sync,
                  const std::string& source, const std::string& config, const ReplicationLog& log) override {
    return receiver_.Finalize(jobid, volids, last_sync, source, config, log);
  }

 private:
  Result<std::shared_ptr<StoragePlugin>> Storage(const std::string& id) {
    std::lock_guard lock(mu_);
    if (auto it = storages_.find(id); it != storages_.end()) return it->second;
    StorageConfig c;
    c.id = id;
    c.type = "btrfs";
    c.options = {{"path", remote_.path + "/" + id}, {"content", "images"}};
    HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<StoragePlugin> st, make_storage_(c));
    HEARTH_TRY(st->Activate());
    storages_[id] = st;
    return st;
  }

  ReplicationRemote remote_;
  MakeStorageFn make_storage_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<StoragePlugin>> storages_;
  ReplicaReceiver receiver_;
};

std::string FormEncode(const std::map<std::string, std::string>& fields) {
  std::string out;
  for (const auto& [k, v] : fields) {
    if (!out.empty()) out += '&';
    out += PercentEncode(k) + "=" + PercentEncode(v);
  }
  return out;
}

class NodeTarget final : public ReplicationTarget {
 public:
  NodeTarget(ReplicationRemote remote, std::unique_ptr<HttpsClient> client)
      : remote_(std::move(remote)), client_(std::move(client)) {}

  std::string Describe() const override {
    return "node '" + remote_.node + "' (" + remote_.host + ":" + std::to_string(remote_.port) + ")";
  }
  bool Remote() const override { return true; }

  Result<std::map<std::string, std::vector<std::string>>> Prepare(const std::string& jobid,
                                                                  const std::vector<std::string>& volids,
                                                                  const std::vector<std::string>& scan,
                                                                  int64_t last_sync, bool remove,
                                                                  const std::string& source,
                                                                  const ReplicationLog& log) override {
    HEARTH_ASSIGN_OR_RETURN(nlohmann::json data,
                            Call("prepare", {{"id", jobid},
                                             {"volumes", Join(volids, ",")},
                                             {"scan", Join(scan, ",")},
                                             {"last_sync", std::to_string(last_sync)},
                                             {"remove", remove ? "1" : "0"},
                                             {"source", source}}));
    std::map<std::string, std::vector<std::string>> out;
    if (!data.is_object() || !data.contains("volumes") || !data["volumes"].is_object())
      return Fail(Internal(Describe() + ": unexpected answer to prepare"));
    for (const auto& [volid, snaps] : data["volumes"].items()) {
      auto& v = out[volid];
      if (snaps.is_array())
        for (const auto& s : snaps)
          if (s.is_string()) v.push_back(s.get<std::string>());
    }
    if (data.contains("log") && data["log"].is_array())
      for (const auto& line : data["log"])
        if (line.is_string()) log(remote_.node + ": " + line.get<std::string>());
    return out;
  }

  Status Receive(int guest, const std::string& volid, const std::string& snap, const std::string& base,
                 const std::string& stream_file, uint64_t rate_bps,
                 const std::function<void(uint64_t)>& progress) override {
    HttpRequest head;
    head.method = "POST";
    head.target = Path("receive") + "?" +
                  FormEncode({{"guest", std::to_string(guest)}, {"volume", volid}, {"snapshot", snap}, {"base", base}});
    head.headers = {{"authorization", "PVEAPIToken=" + remote_.apitoken},
                    {"content-type", "application/octet-stream"}};
    // The target answers once its import finished; a large one takes a while.
    HEARTH_ASSIGN_OR_RETURN(HttpResponse r,
                            client_->SendFile(head, stream_file, rate_bps, progress, std::chrono::seconds(900)));
    HEARTH_TRY(Check(r));
    return Ok();
  }

  Status Finalize(const std::string& jobid, const std::vector<std::string>& volids, int64_t last_sync,
                  const std::string& source, const std::string& config, const ReplicationLog& log) override {
    HEARTH_ASSIGN_OR_RETURN(nlohmann::json data, Call("finalize", {{"id", jobid},
                                                                   {"volumes", Join(volids, ",")},
                                                                   {"last_sync", std::to_string(last_sync)},
                                                                   {"source", source},
                                                                   {"config", config}}));
    if (data.is_object() && data.contains("log") && data["log"].is_array())
      for (const auto& line : data["log"])
        if (line.is_string()) log(remote_.node + ": " + line.get<std::string>());
    return Ok();
  }

 private:
  std::string Path(const std::string& step) const {
    return "/api2/json/nodes/" + PercentEncode(remote_.node) + "/hearth/replication/" + step;
  }

  Result<nlohmann::json> Check(const HttpResponse& r) const {
    auto body = nlohmann::json::parse(r.body, nullptr, false);
    if (r.status == 200 && !body.is_discarded() && body.is_object()) return body.value("data", nlohmann::json());
    std::string why = r.reason;
    if (!body.is_discarded() && body.is_object() && body.contains("message") && body["message"].is_string())
      why = std::string(Trim(body["message"].get<std::string>()));
    if (!body.is_discarded() && body.is_object() && body.contains("errors") && body["errors"].is_object())
      for (const auto& [k, v] : body["errors"].items()) why += " " + k + ": " + (v.is_string() ? v.get<std::string>() : v.dump());
    return Fail(Unavailable(Describe() + " answered " + std::to_string(r.status) + ": " + why));
  }

  Result<nlohmann::json> Call(const std::string& step, const std::map<std::string, std::string>& fields) {
    HttpRequest req;
    req.method = "POST";
    req.target = Path(step);
    req.headers = {{"authorization", "PVEAPIToken=" + remote_.apitoken},
                   {"content-type", "application/x-www-form-urlencoded"}};
    req.body = FormEncode(fields);
    HEARTH_ASSIGN_OR_RETURN(HttpResponse r, client_->Send(req).map_error([&](Error e) {
      return Unavailable(Describe() + ": " + e.message);
    }));
    return Check(r);
  }

  ReplicationRemote remote_;
  std::unique_ptr<HttpsClient> client_;
};

}  // namespace

std::unique_ptr<ReplicationTarget> MakePathTarget(const ReplicationRemote& remote, MakeStorageFn make_storage,
                                                  FileSystem& fs) {
  return std::make_unique<PathTarget>(remote, std::move(make_storage), fs);
}

Result<std::unique_ptr<HttpsClient>> ConnectRemote(const ReplicationRemote& remote) {
  TlsTrust trust;
  trust.fingerprint = remote.fingerprint;
  std::string host = remote.host.find(':') != std::string::npos && remote.host[0] != '[' ? "[" + remote.host + "]"
                                                                                          : remote.host;
  return HttpsClient::Connect("https://" + host + ":" + std::to_string(remote.port), trust);
}

Result<std::unique_ptr<ReplicationTarget>> MakeNodeTarget(const ReplicationRemote& remote) {
  HEARTH_ASSIGN_OR_RETURN(auto client, ConnectRemote(remote));
  return std::unique_ptr<ReplicationTarget>(std::make_unique<NodeTarget>(remote, std::move(client)));
}

}  // namespace hearth

#include "qemu/backup_access.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "core/strings.h"
#include "qemu/qmp_client.h"
#include "qemu/supervisor.h"
#include "sys/unique_fd.h"

namespace hearth {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kFleecePrefix = "hearth-fleece-";
constexpr const char* kExportPrefix = "hearth-backup-";
// One bit per 4 MiB backup chunk: a dirty extent is exactly the chunks to read.
constexpr uint64_t kBitmapGranularity = uint64_t{4} << 20;
constexpr auto kTeardownWait = std::chrono::seconds(60);

std::string FleeceNode(const FleeceDisk& d) { return kFleecePrefix + d.drive_key; }

uint64_t U64(const nlohmann::json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}
bool Bool(const nlohmann::json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_boolean() && it->get<bool>();
}
std::string Str(const nlohmann::json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The ids in a query-block-exports or query-block-jobs reply that start with `prefix`.
std::vector<std::string> IdsWithPrefix(const nlohmann::json& ret, const char* member, const std::string& prefix) {
  std::vector<std::string> out;
  if (!ret.is_array()) return out;
  for (const auto& e : ret)
    if (e.is_object())
      if (std::string id = Str(e, member); StartsWith(id, prefix)) out.push_back(id);
  return out;
}

// Polls `query` until none of its ids has `prefix`, for up to kTeardownWait.
Status WaitGone(QemuControl& qemu, int vmid, const char* query, const char* member, const std::string& prefix) {
  auto deadline = Clock::now() + kTeardownWait;
  while (true) {
    HEARTH_ASSIGN_OR_RETURN(auto ret, qemu.Execute(vmid, query));
    auto left = IdsWithPrefix(ret, member, prefix);
    if (left.empty()) return Ok();
    if (Clock::now() > deadline)
      return Fail(Unavailable(left.front() + " is still there " + std::to_string(kTeardownWait.count()) + " s later"));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

std::vector<BlockNodeState> ReadNamedBlockNodes(const nlohmann::json& ret) {
  std::vector<BlockNodeState> out;
  if (!ret.is_array()) return out;
  for (const auto& n : ret) {
    if (!n.is_object()) continue;
    BlockNodeState s;
    s.node_name = Str(n, "node-name");
    if (s.node_name.empty()) continue;
    s.driver = Str(n, "drv");
    if (auto img = n.find("image"); img != n.end() && img->is_object()) s.virtual_size = U64(*img, "virtual-size");
    if (auto bms = n.find("dirty-bitmaps"); bms != n.end() && bms->is_array())
      for (const auto& b : *bms) {
        if (!b.is_object() || Str(b, "name").empty()) continue;
        s.bitmaps.push_back({Str(b, "name"), U64(b, "granularity"), U64(b, "count"), Bool(b, "recording"),
                             Bool(b, "persistent"), Bool(b, "busy"), Bool(b, "inconsistent")});
      }
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<BlockNodeState>> QueryBlockNodes(QemuControl& qemu, int vmid) {
  HEARTH_ASSIGN_OR_RETURN(auto ret, qemu.Execute(vmid, "query-named-block-nodes", {{"flat", true}}));
  return ReadNamedBlockNodes(ret);
}

Status AttachFleecing(QemuControl& qemu, int vmid, const std::vector<FleeceDisk>& disks) {
  for (const auto& d : disks) {
    nlohmann::ordered_json add = {{"driver", "qcow2"},
                                  {"node-name", FleeceNode(d)},
                                  {"file", {{"driver", "file"}, {"filename", d.fleece_path}}},
                                  {"backing", d.node}};
    HEARTH_TRY(qemu.AddBlockdevByFd(vmid, add).map_error([&](Error e) {
      return e.WithContext(d.drive_key + ": unable to attach the fleecing image");
    }));
  }
  return Ok();
}

Status TakePointInTime(QemuControl& qemu, int vmid, const std::vector<FleeceDisk>& disks) {
  auto actions = nlohmann::json::array();
  for (const auto& d : disks) {
    if (!d.new_bitmap.empty())
      actions.push_back({{"type", "block-dirty-bitmap-add"},
                         {"data", {{"node", d.node}, {"name", d.new_bitmap}, {"granularity", kBitmapGranularity},
                                   {"persistent", false}}}});
    if (!d.export_bitmap.empty())
      actions.push_back({{"type", "block-dirty-bitmap-disable"}, {"data", {{"node", d.node}, {"name", d.export_bitmap}}}});
    actions.push_back({{"type", "blockdev-backup"},
                       {"data", {{"job-id", FleeceNode(d)}, {"device", d.node}, {"target", FleeceNode(d)}, {"sync", "none"}}}});
  }
  HEARTH_TRY(qemu.Execute(vmid, "transaction", {{"actions", actions}}, std::chrono::seconds(60))
                 .map_error([](Error e) { return e.WithContext("unable to take the point in time"); }));
  return Ok();
}

Status ExportFleecing(QemuControl& qemu, int vmid, const std::vector<FleeceDisk>& disks, const std::string& socket) {
  HEARTH_TRY(qemu.StartNbdServer(vmid, socket));
  for (const auto& d : disks) {
    nlohmann::json args = {{"type", "nbd"},          {"id", kExportPrefix + d.drive_key}, {"node-name", FleeceNode(d)},
                           {"name", d.drive_key},    {"writable", false}};
    if (!d.export_bitmap.empty()) args["bitmaps"] = nlohmann::json::array({d.export_bitmap});
    HEARTH_TRY(qemu.Execute(vmid, "block-export-add", args).map_error([&](Error e) {
      return e.WithContext(d.drive_key + ": unable to export the point-in-time view");
    }));
  }
  return Ok();
}

Status DetachFleecing(QemuControl& qemu, int vmid) {
  Status first = Ok();
  auto keep = [&](Status st) {
    if (!st && first) first = std::move(st);
  };
  if (auto ret = qemu.Execute(vmid, "query-block-exports"); ret) {
    for (const auto& id : IdsWithPrefix(*ret, "id", kExportPrefix))
      keep(qemu.Execute(vmid, "block-export-del", {{"id", id}}).map([](auto&&) {}));
    keep(WaitGone(qemu, vmid, "query-block-exports", "id", kExportPrefix));
  } else {
    keep(Fail(ret.error()));
  }
  // "NBD server not running" when none is (nothing was exported yet, or a second call).
  (void)qemu.Execute(vmid, "nbd-server-stop");
  if (auto ret = qemu.Execute(vmid, "query-block-jobs"); ret) {
    for (const auto& id : IdsWithPrefix(*ret, "device", kFleecePrefix))
      keep(qemu.Execute(vmid, "block-job-cancel", {{"device", id}, {"force", true}}).map([](auto&&) {}));
    keep(WaitGone(qemu, vmid, "query-block-jobs", "device", kFleecePrefix));
  } else {
    keep(Fail(ret.error()));
  }
  if (auto nodes = QueryBlockNodes(qemu, vmid); nodes) {
    for (const auto& n : *nodes)
      if (StartsWith(n.node_name, kFleecePrefix))
        keep(qemu.Execute(vmid, "blockdev-del", {{"node-name", n.node_name}}, std::chrono::seconds(60)).map([](auto&&) {}));
  } else {
    keep(Fail(nodes.error()));
  }
  return first;
}

Status CommitBitmaps(QemuControl& qemu, int vmid, const std::vector<FleeceDisk>& disks) {
  auto actions = nlohmann::json::array();
  for (const auto& d : disks)
    if (!d.export_bitmap.empty())
      actions.push_back({{"type", "block-dirty-bitmap-remove"}, {"data", {{"node", d.node}, {"name", d.export_bitmap}}}});
  if (actions.empty()) return Ok();
  HEARTH_TRY(qemu.Execute(vmid, "transaction", {{"actions", actions}}));
  return Ok();
}

Status RollbackBitmaps(QemuControl& qemu, int vmid, const std::vector<FleeceDisk>& disks) {
  auto actions = nlohmann::json::array();
  for (const auto& d : disks) {
    if (!d.export_bitmap.empty() && !d.new_bitmap.empty()) {
      actions.push_back({{"type", "block-dirty-bitmap-merge"},
                         {"data", {{"node", d.node}, {"target", d.export_bitmap}, {"bitmaps", {d.new_bitmap}}}}});
    }
    if (!d.export_bitmap.empty())
      actions.push_back({{"type", "block-dirty-bitmap-enable"}, {"data", {{"node", d.node}, {"name", d.export_bitmap}}}});
    if (!d.new_bitmap.empty())
      actions.push_back({{"type", "block-dirty-bitmap-remove"}, {"data", {{"node", d.node}, {"name", d.new_bitmap}}}});
  }
  if (actions.empty()) return Ok();
  HEARTH_TRY(qemu.Execute(vmid, "transaction", {{"actions", actions}}));
  return Ok();
}

Status RemoveBitmaps(QemuControl& qemu, int vmid, const BlockNodeState& node, const std::string& keep) {
  for (const auto& b : node.bitmaps)
    if (StartsWith(b.name, kBitmapPrefix) && b.name != keep)
      HEARTH_TRY(qemu.Execute(vmid, "block-dirty-bitmap-remove", {{"node", node.node_name}, {"name", b.name}}));
  return Ok();
}

Status QemuSupervisor::StartNbdServer(int vmid, const std::string& socket_path) {
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof addr.sun_path) return Fail(Internal("NBD socket path too long: " + socket_path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Fail(Internal(std::string("socket: ") + std::strerror(errno)));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size());
  ::unlink(socket_path.c_str());  // a stale one of a crashed backup
  // Root's alone (the run directory is 0700 too; umask is the process's, not this thread's).
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::chmod(socket_path.c_str(), 0600) != 0 ||
      ::listen(fd.get(), 16) != 0)
    return Fail(Internal("unable to listen on " + socket_path + ": " + std::strerror(errno)));
  HEARTH_ASSIGN_OR_RETURN(QmpClient c, QmpClient::Connect(Paths(vmid).qmp));
  HEARTH_TRY(c.ExecuteWithFd("getfd", {{"fdname", "hearth-nbd"}}, fd.get()));
  auto started = c.Execute("nbd-server-start", {{"addr", {{"type", "fd"}, {"data", {{"str", "hearth-nbd"}}}}}});
  if (!started) {
    (void)c.Execute("closefd", {{"fdname", "hearth-nbd"}});
    ::unlink(socket_path.c_str());
    return Fail(started.error().WithContext("unable to start the NBD server"));
  }
  return Ok();
}

}  // namespace hearth

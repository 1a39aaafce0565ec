#include "storage/nfs/nfs_storage.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <fstream>
#include <sstream>

#include "core/strings.h"
#include "model/storage_config.h"
#include "storage/registry.h"
#include "sys/files.h"

namespace hearth {
namespace {

std::string ReadProcMounts() {
  std::ifstream f("/proc/mounts");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// /proc/mounts escapes space, tab, newline and backslash as \ooo.
std::string UnescapeMountField(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' &&
        s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool IsIPv6Literal(const std::string& server) { return server.find(':') != std::string::npos; }

// PVE::Network::tcp_ping: can a TCP connection to server:port be made within `timeout`?
bool TcpPing(const std::string& server, int port, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(server.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) return false;
  bool ok = false;
  for (addrinfo* a = res; a && !ok; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int r = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (r == 0) {
      ok = true;
    } else if (errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        ok = ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
      }
    }
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return ok;
}

}  // namespace

NfsStorage::NfsStorage(const StorageConfig& config, ProcessRunner& runner, MountsReader mounts)
    : DirStorage(config, runner, DirLayout{}),
      runner_(runner),
      mounts_(mounts ? std::move(mounts) : MountsReader(ReadProcMounts)),
      server_(config.Get("server")),
      export_(config.Get("export")),
      options_(config.Get("options")) {}

std::string NfsStorage::Source(const std::string& server, const std::string& export_path) {
  return (IsIPv6Literal(server) ? "[" + server + "]" : server) + ":" + export_path;
}

bool NfsStorage::IsMounted(const std::string& mounts, const std::string& server, const std::string& export_path,
                           const std::string& path) {
  std::string source = Source(server, export_path);
  for (const auto& line : Split(mounts, '\n')) {
    auto f = Split(line, ' ');
    if (f.size() < 3 || !StartsWith(f[2], "nfs")) continue;
    std::string src = UnescapeMountField(f[0]);
    if ((src == source || src == source + "/") && UnescapeMountField(f[1]) == path) return true;
  }
  return false;
}

Status NfsStorage::Ready() const {
  if (!IsMounted(mounts_(), server_, export_, root_))
    return Fail(FailedPrecondition("unable to activate storage '" + id_ + "' - NFS export '" + Source(server_, export_) +
                                   "' is not mounted on '" + root_ + "'"));
  return DirStorage::Ready();
}

Status NfsStorage::CheckConnection() {
  // NFSv4 servers need not run mountd, so showmount cannot ask them (Proxmox: rpcinfo).
  bool v4 = options_.find("vers=4") != std::string::npos;
  std::vector<std::string> argv = v4 ? std::vector<std::string>{"/usr/sbin/rpcinfo", "-T", "tcp", server_, "nfs", "4"}
                                     : std::vector<std::string>{"/sbin/showmount", "--no-headers", "--exports", server_};
  ProcessOptions opt;
  opt.timeout = std::chrono::seconds(10);
  auto r = runner_.Run(argv, opt);
  if (r && r->exit_code == 0) return Ok();
  // NFSv4 without an answering portmapper (or without rpcinfo): the NFS port itself
  // (`port=` of the options, 2049 by default; 0 means no check can pass), as Proxmox.
  if (v4) {
    int port = 2049;
    if (auto at = options_.find("port="); at != std::string::npos)
      port = static_cast<int>(ParseInt(options_.substr(at + 5, options_.find(',', at) - at - 5)).value_or(2049));
    if (port > 0 && port < 65536 && TcpPing(server_, port, std::chrono::seconds(2))) return Ok();
  }
  return Fail(Unavailable("storage '" + id_ + "' is not online"));
}

Status NfsStorage::Activate() {
  std::lock_guard lock(activate_mu_);
  if (!IsMounted(mounts_(), server_, export_, root_)) {
    HEARTH_TRY(CheckConnection());
    bool base;
    {
      std::lock_guard config_lock(config_mu_);
      base = create_base_path_;
    }
    if (base) (void)MakeDirs(root_);
    struct stat st {};
    if (::stat(root_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return Fail(FailedPrecondition("unable to activate storage '" + id_ + "' - directory '" + root_ + "' does not exist"));
    std::vector<std::string> argv = {"/bin/mount", "-t", "nfs", Source(server_, export_), root_};
    if (!options_.empty()) argv.insert(argv.end(), {"-o", options_});
    ProcessOptions opt;
    opt.timeout = std::chrono::seconds(60);
    auto r = runner_.Run(argv, opt);
    if (!r) return Fail(Internal("mount error: " + r.error().message));
    if (r->exit_code != 0) {
      // Proxmox shows mount's last stderr line; util-linux ends with a hint to read dmesg,
      // so the line before it (the reason) is the one worth showing.
      std::string reason;
      for (const auto& line : Split(r->err.empty() ? r->out : r->err, '\n')) {
        std::string_view t = Trim(line);
        if (!t.empty() && !StartsWith(t, "dmesg(1) may have more information")) reason = std::string(t);
      }
      return Fail(Internal("mount error: " + (reason.empty() ? "exit code " + std::to_string(r->exit_code) : reason)));
    }
  }
  return DirStorage::Activate();
}

void RegisterNfsStorage(StorageRegistry& registry) {
  registry.Register("nfs", [](const StorageConfig& config, const StorageDeps& deps) -> Result<std::shared_ptr<StoragePlugin>> {
    if (!deps.runner) return Fail(Internal("nfs storage without a process runner"));
    return std::make_shared<NfsStorage>(config, *deps.runner);
  });
}

}  // namespace hearth

// The composition root: builds the real adapters (SQLite, posix processes, netlink, QEMU,
// the dir storage, Beast) and wires the services. Nothing else constructs adapters.
#pragma once

#include <memory>
#include <string>

#include "access/access_service.h"
#include "core/result.h"
#include "state/sqlite/sqlite_store.h"
#include "sys/file_system.h"

namespace hearth {

struct DaemonOptions {
  std::string data_dir = "/var/lib/hearth";
  std::string run_dir;  // default: <data_dir>/run
  std::string listen = "0.0.0.0:8006";
  std::string node;     // default: the host name
  std::string accel = "auto";  // auto | kvm | tcg
  std::string qemu_user = "hearth-qemu";
  std::string qemu_binary = "qemu-system-x86_64";
  std::string image_cache;  // default: <data_dir>/cache/images
  int threads = 2;
  int client_timeout = 60;  // seconds a client may take per request header, body chunk or idle gap
};

// Runs `hearth serve` until SIGTERM or SIGINT. Returns the process exit code.
int RunDaemon(const DaemonOptions& options);

// Pieces shared with the local admin verbs, which work on the data dir directly.
Result<std::unique_ptr<SqliteStore>> OpenStore(const std::string& data_dir);
Result<std::unique_ptr<TicketAuthority>> LoadOrCreateTicketAuthority(FileSystem& fs, const std::string& data_dir);
std::string DefaultNodeName();

}  // namespace hearth

// `hearth backup key`: encryption keys of backup storages. `create` and `show` work on a key
// file locally (no daemon needed: keep a copy of the key away from the machine it protects);
// `set` and `remove` change a storage's `encryption-key` through PUT /storage/{storage}, as
// Proxmox VE's `pvesm set <storage> --encryption-key` does.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <iostream>

#include "backup/crypt_key.h"
#include "cli/client_context.h"
#include "sys/console.h"

namespace hearth {
namespace {

// A new file, 0600, never over an existing one (a key file replaced by mistake is a key lost).
Result<int> CreateNewFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return Fail(errno == EEXIST ? AlreadyExists("'" + path + "' exists: choose another file (it may hold a key you need)")
                                : Internal("cannot create '" + path + "': " + std::strerror(errno)));
  return fd;
}

// Writes `content` into the new file `fd` (from CreateNewFile) and closes it; on failure the
// file is removed.
Status FillNewFile(int fd, const std::string& path, const std::string& content) {
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  bool ok = done == content.size() && ::fsync(fd) == 0;
  std::string why = std::strerror(errno);
  ::close(fd);
  if (ok) return Ok();
  ::unlink(path.c_str());
  return Fail(Internal("cannot write '" + path + "': " + why));
}

Status WriteNewFile(const std::string& path, const std::string& content) {
  HEARTH_ASSIGN_OR_RETURN(int fd, CreateNewFile(path));
  return FillNewFile(fd, path, content);
}

// A key file, read with a bound (a key file is a few hundred bytes; /dev/zero is not one).
Result<std::string> ReadKeyFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Fail(Internal("cannot read '" + path + "': " + std::strerror(errno)));
  std::string text(BackupKey::kMaxKeyFile + 1, '\0');
  ssize_t n = ::read(fd, text.data(), text.size());
  ::close(fd);
  if (n < 0) return Fail(Internal("cannot read '" + path + "': " + std::strerror(errno)));
  text.resize(static_cast<size_t>(n));
  auto key = BackupKey::FromKeyFile(text);
  if (!key) return Fail(InvalidArgument("'" + path + "' is not a key file: " + key.error().message));
  return text;
}

const char* kKeepSafe =
    "Keep a copy of this key away from this machine: backups encrypted with it cannot be restored without it.";

}  // namespace

void AddBackupKeyCommands(CLI::App* bk, const ClientContext& ctx) {
  static std::string file, storage, save;
  auto* key = bk->add_subcommand("key", "Encryption keys of backup storages (AES-256-GCM, keyed chunk ids)");
  key->require_subcommand(1);

  auto* create = key->add_subcommand("create", "Make a new key file: hearth backup key create ~/hearth-backup.key");
  create->add_option("file", file, "Where to write it (created 0600; an existing file is never replaced)")->required();
  create->callback([] {
    auto made = BackupKey::Generate();
    if (!made) std::exit(ReportError(made.error()));
    if (auto st = WriteNewFile(file, made->ToKeyFile(std::time(nullptr))); !st) std::exit(ReportError(st.error()));
    std::cout << "fingerprint: " << made->fingerprint() << "\n" << kKeepSafe << "\n";
  });

  auto* show = key->add_subcommand("show", "Print a key file's fingerprint: hearth backup key show FILE");
  show->add_option("file", file)->required();
  show->callback([] {
    auto text = ReadKeyFile(file);
    if (!text) std::exit(ReportError(text.error()));
    std::cout << "fingerprint: " << BackupKey::FromKeyFile(*text)->fingerprint() << "\n";
  });

  static std::string value;
  auto* set = key->add_subcommand(
      "set", "Encrypt the backups a storage gets from now on: hearth backup key set local FILE, or "
             "hearth backup key set local autogen --save FILE");
  set->add_option("storage", storage)->required();
  set->add_option("key", value, "A key file, or 'autogen' for a new key made by the daemon")->required();
  set->add_option("--save", save, "With autogen: where to write the new key (else it is printed)");
  set->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string&) {
      std::string param = value;
      if (value != "autogen") {
        if (!save.empty()) return ReportError(InvalidArgument("--save goes with autogen (the key file is yours already)"));
        auto text = ReadKeyFile(value);
        if (!text) return ReportError(text.error());
        param = *text;
      }
      // The file for an autogen key is made before the key is: a key nobody can save is not made.
      int save_fd = -1;
      if (!save.empty()) {
        auto fd = CreateNewFile(save);
        if (!fd) return ReportError(fd.error());
        save_fd = *fd;
      }
      auto r = api.Call("PUT", "/storage/" + storage, {{"encryption-key", param}});
      if (!r) {
        if (save_fd >= 0) {
          ::close(save_fd);
          ::unlink(save.c_str());
        }
        return ReportError(r.error());
      }
      std::string key_file = r->contains("config") ? (*r)["config"].value("encryption-key", "") : "";
      auto k = BackupKey::FromKeyFile(key_file);
      if (!k) return ReportError(Internal("the daemon did not return the key"));
      std::cout << "storage '" << storage << "' encrypts new backups with key " << k->fingerprint() << "\n";
      if (value != "autogen") return 0;
      int rc = 0;
      if (save_fd >= 0) {
        if (auto st = FillNewFile(save_fd, save, key_file); !st) {
          rc = ReportError(st.error());
          std::cout << key_file;  // the key must not be lost: shown instead
        } else {
          std::cout << "key written to " << save << "\n";
        }
      } else {
        std::cout << key_file;
      }
      std::cout << kKeepSafe << "\n";
      return rc;
    });
  });

  auto* remove = key->add_subcommand(
      "remove", "Stop encrypting new backups of a storage (the key is kept for the backups made with it): "
                "hearth backup key remove local");
  remove->add_option("storage", storage)->required();
  remove->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string&) {
      auto r = api.Call("PUT", "/storage/" + storage, {{"delete", "encryption-key"}});
      if (!r) return ReportError(r.error());
      std::cout << "storage '" << storage << "' no longer encrypts new backups\n";
      return 0;
    });
  });
}

}  // namespace hearth

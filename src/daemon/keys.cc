#include <spdlog/spdlog.h>
#include <unistd.h>

#include "core/strings.h"
#include "daemon/daemon.h"
#include "sys/files.h"
#include "sys/random_source.h"

namespace hearth {

Result<std::unique_ptr<SqliteStore>> OpenStore(const std::string& data_dir) {
  // Only root reads the data dir: it holds password hashes, keys, VM disks and their
  // cloud-init seeds. Installs made before this rule (0755, files 0644) are fixed here.
  HEARTH_TRY(MakeDirs(data_dir, 0700));
  HEARTH_ASSIGN_OR_RETURN(size_t fixed, RestrictTree(data_dir));
  if (fixed) spdlog::warn("made {} file(s) and directories under {} private (group/other access removed)", fixed, data_dir);
  std::string path = data_dir + "/hearth.db";
  HEARTH_ASSIGN_OR_RETURN(auto store, SqliteStore::Open(path));
  if (auto st = store->QuickCheck(); !st)
    return Fail(Internal(path + ": " + st.error().message +
                         " - stop here and restore it from a backup (sqlite3 .recover can salvage what is left)"));
  return store;
}

Result<std::unique_ptr<TicketAuthority>> LoadOrCreateTicketAuthority(FileSystem& fs, const std::string& data_dir) {
  std::string priv = data_dir + "/priv";
  HEARTH_TRY(fs.MakeDirs(priv, 0700));
  std::string key_path = priv + "/authkey.pem", csrf_path = priv + "/csrf.key";
  if (!fs.Exists(key_path)) {
    HEARTH_ASSIGN_OR_RETURN(std::string pem, TicketAuthority::GenerateKeyPem());
    HEARTH_TRY(WriteFileAtomic(fs, key_path, pem, 0600));
  }
  if (!fs.Exists(csrf_path)) {
    unsigned char secret[32];
    RandomFill(secret, sizeof secret);
    HEARTH_TRY(WriteFileAtomic(fs, csrf_path, Base64Encode(std::string_view(reinterpret_cast<char*>(secret), 32)), 0600));
  }
  HEARTH_ASSIGN_OR_RETURN(std::string pem, fs.Read(key_path, 64 << 10));
  HEARTH_ASSIGN_OR_RETURN(std::string csrf, fs.Read(csrf_path, 64 << 10));
  return TicketAuthority::Create(pem, std::string(Trim(csrf)));
}

std::string DefaultNodeName() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::string name(host);
  name = name.substr(0, name.find('.'));
  std::string clean;
  for (char c : name)
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-') clean += c;
  return clean.empty() ? "hearth" : clean;
}

}  // namespace hearth

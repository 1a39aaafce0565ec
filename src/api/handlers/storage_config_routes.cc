// The storage configuration: GET/POST /storage, GET/PUT/DELETE /storage/{storage}, as
// pve-storage PVE/API2/Storage/Config.pm (docs/reference/pve-storage.md section 1).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>

#include "api/handlers/handlers.h"
#include "core/strings.h"
#include "model/storage_config.h"
#include "vms/backup_keys.h"

namespace hearth {
namespace {

// One index entry: the stored options, canonical, with Proxmox's JSON types.
nlohmann::json ConfigJson(const StorageConfig& c, const std::string& digest) {
  nlohmann::json j = {{"storage", c.id}, {"type", c.type}, {"digest", digest}};
  for (const auto& [k, v] : c.options) {
    if (StorageOptionIsNumeric(k)) {
      if (auto n = ParseInt(v)) j[k] = *n;
    } else {
      j[k] = v;
    }
  }
  if (!j.contains("content") || j["content"] == "") j["content"] = "none";
  if (c.Shared()) j["shared"] = 1;  // network types are shared without saying so
  return j;
}

// The options of a create or update request, by name.
std::map<std::string, std::string> OptionParams(const Params& params) {
  std::map<std::string, std::string> out;
  for (auto name : StorageOptionNames())
    if (auto v = params.Get(std::string(name))) out[std::string(name)] = *v;
  return out;
}

std::vector<ParamSpec> OptionSpecs(bool update) {
  std::vector<ParamSpec> out;
  for (auto name : StorageOptionNames()) {
    if (update && StorageOptionFixedEverywhere(name)) continue;
    out.push_back(MaxLen(PString(std::string(name)), 4096));
  }
  return out;
}

// `encryption-key` (PBSPlugin.pm's on_add_hook/on_update_hook, here for any storage that
// holds backups): the API's value is "autogen" or a key file; storage.cfg gets its
// fingerprint and the key goes to BackupKeys before the record is written. Returns the
// key file for the reply's `config` (Proxmox returns it so that an autogen key can be saved).
Result<std::optional<std::string>> ResolveEncryptionKey(std::map<std::string, std::string>& options, int64_t now) {
  auto it = options.find("encryption-key");
  if (it == options.end()) return std::optional<std::string>();
  HEARTH_ASSIGN_OR_RETURN(auto resolved, BackupKeys::Resolve(it->second, now));
  it->second = resolved.fingerprint;
  return std::optional<std::string>(resolved.key_file);
}

nlohmann::json Reply(const std::string& id, const std::string& type, const std::optional<std::string>& key_file) {
  nlohmann::json out = {{"storage", id}, {"type", type}};
  if (key_file) out["config"] = {{"encryption-key", *key_file}};
  return out;
}

void LogWarnings(const std::string& id, const std::vector<std::string>& warnings) {
  for (const auto& w : warnings) spdlog::warn("storage '{}': {}", id, w);
}

}  // namespace

void RegisterStorageConfigRoutes(Router& r, ApiServices& s) {
  std::vector<std::string> types;
  for (auto t : StorageTypeNames()) types.emplace_back(t);

  r.Add({"GET", "/storage", {PEnum("type", types)}, false, "", "", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           std::string digest = s.storage_configs.Digest();
           nlohmann::json out = nlohmann::json::array();
           for (const auto& e : s.storage.Entries()) {
             if (!s.access.AllowedAny(*c.who, "/storage/" + e.config.id, "Datastore.Audit|Datastore.AllocateSpace"))
               continue;
             if (auto t = c.params.Get("type"); t && *t != e.config.type) continue;
             out.push_back(ConfigJson(e.config, digest));
           }
           return Data(out);
         },
         "Storage index."});

  r.Add({"GET", "/storage/{storage}", {StorageParam()}, false, "Datastore.Allocate", "/storage/{storage}", true, true,
         false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           std::string id = *c.params.Get("storage");
           auto e = s.storage.Find(id);
           if (!e) return Fail(NotFound("storage '" + id + "' does not exist"));
           return Data(ConfigJson(e->config, s.storage_configs.Digest()));
         },
         "Read storage configuration."});

  std::vector<ParamSpec> create = OptionSpecs(false);
  create.push_back(StorageParam());
  create.push_back(Required(PEnum("type", types)));
  r.Add({"POST", "/storage", create, false, "Datastore.Allocate", "/storage", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           std::string id = *c.params.Get("storage"), type = *c.params.Get("type");
           std::vector<std::string> warnings;
           auto options = OptionParams(c.params);
           HEARTH_ASSIGN_OR_RETURN(auto key_file, ResolveEncryptionKey(options, std::time(nullptr)));
           auto made = s.storage_configs.Create(id, type, options, &warnings, [&](const StorageConfig&) -> Status {
             // A key left by an earlier storage of this id must not encrypt this one's backups
             // (it stays in the keyring, for the backups made with it).
             return key_file ? s.vms.backup_keys().Save(id, *key_file) : s.vms.backup_keys().Retire(id);
           });
           LogWarnings(id, warnings);
           if (!made) return Fail(made.error());
           spdlog::info("storage '{}' ({}) created by {}", id, type, c.who->AuthId());
           return Data(Reply(id, type, key_file));
         },
         "Create a new storage."});

  std::vector<ParamSpec> update = OptionSpecs(true);
  update.push_back(StorageParam());
  update.push_back(MaxLen(PString("digest"), 64));
  ParamSpec del = MaxLen(PString("delete", "A list of settings you want to delete."), 4096);
  del.check = [](const std::string& v) -> std::string {
    for (const auto& k : SplitAny(v, ",; \t")) {
      if (k.empty()) continue;
      bool ok = k.size() >= 2 && k[0] >= 'a' && k[0] <= 'z';
      for (char ch : k) ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-');
      if (!ok) return "invalid format - invalid configuration ID '" + k + "'";
    }
    return "";
  };
  update.push_back(del);
  r.Add({"PUT", "/storage/{storage}", update, false, "Datastore.Allocate", "/storage", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           std::string id = *c.params.Get("storage");
           std::vector<std::string> remove;
           for (const auto& k : SplitAny(c.params.GetOr("delete", ""), ",; \t"))
             if (!k.empty()) remove.push_back(k);
           std::vector<std::string> warnings;
           auto options = OptionParams(c.params);
           HEARTH_ASSIGN_OR_RETURN(auto key_file, ResolveEncryptionKey(options, std::time(nullptr)));
           bool drop_key = std::find(remove.begin(), remove.end(), "encryption-key") != remove.end();
           auto updated = s.storage_configs.Update(
               id, options, remove, c.params.GetOr("digest", ""), &warnings, [&](const StorageConfig&) -> Status {
                 if (key_file) return s.vms.backup_keys().Save(id, *key_file);
                 // Turning encryption off keeps the key in the keyring: its backups need it.
                 if (drop_key) return s.vms.backup_keys().Retire(id);
                 return Ok();
               });
           LogWarnings(id, warnings);
           if (!updated) return Fail(updated.error());
           spdlog::info("storage '{}' updated by {}", id, c.who->AuthId());
           return Data(Reply(id, updated->type, key_file));
         },
         "Update storage configuration."});

  r.Add({"DELETE", "/storage/{storage}", {StorageParam()}, false, "Datastore.Allocate", "/storage", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           std::string id = *c.params.Get("storage");
           // The key is kept (retired): the storage's backups stay on disk and need it.
           HEARTH_TRY(s.storage_configs.Delete(id, [&](const StorageConfig&) { return s.vms.backup_keys().Retire(id); }));
           spdlog::info("storage '{}' removed by {} (its volumes were left in place)", id, c.who->AuthId());
           return Data(nullptr);
         },
         "Delete storage configuration. The volumes on it are not touched."});
}

}  // namespace hearth

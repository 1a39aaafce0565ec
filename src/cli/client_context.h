// What the verbs of one CLI area need from the client core (commands.cc): a connected API
// client for a call, a task followed to its end, key=value parsing. Lets each area live in
// its own file.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/api_client.h"
#include "cli/output.h"
#include "core/result.h"

namespace CLI {
class App;
}

namespace hearth {

struct ClientContext {
  // Connects, finds the node, runs `fn`; the exit code goes where the verb reports it.
  std::function<void(const std::function<int(ApiClient&, const std::string& node)>&)> with_api;
  // A UPID result is followed to its end (or printed with --no-wait); other results: 0.
  std::function<int(ApiClient&, const Result<nlohmann::json>&)> task_or_print;
};

// "key=value" arguments; an argument without '=' is an error naming it.
Result<KeyValues> ParseKeyValues(const std::vector<std::string>& args);

// list/add/set/show/remove/run verbs under `parent` for a job collection at `base`
// (`base/{id}`, `base/{id}/run`), job_verbs.cc.
struct JobVerbs {
  std::string base;                 // "/cluster/backup"
  std::string plural;               // "backup jobs", for the list verb's help
  std::vector<Column> list_columns;
  std::string add_help, params_help, set_help, remove_help;
};
void AddJobVerbs(CLI::App* parent, const ClientContext& ctx, const JobVerbs& spec);

// `hearth snapshot ...` (snapshot_commands.cc).
void AddSnapshotCommands(CLI::App& app, const ClientContext& ctx);
// `hearth backup ...` (backup_commands.cc).
void AddBackupCommands(CLI::App& app, const ClientContext& ctx);
// `hearth backup key ...` under `backup` (backup_key_commands.cc).
void AddBackupKeyCommands(CLI::App* backup, const ClientContext& ctx);
// `hearth replicate ...` (replicate_commands.cc).
void AddReplicateCommands(CLI::App& app, const ClientContext& ctx);
// `hearth net ...` (net_commands.cc).
void AddNetCommands(CLI::App& app, const ClientContext& ctx);

}  // namespace hearth

// The API client verbs of the `hearth` command line (vm, snapshot, task, storage, api, login). They
// reach the daemon only through its HTTP API.
#pragma once

namespace CLI {
class App;
}

namespace hearth {

// Adds the client verbs to `app`; each verb's callback stores its exit code in `rc`.
void AddClientCommands(CLI::App& app, int& rc);

}  // namespace hearth

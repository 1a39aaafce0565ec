// `hearth serve` and the local admin verbs (`user add`, `token add`), which work on the data
// dir directly, whether or not the daemon runs.
#pragma once

namespace CLI {
class App;
}

namespace hearth {

void AddDaemonCommands(CLI::App& app, int& rc);

}  // namespace hearth

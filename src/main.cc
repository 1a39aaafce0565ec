// hearth: `hearth serve` runs the daemon, `hearth user|token` administer a data dir locally,
// and every other verb is a client of the daemon's HTTP API.
#include <sys/stat.h>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "daemon/commands.h"

int main(int argc, char** argv) {
  // Everything hearth creates (database, keys, task logs, volumes, sessions) is for its owner
  // only; files that others may read are opened up explicitly.
  umask(077);
  CLI::App app{"hearth — a homelab virtualization platform with the Proxmox VE API"};
  app.require_subcommand(1);
  int rc = 0;
  hearth::AddDaemonCommands(app, rc);
  hearth::AddClientCommands(app, rc);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return rc;
}

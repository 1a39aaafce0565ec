// hearth: `hearth serve` runs the daemon; every other verb is a client of its API.
#include "cli/commands.h"

int main(int argc, char** argv) { return hearth::RunCli(argc, argv); }

// The `hearth` command line: `serve`, local admin verbs, and the API client verbs.
#pragma once

namespace hearth {

int RunCli(int argc, char** argv);

}  // namespace hearth

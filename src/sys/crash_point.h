// Crash points: named places between the steps of a multi-step operation (allocate a disk,
// write the config, ...) where the crash test (tests/chaos) kills the daemon, so every step
// is hit on purpose rather than by luck (SQLite's and FoundationDB's crash tests work so).
//
// With HEARTH_TEST_CRASH_AT=<name>[@<n>] in the environment, the n-th (default first) pass
// through CrashPoint("<name>") kills the process with SIGKILL, exactly as `kill -9` or a
// power cut of the process would: no destructor, no flush. Without it a call costs one
// relaxed atomic load. Names are "<operation>.<step>", e.g. "create.disks-allocated"; the
// test finds them by reading the sources. Thread-safe.
#pragma once

namespace hearth {

void CrashPoint(const char* name);

}  // namespace hearth

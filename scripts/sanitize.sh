#!/usr/bin/env bash
# The sanitizer and fuzzing stages of the test command (docs/hardening.md):
#   asan: build-asan (clang, AddressSanitizer + UndefinedBehaviorSanitizer), unit and api suites
#   fuzz: every fuzz target for $HEARTH_FUZZ_SECONDS (default 15) from the committed corpus
#   tsan: build-tsan (clang, ThreadSanitizer), unit and concurrency suites
# Any sanitizer report aborts the program under test, so it fails its test.
#   scripts/sanitize.sh [asan] [fuzz] [tsan] [-- ctest args]   (default: all three stages)
set -euo pipefail
cd "$(dirname "$0")/.."
stages=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do stages+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#stages[@]} -gt 0 ] || stages=(asan fuzz tsan)

build() {  # build <preset> [targets...]
  local preset=$1; shift
  [ -f "build-$preset/CMakeCache.txt" ] || cmake --preset "$preset" >/dev/null
  local t=(); for x in "$@"; do t+=(--target "$x"); done
  cmake --build "build-$preset" -j "$(nproc)" "${t[@]}"
}

for stage in "${stages[@]}"; do
  start=$SECONDS
  case $stage in
    asan)
      build asan
      ctest --test-dir build-asan --output-on-failure --timeout 1200 -L 'unit|api' "$@" ;;
    fuzz)
      build asan
      ctest --test-dir build-asan --output-on-failure -L fuzz  # the committed corpus replays clean
      scripts/fuzz.py --build build-asan --seconds "${HEARTH_FUZZ_SECONDS:-15}" ;;
    tsan)
      build tsan hearth core_tests tasks_tests state_tests qemu_tests
      ctest --test-dir build-tsan --output-on-failure --timeout 1800 -R '^(unit_(core|tasks|state|qemu)|concurrency_.*)$' "$@" ;;
    *) echo "unknown stage '$stage' (asan, fuzz, tsan)" >&2; exit 2 ;;
  esac
  echo "sanitize: stage $stage took $((SECONDS - start)) s"
done

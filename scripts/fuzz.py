#!/usr/bin/env python3
"""Runs the libFuzzer targets (fuzz/*.cc, built by the asan preset) and prints, per target,
executions, executions per second, coverage (edges) and corpus size.

    scripts/fuzz.py                      # every target for 20 s (what CI runs)
    scripts/fuzz.py --seconds 300 auth   # one target longer
    scripts/fuzz.py --runs 10000000      # the 10-million-execution goal (bench/RESULTS.md)
    scripts/fuzz.py --merge              # shrink fuzz/corpus/* to the inputs that add coverage

New inputs a run finds go to a working corpus outside the checkout ($HEARTH_CACHE/fuzz or
/var/tmp/hearth-fuzz); the committed corpus in fuzz/corpus is only read. A crash, a leak, a
timeout or a failed invariant stops that target, leaves the input as crash-* in the working
directory and makes the script exit 1: turn the input into a unit test, then fix the bug.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def targets(build):
    d = os.path.join(build, "fuzz")
    if not os.path.isdir(d):
        sys.exit(f"no fuzz targets in {d}: build them with `cmake --preset asan && cmake --build build-asan`")
    return sorted(f[len("fuzz_"):] for f in os.listdir(d) if f.startswith("fuzz_") and os.access(os.path.join(d, f), os.X_OK))


def stat(text, name):
    m = re.search(rf"stat::{name}:\s+(\d+)", text)
    return int(m.group(1)) if m else 0


def run(build, name, args, work_root):
    exe = os.path.join(build, "fuzz", "fuzz_" + name)
    work = os.path.join(work_root, name)
    os.makedirs(work, exist_ok=True)
    seeds = os.path.join(CORPUS, name)
    os.makedirs(seeds, exist_ok=True)
    limit = [f"-max_total_time={args.seconds}"] if args.runs is None else [f"-runs={args.runs}"]
    cmd = [exe, *limit, "-print_final_stats=1", "-max_len=65536", f"-timeout={args.timeout}",
           "-rss_limit_mb=2048",
           f"-artifact_prefix={work_root}/{name}-", work, seeds]
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=env)
    secs = time.monotonic() - t0
    out = p.stderr
    cov = re.findall(r"cov: (\d+)", out)
    result = {
        "target": name, "ok": p.returncode == 0, "seconds": secs,
        "execs": stat(out, "number_of_executed_units"), "execs_per_sec": stat(out, "average_exec_per_sec"),
        "cov": int(cov[-1]) if cov else 0, "corpus": len(os.listdir(work)) + len(os.listdir(seeds)),
    }
    if not result["ok"]:
        tail = "\n".join(out.splitlines()[-60:])
        result["report"] = tail
    return result


def merge(build, name):
    exe = os.path.join(build, "fuzz", "fuzz_" + name)
    seeds = os.path.join(CORPUS, name)
    with tempfile.TemporaryDirectory() as new:
        subprocess.run([exe, "-merge=1", "-max_len=65536", new, seeds], capture_output=True, check=True)
        before = len(os.listdir(seeds))
        shutil.rmtree(seeds)
        shutil.copytree(new, seeds)
    print(f"{name}: {before} -> {len(os.listdir(seeds))} seeds")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("targets", nargs="*")
    ap.add_argument("--build", default=os.path.join(ROOT, "build-asan"))
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--runs", type=int)
    # Seconds one input may take. Long runs at low priority on a busy machine may go
    # unscheduled for more than 10 s (seen: "timeouts" on inputs that take 0.2 s alone).
    ap.add_argument("--timeout", type=int, default=10)
    ap.add_argument("--merge", action="store_true")
    args = ap.parse_args()
    names = args.targets or targets(args.build)
    if args.merge:
        for n in names:
            merge(args.build, n)
        return 0
    cache = os.environ.get("HEARTH_CACHE")
    work_root = os.path.join(cache, "fuzz") if cache else "/var/tmp/hearth-fuzz"
    os.makedirs(work_root, exist_ok=True)
    print(f"{'target':<14} {'execs':>12} {'execs/s':>9} {'cov':>6} {'corpus':>7} {'time':>7}  result", flush=True)
    failed = []
    for n in names:
        r = run(args.build, n, args, work_root)
        print(f"{n:<14} {r['execs']:>12,} {r['execs_per_sec']:>9,} {r['cov']:>6} {r['corpus']:>7} {r['seconds']:>6.0f}s  "
              f"{'ok' if r['ok'] else 'FAILED'}", flush=True)
        if not r["ok"]:
            failed.append(r)
    for r in failed:
        print(f"\n--- {r['target']} failed (input saved under {work_root}/{r['target']}-*):\n{r['report']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

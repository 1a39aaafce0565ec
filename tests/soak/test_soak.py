"""Soak: an hour of mixed API load at a steady rate, with VMs starting and stopping, while
the daemon's RSS, open descriptors, threads, task-table size and p99 latency are recorded
every minute. Nothing may grow without bound: after a warm-up, the last quarter of the run
may not exceed the second quarter by more than a small margin.

Not in CI (label soak): `ctest --test-dir build -L soak --timeout 5400`. SOAK_MINUTES sets the
length (default 60), SOAK_RATE the requests per second (default 40). The figures are printed
as a table and written to $SOAK_REPORT (default soak-report.json in the test's data dir).
"""
import json
import os
import random
import statistics
import threading
import time

import pytest

from harness import Hearth


def proc_figures(pid):
    status = open(f"/proc/{pid}/status").read()
    rss = int(next(l for l in status.splitlines() if l.startswith("VmRSS:")).split()[1]) * 1024
    threads = int(next(l for l in status.splitlines() if l.startswith("Threads:")).split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd")), threads


def p99(samples):
    if not samples:
        return 0.0
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * 0.99))]


@pytest.fixture(scope="module")
def hearth():
    h = Hearth().start()
    yield h
    h.close()


def test_an_hour_of_load_grows_nothing_without_bound(hearth):
    h = hearth
    minutes = float(os.environ.get("SOAK_MINUTES", "60"))
    rate = float(os.environ.get("SOAK_RATE", "40"))
    for vmid in range(300, 304):
        h.create_vm(vmid, name=f"soak{vmid}", memory=64, scsi0="local:1", serial0="socket")
    latencies, lock = [], threading.Lock()
    stop = threading.Event()
    errors = []
    rnd = random.Random(1)

    def request():
        kind = rnd.random()
        t0 = time.monotonic()
        if kind < 0.35:
            r = h.request("GET", f"/nodes/{h.node}/qemu")
        elif kind < 0.55:
            r = h.request("GET", "/cluster/resources")
        elif kind < 0.70:
            r = h.request("GET", h.vm_path(rnd.randint(300, 303)) + "/status/current")
        elif kind < 0.80:
            r = h.request("GET", f"/nodes/{h.node}/tasks", params={"limit": 50})
        elif kind < 0.90:
            r = h.request("PUT", h.vm_path(rnd.randint(300, 303)) + "/config",
                          data={"description": f"soak {time.time()}"})
        elif kind < 0.95:  # create and destroy short-lived VMs (tasks, volumes, configs)
            vmid = rnd.randint(400, 499)
            r = h.request("POST", f"/nodes/{h.node}/qemu", data={"vmid": vmid, "memory": 64, "scsi0": "local:1"})
            if r.status_code == 200:
                h.wait_task(r.json()["data"], ok=False)
                h.request("DELETE", h.vm_path(vmid))
        else:
            r = h.request("GET", "/version")
        dt = time.monotonic() - t0
        if r.status_code >= 500 and "already exists" not in r.text and "locked" not in r.text:
            errors.append(f"{r.request.method} {r.request.path_url}: {r.status_code} {r.text[:200]}")
        with lock:
            latencies.append(dt)

    def loader():
        interval = 4 / rate  # four loaders share the rate
        nxt = time.monotonic()
        while not stop.is_set():
            try:
                request()
            except Exception as e:  # noqa: BLE001 - recorded, the run goes on
                errors.append(repr(e))
            nxt += interval
            time.sleep(max(0, nxt - time.monotonic()))

    def vm_cycler():
        while not stop.is_set():
            for vmid in range(300, 304):
                if stop.is_set():
                    break
                try:
                    h.vm_action(vmid, "start")
                    stop.wait(20)
                    h.vm_action(vmid, "stop")
                except Exception as e:  # noqa: BLE001
                    errors.append(f"VM {vmid} cycle: {e!r}")

    threads = [threading.Thread(target=loader) for _ in range(4)] + [threading.Thread(target=vm_cycler)]
    for t in threads:
        t.start()
    rows = []
    pid = h.proc.pid
    try:
        for minute in range(1, int(minutes) + 1):
            stop.wait(60)
            with lock:
                lat, latencies[:] = list(latencies), []
            rss, fds, nthreads = proc_figures(pid)
            tasks = len(h.get(f"/nodes/{h.node}/tasks", params={"limit": 100000, "source": "all"}))
            rows.append({"minute": minute, "rss_mib": round(rss / 2**20, 1), "fds": fds, "threads": nthreads,
                         "tasks": tasks, "requests": len(lat), "p99_ms": round(p99(lat) * 1000, 1)})
            r = rows[-1]
            print(f"soak minute {minute:3}: rss {r['rss_mib']:7.1f} MiB  fds {fds:4}  threads {nthreads:3}  "
                  f"tasks {tasks:6}  requests {len(lat):5}  p99 {r['p99_ms']:7.1f} ms", flush=True)
    finally:
        stop.set()
        for t in threads:
            t.join(120)
    report = os.environ.get("SOAK_REPORT", os.path.join(h.dir, "soak-report.json"))
    json.dump(rows, open(report, "w"), indent=1)
    assert not errors, "\n".join(errors[:20])
    assert h.proc.poll() is None
    if len(rows) >= 8:
        q = len(rows) // 4
        second, last = rows[q:2 * q], rows[-q:]
        for key, slack in (("rss_mib", 1.25), ("fds", 1.2), ("threads", 1.5)):
            a, b = max(r[key] for r in second), max(r[key] for r in last)
            assert b <= a * slack + 8, f"{key} grew from {a} to {b}: {rows}"
        # p99 latency: the median of the last quarter within 3x of the second quarter's.
        a = statistics.median(r["p99_ms"] for r in second)
        b = statistics.median(r["p99_ms"] for r in last)
        assert b <= 3 * a + 20, f"p99 latency grew from {a} to {b} ms"

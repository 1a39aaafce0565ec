#!/usr/bin/python3
"""Memory the daemon keeps after bursts of big answers (the soak test's finding, reproduced in
a minute): 20,000 tasks in the table, then rounds of 8 clients listing all of them 5 times;
RSS right after each round and 31 s later (the daemon returns memory every 30 s). Prints
figures; asserts nothing.

    /usr/bin/python3 bench/memory_after_bursts.py [--tasks 20000] [--rounds 4]
"""
import argparse
import concurrent.futures
import os
import sqlite3
import sys
import time

import requests

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "lib"))
for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(var, None)

from harness import Hearth  # noqa: E402


def rss_mib(pid):
    return int(next(l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:")).split()[1]) // 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    h = Hearth().start()
    try:
        h.kill9()  # fill the task table directly: creating 20,000 tasks through the API takes an hour
        db = sqlite3.connect(os.path.join(h.dir, "hearth.db"))
        db.executemany("INSERT INTO tasks VALUES (?,?,?,?,?,?,?,?,?)", [
            (f"UPID:{h.node}:{i:08X}:00000001:6B0E0000:qmconfig:{100 + i % 50}:root@pam:", h.node, "qmconfig",
             str(100 + i % 50), "root@pam", 1796000000 + i, 1796000001 + i, "OK", 100 + i % 50)
            for i in range(args.tasks)])
        db.commit()
        db.close()
        h.start()
        print(f"tasks {args.tasks}; RSS at start {rss_mib(h.proc.pid)} MiB")

        def client(_):
            s = requests.Session()
            s.verify = False
            s.headers["Authorization"] = "PVEAPIToken=" + h.token
            for _ in range(5):
                r = s.get(h.url + f"/nodes/{h.node}/tasks", params={"limit": 1000000}, timeout=120)
                assert r.status_code == 200 and len(r.json()["data"]) == args.tasks
        for n in range(1, args.rounds + 1):
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                list(pool.map(client, range(8)))
            after = rss_mib(h.proc.pid)
            time.sleep(31)
            print(f"round {n}: RSS {after} MiB right after, {rss_mib(h.proc.pid)} MiB 31 s later", flush=True)
    finally:
        h.close()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Replication of a 2 GiB disk to a second hearth node, then again after changing 1% of it:
bytes sent and time, against the same transfers done by hand with `btrfs send | btrfs receive`
(the peer: no API, no TLS, no temporary files). Both daemons listen on loopback, each with a
btrfs on its own loop device. Prints a table; asserts nothing. Needs build/hearth, root and
btrfs-progs.

    /usr/bin/python3 bench/replication_bench.py [--disk-gib 2] [--change-percent 1]
"""
import argparse
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "lib"))
for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(var, None)

from harness import BtrfsLoop, Hearth, wait_for  # noqa: E402

MiB = 1 << 20


def fill_random(path, size, chunks=None, seed=1):
    """Random data over the whole file, or 1 MiB at each of `chunks` offsets."""
    rnd = random.Random(seed)
    with open(path, "r+b") as f:
        if chunks is None:
            for off in range(0, size, 16 * MiB):
                f.write(os.urandom(min(16 * MiB, size - off)))
        else:
            for off in rnd.sample(range(0, size // MiB), chunks):
                f.seek(off * MiB)
                f.write(os.urandom(MiB))
        os.fsync(f.fileno())


def run_job(a, jobid, first):
    before = 0 if first else a.get(f"/nodes/{a.node}/replication/{jobid}/status")["last_try"]
    if not first:
        a.post(f"/nodes/{a.node}/replication/{jobid}/schedule_now")

    def done():
        s = a.get(f"/nodes/{a.node}/replication/{jobid}/status")
        return s if s["last_try"] > before and "pid" not in s and s["next_sync"] != 1 else None
    s = wait_for("the replication run", done, 3600, interval=0.05)
    assert s["fail_count"] == 0, s
    log = [l["t"] for l in a.get(f"/nodes/{a.node}/replication/{jobid}/log", params={"limit": 0})]
    sent = sum(int(l.rsplit("(", 1)[1].split(" ")[0]) for l in log if " stream (" in l)
    if os.environ.get("BENCH_VERBOSE"):
        print("\n".join(log), file=sys.stderr)
    return sent, s["duration"]


def peer(src_mnt, dst_mnt, disk_subvol, change):
    """The same two transfers by hand; returns [(bytes, seconds), ...]."""
    out = []
    dst = os.path.join(dst_mnt, "peer")
    os.makedirs(dst, exist_ok=True)
    prev = None
    for i, mutate in enumerate((None, change)):
        if mutate:
            mutate()
        snap = f"{disk_subvol}@peer{i}"
        subprocess.run(["btrfs", "-q", "subvolume", "snapshot", "-r", disk_subvol, snap], check=True)
        subprocess.run(["sync"], check=True)
        t0 = time.monotonic()
        send = subprocess.Popen(["btrfs", "-q", "send"] + (["-p", prev] if prev else []) + [snap],
                                stdout=subprocess.PIPE)
        recv = subprocess.Popen(["btrfs", "-q", "receive", dst], stdin=subprocess.PIPE)
        n = 0  # counted on the way through
        while True:
            buf = send.stdout.read(1 << 20)
            if not buf:
                break
            n += len(buf)
            recv.stdin.write(buf)
        recv.stdin.close()
        assert send.wait() == 0 and recv.wait() == 0
        out.append((n, time.monotonic() - t0))
        prev = snap
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--disk-gib", type=int, default=2)
    ap.add_argument("--change-percent", type=float, default=1.0)
    args = ap.parse_args()
    size = args.disk_gib << 30
    chunks = max(1, int(size // MiB * args.change_percent / 100))
    loop = (args.disk_gib * 3 + 2) << 30
    with BtrfsLoop(loop) as fa, BtrfsLoop(loop) as fb:
        a, b = Hearth(node="nodea"), Hearth(node="nodeb")
        try:
            a.start()
            b.start()
            for h, fs in ((a, fa), (b, fb)):
                h.post("/storage", data={"storage": "tank", "type": "btrfs", "path": os.path.join(fs.mnt, "tank")})
            token = b.admin("token", "add", "admin@pve!repl").strip()
            a.post("/cluster/hearth/replication-remotes",
                   data={"node": "nodeb", "host": "127.0.0.1", "port": b.port, "fingerprint": b.fingerprint(),
                         "apitoken": token})
            a.create_vm(100, memory="128", scsi0=f"tank:{args.disk_gib}")
            subvol = os.path.join(fa.mnt, "tank", "images", "100", "vm-100-disk-0")
            disk = os.path.join(subvol, "disk.raw")
            fill_random(disk, size)
            subprocess.run(["sync"], check=True)

            # The peer first, on its own copy of the data (a snapshot shares the blocks).
            peer_subvol = os.path.join(fa.mnt, "peer-src")
            subprocess.run(["btrfs", "-q", "subvolume", "snapshot", subvol, peer_subvol], check=True)
            peer_rows = peer(fa.mnt, fb.mnt, peer_subvol,
                             lambda: fill_random(os.path.join(peer_subvol, "disk.raw"), size, chunks, seed=2))

            # yearly: only the runs started here (a run spanning a schedule event is repeated at once)
            a.post("/cluster/replication", data={"id": "100-0", "type": "local", "target": "nodeb", "schedule": "yearly"})
            full = run_job(a, "100-0", first=True)
            fill_random(disk, size, chunks, seed=2)
            subprocess.run(["sync"], check=True)
            inc = run_job(a, "100-0", first=False)
        finally:
            a.close()
            b.close()
    print(f"disk {args.disk_gib} GiB of random data; change: {chunks} x 1 MiB at random offsets "
          f"({args.change_percent:g}%)")
    print(f"{'run':<26} {'bytes sent':>14} {'% of full':>9} {'seconds':>8}   {'peer bytes':>14} {'peer s':>7}")
    for label, (n, secs), (pn, ps) in (("full", full, peer_rows[0]), ("after the change", inc, peer_rows[1])):
        print(f"{label:<26} {n:>14,} {100 * n / full[0]:>8.2f}% {secs:>8.2f}   {pn:>14,} {ps:>7.2f}")


if __name__ == "__main__":
    main()

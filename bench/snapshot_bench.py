#!/usr/bin/python3
"""Snapshot create and delete through the API, on btrfs (subvolume snapshots) and on dir
(internal qcow2 snapshots, the baseline), for a 1 GiB and a 64 GiB disk with the same amount
of data written (so the times show whether the cost follows the disk's size). Prints a
table; asserts nothing. Needs a built build/hearth, root, btrfs-progs.

    /usr/bin/python3 bench/snapshot_bench.py [--rounds 5] [--data-mib 256]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "lib"))
for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(var, None)

from harness import BtrfsLoop, Hearth  # noqa: E402


def timed_task(h, method, path, **data):
    """From the API call to the task's end, polled every 2 ms (the harness polls at 50 ms)."""
    t0 = time.monotonic()
    upid = h.call(method, path, data=data or None)
    while True:
        st = h.task_status(upid)
        if st["status"] == "stopped":
            assert st["exitstatus"] == "OK", st
            return time.monotonic() - t0
        time.sleep(0.002)


def fill(h, vmid, mib):
    """Writes `mib` MiB at the start of the VM's scsi0 (qemu-io, in the disk's format)."""
    vol = h.get(h.vm_path(vmid) + "/config")["scsi0"].split(",")[0]
    path = h.get(f"/nodes/{h.node}/storage/{vol.split(':')[0]}/content/{vol}")["path"]
    fmt = "qcow2" if path.endswith(".qcow2") else "raw"
    subprocess.run(["qemu-io", "-f", fmt, "-c", f"write -P 0x5a 0 {mib}M", path], check=True, capture_output=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--data-mib", type=int, default=256)
    args = ap.parse_args()
    fs = BtrfsLoop(8 << 30).__enter__()
    mnt = fs.mnt
    h = Hearth().start()
    try:
        h.post("/storage", data={"storage": "tank", "type": "btrfs", "path": mnt})
        rows = []
        vmid = 700
        for storage, label in (("local", "dir, qcow2 internal"), ("tank", "btrfs, subvolume")):
            for size in (1, 64):
                vmid += 1
                h.create_vm(vmid, memory="128", scsi0=f"{storage}:{size}")
                fill(h, vmid, args.data_mib)
                create, delete = [], []
                for i in range(args.rounds):
                    create.append(timed_task(h, "POST", h.vm_path(vmid) + "/snapshot", snapname=f"s{i}"))
                    delete.append(timed_task(h, "DELETE", h.vm_path(vmid) + f"/snapshot/s{i}"))
                rows.append((label, size, statistics.median(create), statistics.median(delete)))
                h.wait_task(h.delete(h.vm_path(vmid)))
        print(f"{'storage':<22} {'disk':>6} {'create ms':>10} {'delete ms':>10}   ({args.data_mib} MiB written, "
              f"median of {args.rounds}, API call to task end)")
        for label, size, c, d in rows:
            print(f"{label:<22} {size:>4} G {c * 1000:>10.0f} {d * 1000:>10.0f}")
        h.delete("/storage/tank")
    finally:
        h.close()
        fs.__exit__(None, None, None)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""move_disk of a 1 GiB disk between two storages (hearth's dir storage `local` and a btrfs on a
loop device), stopped (qemu-img convert inside the task) and running (QEMU's block mirror while
the VM runs), against `qemu-img convert` of the same image between the same two places (the
peer). The disk is raw and full of random data, so nothing is skipped as zeroes. Page cache is
dropped before every run. Prints a table; asserts nothing. Needs build/hearth, root, btrfs-progs.

    /usr/bin/python3 bench/move_disk_bench.py [--disk-gib 1] [--rounds 3]
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

MiB = 1 << 20


def cold():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def volume_path(h, volid):
    return h.get(f"/nodes/{h.node}/storage/{volid.split(':')[0]}/content/{volid}")["path"]


def move(h, vmid, storage):
    cold()
    t0 = time.monotonic()
    upid = h.post(h.vm_path(vmid) + "/move_disk", data={"disk": "scsi0", "storage": storage, "format": "raw"})
    h.wait_task(upid, timeout=3600)
    secs = time.monotonic() - t0
    if os.environ.get("BENCH_VERBOSE"):
        print("\n".join(h.task_log(upid)), file=sys.stderr)
    # The source is freed outside the timing: the peer, qemu-img convert, only copies.
    h.put(h.vm_path(vmid) + "/config", data={"delete": "unused0"})  # frees it, as in Proxmox
    return secs


def convert(src, dst):
    cold()
    t0 = time.monotonic()
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "raw", src, dst], check=True)
    secs = time.monotonic() - t0
    os.unlink(dst)
    return secs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--disk-gib", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    size = args.disk_gib << 30
    rows = {}
    with BtrfsLoop((args.disk_gib * 4 + 2) << 30) as tank:
        h = Hearth(node="bench")
        try:
            h.start()
            h.post("/storage", data={"storage": "tank", "type": "btrfs", "path": os.path.join(tank.mnt, "tank")})
            h.create_vm(100, memory="64", scsi0=f"local:{args.disk_gib},format=raw")
            path = volume_path(h, h.get(h.vm_path(100) + "/config")["scsi0"].split(",")[0])
            with open(path, "r+b") as f:
                for off in range(0, size, 16 * MiB):
                    f.write(os.urandom(min(16 * MiB, size - off)))
                os.fsync(f.fileno())
            local_dir = os.path.dirname(path)
            for _ in range(args.rounds):
                for running in (False, True):
                    if running:
                        h.vm_action(100, "start")
                    for storage in ("tank", "local"):
                        rows.setdefault((running, storage), []).append(move(h, 100, storage))
                    if running:
                        h.vm_action(100, "stop")
                src = volume_path(h, h.get(h.vm_path(100) + "/config")["scsi0"].split(",")[0])
                copy = os.path.join(tank.mnt, "tank", "peer.raw")
                rows.setdefault(("peer", "tank"), []).append(convert(src, copy))
                # the peer's way back: from a btrfs copy to the dir storage
                subprocess.run(["cp", "--reflink=never", src, copy], check=True)
                rows.setdefault(("peer", "local"), []).append(convert(copy, os.path.join(local_dir, "peer.raw")))
                os.unlink(copy)
        finally:
            h.close()
    print(f"{args.disk_gib} GiB raw disk of random data, median of {args.rounds} rounds, page cache dropped first")
    print(f"{'move':<34} {'seconds':>8} {'qemu-img convert':>17} {'ratio':>6}")
    for running in (False, True):
        for storage, label in (("tank", "local -> btrfs"), ("local", "btrfs -> local")):
            s = statistics.median(rows[(running, storage)])
            p = statistics.median(rows[("peer", storage)])
            kind = "online (mirror)" if running else "offline"
            print(f"{kind + ', ' + label:<34} {s:>8.2f} {p:>17.2f} {s / p:>5.2f}x")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Backups of one 2 GiB disk image: hearth (vzdump into its deduplicating datastore, through
the API, the VM stopped; then the same image in a running VM, mode=snapshot, where the
incremental reads only what QEMU's dirty bitmap marks) against restic and borg backing up the same image file, in one run.

The image: half of it real files (a tar of /usr, as an installed system's disk holds),
30% random data, the rest zeros (free space). Measured, page cache dropped before each step:
  - full backup: seconds and bytes added to the store;
  - incremental after changing 1% of the image (20 MiB of random data in 1 MiB runs at
    random offsets): seconds and bytes added;
  - restore: seconds to a new VM (hearth) or a file (peers); for hearth also a live restore:
    seconds until the VM runs and until its disk is complete;
  - dedup of two clones of one template: bytes the second clone's backup adds.
Peers: restic (its repository format 2, compression auto; restic always encrypts) and borg
(`--encryption none`, `--compression zstd,1`, as hearth stores chunks: unencrypted, zstd 1).
Prints a table; asserts nothing. Needs build/hearth, root, and `apt-get install restic
borgbackup`.

    /usr/bin/python3 bench/backup_bench.py [--disk-gib 2]
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "lib"))
for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(var, None)

from harness import Hearth  # noqa: E402

MiB = 1 << 20


def cold():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def make_image(path, size):
    """Half real files, 30% random, the rest zeros."""
    with open(path, "wb") as f:
        class Limited:
            def __init__(self, f, limit):
                self.f, self.left = f, limit

            def write(self, b):
                if self.left <= 0:
                    raise EOFError
                b = b[:self.left]
                self.f.write(b)
                self.left -= len(b)
                return len(b)

        out = Limited(f, size // 2)
        try:
            with tarfile.open(fileobj=out, mode="w|") as tar:
                for top in ("/usr/lib", "/usr/share", "/usr/bin", "/usr/libexec"):
                    tar.add(top, recursive=True)
        except EOFError:
            pass
        f.seek(size // 2)
        rnd = size * 3 // 10
        for off in range(0, rnd, 16 * MiB):
            f.write(os.urandom(min(16 * MiB, rnd - off)))
        f.truncate(size)


def change_one_percent(path, size, seed):
    rng = random.Random(seed)
    with open(path, "r+b") as f:
        for _ in range(size // 100 // MiB):
            f.seek(rng.randrange(0, size // MiB) * MiB)
            f.write(os.urandom(MiB))


def timed(fn):
    cold()
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def run(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: {r.stderr}")
    return r.stdout


class Restic:
    name = "restic 0.14"

    def __init__(self, work):
        self.repo = os.path.join(work, "restic")
        self.env = {"RESTIC_PASSWORD": "bench", "RESTIC_REPOSITORY": self.repo, "RESTIC_CACHE_DIR": os.path.join(work, "rcache")}
        run(["restic", "init", "--repository-version", "2"], self.env)

    def backup(self, path):
        run(["restic", "backup", "--quiet", path], self.env)

    def restore(self, path, dest):
        run(["restic", "restore", "latest", "--target", dest, "--include", path], self.env)

    def size(self):
        return du(self.repo)


class Borg:
    name = "borg 1.2"

    def __init__(self, work):
        self.repo = os.path.join(work, "borg")
        self.env = {"BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes", "BORG_BASE_DIR": os.path.join(work, "borgbase")}
        run(["borg", "init", "--encryption", "none", self.repo], self.env)
        self.n = 0

    def backup(self, path):
        self.n += 1
        run(["borg", "create", "--compression", "zstd,1", f"{self.repo}::b{self.n}", path], self.env)

    def restore(self, path, dest):
        os.makedirs(dest, exist_ok=True)
        subprocess.run(["borg", "extract", f"{self.repo}::b{self.n}", path.lstrip("/")], cwd=dest, check=True,
                       env={**os.environ, **self.env}, capture_output=True)

    def size(self):
        return du(self.repo)


def peer_rows(peer, image, clone_b, size, work):
    row = {}
    before = peer.size()
    row["full_s"] = timed(lambda: peer.backup(image))
    row["full_bytes"] = peer.size() - before
    change_one_percent(image, size, 1)
    before = peer.size()
    row["incr_s"] = timed(lambda: peer.backup(image))
    row["incr_bytes"] = peer.size() - before
    dest = os.path.join(work, "restore-" + peer.name.split()[0])
    row["restore_s"] = timed(lambda: peer.restore(image, dest))
    shutil.rmtree(dest, ignore_errors=True)
    before = peer.size()
    peer.backup(clone_b)
    row["clone_bytes"] = peer.size() - before
    return row


def hearth_rows(h, image, clone_b, size, work):
    store = os.path.join(h.get("/storage/local")["path"], "dump")

    def vm_disk(vmid):
        volid = h.get(h.vm_path(vmid) + "/config")["scsi0"].split(",")[0]
        return h.get(f"/nodes/{h.node}/storage/local/content/{volid}")["path"]

    def vzdump(vmid):
        upid = h.post(f"/nodes/{h.node}/vzdump", data={"vmid": vmid, "storage": "local"})
        h.wait_task(upid, timeout=3600)
        if os.environ.get("BENCH_VERBOSE"):
            print("\n".join(h.task_log(upid)), file=sys.stderr)

    gib = size >> 30
    h.create_vm(100, memory="64", scsi0=f"local:{gib},format=raw")
    shutil.copyfile(image, vm_disk(100))
    row = {}
    before = du(store)
    row["full_s"] = timed(lambda: vzdump(100))
    row["full_bytes"] = du(store) - before
    change_one_percent(vm_disk(100), size, 1)
    time.sleep(1.1)  # backups are named by the second
    before = du(store)
    row["incr_s"] = timed(lambda: vzdump(100))
    row["incr_bytes"] = du(store) - before
    newest = max(h.get(f"/nodes/{h.node}/storage/local/content", params={"content": "backup", "vmid": 100}),
                 key=lambda b: b["ctime"])

    def restore():
        h.wait_task(h.post(f"/nodes/{h.node}/qemu", data={"vmid": 101, "archive": newest["volid"]}), timeout=3600)
    row["restore_s"] = timed(restore)
    # Live restore of the same backup: how soon the VM runs, and how soon its disk is complete.
    cold()
    t0 = time.monotonic()
    upid = h.post(f"/nodes/{h.node}/qemu", data={"vmid": 103, "archive": newest["volid"], "live-restore": 1})
    while h.get(h.vm_path(103) + "/status/current").get("qmpstatus") != "running":
        time.sleep(0.02)
    row["live_running_s"] = time.monotonic() - t0
    h.wait_task(upid, timeout=3600)
    row["live_done_s"] = time.monotonic() - t0
    h.vm_action(103, "stop")
    h.create_vm(102, memory="64", scsi0=f"local:{gib},format=raw")
    shutil.copyfile(clone_b, vm_disk(102))
    before = du(store)
    vzdump(102)
    row["clone_bytes"] = du(store) - before
    return row


def hearth_running_rows(h, image, size, work):
    """The same image in a running VM, backed up in snapshot mode (no pause): the first backup
    reads the whole disk; after the same 1% change made through the VM's device (qemu-io over
    QMP, so QEMU's dirty bitmap sees it), the next reads only the chunks the bitmap marks."""
    from harness import guest_write  # noqa: E402

    def vzdump(vmid):
        upid = h.post(f"/nodes/{h.node}/vzdump", data={"vmid": vmid, "storage": "local", "mode": "snapshot"})
        h.wait_task(upid, timeout=3600)
        return "\n".join(h.task_log(upid))

    store = os.path.join(h.get("/storage/local")["path"], "dump")
    gib = size >> 30
    h.create_vm(110, memory="64", scsi0=f"local:{gib},format=raw")
    volid = h.get(h.vm_path(110) + "/config")["scsi0"].split(",")[0]
    shutil.copyfile(image, h.get(f"/nodes/{h.node}/storage/local/content/{volid}")["path"])
    h.vm_action(110, "start")
    row = {}
    before = du(store)
    row["full_s"] = timed(lambda: vzdump(110))
    row["full_bytes"] = du(store) - before
    rng = random.Random(1)  # change_one_percent's offsets, written by the "guest"
    # QEMU opens the file itself, maybe as its unprivileged -runas user: not in the 0700 work dir.
    piece = os.path.join("/var/tmp", f"hearth-bench-piece-{os.getpid()}.raw")
    for _ in range(size // 100 // MiB):
        with open(piece, "wb") as f:
            f.write(os.urandom(MiB))
        os.chmod(piece, 0o644)
        guest_write(h, 110, "scsi0", f"write -s {piece} {rng.randrange(0, size // MiB) * MiB} 1M")
    time.sleep(1.1)  # backups are named by the second
    before = du(store)
    log = []
    row["incr_s"] = timed(lambda: log.append(vzdump(110)))
    row["incr_bytes"] = du(store) - before
    os.unlink(piece)
    if os.environ.get("BENCH_VERBOSE"):
        print(log[0], file=sys.stderr)
    if "dirty-bitmap status: OK (0 of" in log[0]:
        sys.exit("the guest's writes did not reach the disk (qemu-io prints its errors to QEMU's own log)")
    h.vm_action(110, "stop")
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--disk-gib", type=int, default=2)
    args = ap.parse_args()
    for tool in ("restic", "borg"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install restic borgbackup")
    size = args.disk_gib << 30
    work = tempfile.mkdtemp(prefix="hearth-backup-bench-", dir="/var/tmp")
    try:
        template = os.path.join(work, "template.raw")
        make_image(template, size)
        # Two clones of one template, each then changed by 1% of its own.
        clone_a, clone_b = os.path.join(work, "disk.raw"), os.path.join(work, "clone-b.raw")
        shutil.copyfile(template, clone_b)
        change_one_percent(clone_b, size, 2)
        rows = {}
        h = Hearth(node="bench")
        try:
            h.start()
            rows["hearth"] = hearth_rows(h, template, clone_b, size, work)
            rows["hearth, running VM"] = hearth_running_rows(h, template, size, work)
        finally:
            h.close()
        for cls in (Restic, Borg):
            shutil.copyfile(template, clone_a)
            peer = cls(work)
            rows[peer.name] = peer_rows(peer, clone_a, clone_b, size, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    mb = size / 1e6
    print(f"\n{args.disk_gib} GiB image (50% files from /usr, 30% random, 20% zeros); release build\n")
    print("| tool | full backup s (MB/s) | stored | incremental s | incr stored | restore s (MB/s) | second clone adds |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        restore = f"{r['restore_s']:.1f} ({mb / r['restore_s']:.0f})" if "restore_s" in r else "-"
        clone = (f"{r['clone_bytes'] / MiB:.1f} MiB ({(r['full_bytes'] + r['clone_bytes']) / r['full_bytes']:.2f}x)"
                 if "clone_bytes" in r else "-")
        print(f"| {name} | {r['full_s']:.1f} ({mb / r['full_s']:.0f}) | {r['full_bytes'] / MiB:.0f} MiB | "
              f"{r['incr_s']:.1f} ({100 * r['incr_s'] / r['full_s']:.0f}% of full) | {r['incr_bytes'] / MiB:.1f} MiB | "
              f"{restore} | {clone} |")
    r = rows["hearth"]
    print(f"\nhearth live restore of the same backup: the VM runs after {r['live_running_s']:.1f} s, its disk is "
          f"complete after {r['live_done_s']:.1f} s (a full restore before the start: {r['restore_s']:.1f} s)")


if __name__ == "__main__":
    main()

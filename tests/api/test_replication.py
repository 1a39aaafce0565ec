"""Storage replication between two real hearth daemons in two network namespaces (each with a
btrfs on its own loop device), and to a local btrfs directory: Proxmox's /cluster/replication
and /nodes/{node}/replication, the target's side, full then incremental `btrfs send`, an
interrupted transfer, removal, and the errors in Proxmox's words.

Node A runs in namespace hrep-a (the test process enters it too), node B in hrep-b, joined by a
veth pair 10.99.0.1 <-> 10.99.0.2; B listens on 10.99.0.2:8006 only.
"""
import json
import os
import subprocess

import pytest

from harness import HEARTH_BIN, BtrfsLoop, Hearth, wait_for
from netns import NetNsPair

pytestmark = pytest.mark.skipif(not BtrfsLoop.available(), reason="needs root and btrfs-progs (loop-mounted btrfs)")

DISK = "tank:100/vm-100-disk-0.raw"
MiB = 1 << 20


def image(mnt, vmid=100, disk=0, snap=""):
    name = f"vm-{vmid}-disk-{disk}" + (f"@{snap}" if snap else "")
    return os.path.join(mnt, "tank", "images", str(vmid), name, "disk.raw")


def write(path, data, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)
        os.fsync(f.fileno())


def read(path, n, offset):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(n)


def replication_snapshots(mnt, vmid=100, disk=0):
    d = os.path.join(mnt, "tank", "images", str(vmid))
    if not os.path.isdir(d):
        return []
    return sorted(n.split("@", 1)[1] for n in os.listdir(d)
                  if n.startswith(f"vm-{vmid}-disk-{disk}@__replicate_"))


def error_of(r):
    body = r.json()
    return (body.get("message") or "").strip(), body.get("errors") or {}


class Pair:
    def __init__(self, a, b, fa, fb, b_token):
        self.a, self.b, self.fa, self.fb, self.b_token = a, b, fa, fb, b_token

    def status(self, jobid):
        return self.a.get(f"/nodes/{self.a.node}/replication/{jobid}/status")

    def log(self, jobid):
        lines = self.a.get(f"/nodes/{self.a.node}/replication/{jobid}/log", params={"limit": 0})
        return "\n".join(line["t"] for line in lines)

    def wait_run(self, jobid, after, timeout=300):
        """Waits until a run that started at or after `after` (last_try) has finished."""
        def done():
            s = self.status(jobid)
            return s if s["last_try"] >= after and "pid" not in s and s["next_sync"] != 1 else None
        return wait_for(f"replication job {jobid} to finish a run", done, timeout, interval=0.2)

    def run_now(self, jobid, timeout=300):
        before = self.status(jobid)["last_try"]
        self.a.post(f"/nodes/{self.a.node}/replication/{jobid}/schedule_now")
        return self.wait_run(jobid, before + 1, timeout)


@pytest.fixture(scope="module")
def pair():
    with NetNsPair("hrep-a", "hrep-b", "hrep", "10.99.0.1", "10.99.0.2") as nets:
        with BtrfsLoop(768 << 20) as fa, BtrfsLoop(768 << 20) as fb:
            a = Hearth(node="nodea").start()
            b = Hearth(node="nodeb")
            b.wrapper = nets.wrapper
            b.listen = "10.99.0.2:8006"
            b.start()
            try:
                for h, fs in ((a, fa), (b, fb)):
                    h.post("/storage", data={"storage": "tank", "type": "btrfs",
                                             "path": os.path.join(fs.mnt, "tank")})
                # The source's credential on the target: a token of its own.
                b_token = b.admin("token", "add", "admin@pve!repl").strip()
                yield Pair(a, b, fa, fb, b_token)
            finally:
                for h in (a, b):
                    h.kill_vms()
                    h.close()


def add_remote_b(p):
    p.a.post("/cluster/hearth/replication-remotes",
             data={"node": "nodeb", "host": "10.99.0.2", "port": 8006, "fingerprint": p.b.fingerprint(),
                   "apitoken": p.b_token})


def test_create_checks_in_proxmox_order(pair):
    a = pair.a
    add_remote_b(pair)
    remote = a.get("/cluster/hearth/replication-remotes/nodeb")
    assert remote["apitoken"] == "admin@pve!repl"  # the secret is never shown
    a.wait_task(a.create_vm(100, scsi0="tank:1", wait=False))
    a.wait_task(a.create_vm(102, scsi0="local:1", wait=False))

    def create(**fields):
        return a.request("POST", "/cluster/replication", data={"type": "local", **fields})

    r = create(id="999-0", target="nodeb")
    assert r.status_code == 500 and error_of(r)[0] == "Guest '999' does not exist."
    r = create(id="100-0", target="nodec")
    assert r.status_code == 500 and error_of(r)[0].startswith("Target 'nodec' does not exist.")
    r = create(id="100-0", target="nodea")
    assert error_of(r)[0] == "Source and target must not be identical"
    r = create(id="102-0", target="nodeb")  # qcow2 on a directory storage: no btrfs send
    assert error_of(r)[0] == "missing replicate feature on volume 'local:102/vm-102-disk-0.qcow2'"
    r = create(id="99-0", target="nodeb")
    assert r.status_code == 400
    assert error_of(r)[1]["id"].endswith("(guest IDs < 100 are reserved)")
    r = create(id="100-0", target="nodeb", rate="0.5")
    assert r.status_code == 400 and error_of(r)[1]["rate"] == "value must have a minimum value of 1"
    r = a.request("DELETE", "/cluster/replication/100-0", params={"keep": 1, "force": 1})
    assert r.status_code == 400 and error_of(r)[1]["keep"] == "conflicts with parameter 'force'"
    a.wait_task(a.delete(a.vm_path(102)))


def test_first_run_is_full_and_the_copy_is_the_disk(pair):
    a, fa, fb = pair.a, pair.fa.mnt, pair.fb.mnt
    write(image(fa), b"first-generation", 8 * MiB)
    # A new job runs at once (its first schedule event is in the past), as in Proxmox.
    # `yearly`: no scheduled run may come between the ones the test starts (a run that spans a
    # schedule event is followed by another at once, as in Proxmox).
    a.post("/cluster/replication", data={"id": "100-0", "type": "local", "target": "nodeb", "comment": "offsite",
                                         "schedule": "yearly"})
    r = a.request("POST", "/cluster/replication", data={"id": "100-1", "type": "local", "target": "nodeb"})
    assert error_of(r)[0] == "replication job for guest '100' to target 'local/nodeb' already exists"
    s = pair.wait_run("100-0", 1)
    assert s["fail_count"] == 0 and "error" not in s, s.get("error")
    assert s["last_sync"] > 0 and s["target"] == "nodeb" and s["vmtype"] == "qemu" and s["source"] == "nodea"
    log = pair.log("100-0")
    assert f"full sync '{DISK}'" in log and "end replication job" in log and "with error" not in log, (s, log[-600:])
    assert read(image(fb), 16, 8 * MiB) == b"first-generation"
    snap = f"__replicate_100-0_{s['last_sync']}__"
    assert replication_snapshots(fa) == [snap] and replication_snapshots(fb) == [snap]
    listed = a.get("/cluster/replication")
    assert [(j["id"], j["guest"], j["jobnum"], j["comment"]) for j in listed] == [("100-0", 100, 0, "offsite")]
    # The target keeps the guest's config for a failover.
    kept = json.load(open(os.path.join(pair.b.dir, "replica", "100.json")))
    assert kept["source"] == "nodea" and "scsi0: tank:100/vm-100-disk-0.raw" in kept["config"]
    assert oct(os.stat(os.path.join(pair.b.dir, "replica", "100.json")).st_mode & 0o777) == "0o600"


def test_later_runs_send_only_the_changes(pair):
    a, fa, fb = pair.a, pair.fa.mnt, pair.fb.mnt
    first = pair.status("100-0")["last_sync"]
    write(image(fa), os.urandom(4 * MiB), 64 * MiB)
    write(image(fa), b"second-generation", 8 * MiB)
    s = pair.run_now("100-0")
    assert s["fail_count"] == 0, pair.log("100-0")
    log = pair.log("100-0")
    old, new = f"__replicate_100-0_{first}__", f"__replicate_100-0_{s['last_sync']}__"
    assert f"incremental sync '{DISK}' ({old} => {new})" in log
    # About the 4 MiB written, not the 1 GiB disk.
    sent = [line for line in log.splitlines() if f"send {DISK}:" in line][0]
    size = int(sent.rsplit("(", 1)[1].split(" ")[0])
    assert 4 * MiB <= size < 5 * MiB, sent
    assert read(image(fb), 17, 8 * MiB) == b"second-generation"
    assert read(image(fb), 4 * MiB, 64 * MiB) == read(image(fa), 4 * MiB, 64 * MiB)
    assert replication_snapshots(fa) == [new] and replication_snapshots(fb) == [new]


def cli(h, *args):
    env = dict(os.environ, HEARTH_URL=f"https://127.0.0.1:{h.port}", HEARTH_TOKEN=h.token,
               HEARTH_FINGERPRINT=h.fingerprint())
    r = subprocess.run([HEARTH_BIN, *args], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_the_cli_runs_a_job_and_follows_its_log(pair):
    a = pair.a
    write(image(pair.fa.mnt), b"cli-generation", 8 * MiB)
    out = cli(a, "replicate", "run", "100-0")
    assert "start replication job" in out and "incremental sync" in out and out.rstrip().endswith("end replication job")
    assert read(image(pair.fb.mnt), 14, 8 * MiB) == b"cli-generation"
    listing = cli(a, "replicate", "list")
    assert "100-0" in listing and "nodeb" in listing, listing
    remotes = cli(a, "replicate", "remote", "list")
    assert "admin@pve!repl" in remotes and pair.b_token.split("=", 1)[1] not in remotes


def test_an_interrupted_transfer_leaves_the_target_copy_whole(pair):
    a, b, fa, fb = pair.a, pair.b, pair.fa.mnt, pair.fb.mnt
    good = pair.status("100-0")["last_sync"]
    copy_before = read(image(fb), 64, 8 * MiB)
    a.put("/cluster/replication/100-0", data={"rate": "1"})  # 1 MB/s: the transfer takes seconds
    write(image(fa), os.urandom(12 * MiB), 128 * MiB)
    write(image(fa), b"third-generation!", 8 * MiB)
    before = pair.status("100-0")["last_try"]
    a.post(f"/nodes/{a.node}/replication/100-0/schedule_now")
    # Mid-transfer: the target is spooling the body (at 1 MB/s, 12 MiB take seconds), so the
    # kill cannot land before the connection is made, however slow the machine is.
    spool = os.path.join(b.dir, "tmp")

    def spooling():
        return any(os.path.getsize(os.path.join(spool, f)) > 0 for f in os.listdir(spool)
                   if os.path.isfile(os.path.join(spool, f)))
    wait_for("the stream to be on its way", spooling, 120, interval=0.05)
    b.kill9()  # the target dies mid-transfer
    s = pair.wait_run("100-0", before + 1)
    assert s["fail_count"] == 1 and "transfer of" in s["error"], s
    assert "end replication job with error" in pair.log("100-0")
    assert replication_snapshots(fa) == [f"__replicate_100-0_{good}__"]  # the failed run's snapshot went
    assert s["last_sync"] == good
    b.start()
    assert read(image(fb), 64, 8 * MiB) == copy_before  # the last good copy, whole
    assert replication_snapshots(fb) == [f"__replicate_100-0_{good}__"]
    # The next run (after the back-off, or now) picks up from the last good sync.
    a.put("/cluster/replication/100-0", data={"delete": "rate"})
    s = pair.run_now("100-0")
    assert s["fail_count"] == 0 and "error" not in s, pair.log("100-0")
    assert "incremental sync" in pair.log("100-0")
    assert read(image(fb), 17, 8 * MiB) == b"third-generation!"
    assert read(image(fb), 12 * MiB, 128 * MiB) == read(image(fa), 12 * MiB, 128 * MiB)


def test_a_running_vm_is_replicated_and_keeps_running(pair):
    a = pair.a
    a.vm_action(100, "start")  # no boot disk content: it idles in the firmware, QEMU runs
    try:
        s = pair.run_now("100-0")
        assert s["fail_count"] == 0, pair.log("100-0")
        assert "running => 1" in pair.log("100-0")
        cur = a.get(a.vm_path(100) + "/status/current")
        assert cur["status"] == "running" and cur["qmpstatus"] == "running"
    finally:
        a.vm_action(100, "stop")


def test_the_target_refuses_what_it_must_not_take(pair):
    a, b = pair.a, pair.b
    # B has its own VM 101: a replica of A's 101 must not overwrite its disks.
    b.wait_task(b.create_vm(101, scsi0="tank:1", wait=False))
    a.wait_task(a.create_vm(101, scsi0="tank:1", wait=False))
    a.post("/cluster/replication", data={"id": "101-0", "type": "local", "target": "nodeb", "schedule": "yearly"})
    s = pair.wait_run("101-0", 1)
    assert s["fail_count"] == 1 and "guest '101' is on local node" in s["error"], s
    assert os.path.exists(image(pair.fb.mnt, 101))  # B's own disk untouched
    a.delete("/cluster/replication/101-0", params={"force": 1})
    assert [j["id"] for j in a.get("/cluster/replication")] == ["100-0"]
    # A token without Datastore.Allocate there: refused before a byte is stored.
    b.admin("user", "add", "nobody@pve", "--password-stdin", stdin="x-long-password")
    weak = b.admin("token", "add", "nobody@pve!tk").strip()
    a.put("/cluster/hearth/replication-remotes/nodeb", data={"apitoken": weak})
    try:
        s = pair.run_now("100-0")
        assert s["fail_count"] == 1 and "403" in s["error"] and "Datastore.Allocate" in s["error"], s
    finally:
        a.put("/cluster/hearth/replication-remotes/nodeb", data={"apitoken": pair.b_token})
    assert pair.run_now("100-0")["fail_count"] == 0
    # The target's routes themselves check what comes in.
    r = b.request("POST", f"/nodes/{b.node}/hearth/replication/prepare",
                  data={"id": "100-0", "volumes": "tank:101/vm-101-disk-0.raw"})
    assert r.status_code == 500 and "has wrong owner" in error_of(r)[0]
    r = b.request("POST", f"/nodes/{b.node}/hearth/replication/receive",
                  params={"guest": 100, "volume": "tank:100/vm-100-disk-7.raw", "snapshot": "__replicate_100-0_5__"},
                  data=b"not a btrfs stream", headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 400 and "not a btrfs send stream" in error_of(r)[0]
    # A full stream never replaces a volume that is there.
    r = b.request("POST", f"/nodes/{b.node}/hearth/replication/receive",
                  params={"guest": 100, "volume": DISK, "snapshot": "__replicate_100-0_5__"},
                  data=b"not a btrfs stream", headers={"Content-Type": "application/octet-stream"})
    assert error_of(r)[0] == f"volume '{DISK}' already exists"


def test_a_directory_target(pair):
    a = pair.a
    with BtrfsLoop(512 << 20) as usb:
        a.post("/cluster/hearth/replication-remotes", data={"node": "usb", "path": usb.mnt})
        write(image(pair.fa.mnt), b"for-the-usb-disk", 8 * MiB)
        a.post("/cluster/replication", data={"id": "100-1", "type": "local", "target": "usb", "schedule": "yearly"})
        s = pair.wait_run("100-1", 1)
        assert s["fail_count"] == 0, pair.log("100-1")
        assert read(image(usb.mnt), 16, 8 * MiB) == b"for-the-usb-disk"
        assert json.load(open(os.path.join(usb.mnt, "replica", "100.json")))["jobid"] == "100-1"
        # Both jobs keep their own snapshots on the source.
        assert [n.split("_")[3] for n in replication_snapshots(pair.fa.mnt)] == ["100-0", "100-1"]
        r = a.request("DELETE", "/cluster/hearth/replication-remotes/usb")
        assert "is the target of job '100-1'" in error_of(r)[0]
        a.delete("/cluster/replication/100-1")  # removal with the copies
        wait_for("job 100-1 removed", lambda: [j["id"] for j in a.get("/cluster/replication")] == ["100-0"], 120)
        assert not os.path.exists(image(usb.mnt))
        assert [n.split("_")[3] for n in replication_snapshots(pair.fa.mnt)] == ["100-0"]
        a.delete("/cluster/hearth/replication-remotes/usb")


def test_a_full_target_fails_clearly_and_keeps_nothing_half_made(pair):
    a = pair.a
    with BtrfsLoop(160 << 20) as tiny:  # about 100 MiB usable: less than the disk's data
        write(image(pair.fa.mnt), os.urandom(160 * MiB), 256 * MiB)
        a.post("/cluster/hearth/replication-remotes", data={"node": "tiny", "path": tiny.mnt})
        a.post("/cluster/replication", data={"id": "100-2", "type": "local", "target": "tiny", "schedule": "yearly"})
        s = pair.wait_run("100-2", 1)
        assert s["fail_count"] == 1 and "No space left on device" in s["error"], s
        assert s["last_sync"] == 0
        # Nothing half-made there, and this run's snapshot is gone here.
        assert not os.path.exists(image(tiny.mnt)) and replication_snapshots(tiny.mnt) == []
        assert all("_100-2_" not in n for n in replication_snapshots(pair.fa.mnt))
        a.delete("/cluster/replication/100-2", params={"force": 1})
        a.delete("/cluster/hearth/replication-remotes/tiny")


def test_a_source_killed_mid_run_counts_it_as_failed(pair):
    a = pair.a
    a.put("/cluster/replication/100-0", data={"rate": "1"})
    write(image(pair.fa.mnt), os.urandom(8 * MiB), 200 * MiB)
    before = pair.status("100-0")["last_try"]
    a.post(f"/nodes/{a.node}/replication/100-0/schedule_now")
    # Mid-transfer: the target is spooling the body (at 1 MB/s, 8 MiB take seconds).
    spool = os.path.join(pair.b.dir, "tmp")

    def spooling():
        return any(os.path.getsize(os.path.join(spool, f)) > 0 for f in os.listdir(spool)
                   if os.path.isfile(os.path.join(spool, f)))
    wait_for("the stream to be on its way", spooling, 120, interval=0.05)
    a.kill9()
    a.start()
    s = pair.status("100-0")
    assert s["last_try"] > before and s["fail_count"] == 1 and "cut short" in s["error"], s
    a.put("/cluster/replication/100-0", data={"delete": "rate"})
    s = pair.run_now("100-0")
    assert s["fail_count"] == 0 and "incremental sync" in pair.log("100-0"), pair.log("100-0")
    assert read(image(pair.fb.mnt), 8 * MiB, 200 * MiB) == read(image(pair.fa.mnt), 8 * MiB, 200 * MiB)
    assert os.listdir(os.path.join(a.dir, "tmp")) == []


def test_a_disk_left_out_goes_from_the_target_and_its_snapshots_here(pair):
    a = pair.a
    a.put(a.vm_path(100) + "/config", data={"scsi1": "tank:1"})
    s = pair.run_now("100-0")
    assert s["fail_count"] == 0, pair.log("100-0")
    log = pair.log("100-0")
    assert "full sync 'tank:100/vm-100-disk-1.raw'" in log and "incremental sync" in log
    assert "not removing others" not in log  # a new disk has no snapshots to keep
    assert os.path.exists(image(pair.fb.mnt, disk=1))
    a.put(a.vm_path(100) + "/config", data={"scsi1": "tank:100/vm-100-disk-1.raw,replicate=0"})
    s = pair.run_now("100-0")
    assert s["fail_count"] == 0, pair.log("100-0")
    assert "nodeb: delete stale volume 'tank:100/vm-100-disk-1.raw'" in pair.log("100-0")
    assert not os.path.exists(image(pair.fb.mnt, disk=1))
    assert replication_snapshots(pair.fa.mnt, disk=1) == []  # this job's snapshot on it went too
    # A directory target inside one of this node's storages would copy onto (and free) its disks.
    r = a.request("POST", "/cluster/hearth/replication-remotes", data={"node": "self", "path": pair.fa.mnt})
    assert r.status_code == 400 and "overlaps storage 'tank'" in error_of(r)[1]["path"]
    r = a.request("POST", "/cluster/hearth/replication-remotes",
                  data={"node": "self", "path": os.path.join(pair.fa.mnt, "tank", "images", "x")})
    assert r.status_code == 400 and "overlaps storage 'tank'" in error_of(r)[1]["path"]


def test_removal_with_keep_leaves_the_copy(pair):
    a = pair.a
    # A guest with jobs is not destroyed; with purge its jobs go too (Proxmox's words and rule).
    r = a.request("DELETE", a.vm_path(100))
    assert error_of(r)[0] == "There is a replication job '100-0' for guest '100' - Please remove that first."
    a.post("/cluster/replication", data={"id": "101-0", "type": "local", "target": "nodeb", "schedule": "yearly"})
    a.wait_task(a.delete(a.vm_path(101), params={"purge": 1}))
    assert [j["id"] for j in a.get("/cluster/replication")] == ["100-0"]
    a.delete("/cluster/replication/100-0", params={"keep": 1})
    wait_for("job 100-0 removed", lambda: a.get("/cluster/replication") == [], 120)
    assert replication_snapshots(pair.fa.mnt) == []
    assert os.path.exists(image(pair.fb.mnt))  # kept on the target
    r = a.request("GET", f"/nodes/{a.node}/replication/100-0/status")
    assert error_of(r)[0] == "no such replication job '100-0'"
    # A new job finds the kept copy without a common snapshot: it is not overwritten.
    a.post("/cluster/replication", data={"id": "100-0", "type": "local", "target": "nodeb", "schedule": "yearly"})
    s = pair.wait_run("100-0", 1)
    assert s["fail_count"] == 1 and s["error"].startswith(f"No common base snapshot on volume(s) {DISK}"), s
    assert os.path.exists(image(pair.fb.mnt))

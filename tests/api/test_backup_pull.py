"""Offsite sync between two real hearth daemons in two network namespaces: node B pulls node A's
backups over A's API (POST /nodes/{node}/storage/{storage}/hearth/sync with remote= and
remote-store=, and a datastore job of type sync with a remote), only the chunks it lacks, and a
restore on B works with A unreachable. Also what A serves a puller (hearth/backup,
hearth/backup-file, hearth/chunk) and its refusals, a damaged chunk on A, a wrong fingerprint
or token, and a pull cut by kill -9 that the next run completes.

Node A runs in namespace hsync-a (the test process enters it too) on 10.98.0.1:8006, node B in
hsync-b on 10.98.0.2:8006, joined by a veth pair. Storages are plain directories.
"""
import glob
import hashlib
import json
import os
import subprocess
import time

import pytest

from harness import Hearth, disk_volid, volume_path
from netns import NetNsPair

A_IP, B_IP = "10.98.0.1", "10.98.0.2"


def qemu_io(path, cmd):
    r = subprocess.run(["qemu-io", "-f", "qcow2", "-c", cmd, path], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


class Pair:
    def __init__(self, a, b, a_token):
        self.a, self.b, self.a_token = a, b, a_token

    def backups(self, h, storage, vmid=None):
        params = {"content": "backup"} | ({"vmid": vmid} if vmid else {})
        return sorted(h.get(f"/nodes/{h.node}/storage/{storage}/content", params=params), key=lambda e: e["volid"])

    def vzdump(self, vmid, **extra):
        time.sleep(1.1)  # backups are named by the second
        self.a.wait_task(self.a.post(f"/nodes/{self.a.node}/vzdump",
                                     data={"vmid": vmid, "storage": "local", **extra}), timeout=300)

    def pull(self, ok=True, storage="offsite", **params):
        """Runs a pull on B; returns (task status, log text)."""
        data = {"remote": "nodea", "remote-store": "local"} | params
        upid = self.b.post(f"/nodes/{self.b.node}/storage/{storage}/hearth/sync", data=data)
        st = self.b.wait_task(upid, timeout=300, ok=ok)
        return st, "\n".join(self.b.task_log(upid))

    def chunk_files(self, h, storage):
        root = h.get(f"/storage/{storage}")["path"]
        return {os.path.basename(p): p for p in glob.glob(root + "/dump/.chunks/*/*") if not p.endswith(".bad")}


@pytest.fixture(scope="module")
def pair():
    with NetNsPair("hsync-a", "hsync-b", "hsy", A_IP, B_IP) as nets:
        a = Hearth(node="nodea")
        a.listen = A_IP + ":8006"
        a.start()
        b = Hearth(node="nodeb")
        b.wrapper = nets.wrapper
        b.listen = B_IP + ":8006"
        b.start()
        try:
            b.post("/storage", data={"storage": "offsite", "type": "dir", "content": "backup",
                                     "path": os.path.join(b.dir, "offsite")})
            # B's credential on A: a token of its own (PBS advises one per sync job).
            a_token = a.admin("token", "add", "admin@pve!pull").strip()
            b.post("/cluster/hearth/replication-remotes",
                   data={"node": "nodea", "host": A_IP, "port": 8006, "fingerprint": a.fingerprint(),
                         "apitoken": a_token})
            yield Pair(a, b, a_token)
        finally:
            for h in (a, b):
                h.kill_vms()
                h.close()


def test_pull_full_then_incremental_and_restore_with_the_source_unreachable(pair, tmp_path):
    a, b = pair.a, pair.b
    a.create_vm(700, name="web", memory="64", scsi0="local:1")
    disk = volume_path(a, disk_volid(a, 700))
    qemu_io(disk, "write -P 0x41 0 8M")
    pair.vzdump(700, **{"notes-template": "{{guestname}} first"})
    qemu_io(disk, "write -P 0x42 64M 4M")
    pair.vzdump(700)
    a.create_vm(701, name="db", memory="64", scsi0="local:1")
    qemu_io(volume_path(a, disk_volid(a, 701)), "write -P 0x51 0 4M")
    pair.vzdump(701)
    a.put(f"/nodes/{a.node}/storage/local/content/{pair.backups(a, 'local')[0]['volid']}",
          data={"protected": 1, "notes": "web first\nsecond line"})
    source = pair.backups(a, "local")

    st, log = pair.pull()
    assert (st["type"], st["id"]) == ("syncjob", "offsite"), st
    assert f"sync datastore 'offsite' from remote 'nodea' ({A_IP}:8006) storage 'local'" in log, log
    assert "copied 3 backup(s), 0 already there" in log, log
    assert "Summary: sync job pulled" in log, log
    copies = pair.backups(b, "offsite")
    assert [c["volid"].split(":", 1)[1] for c in copies] == [s["volid"].split(":", 1)[1] for s in source]
    fields = lambda e: (e["size"], e["ctime"], e.get("notes"), e.get("protected"))
    assert [fields(c) for c in copies] == [fields(s) for s in source]
    assert copies[0]["protected"] == 1 and copies[0]["notes"] == "web first" 
    # The notes in full, not only the listing's first line.
    assert b.get(f"/nodes/{b.node}/storage/offsite/content/{copies[0]['volid']}")["notes"] == "web first\nsecond line"
    # Chunk files byte-identical: every chunk B holds is A's, as stored.
    a_chunks, b_chunks = pair.chunk_files(a, "local"), pair.chunk_files(b, "offsite")
    assert b_chunks and set(b_chunks) <= set(a_chunks)
    for name, path in b_chunks.items():
        assert open(path, "rb").read() == open(a_chunks[name], "rb").read(), name

    st, log = pair.pull()
    assert "copied 0 backup(s), 3 already there; 0 chunk(s) copied" in log, log
    assert "Summary: sync job found no new data to pull" in log, log

    # One changed chunk on A: the next pull moves exactly that one.
    qemu_io(disk, "write -P 0x43 128M 64k")
    pair.vzdump(700)
    reference = str(tmp_path / "reference.raw")
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", disk, reference], check=True)
    st, log = pair.pull(vmid=700)
    assert st["id"] == "700@offsite"
    assert "copied 1 backup(s), 2 already there; 1 chunk(s) copied" in log, log
    newest = pair.backups(b, "offsite", 700)[-1]

    # A gone: B restores its copy, byte for byte the disk A backed up.
    a.stop()
    try:
        upid = b.post(f"/nodes/{b.node}/qemu", data={"vmid": 800, "archive": newest["volid"], "storage": "local"})
        b.wait_task(upid, timeout=300)
        restored = volume_path(b, disk_volid(b, 800))
        r = subprocess.run(["qemu-img", "compare", "-U", "-F", "raw", restored, reference], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        # And a pull says which remote it could not reach.
        st, log = pair.pull(ok=False)
        assert "remote 'nodea'" in st["exitstatus"] + log, (st, log)
    finally:
        a.start()


def test_what_a_puller_may_read(pair):
    a = pair.a
    vols = {e["vmid"]: e["volid"] for e in pair.backups(a, "local")}
    assert 700 in vols and 701 in vols, "needs the first test's backups"
    base = f"/nodes/{a.node}/storage/local/hearth"
    info = a.get(base + "/backup", params={"volume": vols[701]})
    manifest = json.loads(info["manifest"])
    [fidx] = [f for f in manifest["files"] if f["filename"].endswith(".img.fidx")]

    # A file as stored, checked by the client against the manifest's checksum.
    r = a.request("GET", base + "/backup-file", params={"volume": vols[701], "file": fidx["filename"]})
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert hashlib.sha256(r.content).hexdigest() == fidx["csum"] and len(r.content) == fidx["size"]
    digests_701 = {r.content[i:i + 32].hex() for i in range(4096, len(r.content), 32)}
    r = a.request("GET", base + "/backup-file", params={"volume": vols[701], "file": "../../priv/hearth.key"})
    assert r.status_code == 400 and "invalid backup file name" in r.json()["errors"]["file"], r.text
    r = a.request("GET", base + "/backup-file", params={"volume": vols[701], "file": "notes"})
    assert r.status_code == 500 and "has no file 'notes'" in r.json()["message"], r.text

    # A chunk of VM 701's backup, not one that only VM 700's backups hold.
    info700 = a.get(base + "/backup", params={"volume": vols[700]})
    [f700] = [f for f in json.loads(info700["manifest"])["files"] if f["filename"].endswith(".img.fidx")]
    idx700 = a.request("GET", base + "/backup-file", params={"volume": vols[700], "file": f700["filename"]}).content
    only_700 = sorted({idx700[i:i + 32].hex() for i in range(4096, len(idx700), 32)} - digests_701)
    assert only_700
    ok = a.request("GET", base + "/chunk", params={"volume": vols[701], "digest": sorted(digests_701)[0]})
    assert ok.status_code == 200 and ok.content[:8] != b""
    r = a.request("GET", base + "/chunk", params={"volume": vols[701], "digest": only_700[0]})
    assert r.status_code == 403 and f"chunk {only_700[0]} is not in backup '{vols[701]}'" in r.json()["message"]
    r = a.request("GET", base + "/chunk", params={"volume": vols[701], "digest": "XYZ"})
    assert r.status_code == 400 and "digest" in r.json()["errors"]
    r = a.request("GET", base + "/backup", params={"volume": "other:backup/vm/701/2026-01-01T00:00:00Z"})
    assert r.status_code == 400 and "volume" in r.json()["errors"]

    # A user without privileges on the storage reads nothing.
    a.admin("user", "add", "nobody@pve", "--password-stdin", stdin="secret123\n")
    token = a.admin("token", "add", "nobody@pve!reader").strip()
    for path, params in (("/backup", {"volume": vols[701]}), ("/chunk", {"volume": vols[701], "digest": sorted(digests_701)[0]}),
                         ("/backup-file", {"volume": vols[701], "file": fidx["filename"]})):
        r = a.session.get(a.url + base + path, params=params, headers={"Authorization": "PVEAPIToken=" + token})
        assert r.status_code == 403, (path, r.status_code, r.text)


def test_a_damaged_chunk_fails_that_vm_by_name_and_the_others_go_on(pair):
    a, b = pair.a, pair.b
    a.create_vm(702, name="dmg", memory="64", scsi0="local:1")
    qemu_io(volume_path(a, disk_volid(a, 702)), "write -P 0x61 0 4M")
    pair.vzdump(702)
    a.create_vm(703, name="fine", memory="64", scsi0="local:1")
    qemu_io(volume_path(a, disk_volid(a, 703)), "write -P 0x62 0 4M")
    pair.vzdump(703)
    # Flip a byte of the one chunk only VM 702's backup has.
    data_702 = hashlib.sha256(b"\x61" * (4 << 20)).hexdigest()
    path = pair.chunk_files(a, "local")[data_702]
    blob = bytearray(open(path, "rb").read())
    blob[-1] ^= 0xFF
    open(path, "wb").write(bytes(blob))

    st, log = pair.pull(ok=False)
    assert st["exitstatus"] == "1 backup(s) could not be synced - please check the log", st
    assert f"chunk {data_702} is corrupt" in log, log
    assert [e["vmid"] for e in pair.backups(b, "offsite", 702)] == []  # nothing half-copied is listed
    assert len(pair.backups(b, "offsite", 703)) == 1
    assert not glob.glob(b.get("/storage/offsite")["path"] + "/dump/vm/702/*")  # no temporary directory left either


def test_wrong_fingerprint_or_token_fail_naming_the_remote(pair):
    b = pair.b
    remote = "/cluster/hearth/replication-remotes/nodea"
    b.put(remote, data={"fingerprint": "AB:" * 31 + "AB"})
    try:
        st, log = pair.pull(ok=False)
        assert "remote 'nodea'" in st["exitstatus"] and "not the pinned one" in st["exitstatus"], st
    finally:
        b.put(remote, data={"fingerprint": pair.a.fingerprint()})
    b.put(remote, data={"apitoken": "admin@pve!pull=00000000-0000-0000-0000-000000000000"})
    try:
        st, log = pair.pull(ok=False)
        assert "remote 'nodea'" in st["exitstatus"] and "authentication failed" in st["exitstatus"], st
    finally:
        b.put(remote, data={"apitoken": pair.a_token})
    # The API's own checks, naming the field.
    url = f"/nodes/{b.node}/storage/offsite/hearth/sync"
    r = b.request("POST", url, data={"remote": "nodea"})
    assert r.status_code == 400 and r.json()["errors"] == {"remote-store": "property is missing and it is not optional"}
    r = b.request("POST", url, data={"remote": "nodea", "remote-store": "local", "target": "local"})
    assert r.status_code == 400 and r.json()["errors"] == {"target": "property is not allowed with 'remote'"}
    r = b.request("POST", url, data={"remote": "nowhere", "remote-store": "local"})
    assert r.status_code == 400 and "no such replication remote 'nowhere'" in r.json()["errors"]["remote"]


def test_a_scheduled_pull_job_and_a_pull_cut_by_kill_9(pair):
    a, b = pair.a, pair.b
    a.create_vm(704, name="big", memory="64", scsi0="local:1")
    disk = volume_path(a, disk_volid(a, 704))
    for i in range(6):
        qemu_io(disk, f"write -P {0x70 + i} {i * 4}M 4M")
    pair.vzdump(704)
    b.post("/storage", data={"storage": "second", "type": "dir", "content": "backup", "path": os.path.join(b.dir, "second")})
    jobs = "/cluster/hearth/datastore-jobs"
    b.post(jobs, data={"id": "from-a", "type": "sync", "storage": "second", "remote": "nodea", "remote-store": "local",
                       "vmid": 704, "schedule": "yearly"})
    assert b.get(jobs + "/from-a")["remote"] == "nodea"
    r = b.request("DELETE", "/cluster/hearth/replication-remotes/nodea")
    assert r.status_code == 400 and r.json()["errors"]["remote"] == \
        "remote 'nodea' is used by datastore job 'from-a' (storage 'second')", r.text

    # B dies after storing its third chunk of the run.
    b.stop()
    b.env = {"HEARTH_TEST_CRASH_AT": "sync.chunk-stored@3"}
    b.start()
    b.post(jobs + "/from-a/run")
    b.proc.wait(timeout=300)
    assert "HEARTH_TEST_CRASH_AT reached" in b.read_log()
    b.kill9()
    b.env = {}
    b.start()
    assert pair.backups(b, "second", 704) == []  # nothing half-copied is visible

    upid = b.post(jobs + "/from-a/run")
    b.wait_task(upid, timeout=300)
    log = "\n".join(b.task_log(upid))
    # The three chunks stored before the crash are not fetched again.
    assert "copied 1 backup(s), 0 already there; 4 chunk(s) copied" in log, log
    assert "3 already there" in log.split("chunk(s) copied")[1], log
    assert len(pair.backups(b, "second", 704)) == 1
    b.delete(jobs + "/from-a")

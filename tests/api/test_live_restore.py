"""Live restore (POST /nodes/{node}/qemu with archive= and live-restore=1): the restored VM runs
at once while the backup streams into its disks from hearth's NBD server; the guest's writes
made meanwhile survive the stream; a hearth killed mid-stream resumes it; a damaged backup
fails the way Proxmox's does (VM stopped, unlocked, kept). Real QEMU (TCG, firmware only: the
"guest's" writes are qemu-io commands on the device, so they take the guest's path)."""
import os
import shutil
import subprocess
import time

import pytest

from harness import Hearth, disk_path, raw_bytes, guest_write, qmp, wait_for

MiB = 1 << 20


@pytest.fixture(scope="module")
def node():
    h = Hearth().start()
    yield h
    h.close()



def backed_up_vm(h, vmid, tmp_path, noise_mib=96):
    """A stopped VM with a 256 MiB disk whose first `noise_mib` MiB are noise, its backup's
    volid, and the disk's bytes."""
    h.create_vm(vmid, memory="64", scsi0="local:1", serial0="socket")
    disk = disk_path(h, vmid)
    noise = str(tmp_path / f"noise-{vmid}.raw")
    with open(noise, "wb") as f:
        f.write(os.urandom(noise_mib * MiB))
        f.truncate(256 * MiB)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", noise, disk], check=True)
    subprocess.run(["qemu-img", "resize", "-q", disk, "256M"], check=True)
    content = open(noise, "rb").read()
    os.unlink(noise)
    h.wait_task(h.post(f"/nodes/{h.node}/vzdump", data={"vmid": vmid, "storage": "local", "mode": "stop"}), timeout=300)
    items = h.get(f"/nodes/{h.node}/storage/local/content", params={"content": "backup", "vmid": vmid})
    return max(items, key=lambda b: b["ctime"])["volid"], content


def live_restore(h, volid, vmid, **params):
    return h.post(f"/nodes/{h.node}/qemu", data={"vmid": vmid, "archive": volid, "storage": "local",
                                                  "live-restore": 1, **params})


def log_of(h, upid):
    return "\n".join(h.task_log(upid))


def nbd_nodes(h, vmid):
    return [n["node-name"] for n in qmp(h, vmid, "query-named-block-nodes", flat=True)
            if n.get("drv") == "nbd"]


def test_the_vm_runs_at_once_and_keeps_its_writes_while_the_backup_streams_in(node, tmp_path):
    volid, content = backed_up_vm(node, 730, tmp_path)
    # 8 MiB/s: the stream of 256 MiB takes about half a minute, long enough to act meanwhile.
    upid = live_restore(node, volid, 731, bwlimit=8 * 1024)
    wait_for("the stream", lambda: "transferred" in log_of(node, upid), 120)
    status = node.get(node.vm_path(731) + "/status/current")
    assert (status["status"], status["qmpstatus"]) == ("running", "running"), status
    assert node.get(node.vm_path(731) + "/config").get("lock") == "create"
    assert nbd_nodes(node, 731) == ["drive-scsi0-nbd"]
    # The guest writes where the stream has not been yet (the end of the noise) and where it
    # has (the start): both stay the guest's.
    guest_write(node, 731, "scsi0", "write -P 0x47 88M 4M")
    guest_write(node, 731, "scsi0", "write -P 0x48 0 64k")
    # The backup cannot go while the VM reads from it: not deleted, not pruned by the next
    # backup's retention (its chunks stay for GC too).
    st = node.wait_task(node.delete(f"/nodes/{node.node}/storage/local/content/{volid}"), ok=False)
    assert st["exitstatus"] == f"backup '{volid}' is in use by the live restore of VM 731", st
    upid_b = node.post(f"/nodes/{node.node}/vzdump", data={"vmid": 730, "storage": "local", "mode": "stop",
                                                           "prune-backups": "keep-last=1"})
    node.wait_task(upid_b, timeout=300)
    assert f"INFO: keeping backup '{volid}': in use by the live restore of VM 731" in log_of(node, upid_b)
    # Other operations on the restoring VM are refused at once, not queued behind the stream.
    for method, path, data in (("POST", "/snapshot", {"snapname": "s1"}), ("PUT", "/resize", {"disk": "scsi0", "size": "+1M"}),
                               ("POST", "/status/stop", {"skiplock": 1})):
        r = node.request(method, node.vm_path(731) + path, data=data, auth="root")
        assert r.status_code != 200 and "VM is locked (create)" in r.text, (path, r.status_code, r.text)
    upid_b = node.post(f"/nodes/{node.node}/vzdump", data={"vmid": 731, "storage": "local"})
    node.wait_task(upid_b, ok=False)
    assert "VM is locked (create)" in log_of(node, upid_b), log_of(node, upid_b)

    node.wait_task(upid, timeout=600)
    log = log_of(node, upid)
    assert "starting VM for live-restore" in log, log
    assert "restore-drive-scsi0: stream-job finished" in log, log
    assert "restore-drive jobs finished successfully" in log, log
    assert "lock" not in node.get(node.vm_path(731) + "/config")
    assert nbd_nodes(node, 731) == []
    status = node.get(node.vm_path(731) + "/status/current")
    assert (status["status"], status["qmpstatus"]) == ("running", "running"), status

    node.vm_action(731, "stop")
    disk = disk_path(node, 731)
    info = subprocess.run(["qemu-img", "info", "--output=json", disk], capture_output=True, text=True, check=True).stdout
    assert "backing" not in info, info  # the disk stands on its own
    want = bytearray(content)
    want[88 * MiB:92 * MiB] = b"\x47" * (4 * MiB)
    want[0:64 * 1024] = b"\x48" * (64 * 1024)
    assert raw_bytes(disk, str(tmp_path / "731.raw")) == bytes(want)
    # The VM starts normally now, and the backup can go.
    node.vm_action(731, "start")
    node.vm_action(731, "stop")


def test_a_hearth_killed_mid_stream_resumes_it_without_stopping_the_vm(node, tmp_path):
    volid, content = backed_up_vm(node, 740, tmp_path)
    upid = live_restore(node, volid, 741, bwlimit=6 * 1024)
    wait_for("the stream", lambda: "transferred" in log_of(node, upid), 120)
    pid = node.get(node.vm_path(741) + "/status/current")["pid"]
    guest_write(node, 741, "scsi0", "write -P 0x49 40M 1M")
    node.kill9()
    node.start()
    # The new daemon resumes in a new task; the guest's QEMU is the same process throughout.
    def resumed():
        tasks = node.get(f"/nodes/{node.node}/tasks", params={"vmid": 741, "typefilter": "qmrestore", "source": "all"})
        return [t["upid"] for t in tasks if t["upid"] != upid]
    upid2 = wait_for("the resumed task", resumed, 60)[0]
    node.wait_task(upid2, timeout=600)
    log = log_of(node, upid2)
    assert f"resuming the live restore of VM 741 (QEMU pid {pid})" in log, log
    assert "restore-drive-scsi0: stream-job finished" in log, log
    assert node.get(node.vm_path(741) + "/status/current")["pid"] == pid
    assert "lock" not in node.get(node.vm_path(741) + "/config")
    node.vm_action(741, "stop")
    want = bytearray(content)
    want[40 * MiB:41 * MiB] = b"\x49" * MiB
    assert raw_bytes(disk_path(node, 741), str(tmp_path / "741.raw")) == bytes(want)


def test_a_resume_that_finds_its_backup_gone_stops_and_unlocks_the_vm(node, tmp_path):
    volid, _ = backed_up_vm(node, 770, tmp_path)
    upid = live_restore(node, volid, 771, bwlimit=4 * 1024)
    wait_for("the stream", lambda: "transferred" in log_of(node, upid), 120)
    store = node.get("/storage/local")["path"]
    node.kill9()
    # Behind hearth's back, the backup goes (a storage unmounted, a directory removed).
    shutil.rmtree(os.path.join(store, "dump", "vm", "770", volid.rsplit("/", 1)[1]))
    node.start()

    def failed():
        tasks = node.get(f"/nodes/{node.node}/tasks", params={"vmid": 771, "typefilter": "qmrestore", "source": "all"})
        ended = [node.task_status(t["upid"]) for t in tasks if t["upid"] != upid]
        return [st for st in ended if st["status"] == "stopped"]
    [st] = wait_for("the resumed task to fail", failed, 120, 0.5)
    assert st["exitstatus"] == "live-restore failed", st
    log = log_of(node, st["upid"])
    assert "An error occurred during live-restore: cannot resume from '" + volid + "'" in log, log
    status = node.get(node.vm_path(771) + "/status/current")
    assert status["status"] == "stopped"
    assert "lock" not in node.get(node.vm_path(771) + "/config")
    node.vm_action(771, "start")  # unlocked: the admin decides (its disk holds what was copied)
    node.vm_action(771, "stop")


def test_a_damaged_backup_fails_the_restore_and_keeps_the_vm_stopped_and_unlocked(node, tmp_path):
    volid, _ = backed_up_vm(node, 750, tmp_path, noise_mib=16)
    # Damage every chunk of the noise (a chunk file is zstd: any flipped byte fails its check).
    chunks = node.get("/storage/local")["path"] + "/dump/.chunks"
    damaged = 0
    for root, _, files in os.walk(chunks):
        for f in files:
            p = os.path.join(root, f)
            if os.path.getsize(p) > 1 * MiB:  # the noise's chunks (zeros compress to almost nothing)
                with open(p, "r+b") as fh:
                    fh.seek(100)
                    b = fh.read(1)
                    fh.seek(100)
                    fh.write(bytes([b[0] ^ 0xFF]))
                damaged += 1
    assert damaged >= 4
    upid = live_restore(node, volid, 751)
    st = node.wait_task(upid, timeout=300, ok=False)
    assert st["exitstatus"] == "live-restore failed", st
    log = log_of(node, upid)
    assert "An error occurred during live-restore: restore-drive-scsi0:" in log, log
    assert "VM 751 state is NOT cleaned up." in log, log
    assert "is corrupt" in log, log  # the server names the damaged chunk
    status = node.get(node.vm_path(751) + "/status/current")
    assert status["status"] == "stopped"
    assert "lock" not in node.get(node.vm_path(751) + "/config")
    # Once the VM is done with it, the backup can go again.
    node.wait_task(node.delete(f"/nodes/{node.node}/storage/local/content/{volid}"))


def test_a_template_or_a_target_without_qcow2_is_refused_before_anything_is_made(node):
    node.create_vm(760, memory="64", scsi0="local:1")
    backup = lambda: node.wait_task(node.post(f"/nodes/{node.node}/vzdump",
                                              data={"vmid": 760, "storage": "local", "mode": "stop"}), timeout=300)
    backup()
    [plain] = node.get(f"/nodes/{node.node}/storage/local/content", params={"content": "backup", "vmid": 760})
    # Before the task: a storage that is not there, or cannot hold the qcow2 overlays.
    r = node.request("POST", f"/nodes/{node.node}/qemu", data={"vmid": 761, "archive": plain["volid"],
                                                                "live-restore": 1, "storage": "nowhere"})
    assert r.status_code == 400 and "storage 'nowhere' does not exist" in r.text, r.text
    # In the task, before any volume: a template, or a call that would make one.
    st = node.wait_task(live_restore(node, plain["volid"], 761, template=1), ok=False)
    assert st["exitstatus"] == "cannot do live-restore for template", st
    time.sleep(1.1)  # backups are named by the second
    node.wait_task(node.post(node.vm_path(760) + "/template"))
    backup()
    items = node.get(f"/nodes/{node.node}/storage/local/content", params={"content": "backup", "vmid": 760})
    tmpl = max(items, key=lambda b: b["ctime"])["volid"]
    st = node.wait_task(live_restore(node, tmpl, 761), ok=False)
    assert st["exitstatus"] == "cannot do live-restore for template", st
    assert node.request("GET", node.vm_path(761) + "/config").status_code == 500  # nothing was made
    assert not os.path.exists(os.path.join(node.get("/storage/local")["path"], "images", "761"))

"""VM snapshots through Proxmox's API, on a dir storage (internal qcow2 snapshots, by
qemu-img when stopped and by QEMU over QMP when running) and on btrfs (subvolume snapshots),
with the disks' contents checked, and a restart in the middle of a snapshot."""
import os
import signal
import subprocess

import pytest

from harness import Hearth, disk_path
from harness import btrfs_storage as mounted_btrfs_storage


@pytest.fixture(scope="module")
def node():
    h = Hearth().start()
    yield h
    h.close()


def snap_url(h, vmid, *parts):
    return "/".join([h.vm_path(vmid) + "/snapshot", *parts])


def snapshot(h, vmid, name, ok=True, **extra):
    return h.wait_task(h.post(snap_url(h, vmid), data={"snapname": name, **extra}), ok=ok)


def qcow2_write(path, pattern, offset="1M"):
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P {pattern} {offset} 64k", path], check=True,
                   capture_output=True)


def qcow2_holds(path, pattern, offset="1M"):
    r = subprocess.run(["qemu-io", "-f", "qcow2", "-r", "-U", "-c", f"read -P {pattern} {offset} 64k", path],
                       capture_output=True, text=True)
    return r.returncode == 0 and "Pattern verification failed" not in r.stdout


def internal_snapshots(path):
    out = subprocess.run(["qemu-img", "snapshot", "-U", "-l", path], capture_output=True, text=True).stdout
    return [line.split()[1] for line in out.splitlines()[2:] if line.strip()]


def test_stopped_qcow2_vm_snapshot_change_rollback_delete(node):
    node.create_vm(400, memory="256", scsi0="local:1", description="the VM's own notes")
    path = disk_path(node, 400)
    qcow2_write(path, "0x61")
    snapshot(node, 400, "s1", description="before the change")
    node.put(node.vm_path(400) + "/config", data={"memory": "512"})
    qcow2_write(path, "0x62")
    snapshot(node, 400, "s2")
    assert internal_snapshots(path) == ["s1", "s2"]

    snaps = node.get(snap_url(node, 400))
    assert snaps[-1]["name"] == "current" and snaps[-1]["parent"] == "s2" and snaps[-1]["running"] == 0
    by = {s["name"]: s for s in snaps}
    assert by["s1"]["description"] == "before the change" and by["s1"]["vmstate"] == 0 and by["s1"]["snaptime"] > 0
    assert by["s2"]["parent"] == "s1" and "parent" not in by["s1"]
    assert int(node.get(snap_url(node, 400, "s1", "config"))["memory"]) == 256
    assert int(node.get(snap_url(node, 400, "s2", "config"))["memory"]) == 512
    assert int(node.get(node.vm_path(400) + "/config", params={"snapshot": "s1"})["memory"]) == 256

    node.wait_task(node.post(snap_url(node, 400, "s1", "rollback")))
    cfg = node.get(node.vm_path(400) + "/config")
    assert int(cfg["memory"]) == 256 and cfg["parent"] == "s1" and cfg["description"] == "the VM's own notes"
    assert qcow2_holds(path, "0x61")
    node.wait_task(node.post(snap_url(node, 400, "s2", "rollback")))  # any snapshot, not only the newest
    assert int(node.get(node.vm_path(400) + "/config")["memory"]) == 512 and qcow2_holds(path, "0x62")

    node.wait_task(node.delete(snap_url(node, 400, "s1")))
    assert internal_snapshots(path) == ["s2"]
    snaps = {s["name"]: s for s in node.get(snap_url(node, 400))}
    assert set(snaps) == {"s2", "current"} and "parent" not in snaps["s2"]
    node.put(snap_url(node, 400, "s2", "config"), data={"description": "kept"})
    assert node.get(snap_url(node, 400, "s2", "config"))["description"] == "kept"
    r = node.request("POST", node.vm_path(400) + "/move_disk", data={"disk": "scsi0", "storage": "local",
                                                                      "format": "raw", "delete": 1})
    assert (r.status_code, r.reason) == (500, "you can't move a disk with snapshots and delete the source")
    r = node.request("POST", node.vm_path(400) + "/template")
    assert r.status_code == 500 and r.reason == "unable to create template, because VM contains snapshots"
    node.wait_task(node.delete(node.vm_path(400)))


def test_a_uefi_vm_snapshots_its_efi_vars_too(node):
    node.create_vm(403, memory="256", bios="ovmf", machine="q35", efidisk0="local:1,efitype=4m", scsi0="local:1")
    snapshot(node, 403, "s1")
    efi = disk_path(node, 403, "efidisk0")
    assert efi.endswith(".qcow2") and internal_snapshots(efi) == ["s1"]
    node.vm_action(403, "start")  # running: QEMU snapshots the EFI vars too (drive-efidisk0)
    snapshot(node, 403, "s2")
    assert internal_snapshots(efi) == ["s1", "s2"]
    node.vm_action(403, "stop")
    node.wait_task(node.delete(node.vm_path(403)))


def test_errors_come_as_proxmoxs(node):
    node.create_vm(401, memory="128", scsi0="local:1,format=raw")
    r = node.request("POST", snap_url(node, 401), data={"snapname": "current"})
    assert (r.status_code, r.reason) == (500, "unable to use snapshot name 'current' (reserved name)")
    r = node.request("POST", snap_url(node, 401), data={"snapname": "1st"})
    assert r.status_code == 400 and r.json()["errors"]["snapname"] == "invalid format - invalid configuration ID '1st'"
    assert node.get(node.vm_path(401) + "/feature", params={"feature": "snapshot"})["hasFeature"] == 0
    st = snapshot(node, 401, "s1", ok=False)  # a raw disk on a dir storage cannot
    assert st["exitstatus"] == "snapshot feature is not available"
    cfg = node.get(node.vm_path(401) + "/config")
    assert "lock" not in cfg and [s["name"] for s in node.get(snap_url(node, 401))] == ["current"]
    st = node.wait_task(node.post(snap_url(node, 401, "nope", "rollback")), ok=False)
    assert st["exitstatus"] == "snapshot 'nope' does not exist"
    r = node.request("GET", snap_url(node, 401, "nope", "config"))
    assert (r.status_code, r.reason) == (500, "snapshot 'nope' does not exist")
    node.wait_task(node.delete(node.vm_path(401)))


def test_running_vm_is_snapshotted_by_qemu_and_rollback_stops_it(node):
    node.create_vm(402, memory="128", scsi0="local:1", serial0="socket")
    node.vm_action(402, "start")
    path = disk_path(node, 402)
    snapshot(node, 402, "live")
    assert node.get(node.vm_path(402) + "/status/current")["status"] == "running"  # paused only meanwhile
    assert internal_snapshots(path) == ["live"]
    assert node.get(snap_url(node, 402))[-1]["running"] == 1
    node.wait_task(node.post(snap_url(node, 402, "live", "rollback"), data={"start": 1}))
    # The rollback stopped it; start=1 starts it again in its own task.
    from harness import wait_for
    wait_for("VM 402 running again", lambda: node.get(node.vm_path(402) + "/status/current")["status"] == "running", 120)
    node.wait_task(node.delete(snap_url(node, 402, "live")))  # QEMU deletes it while running
    assert internal_snapshots(path) == []
    node.vm_action(402, "stop")
    node.wait_task(node.delete(node.vm_path(402)))


@pytest.fixture
def btrfs_storage(node):
    with mounted_btrfs_storage(node) as mnt:
        yield mnt


def raw_write(path, data, offset=1 << 20):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def raw_read(path, n, offset=1 << 20):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(n)


def test_btrfs_snapshots_are_subvolumes_and_go_with_the_vm(node, btrfs_storage):
    node.create_vm(410, memory="128", scsi0="tank:1", serial0="socket")
    path = disk_path(node, 410)
    raw_write(path, b"state one")
    snapshot(node, 410, "one")
    assert os.path.isdir(os.path.join(btrfs_storage, "images", "410", "vm-410-disk-0@one"))
    raw_write(path, b"state two")
    node.vm_action(410, "start")
    snapshot(node, 410, "two")  # running: paused for the subvolume snapshot
    assert node.get(node.vm_path(410) + "/status/current")["status"] == "running"
    node.wait_task(node.post(snap_url(node, 410, "one", "rollback")))
    assert node.get(node.vm_path(410) + "/status/current")["status"] == "stopped"
    assert raw_read(path, 9) == b"state one"
    node.wait_task(node.post(snap_url(node, 410, "two", "rollback")))
    assert raw_read(path, 9) == b"state two"
    node.wait_task(node.delete(node.vm_path(410)))
    assert os.listdir(os.path.join(btrfs_storage, "images")) == []  # snapshots went with the disk


def test_a_snapshot_cut_short_by_kill9_is_undone_at_the_next_start():
    h = Hearth()
    h.env = {"HEARTH_TEST_CRASH_AT": "snapshot.volume@2"}  # after the first of two disks
    h.start()
    try:
        h.create_vm(420, memory="128", scsi0="local:1", scsi1="local:1")
        h.post(snap_url(h, 420), data={"snapname": "s1"})
        h.proc.wait(timeout=120)
        assert h.proc.returncode == -signal.SIGKILL
        h.kill9()
        first = disk_path_from_dir(h.dir, 420, 0)
        assert internal_snapshots(first) == ["s1"]  # what the crash left
        h.env = {}
        h.start()
        cfg = h.get(h.vm_path(420) + "/config")
        assert "lock" not in cfg and "parent" not in cfg
        assert [s["name"] for s in h.get(snap_url(h, 420))] == ["current"]
        assert internal_snapshots(first) == []
        snapshot(h, 420, "s1")  # and the name is free again
    finally:
        h.close()


def test_a_rollback_that_cannot_finish_leaves_the_vm_running_and_unlocked(node, tmp_path):
    node.post("/storage", data={"storage": "gone", "type": "dir", "path": str(tmp_path), "content": "images"})
    node.create_vm(430, memory="128", scsi0="local:1", scsi1="gone:1,format=qcow2")
    snapshot(node, 430, "s1")
    node.vm_action(430, "start")
    node.delete("/storage/gone")
    st = node.wait_task(node.post(snap_url(node, 430, "s1", "rollback")), ok=False)
    assert st["exitstatus"] == "scsi1: storage 'gone' does not exist"
    assert node.get(node.vm_path(430) + "/status/current")["status"] == "running"  # checked before the stop
    assert "lock" not in node.get(node.vm_path(430) + "/config")
    node.vm_action(430, "stop")
    # Destroying says what it could not remove instead of finishing silently.
    upid = node.delete(node.vm_path(430))
    assert node.wait_task(upid, ok=False)["exitstatus"] == "WARNINGS: 1"
    assert any(l.startswith("WARN: Could not remove disk 'gone:430/vm-430-disk-0.qcow2', check manually")
               for l in node.task_log(upid))


def test_a_running_vm_paused_by_a_cut_short_snapshot_runs_again_after_the_restart():
    h = Hearth()
    h.env = {"HEARTH_TEST_CRASH_AT": "snapshot.volume"}
    h.start()
    try:
        h.create_vm(440, memory="128", scsi0="local:1", serial0="socket")
        h.vm_action(440, "start")
        h.post(snap_url(h, 440), data={"snapname": "s1"})
        h.proc.wait(timeout=120)
        h.kill9()
        h.env = {}
        h.start()
        assert h.get(h.vm_path(440) + "/status/current")["qmpstatus"] == "running"
        assert "lock" not in h.get(h.vm_path(440) + "/config")
        h.vm_action(440, "stop")
    finally:
        h.close()


def test_force_finishes_a_delete_that_failed(node, btrfs_storage):
    node.create_vm(450, memory="128", scsi0="tank:1")
    snapshot(node, 450, "s1")
    subprocess.run(["btrfs", "-q", "subvolume", "delete",
                    os.path.join(btrfs_storage, "images", "450", "vm-450-disk-0@s1")], check=True)
    st = node.wait_task(node.delete(snap_url(node, 450, "s1")), ok=False)
    assert "does not exist" in st["exitstatus"]
    assert node.get(node.vm_path(450) + "/config")["lock"] == "snapshot-delete"
    st = node.wait_task(node.delete(snap_url(node, 450, "s1"), params={"force": 1}), ok=False)
    assert st["exitstatus"] == "WARNINGS: 1"  # the missing volume snapshot, said and passed over
    assert "lock" not in node.get(node.vm_path(450) + "/config")
    assert [s["name"] for s in node.get(snap_url(node, 450))] == ["current"]
    node.wait_task(node.delete(node.vm_path(450)))


def disk_path_from_dir(data_dir, vmid, n):
    return os.path.join(data_dir, "images", str(vmid), f"vm-{vmid}-disk-{n}.qcow2")


def test_clone_from_a_snapshot_of_a_running_qcow2_vm(node):
    node.create_vm(460, memory="128", scsi0="local:1", serial0="socket", cores="2")
    path = disk_path(node, 460)
    qcow2_write(path, "0x71")
    snapshot(node, 460, "golden")
    node.put(node.vm_path(460) + "/config", data={"cores": "4"})
    qcow2_write(path, "0x72")
    node.vm_action(460, "start")  # a snapshot does not move while the VM runs
    feature = lambda **p: node.get(node.vm_path(460) + "/feature", params=p)
    assert feature(feature="snapshot") == {"hasFeature": 1, "nodes": [node.node]}
    assert feature(feature="copy", snapname="golden")["hasFeature"] == 1
    assert feature(feature="clone", snapname="golden")["hasFeature"] == 0  # qcow2 snapshots: no linked clones
    assert feature(feature="clone")["hasFeature"] == 0  # not a template
    r = node.request("GET", node.vm_path(460) + "/feature", params={"feature": "copy", "snapname": "nope"})
    assert (r.status_code, r.reason) == (500, "snapshot 'nope' does not exist")
    # Linked clones of a qcow2 snapshot are not possible, as in Proxmox.
    st = node.wait_task(node.post(node.vm_path(460) + "/clone", data={"newid": 461, "snapname": "golden", "full": 0}),
                        ok=False)
    assert "Linked clone feature is not supported for a snapshot of 'local:460/vm-460-disk-0.qcow2'" in st["exitstatus"]
    r = node.request("POST", node.vm_path(460) + "/clone", data={"newid": 461, "snapname": "nope"})
    assert (r.status_code, r.reason) == (500, "snapshot 'nope' does not exist")
    node.wait_task(node.post(node.vm_path(460) + "/clone", data={"newid": 461, "snapname": "golden", "name": "gold"}))
    cfg = node.get(node.vm_path(461) + "/config")
    assert cfg["cores"] == 2 and cfg["name"] == "gold"  # the snapshot's config, not the current one
    assert "parent" not in cfg and "snaptime" not in cfg
    clone = disk_path(node, 461)
    assert qcow2_holds(clone, "0x71") and internal_snapshots(clone) == []
    assert qcow2_holds(path, "0x72")  # the source is untouched
    node.vm_action(460, "stop")
    for vmid in (461, 460):
        node.wait_task(node.delete(node.vm_path(vmid)))


def test_linked_and_full_clones_from_a_btrfs_snapshot(node, btrfs_storage):
    node.create_vm(470, memory="128", scsi0="tank:1")
    path = disk_path(node, 470)
    raw_write(path, b"golden state")
    snapshot(node, 470, "golden")
    raw_write(path, b"later  state")
    assert node.get(node.vm_path(470) + "/feature", params={"feature": "clone", "snapname": "golden"})["hasFeature"] == 1
    node.wait_task(node.post(node.vm_path(470) + "/clone", data={"newid": 471, "snapname": "golden", "full": 0}))
    node.wait_task(node.post(node.vm_path(470) + "/clone", data={"newid": 472, "snapname": "golden",
                                                                 "storage": "local", "format": "raw"}))
    linked, full = disk_path(node, 471), disk_path(node, 472)
    assert linked.endswith("images/471/vm-471-disk-0/disk.raw") and raw_read(linked, 12) == b"golden state"
    assert full.endswith("images/472/vm-472-disk-0.raw") and raw_read(full, 12) == b"golden state"
    # The linked clone is its own subvolume: the source's snapshot can go.
    node.wait_task(node.delete(snap_url(node, 470, "golden")))
    assert raw_read(linked, 12) == b"golden state"
    for vmid in (471, 472, 470):
        node.wait_task(node.delete(node.vm_path(vmid)))

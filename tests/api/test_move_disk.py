"""move_disk through Proxmox's API: offline by qemu-img, online by QEMU's block mirror while
the VM runs (from a qcow2 on the dir storage to a raw image on btrfs and back), with the data
checked in the new volume, the old one closed by QEMU, and later operations on the moved disk
(resize, snapshot, stop and start) working. The guest here is only firmware: the mirror is
QEMU's, so no OS is needed to check it; bench/move_disk_bench.py mirrors under a writing guest."""
import os
import subprocess

import pytest

from harness import Hearth, btrfs_storage, disk_volid, volume_path


@pytest.fixture(scope="module")
def node():
    h = Hearth().start()
    yield h
    h.close()


@pytest.fixture
def tank(node):
    with btrfs_storage(node) as mnt:
        yield mnt


def qemu_io(fmt, path, cmd, readonly=False):
    args = ["qemu-io", "-f", fmt] + (["-r", "-U"] if readonly else []) + ["-c", cmd, path]
    r = subprocess.run(args, capture_output=True, text=True)
    return r.returncode == 0 and "verification failed" not in r.stdout, r.stdout + r.stderr


def open_files(pid):
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return out


def move(h, vmid, ok=True, **params):
    upid = h.post(h.vm_path(vmid) + "/move_disk", data={"disk": "scsi0"} | params)
    st = h.wait_task(upid, timeout=300, ok=ok)
    return st, h.task_log(upid)


def test_a_running_vms_disk_moves_to_btrfs_and_back_by_mirror(node, tank):
    node.create_vm(500, memory="64", scsi0="local:1")
    old = disk_volid(node, 500)
    old_path = volume_path(node, old)
    assert qemu_io("qcow2", old_path, "write -P 0x5a 1M 64k")[0]
    assert qemu_io("qcow2", old_path, "write -P 0xa5 1000M 64k")[0]  # near the end of the 1 GiB
    node.vm_action(500, "start")
    pid = node.get(node.vm_path(500) + "/status/current")["pid"]

    st, log = move(node, 500, storage="tank")
    text = "\n".join(log)
    assert "drive mirror is starting for drive-scsi0" in text, text
    assert "mirror-scsi0: Completed successfully." in text and "mirror-scsi0: mirror-job finished" in text, text
    cfg = node.get(node.vm_path(500) + "/config")
    new = cfg["scsi0"].split(",")[0]
    assert new.startswith("tank:") and new.endswith(".raw") and "size=1G" in cfg["scsi0"], cfg["scsi0"]
    assert cfg["unused0"] == old  # kept, as Proxmox does without delete=1
    # The same QEMU runs on: the new image is open, the old one closed.
    status = node.get(node.vm_path(500) + "/status/current")
    assert status["status"] == "running" and status["pid"] == pid
    new_path = volume_path(node, new)
    files = open_files(pid)
    assert new_path in files and old_path not in files, files

    # An unused volume is not attached: it is copied even while the VM runs (as Proxmox).
    st, log = move(node, 500, disk="unused0", storage="tank", delete=1)
    moved_unused = node.get(node.vm_path(500) + "/config")["unused0"]
    assert moved_unused.startswith("tank:") and not os.path.exists(old_path), moved_unused
    assert qemu_io("raw", volume_path(node, moved_unused), "read -P 0x5a 1M 64k", readonly=True)[0]

    # The moved disk is the one QEMU resizes and snapshots (its node is no longer drive-scsi0).
    node.wait_task(node.put(node.vm_path(500) + "/resize", data={"disk": "scsi0", "size": "+1G"}))
    assert os.path.getsize(new_path) == 2 << 30
    snap = node.post(node.vm_path(500) + "/snapshot", data={"snapname": "moved"})
    node.wait_task(snap)

    # Back to the dir storage as qcow2, deleting the btrfs copy (it has a snapshot: refused).
    r = node.request("POST", node.vm_path(500) + "/move_disk",
                     data={"disk": "scsi0", "storage": "local", "format": "qcow2", "delete": 1})
    assert (r.status_code, r.reason) == (500, "you can't move a disk with snapshots and delete the source")
    node.wait_task(node.delete(node.vm_path(500) + "/snapshot/moved"))
    st, log = move(node, 500, storage="local", format="qcow2", delete=1)
    assert f"removing source volume '{new}' after successful copy" in log
    back = disk_volid(node, 500)
    assert back.startswith("local:") and back.endswith(".qcow2")  # the old name is free again
    assert not os.path.exists(new_path)
    assert volume_path(node, back) in open_files(pid)

    node.vm_action(500, "stop")
    back_path = volume_path(node, back)
    assert qemu_io("qcow2", back_path, "read -P 0x5a 1M 64k", readonly=True)[0]
    assert qemu_io("qcow2", back_path, "read -P 0xa5 1000M 64k", readonly=True)[0]
    out = subprocess.run(["qemu-img", "info", "--output=json", back_path], capture_output=True, text=True).stdout
    assert '"virtual-size": 2147483648' in out
    node.vm_action(500, "start")  # starts from the moved disk
    assert volume_path(node, back) in open_files(node.get(node.vm_path(500) + "/status/current")["pid"])
    node.vm_action(500, "stop")
    node.wait_task(node.delete(node.vm_path(500)))


def test_offline_move_copies_and_a_start_during_it_is_safe(node):
    node.create_vm(501, memory="64", scsi0="local:1")
    old = disk_volid(node, 501)
    assert qemu_io("qcow2", volume_path(node, old), "write -P 0x33 4M 64k")[0]
    st, log = move(node, 501, storage="local", format="raw")
    new = disk_volid(node, 501)
    assert new.endswith(".raw") and node.get(node.vm_path(501) + "/config")["unused0"] == old
    assert qemu_io("raw", volume_path(node, new), "read -P 0x33 4M 64k", readonly=True)[0]
    node.wait_task(node.delete(node.vm_path(501)))


def test_refusals_name_the_problem(node):
    node.create_vm(502, memory="64", scsi0="local:1", ide2="none,media=cdrom")
    r = node.request("POST", node.vm_path(502) + "/move_disk", data={"disk": "scsi0", "storage": "local"})
    assert (r.status_code, r.reason) == (500, "you can't move to the same storage with same format")
    r = node.request("POST", node.vm_path(502) + "/move_disk", data={"disk": "scsi5", "storage": "local"})
    assert (r.status_code, r.reason) == (500, "disk 'scsi5' does not exist")
    r = node.request("POST", node.vm_path(502) + "/move_disk", data={"disk": "scsi0", "storage": "nope"})
    assert r.status_code in (400, 500) and "nope" in (r.reason + r.text)
    node.wait_task(node.delete(node.vm_path(502)))


def test_a_snapshot_that_comes_first_keeps_the_source(node):
    """A snapshot and a move with delete=1 posted back to back: however the two interleave (the
    move refused at the request while the snapshot holds the VM's lock or once it is done, in
    its task when it waited behind the snapshot, or run first), the snapshot can be rolled
    back afterwards: no volume it needs was deleted."""
    node.create_vm(503, memory="64", scsi0="local:1")
    node.vm_action(503, "start")
    snap = node.post(node.vm_path(503) + "/snapshot", data={"snapname": "first"})
    r = node.request("POST", node.vm_path(503) + "/move_disk",
                     data={"disk": "scsi0", "storage": "local", "format": "raw", "delete": 1})
    node.wait_task(snap)
    refusal = "you can't move a disk with snapshots and delete the source"
    if r.status_code == 200:
        # OK only if the move got the VM's lock before the snapshot's task did: then the
        # snapshot was taken of the moved disk.
        st = node.wait_task(r.json()["data"], ok=False)
        assert st["exitstatus"] in (refusal, "OK"), st
    else:
        assert (r.status_code, r.reason) in ((500, refusal), (500, "VM is locked (snapshot)")), (r.status_code, r.reason)
    node.wait_task(node.post(node.vm_path(503) + "/snapshot/first/rollback"))
    node.wait_task(node.delete(node.vm_path(503)))


def test_a_templates_disk_stays_a_base_image(node, tank):
    node.create_vm(504, memory="64", scsi0="local:1")
    node.wait_task(node.post(node.vm_path(504) + "/template"))
    move(node, 504, storage="tank", delete=1)
    vol = disk_volid(node, 504)
    assert vol.startswith("tank:504/base-504-disk-"), vol
    node.wait_task(node.post(node.vm_path(504) + "/clone", data={"newid": 505}))  # linked: a snapshot of the base
    assert disk_volid(node, 505).startswith("tank:505/vm-505-disk-")
    node.wait_task(node.delete(node.vm_path(505)))
    node.wait_task(node.delete(node.vm_path(504)))


def test_running_vms_refuse_what_cannot_be_mirrored(node):
    node.create_vm(506, memory="64", scsi0="local:1,ro=1")
    node.vm_action(506, "start")
    r = node.request("POST", node.vm_path(506) + "/move_disk", data={"disk": "scsi0", "storage": "local", "format": "raw"})
    assert (r.status_code, r.reason) == (500, "cannot move the read-only disk 'scsi0' of a running VM; stop VM 506 first")
    node.vm_action(506, "stop")
    node.wait_task(node.delete(node.vm_path(506)))

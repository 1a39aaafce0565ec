"""Backups of running VMs in vzdump's `snapshot` mode: the guest is never paused, the backup
holds the disks as they were at one instant while the guest writes on, and the next backup of
the same running QEMU reads only the 4 MiB chunks its dirty bitmap marks. Real QEMU (TCG,
firmware only: the "guest's" writes are qemu-io commands on the device through QMP, so they
take the guest's path through the block graph)."""
import os
import subprocess

import pytest

from harness import Hearth, disk_path, raw_bytes, guest_write, qmp, wait_for

MiB = 1 << 20


@pytest.fixture(scope="module")
def node():
    h = Hearth().start()
    yield h
    h.close()



def vzdump(h, vmid, ok=True, **params):
    upid = h.post(f"/nodes/{h.node}/vzdump", data={"vmid": vmid, "storage": "local", "mode": "snapshot", **params})
    st = h.wait_task(upid, timeout=300, ok=ok)
    return st, "\n".join(h.task_log(upid))


def newest_backup(h, vmid):
    items = h.get(f"/nodes/{h.node}/storage/local/content", params={"content": "backup", "vmid": vmid})
    return max(items, key=lambda b: b["ctime"])["volid"]


def restore(h, volid, vmid):
    h.wait_task(h.post(f"/nodes/{h.node}/qemu", data={"vmid": vmid, "archive": volid, "storage": "local"}), timeout=300)
    return disk_path(h, vmid)


def leftovers(h, vmid):
    """What a backup may leave behind in QEMU and on disk: none of it may outlive one."""
    nodes = [n["node-name"] for n in qmp(h, vmid, "query-named-block-nodes", flat=True)
             if n.get("node-name", "").startswith("hearth-")]
    jobs = [j["device"] for j in qmp(h, vmid, "query-block-jobs")]
    exports = [e["id"] for e in qmp(h, vmid, "query-block-exports")]
    fleece_dir = os.path.join(h.dir, "fleecing")
    files = os.listdir(fleece_dir) if os.path.isdir(fleece_dir) else []
    return nodes + jobs + exports + files


def test_snapshot_mode_reads_one_instant_without_pausing_then_only_dirty_chunks(node, tmp_path):
    node.create_vm(700, memory="64", scsi0="local:1")
    disk = disk_path(node, 700)
    # Real content: 256 MiB of noise, so that reading the disk takes a while under load.
    noise = str(tmp_path / "noise.raw")
    with open(noise, "wb") as f:
        f.write(os.urandom(256 * MiB))
        f.truncate(1 << 30)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", noise, disk], check=True)
    os.unlink(noise)
    node.vm_action(700, "start")

    # The "guest" overwrites the disk's end as soon as the point in time is taken; the read,
    # held to 100 MiB/s by bwlimit, gets there about 10 s later. The backup must hold the bytes
    # from before the write (QEMU copied them aside when the guest wrote).
    upid = node.post(f"/nodes/{node.node}/vzdump", data={"vmid": 700, "storage": "local", "mode": "snapshot",
                                                         "bwlimit": 100 * 1024})
    wait_for("the point in time", lambda: any("dirty-bitmap status" in l for l in node.task_log(upid)), 120)
    guest_write(node, 700, "scsi0", "write -P 0x43 1000M 4M")
    st = node.wait_task(upid, timeout=300)
    log = "\n".join(node.task_log(upid))
    assert "INFO: backup mode: snapshot" in log, log
    assert "suspending" not in log and "resuming" not in log and "WARN" not in log, log
    assert "INFO: bandwidth limit: 102400 KiB/s" in log, log
    assert "INFO: scsi0: reading the whole disk (no dirty bitmap yet)" in log, log
    assert "INFO: scsi0: dirty-bitmap status: created new" in log, log
    status = node.get(node.vm_path(700) + "/status/current")
    assert (status["status"], status["qmpstatus"]) == ("running", "running")
    assert "lock" not in node.get(node.vm_path(700) + "/config")
    assert leftovers(node, 700) == []
    first = newest_backup(node, 700)

    # About 1% of the disk changes (one 4 MiB chunk at 300 MiB, 64 KiB at 512 MiB, and the
    # write at 1000 MiB made after the first backup's instant): the next backup reads those
    # three chunks and takes the other 253 from the first backup.
    guest_write(node, 700, "scsi0", "write -P 0x44 300M 4M")
    guest_write(node, 700, "scsi0", "write -P 0x45 512M 64k")
    st, log = vzdump(node, 700)
    assert "INFO: scsi0: dirty-bitmap status: OK (12 MiB of 1.0 GiB dirty)" in log, log
    assert "backup read 12 MiB in 256 chunks" in log and "253 unchanged chunks were not read" in log, log
    assert leftovers(node, 700) == []
    second = newest_backup(node, 700)

    # What each backup holds, against the disk itself (QEMU flushes it at the stop).
    node.vm_action(700, "stop")
    now = raw_bytes(disk, str(tmp_path / "now.raw"))
    restored2 = raw_bytes(restore(node, second, 701), str(tmp_path / "r2.raw"))
    assert restored2 == now
    restored1 = raw_bytes(restore(node, first, 702), str(tmp_path / "r1.raw"))
    assert restored1[1000 * MiB:1004 * MiB] == bytes(4 * MiB), "the backup holds a write made after its instant"
    assert restored1[300 * MiB:304 * MiB] != b"\x44" * (4 * MiB)
    # Everything else is the same disk (only the three writes differ).
    for off in (300, 512, 1000):
        now = now[:off * MiB] + restored1[off * MiB:(off + 4) * MiB] + now[(off + 4) * MiB:]
    assert restored1 == now

    # A new QEMU process has no bitmap of what changed: the whole disk is read again.
    node.vm_action(700, "start")
    st, log = vzdump(node, 700)
    assert "INFO: scsi0: reading the whole disk (the VM was started again since its last backup)" in log, log
    assert "unchanged chunks were not read" not in log
    node.vm_action(700, "stop")


def test_a_backup_to_another_storage_or_in_suspend_mode_breaks_no_chain(node, tmp_path):
    node.create_vm(710, memory="64", scsi0="local:1")
    node.vm_action(710, "start")
    vzdump(node, 710)
    # A suspend-mode backup in between is newer than the one the bitmap counts from.
    st, log = vzdump(node, 710, mode="suspend")
    assert "INFO: suspending guest" in log
    guest_write(node, 710, "scsi0", "write -P 0x46 0 4M")
    st, log = vzdump(node, 710)
    assert "reading the whole disk (the backup the bitmap counts from is not the newest)" in log, log
    # ... and from the one after it, it is incremental again.
    guest_write(node, 710, "scsi0", "write -P 0x47 4M 4M")
    st, log = vzdump(node, 710)
    assert "dirty-bitmap status: OK (4 MiB of 1.0 GiB dirty)" in log, log
    # Only hearth's bitmaps live in QEMU: one per disk, recording.
    bitmaps = [b for n in qmp(node, 710, "query-named-block-nodes", flat=True) for b in n.get("dirty-bitmaps", [])]
    assert [b["recording"] for b in bitmaps] == [True], bitmaps
    node.vm_action(710, "stop")


def test_iothread_disks_are_paused_for_the_read_and_a_huge_bwlimit_is_no_limit(node):
    # QEMU 7.2 aborts when an NBD client of an iothread disk's export disconnects: such a VM
    # is read in suspend mode, with a warning saying why, and keeps running.
    node.create_vm(720, memory="64", scsihw="virtio-scsi-single", scsi0="local:1,iothread=1")
    node.vm_action(720, "start")
    guest_write(node, 720, "scsi0", "write -P 0x48 0 4M")
    st, log = vzdump(node, 720, ok=False, bwlimit=1 << 54)  # KiB/s: 2^64 bytes/s would wrap
    assert st["exitstatus"] == "WARNINGS: 1", log
    assert "not available for disks with iothread=1 on this QEMU (scsi0) - trying 'suspend' mode instead" in log
    assert "INFO: suspending guest" in log and "INFO: resuming guest" in log
    status = node.get(node.vm_path(720) + "/status/current")
    assert (status["status"], status["qmpstatus"]) == ("running", "running")
    node.vm_action(720, "stop")


def test_a_cancelled_backup_leaves_its_changes_to_the_next(node):
    # A backup that fails after its instant gives the frozen bitmap back the changes it was to
    # store, so the next backup still reads everything changed since the last stored one.
    node.create_vm(730, memory="64", scsi0="local:1")
    node.vm_action(730, "start")
    vzdump(node, 730)
    guest_write(node, 730, "scsi0", "write -P 0x51 0 40M")  # 10 chunks
    upid = node.post(f"/nodes/{node.node}/vzdump", data={"vmid": 730, "storage": "local", "mode": "snapshot",
                                                         "bwlimit": 10 * 1024})  # 4 s for 40 MiB
    wait_for("the point in time", lambda: any("dirty-bitmap status" in l for l in node.task_log(upid)), 120)
    node.delete(f"/nodes/{node.node}/tasks/{upid}")
    st = node.wait_task(upid, timeout=120, ok=False)
    assert st["exitstatus"] != "OK", st
    assert "backup cancelled" in "\n".join(node.task_log(upid))
    assert leftovers(node, 730) == []
    guest_write(node, 730, "scsi0", "write -P 0x52 100M 4M")
    st, log = vzdump(node, 730)
    assert "INFO: scsi0: dirty-bitmap status: OK (44 MiB of 1.0 GiB dirty)" in log, log
    assert len(node.get(f"/nodes/{node.node}/storage/local/content", params={"content": "backup", "vmid": 730})) == 2
    node.vm_action(730, "stop")

"""Snapshots with RAM (vmstate=1) of a real guest under TCG: after a rollback the guest goes
on from the instant of the snapshot, with no reboot. The tiny ISO's guest counts its uptime
in a shell variable and prints it every 10 s; that counter lives only in guest RAM, so the
first count printed after the rollback shows which state the guest resumed from."""
import os
import re

import pytest

from harness import BtrfsLoop, Hearth, qemu_pid, tiny_iso, upload, wait_for

COUNT = re.compile(r"hearth tiny guest: up (\d+)s")


@pytest.fixture(scope="module")
def h():
    h = Hearth().start()
    r = upload(h, tiny_iso(), "tiny.iso")
    assert r.status_code == 200, r.text
    h.wait_task(r.json()["data"])
    yield h
    h.close()


def snap_url(h, vmid, *rest):
    return "/".join([h.vm_path(vmid), "snapshot", *rest])


class Serial:
    """The guest's serial log, read on from where the last read stopped."""

    def __init__(self, h, vmid):
        self.h, self.vmid, self.offset, self.text = h, vmid, 0, ""

    def read(self):
        d = self.h.get(self.h.vm_path(self.vmid) + "/serial-log", params={"offset": self.offset})
        if d["offset"] < self.offset:  # QEMU started anew: its log did too
            self.text = ""
        self.offset = d["offset"]
        self.text += d["text"]
        return self.text

    def counts(self):
        return [int(n) for n in COUNT.findall(self.read())]

    def wait_count(self, at_least, timeout=300):
        wait_for(f"the guest's uptime count to reach {at_least}",
                 lambda: any(n >= at_least for n in self.counts()), timeout, 0.25)
        return max(self.counts())


def storage_volumes(h, storage, vmid):
    return sorted(v["volid"] for v in h.get(f"/nodes/{h.node}/storage/{storage}/content", params={"vmid": vmid}))


def ram_snapshot_round_trip(h, vmid, storage, disk):
    h.create_vm(vmid, name=f"ram{vmid}", memory="256", ide2="local:iso/tiny.iso,media=cdrom", serial0="socket",
                boot="order=ide2", scsi0=disk)
    h.vm_action(vmid, "start")
    serial = Serial(h, vmid)
    serial.wait_count(10)

    upid = h.post(snap_url(h, vmid), data={"snapname": "ram", "vmstate": 1, "description": "with RAM"})
    h.wait_task(upid, timeout=600)
    assert any(line.startswith("VM state and RAM saved") for line in h.task_log(upid))
    # The count the guest had when it was snapshotted is at most the last one printed by now.
    at_snapshot = max(serial.counts())
    state_volid = f"{storage}:{vmid}/vm-{vmid}-state-ram.raw"
    snap = h.get(snap_url(h, vmid, "ram", "config"))
    assert snap["vmstate"] == state_volid
    assert snap["runningmachine"].startswith("pc-i440fx-")  # what "pc" resolved to
    listed = {s["name"]: s for s in h.get(snap_url(h, vmid))}
    assert listed["ram"]["vmstate"] == 1 and listed["ram"]["description"] == "with RAM"
    assert state_volid in storage_volumes(h, storage, vmid)
    # The guest ran on after the snapshot, undisturbed.
    assert h.get(h.vm_path(vmid) + "/status/current")["qmpstatus"] == "running"
    before_rollback = serial.wait_count(at_snapshot + 20)
    pid = qemu_pid(h, vmid)

    h.wait_task(h.post(snap_url(h, vmid, "ram", "rollback")), timeout=600)
    status = h.get(h.vm_path(vmid) + "/status/current")
    assert status["status"] == "running" and status["qmpstatus"] == "running"
    assert qemu_pid(h, vmid) != pid  # a new QEMU, fed the saved state
    wait_for("a count printed after the rollback", lambda: serial.counts(), 300, 0.25)
    first = serial.counts()[0]
    # Resumed where it was snapshotted: the next count after that instant, lower than what
    # the guest had reached before the rollback, and no boot in between.
    assert first <= at_snapshot + 10 and first < before_rollback, serial.text
    assert "HEARTH-TINY-READY" not in serial.text and "Linux version" not in serial.text
    cfg = h.get(h.vm_path(vmid) + "/config")
    assert cfg["parent"] == "ram" and "vmstate" not in cfg and "runningmachine" not in cfg

    # The guest keeps running from there, and deleting the snapshot frees its state volume.
    serial.wait_count(first + 10)
    h.wait_task(h.delete(snap_url(h, vmid, "ram")), timeout=300)
    assert state_volid not in storage_volumes(h, storage, vmid)
    h.vm_action(vmid, "stop")
    h.wait_task(h.delete(h.vm_path(vmid)))


def test_rollback_with_ram_resumes_the_guest_on_dir_with_qcow2(h):
    ram_snapshot_round_trip(h, 300, "local", "local:1,format=qcow2")


@pytest.mark.skipif(not BtrfsLoop.available(), reason="btrfs on a loop device needs root and btrfs-progs")
def test_rollback_with_ram_resumes_the_guest_on_btrfs(h):
    with BtrfsLoop() as fs:
        h.post("/storage", data={"storage": "fast", "type": "btrfs", "path": fs.mnt})
        try:
            ram_snapshot_round_trip(h, 301, "fast", "fast:1")
        finally:
            h.delete("/storage/fast")


def test_vmstate_of_a_stopped_vm_is_ignored_as_proxmox(h):
    h.create_vm(302, memory="128", scsi0="local:1,format=qcow2")
    h.wait_task(h.post(snap_url(h, 302), data={"snapname": "cold", "vmstate": 1}))
    assert "vmstate" not in h.get(snap_url(h, 302, "cold", "config"))
    assert [v for v in storage_volumes(h, "local", 302) if "-state-" in v] == []
    h.wait_task(h.delete(h.vm_path(302)))

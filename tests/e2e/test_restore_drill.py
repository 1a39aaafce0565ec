"""Restore drills (beyond Proxmox): the newest backup of a VM is restored to a scratch VM with
its network links down, booted under TCG until the guest shows a sign of life on serial0,
and destroyed again, by hand (POST .../hearth/drill) and as a datastore job. A drill whose
guest never shows the marker fails, and its copy is destroyed all the same."""
import os

import pytest

from harness import Hearth, cli, tiny_iso, upload, wait_for

SCRATCH = 999900000


@pytest.fixture(scope="module")
def h():
    h = Hearth().start()
    r = upload(h, tiny_iso(), "tiny.iso")
    assert r.status_code == 200, r.text
    h.wait_task(r.json()["data"])
    # The VM under drill: the tiny ISO guest with a disk and a NIC, backed up while stopped.
    h.create_vm(700, name="tiny700", memory="256", ide2="local:iso/tiny.iso,media=cdrom", serial0="socket",
                boot="order=ide2", scsi0="local:1", net0="virtio,macaddr=BC:24:11:00:07:00")
    h.wait_task(h.post(f"/nodes/{h.node}/vzdump", data={"vmid": 700, "storage": "local"}), timeout=300)
    yield h
    h.close()


def drill_path(h):
    return f"/nodes/{h.node}/storage/local/hearth/drill"


def vm_ids(h):
    return {v["vmid"] for v in h.get(f"/nodes/{h.node}/qemu")}


def test_drill_restores_boots_isolated_and_destroys_the_copy(h):
    upid = h.post(drill_path(h), data={"vmid": 700, "marker": "HEARTH-TINY-READY", "timeout": 900})
    assert ":restoredrill:700@local:" in upid
    # While the copy runs, it is what the drill says: a new VM, named after the original,
    # with its NIC's link down and a MAC of its own.
    wait_for("the scratch VM running",
             lambda: SCRATCH in vm_ids(h) and
             h.get(h.vm_path(SCRATCH) + "/status/current")["status"] == "running", 300, 0.2)
    conf = h.get(h.vm_path(SCRATCH) + "/config")
    assert conf["name"] == "drill-700" and conf["onboot"] in (0, "0")
    assert conf["ide2"].startswith("local:iso/tiny.iso,"), conf  # a CD-ROM is kept, not backed up
    assert "link_down=1" in conf["net0"] and "BC:24:11:00:07:00" not in conf["net0"].upper(), conf["net0"]
    h.wait_task(upid, timeout=1200)
    log = "\n".join(h.task_log(upid))
    assert "restored in" in log and "the marker appeared" in log, log
    assert "restore drill passed in" in log, log
    assert SCRATCH not in vm_ids(h) and 700 in vm_ids(h)
    # The copy's disks went with it; the original's stayed.
    vols = [v["volid"] for v in h.get(f"/nodes/{h.node}/storage/local/content", params={"content": "images"})]
    assert any(v.startswith("local:700/") for v in vols) and not any(str(SCRATCH) in v for v in vols), vols


def test_failed_drill_fails_and_still_destroys_the_copy(h):
    upid = h.post(drill_path(h), data={"vmid": 700, "marker": "NEVER-PRINTED", "timeout": 10,
                                       "scratch-vmid": 990})
    st = h.wait_task(upid, timeout=900, ok=False)
    assert st["exitstatus"] == "the marker did not appear within 10 s", st
    log = "\n".join(h.task_log(upid))
    assert "destroy:" in log and "restore drill passed" not in log, log
    assert 990 not in vm_ids(h)


def test_two_drills_at_once_take_a_scratch_vm_each(h):
    """Both pick the first free scratch VMID when asked; the second restore finds it taken and
    takes the next, and neither destroys the other's copy."""
    failing = h.post(drill_path(h), data={"vmid": 700, "marker": "NEVER-PRINTED", "timeout": 10})
    passing = h.post(drill_path(h), data={"vmid": 700, "marker": "HEARTH-TINY-READY", "timeout": 600})
    assert h.wait_task(failing, timeout=900, ok=False)["exitstatus"] == "the marker did not appear within 10 s"
    h.wait_task(passing, timeout=1200)
    logs = ["\n".join(h.task_log(u)) for u in (failing, passing)]
    scratch = {line.split(" as VM ")[1].split()[0] for log in logs for line in log.splitlines() if " as VM " in line}
    assert scratch == {str(SCRATCH), str(SCRATCH + 1)}, logs
    assert "restore drill passed in" in logs[1], logs[1]
    assert not {SCRATCH, SCRATCH + 1} & vm_ids(h)


def test_drill_job_runs_the_same_drill(h):
    base = "/cluster/hearth/datastore-jobs"
    h.post(base, data={"id": "sunday-drill", "type": "drill", "storage": "local", "vmid": 700,
                       "marker": "HEARTH-TINY-READY", "schedule": "sun 04:00"})
    job = h.get(base + "/sunday-drill")
    assert job["type"] == "drill" and job["timeout"] == 900 and job["marker"] == "HEARTH-TINY-READY"
    upid = h.post(base + "/sunday-drill/run")
    assert ":restoredrill:700@local:" in upid
    h.wait_task(upid, timeout=1200)
    assert "restore drill passed in" in "\n".join(h.task_log(upid))
    assert h.get(base + "/sunday-drill")["last-upid"] == upid
    assert SCRATCH not in vm_ids(h)
    h.delete(base + "/sunday-drill")


def test_drill_refuses_what_it_cannot_check(h):
    def error(**data):
        r = h.request("POST", drill_path(h), data=data)
        return r.status_code, r.json().get("errors")
    # No backup of that VM; no agent and no marker; a marker that is not one line; a taken VMID.
    assert error(vmid=701, marker="x") == (400, {"vmid": "no backup of VM 701 on storage 'local'"})
    assert error(vmid=700) == (400, {"marker": "the backup's config has no guest agent: give a serial console "
                                               "line to wait for"})
    spaces = {"marker": "value must be 1 to 128 printable ASCII characters, not only spaces"}
    assert error(vmid=700, marker="a\nb")[1] == spaces and error(vmid=700, marker="   ")[1] == spaces
    r = h.request("POST", f"/nodes/{h.node}/storage/nosuch/hearth/drill", data={"vmid": 700, "marker": "x"})
    assert (r.status_code, r.json().get("errors")) == (400, {"storage": "storage 'nosuch' does not exist"})
    assert error(vmid=700, marker="x", **{"scratch-vmid": 700}) == (400, {"scratch-vmid": "VM 700 already exists"})


def test_drill_from_the_cli_follows_the_task(h):
    r = cli(h, "backup", "drill", "700", "--marker", "HEARTH-TINY-READY", "--timeout", "600", timeout=1200)
    assert "the marker appeared" in r.stderr and "TASK OK" in r.stderr, r.stderr
    r = cli(h, "backup", "drill", "701", "--marker", "x", ok=False)
    assert r.returncode != 0 and "vmid" in r.stderr and "no backup of VM 701" in r.stderr, r.stderr
    assert SCRATCH not in vm_ids(h)


def test_a_template_with_an_agent_setting_is_drilled_by_its_marker(h):
    """A template's copy is a plain VM that boots; with a marker given, the drill waits for it
    even though the config has agent=1 (an agent configured but not installed, as here)."""
    h.create_vm(702, name="tiny702", memory="256", ide2="local:iso/tiny.iso,media=cdrom", serial0="socket",
                boot="order=ide2", scsi0="local:1", agent="1")
    h.wait_task(h.post(h.vm_path(702) + "/template"))
    h.wait_task(h.post(f"/nodes/{h.node}/vzdump", data={"vmid": 702, "storage": "local"}), timeout=300)
    upid = h.post(drill_path(h), data={"vmid": 702, "marker": "HEARTH-TINY-READY", "timeout": 600})
    h.wait_task(upid, timeout=1200)
    log = "\n".join(h.task_log(upid))
    assert "waiting for 'HEARTH-TINY-READY' on serial0" in log and "restore drill passed in" in log, log
    assert not {v for v in vm_ids(h) if v >= SCRATCH}


def test_a_restart_during_a_drill_removes_the_copy(h):
    """kill -9 of the daemon while the copy runs: the next start stops it and removes it with its
    disks, and the drill's task ends as interrupted."""
    upid = h.post(drill_path(h), data={"vmid": 700, "marker": "NEVER-PRINTED", "timeout": 600})
    wait_for("the scratch VM running",
             lambda: SCRATCH in vm_ids(h) and h.get(h.vm_path(SCRATCH) + "/status/current")["status"] == "running",
             300, 0.2)
    pid = h.get(h.vm_path(SCRATCH) + "/status/current")["pid"]
    h.kill9()
    h.start()
    assert SCRATCH not in vm_ids(h)
    assert wait_for("the copy's QEMU gone", lambda: not os.path.exists(f"/proc/{pid}") or
                    open(f"/proc/{pid}/stat").read().split()[2] == "Z", 60, 0.2)
    vols = [v["volid"] for v in h.get(f"/nodes/{h.node}/storage/local/content", params={"content": "images"})]
    assert not any(str(SCRATCH) in v for v in vols), vols
    assert h.task_status(upid)["status"] == "stopped" and h.task_status(upid)["exitstatus"] != "OK"
    assert "removing the copy of a restore drill" in h.read_log()

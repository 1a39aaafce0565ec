"""Tasks: status fields, logs, listing, persistence across restarts and crashes."""
import os
import signal
import sqlite3
import subprocess
import urllib.parse

from harness import Hearth, wait_for


def test_task_status_fields(hearth):
    upid = hearth.create_vm(400, wait=False)
    st = hearth.task_status(upid)  # queryable at once
    for key in ("upid", "node", "pid", "pstart", "starttime", "type", "id", "user", "status"):
        assert key in st
    assert st["type"] == "qmcreate" and st["id"] == "400" and isinstance(st["pid"], int)
    if st["status"] == "running":
        assert "exitstatus" not in st
    st = hearth.wait_task(upid)
    assert st["exitstatus"] == "OK"
    log = hearth.get(f"/nodes/{hearth.node}/tasks/{upid}/log")
    assert log[-1] == {"n": len(log), "t": "TASK OK"}
    # An empty log (emptied on disk): PVE's dump_logfile answers one "no content" line and
    # counts it in the total.
    path = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(hearth.dir, "tasks")) for f in fs if f == upid]
    assert len(path) == 1
    open(path[0], "w").close()
    r = hearth.request("GET", f"/nodes/{hearth.node}/tasks/{upid}/log")
    assert r.json()["data"] == [{"n": 1, "t": "no content"}] and r.json()["total"] == 1


def test_task_list_and_filters(hearth):
    r = hearth.request("GET", f"/nodes/{hearth.node}/tasks", params={"vmid": 400})
    body = r.json()
    assert body["total"] >= 1
    assert all(t["id"] == "400" for t in body["data"])
    assert body["data"][0]["status"] == "OK" and "endtime" in body["data"][0]
    typed = hearth.get(f"/nodes/{hearth.node}/tasks", params={"typefilter": "qmcreate"})
    assert typed and all(t["type"] == "qmcreate" for t in typed)


def test_unknown_and_malformed_upids(hearth):
    r = hearth.request("GET", f"/nodes/{hearth.node}/tasks/UPID:{hearth.node}:00000099:00000001:6720A1B2:qmstart:1:root@pam:/status")
    assert r.status_code == 400 and r.json()["errors"]["upid"] == "no such task"
    r = hearth.request("GET", f"/nodes/{hearth.node}/tasks/garbage/status")
    assert r.status_code == 400 and r.json()["errors"]["upid"] == "unable to parse worker upid"
    # Deleting a finished task is fine (bpg deletes a download task that failed); an unknown
    # one is PVE's 400.
    upid = hearth.create_vm(150)
    assert hearth.delete(f"/nodes/{hearth.node}/tasks/{urllib.parse.quote(upid, safe='')}") is None
    hearth.wait_task(hearth.delete(hearth.vm_path(150)))
    r = hearth.request("DELETE", f"/nodes/{hearth.node}/tasks/UPID:{hearth.node}:00000099:00000001:6720A1B2:qmstart:1:root@pam:")
    assert r.status_code == 400 and r.json()["errors"]["upid"] == "no such task"


def test_logs_survive_restart_and_running_tasks_end_as_unexpected():
    h = Hearth().start()
    try:
        upid = h.create_vm(100, memory="128")
        h.vm_action(100, "start")
        # a shutdown that waits for a guest that will never answer ACPI
        waiting = h.post(h.vm_path(100) + "/status/shutdown", data={"timeout": 600})
        wait_for("the shutdown task to be running", lambda: h.task_status(waiting)["status"] == "running")
        pid = h.get(h.vm_path(100) + "/status/current")["pid"]
        h.kill9()
        h.start()
        st = h.task_status(waiting)
        assert st["status"] == "stopped" and st["exitstatus"] == "unexpected status"
        assert h.task_log(upid)[-1] == "TASK OK"  # logs persist
        # the VM kept running and was re-adopted
        cur = h.get(h.vm_path(100) + "/status/current")
        assert cur["status"] == "running" and cur["pid"] == pid
        h.vm_action(100, "stop")
    finally:
        h.close()


def test_a_destroy_cut_short_is_finished_at_the_next_start():
    """kill -9 after the destroy marked the VM (lock: destroyed) but before it was gone."""
    h = Hearth().start()
    try:
        h.create_vm(160, memory="128", scsi0="local:1")
        disk = os.path.join(h.dir, "images", "160", "vm-160-disk-0.qcow2")
        assert os.path.exists(disk)
        h.kill9()
        db = sqlite3.connect(os.path.join(h.dir, "hearth.db"))
        conf = db.execute("SELECT conf FROM vms WHERE vmid = 160").fetchone()[0]
        db.execute("UPDATE vms SET conf = ? WHERE vmid = 160", ("lock: destroyed\n" + conf,))
        db.commit()
        db.close()
        h.start()
        r = h.request("GET", h.vm_path(160) + "/config")
        assert r.status_code == 500 and r.reason.endswith("does not exist")
        assert not os.path.exists(disk)
    finally:
        h.close()


def test_volumes_a_crash_left_out_of_the_config_become_unused_at_the_next_start():
    """A disk allocated by a task that kill -9 cut short is on the storage but not in the
    config: at the next start it is added as unusedN (as `qm rescan` does), so the user sees
    it and a destroy frees it; an orphaned cloud-init volume (generated data) is freed."""
    h = Hearth().start()
    try:
        h.create_vm(161, memory="128", scsi0="local:1")
        linked_dir = os.path.join(h.dir, "images", "161")
        h.kill9()
        stray = os.path.join(linked_dir, "vm-161-disk-1.qcow2")
        seed = os.path.join(linked_dir, "vm-161-cloudinit.qcow2")
        for path in (stray, seed):
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, "1M"], check=True)
        h.start()
        cfg = h.get(h.vm_path(161) + "/config")
        assert cfg["unused0"] == "local:161/vm-161-disk-1.qcow2"
        assert cfg["scsi0"].startswith("local:161/vm-161-disk-0.qcow2")
        assert not os.path.exists(seed)
        h.wait_task(h.delete(h.vm_path(161)))
        assert not os.path.exists(stray)
    finally:
        h.close()

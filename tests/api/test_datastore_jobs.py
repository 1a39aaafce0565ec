"""Datastore jobs (/cluster/hearth/datastore-jobs, beyond Proxmox VE; the fields are Proxmox
Backup Server's): scheduled verify, garbage collection, offsite sync and prune of the backups
on a storage, against the real daemon. Jobs with a schedule that fires every second really
run as root@pam: verify records its result on the backups and skips them next time
(ignore-verified), sync copies them to a second storage and keeps its retention there."""
import time

import pytest

from harness import Hearth, wait_for

BASE = "/cluster/hearth/datastore-jobs"


@pytest.fixture(scope="module")
def node():
    h = Hearth().start()
    yield h
    h.close()


def error(r):
    return r.status_code, r.json().get("errors") or r.reason


def content(h, storage, vmid):
    return h.get(f"/nodes/{h.node}/storage/{storage}/content", params={"content": "backup", "vmid": vmid})


def finished(h, typ, task_id):
    return [t for t in h.get(f"/nodes/{h.node}/tasks", params={"typefilter": typ, "limit": 200})
            if t["id"] == task_id and t.get("status")]


def test_jobs_crud_and_bad_fields_named(node, tmp_path):
    node.post("/storage", data={"storage": "isos", "type": "dir", "path": str(tmp_path / "isos"), "content": "iso"})
    node.post(BASE, data={"id": "weekly-verify", "type": "verify", "storage": "local", "schedule": "sun 03:00",
                          "outdated-after": 30, "comment": "re-check monthly"})
    [job] = node.get(BASE)
    assert job["id"] == "weekly-verify" and job["type"] == "verify" and job["storage"] == "local"
    assert job["ignore-verified"] == 1 and job["outdated-after"] == 30 and job["enabled"] == 1
    assert job["next-run"] > 0 and "last-upid" not in job
    assert node.get(BASE + "/weekly-verify")["comment"] == "re-check monthly"

    def bad(**data):
        r = node.request("POST", BASE, data={"id": "xx", "schedule": "daily", "storage": "local", **data})
        return error(r)
    assert bad(type="backup")[0] == 400 and "type" in bad(type="backup")[1]
    assert bad(type="sync") == (400, {"target": "property is missing and it is not optional"})
    assert bad(type="sync", target="local") == (400, {"target": "the target must be another storage than 'storage'"})
    assert bad(type="sync", target="nowhere") == (400, {"target": "storage 'nowhere' does not exist"})
    assert bad(type="gc", storage="isos") == (400, {"storage": "storage 'isos' does not support backups"})
    assert bad(type="gc", vmid=100) == (400, {"vmid": "property is not allowed for type 'gc'"})
    assert bad(type="prune") == (400, {"prune-backups": "property is missing and it is not optional"})
    code, errs = bad(type="gc", schedule="someday")
    assert code == 400 and errs["schedule"].startswith("invalid format - invalid calendar event 'someday'")
    r = node.request("POST", BASE, data={"id": "weekly-verify", "type": "gc", "storage": "local", "schedule": "daily"})
    assert r.status_code == 500 and "Job 'weekly-verify' already exists" in r.reason

    node.put(BASE + "/weekly-verify", data={"schedule": "sat 02:00", "delete": "outdated-after,comment"})
    job = node.get(BASE + "/weekly-verify")
    assert job["schedule"] == "sat 02:00" and "outdated-after" not in job and "comment" not in job
    assert error(node.request("PUT", BASE + "/weekly-verify", data={"target": "isos"})) == \
        (400, {"target": "property is not allowed for type 'verify'"})
    assert error(node.request("PUT", BASE + "/weekly-verify", data={"delete": "storage"})) == \
        (400, {"delete": "cannot delete required option 'storage'"})
    assert error(node.request("PUT", BASE + "/nope", data={"enabled": 0}))[1] == {"id": "No such job 'nope'"}

    # A read-only user sees nothing to change.
    node.admin("user", "add", "dsviewer@pve", "--password-stdin", stdin="viewpw1")
    t = node.login("dsviewer@pve", "viewpw1")
    r = node.request("POST", BASE, data={"id": "mine", "type": "gc", "storage": "local", "schedule": "daily"}, auth=t)
    assert r.status_code == 403 and r.reason == "Permission check failed (/, Sys.Modify)"

    node.delete(BASE + "/weekly-verify")
    assert node.get(BASE) == []
    assert error(node.request("DELETE", BASE + "/weekly-verify"))[1] == {"id": "No such job 'weekly-verify'"}
    node.delete("/storage/isos")


def test_scheduled_verify_runs_and_then_skips_what_it_verified(node):
    node.create_vm(740, memory="64", scsi0="local:1")
    node.wait_task(node.post(f"/nodes/{node.node}/vzdump", data={"vmid": 740, "storage": "local"}))
    [b] = content(node, "local", 740)
    assert "verification" not in b
    node.post(BASE, data={"id": "often-verify", "type": "verify", "storage": "local", "vmid": 740,
                          "schedule": "*:*:*"})
    wait_for("two finished verify runs", lambda: len(finished(node, "verify", "740@local")) >= 2, 240, 0.2)
    node.put(BASE + "/often-verify", data={"enabled": 0})
    runs = sorted(finished(node, "verify", "740@local"), key=lambda t: t["starttime"])
    assert all(t["status"] == "OK" and t["user"] == "root@pam" for t in runs), runs
    [b] = content(node, "local", 740)
    assert b["verification"]["state"] == "ok"
    assert b["verification"]["upid"] == runs[0]["upid"]  # later runs did not re-read it
    first, later = "\n".join(node.task_log(runs[0]["upid"])), "\n".join(node.task_log(runs[-1]["upid"]))
    assert "verify datastore 'local': 1 backup(s)" in first, first
    assert "verify datastore 'local': 0 backup(s)" in later and "skipped 1 backup(s) verified recently" in later, later
    assert node.get(BASE + "/often-verify")["last-upid"].startswith("UPID:")

    # The same filter by hand (the CLI's verify verb).
    from test_cli import cli
    r = cli(node, "backup", "verify", "--vmid", "740", "--ignore-verified")
    assert "TASK OK" in r.stderr and "skipped 1 backup(s) verified recently" in r.stderr, r.stderr

    # outdated-after=0: every verification counts as outdated, so "run now" reads it again.
    node.put(BASE + "/often-verify", data={"outdated-after": 0})
    upid = node.post(BASE + "/often-verify/run")
    node.wait_task(upid)
    assert content(node, "local", 740)[0]["verification"]["upid"] == upid
    node.delete(BASE + "/often-verify")


def test_scheduled_sync_copies_offsite_and_keeps_its_retention(node, tmp_path):
    node.post("/storage", data={"storage": "usb", "type": "dir", "path": str(tmp_path / "usb"), "content": "backup"})
    node.create_vm(741, memory="64", scsi0="local:1")
    for notes in ("one", "two"):
        node.wait_task(node.post(f"/nodes/{node.node}/vzdump",
                                 data={"vmid": 741, "storage": "local", "notes-template": notes}))
        time.sleep(1.1)  # backups are named by the second
    node.post(BASE, data={"id": "to-usb", "type": "sync", "storage": "local", "target": "usb", "vmid": 741,
                          "prune-backups": "keep-last=1", "schedule": "*:*:*"})
    wait_for("a finished sync run", lambda: finished(node, "syncjob", "741@usb"), 240, 0.2)
    node.put(BASE + "/to-usb", data={"enabled": 0})
    wait_for("no sync running", lambda: not [t for t in node.get(f"/nodes/{node.node}/tasks",
                                                                   params={"typefilter": "syncjob", "source": "active"})],
             240, 0.5)
    [kept] = content(node, "usb", 741)
    assert kept["notes"] == "two"  # keep-last=1 on the target
    assert len(content(node, "local", 741)) == 2  # the source keeps its own
    assert node.get(BASE + "/to-usb")["prune-backups"] == {"keep-last": 1}
    # The next run does not copy back what the target's retention removed (PBS's pull rule),
    # only to prune it again.
    upid = node.post(BASE + "/to-usb/run")
    node.wait_task(upid)
    log = "\n".join(node.task_log(upid))
    assert "vm/741: skipped: 1 snapshot(s)" in log and "copied 0 backup(s)" in log and "removing" not in log, log
    assert [b["volid"] for b in content(node, "usb", 741)] == [kept["volid"]]

    # Garbage collection of the offsite copy, as a job made and run from the CLI.
    from test_cli import cli
    cli(node, "backup", "datastore-job", "add", "gc-usb", "type=gc", "storage=usb", "schedule=sat 05:00")
    listed = cli(node, "backup", "datastore-job", "list").stdout
    assert "gc-usb" in listed and "to-usb" in listed, listed
    r = cli(node, "backup", "datastore-job", "run", "gc-usb")
    assert "TASK OK" in r.stderr and "removed garbage:" in r.stderr, r.stderr
    r = cli(node, "backup", "datastore-job", "add", "bad", "type=sync", "storage=usb", "schedule=daily", ok=False)
    assert r.returncode != 0 and "target: property is missing" in r.stderr, r.stderr
    cli(node, "backup", "datastore-job", "remove", "gc-usb")
    node.delete(BASE + "/to-usb")


def test_a_scheduled_run_that_cannot_start_shows_as_a_failed_task(node):
    """A drill of a VM with no backup cannot start: on its schedule that is a failed task in
    the task list (and the job's last-upid), not only a line in the daemon's log; by hand the
    caller gets the error naming the field."""
    node.post(BASE, data={"id": "never-drilled", "type": "drill", "storage": "local", "vmid": 749,
                          "marker": "login:", "schedule": "*:*:*"})
    [t] = wait_for("a failed drill run", lambda: finished(node, "restoredrill", "never-drilled")[:1], 120, 0.2)
    node.put(BASE + "/never-drilled", data={"enabled": 0})
    assert t["status"] == "vmid: no backup of VM 749 on storage 'local'" and t["user"] == "root@pam", t
    assert "datastore job 'never-drilled' could not start" in node.task_log(t["upid"])
    assert node.get(BASE + "/never-drilled")["last-upid"].startswith("UPID:")
    r = node.request("POST", BASE + "/never-drilled/run")
    assert error(r) == (400, {"vmid": "no backup of VM 749 on storage 'local'"})
    node.delete(BASE + "/never-drilled")

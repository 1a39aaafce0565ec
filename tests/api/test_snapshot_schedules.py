"""Snapshot schedules (/cluster/hearth/snapshot-schedules): calendar events, retention over
the schedule's own snapshots, tags, and a run missed while the daemon was down caught up
once at start. Runs through the real daemon and its scheduler thread; VMs are stopped, so
qcow2 snapshots are taken by qemu-img."""
import json
import os
import sqlite3
import time

import pytest

from harness import Hearth, wait_for

BASE = "/cluster/hearth/snapshot-schedules"


@pytest.fixture(scope="module")
def h():
    h = Hearth().start()
    yield h
    h.close()


def snapshots(h, vmid):
    return sorted(s["name"] for s in h.get(h.vm_path(vmid) + "/snapshot") if s["name"] != "current")


def auto(h, vmid, sched):
    return [n for n in snapshots(h, vmid) if n.startswith(f"auto-{sched}-")]


def error(r):
    return r.status_code, r.reason, r.json().get("errors") if r.headers.get("content-type", "").startswith(
        "application/json") else None


def runs(h, sched):
    return [t for t in h.get(f"/nodes/{h.node}/tasks", params={"typefilter": "snapsched", "limit": 100})
            if t["id"] == sched]


def ended(t):
    return t.get("status") not in (None, "RUNNING")


def test_bad_input_names_the_field(h):
    r = h.request("POST", BASE, data={"id": "n", "schedule": "xyz", "vmid": "100"})
    assert r.status_code == 400
    assert r.json()["errors"]["schedule"] == ("invalid format - invalid calendar event 'xyz' - unable to parse "
                                              "calendar event at 'xyz' - Context(\"weekday\")")
    r = h.request("POST", BASE, data={"id": "n", "schedule": "daily"})
    assert r.status_code == 400 and "vmid" in r.json()["errors"]
    r = h.request("POST", BASE, data={"id": "n", "schedule": "daily", "tag": "x", "keep-last": -1})
    assert r.status_code == 400 and "keep-last" in r.json()["errors"]
    r = h.request("POST", BASE, data={"id": "Bad", "schedule": "daily", "tag": "x"})
    assert r.status_code == 400 and "id" in r.json()["errors"]
    r = h.request("GET", BASE + "/nope")
    assert (r.status_code, r.reason) == (500, "snapshot schedule 'nope' does not exist")
    assert h.get(BASE) == []


def test_crud_and_next_run(h):
    h.post(BASE, data={"id": "nightly", "schedule": "mon..fri 02:30", "tag": "k8s", "keep-daily": 7,
                       "comment": "before the upgrade window"})
    r = h.request("POST", BASE, data={"id": "nightly", "schedule": "daily", "tag": "x"})
    assert (r.status_code, r.reason) == (500, "snapshot schedule 'nightly' already exists")
    got = h.get(BASE + "/nightly")
    assert got["schedule"] == "mon..fri 02:30" and got["tag"] == "k8s" and got["keep-daily"] == 7
    now = time.time()
    assert now < got["next-run"] <= now + 4 * 86400  # at most a weekend away
    lt = time.localtime(got["next-run"])
    assert (lt.tm_hour, lt.tm_min, lt.tm_wday < 5) == (2, 30, True)
    h.put(BASE + "/nightly", data={"keep-last": 3, "delete": "comment", "enabled": 0})
    got = h.get(BASE + "/nightly")
    assert got["keep-last"] == 3 and got["keep-daily"] == 7 and "comment" not in got
    assert got["enabled"] == 0 and "next-run" not in got  # a disabled schedule never runs
    r = h.request("PUT", BASE + "/nightly", data={"delete": "schedule"})
    assert r.status_code == 400 and r.json()["errors"]["schedule"] == "unable to delete required option 'schedule'"
    h.delete(BASE + "/nightly")
    assert h.get(BASE) == []


def test_scheduler_runs_and_keeps_only_its_own_last_n(h):
    h.create_vm(500, memory="128", scsi0="local:1,format=qcow2", tags="k8s")
    h.create_vm(501, memory="128", scsi0="local:1,format=qcow2")  # not tagged: never touched
    h.wait_task(h.post(h.vm_path(500) + "/snapshot", data={"snapname": "manual"}))
    h.post(BASE, data={"id": "fast", "schedule": "*:*:*/2", "tag": "k8s", "keep-last": 2})
    # Every two seconds a run; retention keeps the newest two of its own snapshots.
    wait_for("four runs of the schedule", lambda: len([t for t in runs(h, "fast") if ended(t)]) >= 4, 120, 0.5)
    h.put(BASE + "/fast", data={"enabled": 0})
    wait_for("the last run to end", lambda: all(ended(t) for t in runs(h, "fast")), 120, 0.5)
    ok = [t for t in runs(h, "fast") if t["status"] == "OK"]
    assert len(ok) >= 3, runs(h, "fast")
    mine = auto(h, 500, "fast")
    assert len(mine) == 2, snapshots(h, 500)
    assert "manual" in snapshots(h, 500)  # a manual snapshot is never pruned
    assert snapshots(h, 501) == []
    log = h.task_log(ok[0]["upid"])
    assert any("snapshot 'auto-fast-" in line and "created" in line for line in log), log
    # The snapshots the schedule kept are real: a rollback to the newest works.
    h.wait_task(h.post(h.vm_path(500) + f"/snapshot/{mine[-1]}/rollback"))
    h.delete(BASE + "/fast")
    for vmid in (500, 501):
        h.wait_task(h.delete(h.vm_path(vmid)))


def test_a_run_missed_while_down_is_caught_up_once(h):
    h.create_vm(510, memory="128", scsi0="local:1,format=qcow2")
    h.post(BASE, data={"id": "daily", "schedule": "daily", "vmid": "510", "keep-last": 5})
    assert auto(h, 510, "daily") == []
    h.stop()
    # The daemon was down for three days: three daily events passed.
    db = sqlite3.connect(os.path.join(h.dir, "hearth.db"))
    (text,) = db.execute("SELECT value FROM meta WHERE key = 'snapshot-schedules'").fetchone()
    doc = json.loads(text)
    doc[0]["last-run"] -= 3 * 86400
    db.execute("UPDATE meta SET value = ? WHERE key = 'snapshot-schedules'", (json.dumps(doc),))
    db.commit()
    db.close()
    h.start()
    wait_for("the catch-up run", lambda: auto(h, 510, "daily"), 60, 0.25)
    wait_for("its task to end", lambda: all(ended(t) for t in runs(h, "daily")), 60, 0.25)
    assert len(runs(h, "daily")) == 1 and len(auto(h, 510, "daily")) == 1
    got = h.get(BASE + "/daily")
    assert got["last-upid"] == runs(h, "daily")[0]["upid"] and got["next-run"] > time.time()
    # Run now (beyond the calendar) adds one each time, even within the same second.
    for _ in range(2):
        h.wait_task(h.post(BASE + "/daily/run"))
    assert len(auto(h, 510, "daily")) == 3
    h.delete(BASE + "/daily")
    h.wait_task(h.delete(h.vm_path(510)))

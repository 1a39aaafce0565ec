"""Backup jobs (/cluster/backup), the guests no job covers (/cluster/backup-info/not-backed-up)
and pruning a storage's backups (GET/DELETE /nodes/{node}/storage/{storage}/prunebackups),
through Proxmox's API against the real daemon: a job with a schedule that fires every few
seconds really runs vzdump as root@pam, and its retention really removes backups."""
import time
import uuid

import pytest

from harness import Hearth, wait_for


@pytest.fixture(scope="module")
def node():
    h = Hearth().start()
    yield h
    h.close()


def error(r):
    return r.status_code, r.json().get("errors") or r.reason


def backups(h, vmid):
    return h.get(f"/nodes/{h.node}/storage/local/content", params={"content": "backup", "vmid": vmid})


def test_jobs_crud_in_proxmoxs_shape(node):
    node.post("/cluster/backup", data={"id": "nightly", "schedule": "02:30", "vmid": "100,101", "storage": "local",
                                       "mode": "snapshot", "prune-backups": "keep-last=3,keep-daily=7",
                                       "comment": "every night", "protected": 0})
    [job] = [j for j in node.get("/cluster/backup") if j["id"] == "nightly"]
    assert job["type"] == "vzdump" and job["schedule"] == "02:30" and job["enabled"] == 1
    assert job["vmid"] == "100,101" and job["storage"] == "local" and job["comment"] == "every night"
    assert job["prune-backups"] == {"keep-last": 3, "keep-daily": 7}
    assert job["protected"] == 0
    # next-run: the next 02:30 from now, in local time (the daemon's zone).
    now = time.time()
    assert now < job["next-run"] <= now + 86400 + 3600
    assert time.localtime(job["next-run"])[3:6] == (2, 30, 0)
    one = node.get("/cluster/backup/nightly")
    assert "next-run" not in one and one["vmid"] == "100,101"

    # Choosing all clears the vmid list; deleting the comment removes it.
    node.put("/cluster/backup/nightly", data={"all": 1, "exclude": "105", "delete": "comment"})
    one = node.get("/cluster/backup/nightly")
    assert one["all"] == 1 and one["exclude"] == "105" and "vmid" not in one and "comment" not in one

    # The deprecated starttime/dow become a schedule; an id is made when none is given.
    node.post("/cluster/backup", data={"starttime": "21:15", "dow": "sat,sun", "all": 1})
    [made] = [j for j in node.get("/cluster/backup") if j["id"] != "nightly"]
    assert made["schedule"] == "sat,sun 21:15"
    uuid.UUID(made["id"])  # Proxmox's generated ids are UUIDs
    node.delete(f"/cluster/backup/{made['id']}")

    # Proxmox's errors.
    r = node.request("POST", "/cluster/backup", data={"id": "nightly", "schedule": "daily", "all": 1})
    assert (r.status_code, r.reason) == (500, "Job 'nightly' already exists")
    assert error(node.request("POST", "/cluster/backup", data={"schedule": "daily", "all": 1, "vmid": 100})) == \
        (400, {"all": "option conflicts with option 'vmid'"})
    assert error(node.request("POST", "/cluster/backup", data={"schedule": "daily"})) == \
        (400, {"vmid": "property is missing"})
    assert error(node.request("POST", "/cluster/backup", data={"all": 1})) == \
        (400, {"schedule": "neither 'starttime' nor 'schedule' were set"})
    assert error(node.request("POST", "/cluster/backup", data={"starttime": "1:00", "schedule": "daily", "all": 1})) == \
        (400, {"starttime": "'starttime' and 'schedule' cannot both be set"})
    r = node.request("POST", "/cluster/backup", data={"schedule": "sometimes", "all": 1})
    assert r.status_code == 400 and r.json()["errors"]["schedule"].startswith("invalid format - invalid calendar event")
    assert error(node.request("GET", "/cluster/backup/nope")) == (400, {"id": "No such job 'nope'"})
    assert error(node.request("DELETE", "/cluster/backup/nope")) == (400, {"id": "No such job 'nope'"})
    assert error(node.request("PUT", "/cluster/backup/nightly", data={"delete": "schedule"})) == \
        (400, {"delete": "unknown option 'schedule'"})
    r = node.request("PUT", "/cluster/backup/nope", data={"all": 1})
    assert (r.status_code, r.reason) == (500, "no such vzdump job")
    # Nothing above changed the job.
    assert node.get("/cluster/backup/nightly")["all"] == 1
    node.delete("/cluster/backup/nightly")
    assert node.get("/cluster/backup") == []


def test_not_backed_up_and_included_volumes(node):
    for vmid, name in ((700, "db"), (701, "scratch"), (702, "web")):
        node.create_vm(vmid, name=name, memory="64", scsi0="local:1", scsi1="local:1,backup=0")
    node.post("/cluster/backup", data={"id": "db", "schedule": "daily", "vmid": 700})
    gaps = {g["vmid"]: g for g in node.get("/cluster/backup-info/not-backed-up")}
    assert {701, 702} <= set(gaps) and 700 not in gaps
    assert gaps[701] == {"vmid": 701, "type": "qemu", "name": "scratch"}
    # A disabled job still counts (Proxmox); all-but-excluded covers the rest but 701.
    node.post("/cluster/backup", data={"id": "rest", "schedule": "daily", "exclude": "701", "enabled": 0})
    gaps = [g["vmid"] for g in node.get("/cluster/backup-info/not-backed-up")]
    assert 701 in gaps and 702 not in gaps and 700 not in gaps
    # A job for another node covers nothing here.
    node.put("/cluster/backup/db", data={"node": "elsewhere"})
    assert 700 not in [g["vmid"] for g in node.get("/cluster/backup-info/not-backed-up")]  # "rest" covers it
    node.delete("/cluster/backup/rest")
    assert 700 in [g["vmid"] for g in node.get("/cluster/backup-info/not-backed-up")]
    node.put("/cluster/backup/db", data={"delete": "node"})

    tree = node.get("/cluster/backup/db/included_volumes")["children"]
    assert [g["id"] for g in tree] == [700]
    disks = {d["id"]: d for d in tree[0]["children"]}
    assert tree[0]["name"] == "db" and tree[0]["type"] == "qemu"
    assert disks["700:scsi0"]["included"] is True and disks["700:scsi0"]["name"].startswith("local:700/")
    assert disks["700:scsi1"]["included"] is False and disks["700:scsi1"]["reason"] == "backup=no"
    node.delete("/cluster/backup/db")

    # A VM destroyed with purge=1 leaves the jobs; a job left without guests goes.
    node.post("/cluster/backup", data={"id": "pair", "schedule": "daily", "vmid": "700,702"})
    node.post("/cluster/backup", data={"id": "solo", "schedule": "daily", "vmid": "702"})
    node.post("/cluster/backup", data={"id": "most", "schedule": "daily", "exclude": "701,702"})
    upid = node.delete(node.vm_path(702), params={"purge": 1})
    node.wait_task(upid)
    assert "removed VM 702 from backup jobs" in node.task_log(upid)
    jobs = {j["id"]: j for j in node.get("/cluster/backup")}
    assert jobs["pair"]["vmid"] == "700" and "solo" not in jobs and jobs["most"]["exclude"] == "701"
    for j in ("pair", "most"):
        node.delete(f"/cluster/backup/{j}")
    # requires => storage, as for vzdump.
    assert error(node.request("POST", "/cluster/backup", data={"schedule": "daily", "all": 1, "protected": 1})) == \
        (400, {"storage": "missing property required by 'protected'"})


def test_a_scheduled_job_runs_vzdump_and_keeps_its_retention(node):
    node.create_vm(710, name="nightly", memory="64", scsi0="local:1")
    # Every second: the scheduler really has to fire it (twice, for the retention), and never
    # starts a run while the last one still goes (no pile of tasks waiting for the VM).
    node.post("/cluster/backup", data={"id": "often", "schedule": "*:*:*", "vmid": 710, "storage": "local",
                                       "prune-backups": "keep-last=1", "notes-template": "{{guestname}} by job"})
    most_at_once = [0]

    def runs():
        active = node.get(f"/nodes/{node.node}/tasks", params={"typefilter": "vzdump", "source": "active"})
        most_at_once[0] = max(most_at_once[0], len([t for t in active if t["id"] == "710"]))
        return [t for t in node.get(f"/nodes/{node.node}/tasks", params={"typefilter": "vzdump", "limit": 100})
                if t["id"] == "710" and t.get("status") == "OK"]

    wait_for("two finished runs of the job", lambda: len(runs()) >= 2, 240, 0.2)
    assert most_at_once[0] <= 1, most_at_once
    node.put("/cluster/backup/often", data={"enabled": 0})
    upid = runs()[0]["upid"]
    assert upid.split(":")[7] == "root@pam"
    log = "\n".join(node.task_log(upid))
    assert "--job-id often" in log and "--quiet 1" in log, log
    assert "INFO: prune older backups with retention: keep-last=1" in log
    # Let a run that had begun before the job was disabled finish; then one backup is left.
    wait_for("the last run to end", lambda: not [t for t in node.get(f"/nodes/{node.node}/tasks",
                                                                    params={"typefilter": "vzdump", "source": "active"})],
             240, 0.5)
    [b] = backups(node, 710)
    assert b["notes"] == "nightly by job"

    # "Run now" (hearth): one more backup, as the job would make it.
    upid = node.post("/cluster/backup/often/run")
    node.wait_task(upid, timeout=300)
    assert len(backups(node, 710)) == 1  # keep-last=1 again
    node.delete("/cluster/backup/often")


def test_prunebackups_preview_and_task(node):
    node.create_vm(720, memory="64", scsi0="local:1")
    for _ in range(3):
        upid = node.post(f"/nodes/{node.node}/vzdump", data={"vmid": 720, "storage": "local"})
        node.wait_task(upid, timeout=300)
        time.sleep(1.1)  # backups are named by the second
    volids = [b["volid"] for b in sorted(backups(node, 720), key=lambda b: b["ctime"])]
    assert len(volids) == 3
    node.put(f"/nodes/{node.node}/storage/local/content/{volids[0]}", data={"protected": 1})

    url = f"/nodes/{node.node}/storage/local/prunebackups"
    preview = node.get(url, params={"prune-backups": "keep-last=1", "vmid": 720})
    marks = {p["volid"]: p["mark"] for p in preview}
    assert marks == {volids[0]: "protected", volids[1]: "remove", volids[2]: "keep"}
    assert all(p["type"] == "qemu" and p["vmid"] == 720 and p["ctime"] > 0 for p in preview)
    assert node.get(url, params={"prune-backups": "keep-last=1", "type": "lxc"}) == []

    # Without a retention, the storage's own is used; `local` has none: Proxmox's error.
    r = node.request("GET", url, params={"vmid": 720})
    assert (r.status_code, r.reason) == (500, "no prune-backups options configured for storage 'local'")
    r = node.request("GET", url, params={"prune-backups": "keep-all=1,keep-last=1"})
    assert r.status_code == 400 and "keep-all cannot be set together" in r.json()["errors"]["prune-backups"]

    upid = node.delete(url, params={"prune-backups": "keep-last=1", "vmid": 720})
    st = node.wait_task(upid)
    assert st["type"] == "prunebackups" and st["id"] == "720@local"
    assert f"removing backup '{volids[1]}'" in node.task_log(upid)
    assert sorted(b["volid"] for b in backups(node, 720)) == sorted([volids[0], volids[2]])


def test_cli_backup_verbs(node):
    from test_cli import cli
    node.create_vm(730, name="clivm", memory="64", scsi0="local:1")
    r = cli(node, "backup", "now", "730", "--set", "notes-template={{guestname}} by cli")
    assert "TASK OK" in r.stderr and "INFO: Backup job finished successfully" in r.stderr
    listed = cli(node, "backup", "list", "--vmid", "730").stdout
    assert "local:backup/vm/730/" in listed and "clivm by cli" in listed
    [b] = backups(node, 730)
    cli(node, "backup", "set", b["volid"], "protected=1")
    assert backups(node, 730)[0]["protected"] == 1
    r = cli(node, "backup", "remove", b["volid"], ok=False)
    assert r.returncode != 0 and "cannot remove protected volume" in r.stderr
    dry = cli(node, "backup", "prune", "keep-last=1", "--vmid", "730", "--dry-run").stdout
    assert b["volid"] in dry and "protected" in dry

    assert "TASK OK" in cli(node, "backup", "restore", b["volid"], "731", "--unique").stderr
    assert node.get(node.vm_path(731) + "/config")["name"] == "clivm"

    cli(node, "backup", "job", "add", "clijob", "schedule=sat 03:00", "vmid=730", "prune-backups=keep-last=2")
    assert "clijob" in cli(node, "backup", "job", "list").stdout
    assert "730" not in [l.split()[0] for l in cli(node, "backup", "not-backed-up").stdout.splitlines()[1:]]
    r = cli(node, "backup", "job", "run", "clijob")
    assert "TASK OK" in r.stderr and "--job-id clijob" in r.stderr
    cli(node, "backup", "job", "set", "clijob", "enabled=0")
    assert "enabled: 0" in cli(node, "backup", "job", "show", "clijob").stdout
    cli(node, "backup", "job", "remove", "clijob")
    r = cli(node, "backup", "job", "show", "clijob", ok=False)
    assert r.returncode != 0 and "No such job 'clijob'" in r.stderr


def test_schedule_analyze(node):
    got = node.get("/cluster/jobs/schedule-analyze", params={"schedule": "sat 03:00 UTC", "starttime": 1700000000,
                                                               "iterations": 2})
    assert got == [{"timestamp": 1700276400, "utc": "Sat Nov 18 03:00:00 2023"},
                   {"timestamp": 1700881200, "utc": "Sat Nov 25 03:00:00 2023"}]
    assert len(node.get("/cluster/jobs/schedule-analyze", params={"schedule": "hourly"})) == 10
    r = node.request("GET", "/cluster/jobs/schedule-analyze", params={"schedule": "whenever"})
    assert r.status_code == 400 and "invalid calendar event" in r.json()["errors"]["schedule"]

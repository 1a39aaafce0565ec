"""Backups through Proxmox's API (POST /nodes/{node}/vzdump, the storage's backup content,
restore by POST /nodes/{node}/qemu archive=...): a VM's disk written with known data is
backed up into `local`'s datastore, changed, backed up again (only the changed chunks are
new), pruned, protected, and restored into a new VM whose disk is byte-identical to the
first backup's. The guest here is only firmware: backups read disks, not the guest."""
import subprocess
import time

import pytest

from harness import Hearth, disk_volid, upload, volume_path


@pytest.fixture(scope="module")
def node():
    h = Hearth().start()
    yield h
    h.close()


def qemu_io(path, cmd):
    r = subprocess.run(["qemu-io", "-f", "qcow2", "-c", cmd, path], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def backups(h, vmid=None):
    params = {"content": "backup"} | ({"vmid": vmid} if vmid else {})
    return h.get(f"/nodes/{h.node}/storage/local/content", params=params)


def vzdump(h, ok=True, **params):
    upid = h.post(f"/nodes/{h.node}/vzdump", data=params)
    st = h.wait_task(upid, timeout=300, ok=ok)
    return st, "\n".join(h.task_log(upid))


def error(r):
    return r.status_code, r.json().get("errors") or r.reason


def test_backup_changes_prune_protect_and_restore_byte_identical(node, tmp_path):
    node.create_vm(600, name="web1", memory="64", scsi0="local:1")
    disk = volume_path(node, disk_volid(node, 600))
    qemu_io(disk, "write -P 0x41 0 8M")
    qemu_io(disk, "write -P 0x42 512M 4M")
    first_state = str(tmp_path / "first.raw")
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", disk, first_state], check=True)

    st, log = vzdump(node, vmid=600, storage="local", **{"notes-template": "{{guestname}} nightly"})
    assert "INFO: Starting Backup of VM 600 (qemu)" in log
    assert "INFO: status = stopped" in log and "INFO: backup mode: stop" in log
    assert "INFO: include disk 'scsi0' 'local:600/vm-600-disk-0.qcow2' 1G" in log, log
    assert "INFO: Backup job finished successfully" in log
    assert st["type"] == "vzdump" and st["id"] == "600"
    [b1] = backups(node, 600)
    assert b1["volid"].startswith("local:backup/vm/600/") and b1["volid"].endswith("Z")
    assert (b1["format"], b1["subtype"], b1["vmid"], b1["size"], b1["content"]) == \
        ("pbs-vm", "qemu", 600, 1 << 30, "backup")
    assert b1["notes"] == "web1 nightly"

    # A second backup after changing one chunk stores only that chunk.
    qemu_io(disk, "write -P 0x43 100M 64k")
    time.sleep(1.1)  # backups are named by the second
    _, log2 = vzdump(node, vmid=600, storage="local")
    assert "in 256 chunks, 1 new" in log2, log2
    assert len(backups(node, 600)) == 2

    # Protected backups are not deleted, by hand or by pruning.
    vol = f"/nodes/{node.node}/storage/local/content/{b1['volid']}"
    node.put(vol, data={"protected": 1, "notes": "before the upgrade\nsecond line"})
    assert [b for b in backups(node, 600) if b["volid"] == b1["volid"]][0]["protected"] == 1
    assert [b for b in backups(node, 600) if b["volid"] == b1["volid"]][0]["notes"] == "before the upgrade"
    r = node.request("DELETE", vol, params={"delay": 10})
    assert r.status_code == 500 and "cannot remove protected volume" in r.reason, r.reason
    time.sleep(1.1)
    _, log3 = vzdump(node, vmid=600, storage="local", **{"prune-backups": "keep-last=1"})
    assert "INFO: prune older backups with retention: keep-last=1" in log3
    assert "INFO: pruned 1 backup(s) not covered by keep-retention policy" in log3, log3
    left = backups(node, 600)
    assert len(left) == 2 and b1["volid"] in [b["volid"] for b in left]  # the protected one and the newest

    # Restore the first backup into a new VM: same config, new volume, same bytes.
    upid = node.post(f"/nodes/{node.node}/qemu", data={"vmid": 601, "archive": b1["volid"]})
    node.wait_task(upid, timeout=300)
    assert node.task_status(upid)["type"] == "qmrestore"
    cfg = node.get(node.vm_path(601) + "/config")
    assert cfg["name"] == "web1" and cfg["memory"] == "64"
    restored = disk_volid(node, 601)
    assert restored == "local:601/vm-601-disk-0.qcow2"
    r = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "raw", volume_path(node, restored), first_state],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # Into an existing VM: refused with Proxmox's words, nothing changed.
    r = node.request("POST", f"/nodes/{node.node}/qemu", data={"vmid": 601, "archive": b1["volid"]})
    assert r.status_code == 500 and r.reason == f"unable to restore VM 601 - VM 601 already exists on node '{node.node}'"

    # The config a backup holds, for the restore dialog.
    conf = node.get(f"/nodes/{node.node}/vzdump/extractconfig", params={"volume": b1["volid"]})
    assert "name: web1" in conf and "lock" not in conf
    # A backup's volname works as well as its volid; another storage's volid is refused.
    volname = b1["volid"].split(":", 1)[1]
    assert node.get(f"/nodes/{node.node}/storage/local/content/{volname}")["protected"] == 1
    node.post("/storage", data={"storage": "second", "type": "dir", "path": str(tmp_path / "second"),
                                "content": "backup"})
    r = node.request("DELETE", f"/nodes/{node.node}/storage/second/content/{b1['volid']}")
    assert error(r) == (400, {"volume": "storage ID mismatch (local != second)"})
    # Disks never land on a storage without `images`.
    r = node.request("POST", f"/nodes/{node.node}/qemu", data={"vmid": 602, "archive": b1["volid"], "storage": "second"})
    st = node.wait_task(r.json()["data"], ok=False)
    assert st["exitstatus"] == "Content type 'images' is not available on storage 'second'"
    assert 602 not in [v["vmid"] for v in node.get(f"/nodes/{node.node}/qemu")]

    node.put(vol, data={"protected": 0})
    assert node.delete(vol, params={"delay": 10}) is None  # the imgdel task ended within the delay
    assert b1["volid"] not in [b["volid"] for b in backups(node, 600)]

    # remove=0: the retention is a limit.
    st, log = vzdump(node, ok=False, vmid=600, storage="local", remove=0, **{"prune-backups": "keep-last=1"})
    assert st["exitstatus"] == "job errors"
    assert "There is a max backup limit of 1 enforced by the target storage" in log, log


def test_notes_escapes_and_a_template_comes_back_a_template(node):
    node.create_vm(620, name="tmpl", memory="64", scsi0="local:1")
    node.post(node.vm_path(620) + "/template")
    _, log = vzdump(node, vmid=620, storage="local", **{"notes-template": "a\\\\b\\nline2 {{vmid}} {{guestname}}"})
    [b] = backups(node, 620)
    got = node.get(f"/nodes/{node.node}/storage/local/content/{b['volid']}")
    assert got["notes"] == "a\\b\nline2 620 tmpl", got
    upid = node.post(f"/nodes/{node.node}/qemu", data={"vmid": 621, "archive": b["volid"]})
    node.wait_task(upid, timeout=300)
    cfg = node.get(node.vm_path(621) + "/config")
    assert cfg["template"] == 1 and cfg["scsi0"].startswith("local:621/base-621-disk-0.qcow2"), cfg
    upid = node.post(node.vm_path(621) + "/clone", data={"newid": 622})
    node.wait_task(upid)


def test_a_running_vm_is_paused_for_the_read_in_suspend_mode_and_runs_on(node):
    node.create_vm(610, memory="64", scsi0="local:1")
    node.vm_action(610, "start")
    # Paused by its user: read as it is, and left paused.
    node.vm_action(610, "suspend")
    st, log = vzdump(node, ok=False, vmid=610, storage="local", mode="suspend")
    assert st["exitstatus"] == "OK", log
    assert "the guest is paused already" in log and "resuming guest" not in log
    assert node.get(node.vm_path(610) + "/status/current")["qmpstatus"] == "paused"
    node.vm_action(610, "resume")
    st, log = vzdump(node, ok=False, vmid=610, storage="local", mode="suspend")
    assert st["exitstatus"] == "OK", st["exitstatus"] + "\n" + log
    assert "INFO: status = running" in log and "INFO: backup mode: suspend" in log
    assert "INFO: suspending guest" in log and "INFO: resuming guest" in log
    status = node.get(node.vm_path(610) + "/status/current")
    assert (status["status"], status["qmpstatus"]) == ("running", "running")
    assert len(backups(node, 610)) == 2
    assert "lock" not in node.get(node.vm_path(610) + "/config")
    node.vm_action(610, "stop")


def test_bad_requests_and_a_missing_vm(node):
    url = f"/nodes/{node.node}/vzdump"
    assert error(node.request("POST", url, data={"all": 1, "vmid": 100})) == \
        (400, {"all": "option conflicts with option 'vmid'"})
    assert error(node.request("POST", url, data={})) == (400, {"vmid": "property is missing"})
    assert error(node.request("POST", url, data={"vmid": 100, "notes-template": "x"})) == \
        (400, {"storage": "missing property required by 'notes-template'"})
    r = node.request("POST", url, data={"vmid": 100, "storage": "local", "notes-template": "{{bogus}}"})
    assert r.status_code == 400 and "found unknown: variable 'bogus' at char 4" in r.json()["errors"]["notes-template"]
    r = node.request("POST", url, data={"vmid": 100, "storage": "local", "prune-backups": "keep-all=1,keep-last=2"})
    assert r.status_code == 400 and "keep-all cannot be set together with other options." in r.json()["errors"]["prune-backups"]
    st, log = vzdump(node, ok=False, vmid=999, storage="local")
    assert st["exitstatus"] == "job errors"
    assert "ERROR: Backup of VM 999 failed - unable to find VM '999'" in log
    assert "INFO: Backup job finished with errors" in log


def test_verify_names_a_damaged_chunk_and_gc_keeps_what_backups_use(node, tmp_path):
    import glob
    import os
    node.create_vm(630, memory="64", scsi0="local:1")
    disk = volume_path(node, disk_volid(node, 630))
    qemu_io(disk, "write -P 0x51 0 4M")
    vzdump(node, vmid=630, storage="local")
    qemu_io(disk, "write -P 0x52 8M 4M")  # a chunk only the second backup has
    time.sleep(1.1)
    vzdump(node, vmid=630, storage="local")
    first, second = sorted(backups(node, 630), key=lambda b: b["ctime"])
    url = f"/nodes/{node.node}/storage/local/hearth"

    upid = node.post(url + "/verify", data={"vmid": 630})
    node.wait_task(upid)
    assert all(b["verification"]["state"] == "ok" for b in backups(node, 630))

    # Damage one byte of the chunk holding 0x51 (only the first 4 MiB of the disk).
    import hashlib
    root = node.get("/storage/local")["path"] + "/dump/.chunks"
    want = hashlib.sha256(b"\x51" * (4 << 20)).hexdigest()
    [chunk] = glob.glob(f"{root}/*/{want}")
    with open(chunk, "r+b") as f:
        f.seek(os.path.getsize(chunk) // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))
    upid = node.post(url + "/verify", data={"volume": first["volid"]})
    st = node.wait_task(upid, ok=False)
    assert st["exitstatus"] == "verification failed - please check the log for details"
    log = "\n".join(node.task_log(upid))
    assert f"ERROR: {first['volid']}: drive-scsi0 (chunk 0): chunk {want} is corrupt" in log, log
    assert [b for b in backups(node, 630) if b["volid"] == first["volid"]][0]["verification"]["state"] == "failed"
    # A restore of it fails naming the chunk, and leaves no VM behind.
    r = node.request("POST", f"/nodes/{node.node}/qemu", data={"vmid": 632, "archive": first["volid"]})
    st = node.wait_task(r.json()["data"], ok=False)
    assert want in st["exitstatus"], st["exitstatus"]
    assert 632 not in [v["vmid"] for v in node.get(f"/nodes/{node.node}/qemu")]
    # The damaged chunk is set aside (a later backup of the same data writes it anew).
    assert not os.path.exists(chunk) and glob.glob(chunk + "*.bad") + glob.glob(chunk + ".bad"), os.listdir(os.path.dirname(chunk))

    # GC: with every chunk past the grace period, only the ones no backup uses go.
    node.wait_task(node.delete(f"/nodes/{node.node}/storage/local/content/{second['volid']}"))
    node.wait_task(node.delete(f"/nodes/{node.node}/storage/local/content/{first['volid']}"))
    for p in glob.glob(root + "/*/*"):
        os.utime(p, (time.time() - 3 * 86400, time.time() - 3 * 86400))
    before = len(glob.glob(root + "/*/*"))
    left = [b for b in backups(node) if b["vmid"] != 630]
    upid = node.post(url + "/gc")
    node.wait_task(upid)
    log = "\n".join(node.task_log(upid))
    assert "removed garbage:" in log
    assert len(glob.glob(root + "/*/*")) < before
    # Every backup still there verifies.
    if left:
        node.wait_task(node.post(url + "/verify"))


def test_force_restore_overwrites_a_vm_and_keeps_what_the_backup_lacks(node, tmp_path):
    node.create_vm(640, name="db", memory="64", scsi0="local:1", scsi1="local:1,backup=0")
    disk = volume_path(node, disk_volid(node, 640))
    qemu_io(disk, "write -P 0x61 0 4M")
    backed_up = str(tmp_path / "backed-up.raw")
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", disk, backed_up], check=True)
    vzdump(node, vmid=640, storage="local")
    [b] = backups(node, 640)
    old_scsi0, old_scsi1 = disk_volid(node, 640), disk_volid(node, 640, "scsi1")
    qemu_io(disk, "write -P 0x62 0 4M")  # a change the restore must undo
    node.wait_task(node.post(node.vm_path(640) + "/snapshot", data={"snapname": "before"}))

    url = f"/nodes/{node.node}/qemu"
    r = node.request("POST", url, data={"vmid": 640, "archive": b["volid"]})
    assert (r.status_code, r.reason) == (500, f"unable to restore VM 640 - VM 640 already exists on node '{node.node}'")
    node.put(node.vm_path(640) + "/config", data={"protection": 1})
    r = node.request("POST", url, data={"vmid": 640, "archive": b["volid"], "force": 1})
    assert (r.status_code, r.reason) == (500, "unable to restore VM 640 - protection mode enabled")
    node.put(node.vm_path(640) + "/config", data={"delete": "protection"})

    upid = node.post(url, data={"vmid": 640, "archive": b["volid"], "force": 1})
    node.wait_task(upid, timeout=300)
    log = "\n".join(node.task_log(upid))
    assert f"freed the old volume '{old_scsi0}'" in log, log
    cfg = node.get(node.vm_path(640) + "/config")
    assert "lock" not in cfg and cfg["name"] == "db"
    new_scsi0 = disk_volid(node, 640)
    assert new_scsi0 != old_scsi0
    assert cfg["unused0"] == old_scsi1 and "scsi1" not in cfg  # not in the backup: kept, unused
    assert [s["name"] for s in node.get(node.vm_path(640) + "/snapshot")] == ["current"]  # the old ones are gone
    r = node.request("GET", f"/nodes/{node.node}/storage/local/content/{old_scsi0}")
    assert r.status_code == 500  # freed
    r = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "raw", volume_path(node, new_scsi0), backed_up],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_sync_offsite_copies_only_what_is_missing_and_restores_without_the_original(node, tmp_path):
    import glob
    import os
    from test_cli import cli
    node.post("/storage", data={"storage": "nas", "type": "dir", "path": str(tmp_path / "nas"), "content": "backup"})
    node.create_vm(650, name="offsite", memory="64", scsi0="local:1")
    disk = volume_path(node, disk_volid(node, 650))
    qemu_io(disk, "write -P 0x71 0 4M")
    vzdump(node, vmid=650, storage="local")
    qemu_io(disk, "write -P 0x72 12M 4M")
    time.sleep(1.1)
    vzdump(node, vmid=650, storage="local", **{"notes-template": "second"})
    newest = max(backups(node, 650), key=lambda b: b["ctime"])
    reference = str(tmp_path / "newest.raw")
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", disk, reference], check=True)

    url = f"/nodes/{node.node}/storage/local/hearth/sync"
    upid = node.post(url, data={"target": "nas", "vmid": 650})
    st = node.wait_task(upid)
    assert (st["type"], st["id"]) == ("syncjob", "650@nas")
    log = "\n".join(node.task_log(upid))
    assert "copied 2 backup(s), 0 already there" in log, log
    copied = node.get(f"/nodes/{node.node}/storage/nas/content", params={"content": "backup", "vmid": 650})
    assert sorted(b["ctime"] for b in copied) == sorted(b["ctime"] for b in backups(node, 650))
    assert [b["notes"] for b in copied if b["ctime"] == newest["ctime"]] == ["second"]
    # Again: nothing to copy (the CLI verb, following the task).
    r = cli(node, "backup", "sync", "nas", "--vmid", "650", "--prune", "keep-last=1")
    assert "copied 0 backup(s), 2 already there; 0 chunk(s) copied" in r.stderr, r.stderr
    [kept] = node.get(f"/nodes/{node.node}/storage/nas/content", params={"content": "backup", "vmid": 650})
    assert kept["ctime"] == newest["ctime"]  # the target's own retention

    # The original gone (backups deleted, their chunks collected): the offsite copy restores.
    for b in backups(node, 650):
        node.wait_task(node.delete(f"/nodes/{node.node}/storage/local/content/{b['volid']}"))
    root = node.get("/storage/local")["path"] + "/dump/.chunks"
    for p in glob.glob(root + "/*/*"):
        os.utime(p, (time.time() - 3 * 86400, time.time() - 3 * 86400))
    node.wait_task(node.post(f"/nodes/{node.node}/storage/local/hearth/gc"))
    upid = node.post(f"/nodes/{node.node}/qemu", data={"vmid": 651, "archive": kept["volid"]})
    node.wait_task(upid, timeout=300)
    r = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "raw", volume_path(node, disk_volid(node, 651)),
                        reference], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = node.request("POST", url, data={"target": "local"})
    assert r.status_code == 400 and r.json()["errors"]["target"].startswith("the target must be another storage")


def test_restore_with_config_overrides(node, tmp_path):
    """qemu-server's override_conf: the call's own config keys are set on the restored config,
    a NIC without a MAC gets one, a disk is refused; a CD-ROM, not backed up, is kept as it was."""
    (tmp_path / "660.iso").write_bytes(b"\0" * 65536)
    node.wait_task(upload(node, tmp_path / "660.iso", "660.iso").json()["data"])
    node.create_vm(660, name="orig", memory="64", cores="1", scsi0="local:1", ide2="local:iso/660.iso,media=cdrom",
                   ide0="local:cloudinit")
    vzdump(node, vmid=660, storage="local")
    [b] = backups(node, 660)
    upid = node.post(f"/nodes/{node.node}/qemu", data={"vmid": 661, "archive": b["volid"], "name": "copy",
                                                        "cores": 2, "net1": "virtio"})
    node.wait_task(upid, timeout=300)
    assert "set from the restore call: cores, name, net1" in node.task_log(upid)
    cfg = node.get(node.vm_path(661) + "/config")
    assert (cfg["name"], cfg["cores"]) == ("copy", 2)
    assert cfg["net1"].startswith("virtio=") and len(cfg["net1"].split(",")[0]) == len("virtio=") + 17
    assert cfg["scsi0"].startswith("local:661/") and cfg["ide2"].startswith("local:iso/660.iso,")
    assert cfg["ide0"].startswith("local:661/vm-661-cloudinit"), cfg  # its own, made anew
    r = node.request("POST", f"/nodes/{node.node}/qemu", data={"vmid": 662, "archive": b["volid"], "scsi1": "local:1"})
    assert error(r) == (400, {"scsi1": "option conflicts with option 'archive'"})
    assert node.request("GET", node.vm_path(662) + "/config").status_code != 200


def test_only_root_restores_a_backup_whose_config_reaches_the_host(node):
    """Beyond Proxmox: a backup is a file whoever holds the store can write, so a config that
    only root@pam may set (args, hookscript, host devices) is restored only by root@pam."""
    node.create_vm(670, auth="root", name="hosty", memory="64", scsi0="local:1", args="-no-reboot")
    vzdump(node, vmid=670, storage="local")
    [b] = backups(node, 670)
    upid = node.post(f"/nodes/{node.node}/qemu", data={"vmid": 671, "archive": b["volid"]})
    st = node.wait_task(upid, timeout=300, ok=False)
    assert st["exitstatus"] == "only root can restore a backup with 'args' config (it reaches the host)", st
    assert node.request("GET", node.vm_path(671) + "/config").status_code != 200
    upid = node.call("POST", f"/nodes/{node.node}/qemu", data={"vmid": 671, "archive": b["volid"]}, auth="root")
    node.wait_task(upid, timeout=300)
    assert node.get(node.vm_path(671) + "/config")["args"] == "-no-reboot"

"""Storage configuration through Proxmox's API: /storage, /nodes/{node}/storage, with real
directories, a real upload and a real disk on a new storage, and a restart."""
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

from harness import BtrfsLoop, Hearth, upload


@pytest.fixture(scope="module")
def node():
    h = Hearth().start()
    yield h
    h.close()


@pytest.fixture
def place():
    d = tempfile.mkdtemp(prefix="hearth-storage-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def error(r):
    return r.status_code, r.reason


def by_id(entries):
    return {e["storage"]: e for e in entries}


def test_local_is_a_stored_dir_storage_at_the_data_dir(node):
    entries = by_id(node.get("/storage"))
    local = entries["local"]
    assert local["type"] == "dir" and local["path"] == node.dir
    assert local["content"] == "backup,images,import,iso,snippets,vztmpl"
    assert len(local["digest"]) == 40
    assert node.get("/storage", params={"type": "dir"})[0]["storage"] == "local"
    assert node.get("/storage", params={"type": "nfs"}) == []
    assert node.get("/storage/local")["path"] == node.dir


def test_a_new_dir_storage_holds_uploads_and_disks_and_survives_a_restart(node, place):
    path = os.path.join(place, "tank")
    assert node.post("/storage", data={"storage": "tank", "type": "dir", "path": path + "/",
                                       "content": "images,iso"}) == {"storage": "tank", "type": "dir"}
    # Activation made the directories of Proxmox's layout.
    assert os.path.isdir(os.path.join(path, "images")) and os.path.isdir(os.path.join(path, "template", "iso"))
    cfg = node.get("/storage/tank")
    assert cfg["path"] == path and cfg["content"] == "images,iso" and "shared" not in cfg
    listed = by_id(node.get(f"/nodes/{node.node}/storage"))["tank"]
    assert listed["active"] == 1 and listed["enabled"] == 1 and listed["total"] > 0 and 0 <= listed["used_fraction"] <= 1

    iso = os.path.join(place, "x.iso")
    with open(iso, "wb") as f:
        f.write(os.urandom(1 << 20))
    node.wait_task(upload(node, iso, "x.iso", storage="tank").json()["data"])
    assert os.path.getsize(os.path.join(path, "template", "iso", "x.iso")) == 1 << 20
    vols = node.get(f"/nodes/{node.node}/storage/tank/content", params={"content": "iso"})
    assert [v["volid"] for v in vols] == ["tank:iso/x.iso"]

    node.create_vm(310, memory="128", scsi0="tank:1", ide2="tank:iso/x.iso,media=cdrom")
    assert node.get(node.vm_path(310) + "/config")["scsi0"].startswith("tank:310/vm-310-disk-0.qcow2")
    assert os.path.exists(os.path.join(path, "images", "310", "vm-310-disk-0.qcow2"))
    # Thin provisioning is visible: what the images may grow to, beside what they use.
    node.wait_task(node.post(node.vm_path(310) + "/config", data={"scsi1": "tank:64"}))
    status = node.get(f"/nodes/{node.node}/storage/tank/status")
    assert status["provisioned"] == 65 << 30 and status["used"] < status["provisioned"]

    node.stop()
    node.start()
    assert by_id(node.get("/storage"))["tank"]["path"] == path
    assert [v["volid"] for v in node.get(f"/nodes/{node.node}/storage/tank/content", params={"content": "images"})] \
        == ["tank:310/vm-310-disk-0.qcow2", "tank:310/vm-310-disk-1.qcow2"]
    node.wait_task(node.delete(node.vm_path(310)))
    assert not os.path.exists(os.path.join(path, "images", "310"))
    assert node.delete("/storage/tank") is None


def test_bad_requests_get_proxmoxs_errors_and_store_nothing(node, place):
    digest = node.get("/storage")[0]["digest"]
    r = node.request("POST", "/storage", data={"storage": "1bad", "type": "dir", "path": place})
    assert r.status_code == 400
    assert r.json()["errors"]["storage"] == "invalid format - storage ID '1bad' contains illegal characters"
    r = node.request("POST", "/storage", data={"storage": "x1", "type": "cephfs", "path": place})
    assert r.status_code == 400 and "enumeration" in r.json()["errors"]["type"]
    r = node.request("POST", "/storage", data={"storage": "x1", "type": "dir", "path": "relative"})
    assert r.status_code == 400
    assert r.json()["errors"]["path"] == "invalid format - value does not look like a valid absolute path"
    assert error(node.request("POST", "/storage", data={"storage": "local", "type": "dir", "path": place})) == \
        (500, "create storage failed: storage ID 'local' already defined")
    assert error(node.request("POST", "/storage", data={"storage": "x1", "type": "dir", "path": place,
                                                          "server": "10.0.0.1"})) == \
        (500, "unexpected property 'server'")
    missing = os.path.join(place, "not-here")
    assert error(node.request("POST", "/storage", data={"storage": "x1", "type": "dir", "path": missing,
                                                          "create-base-path": 0})) == \
        (500, f"create storage failed: unable to activate storage 'x1' - directory '{missing}' does not exist "
              "or is unreachable")
    # nfs: no NFS server answers on this loopback (showmount fails or is not installed).
    assert error(node.request("POST", "/storage", data={"storage": "x1", "type": "nfs", "server": "127.0.0.1",
                                                          "export": "/srv", "path": os.path.join(place, "nas")})) == \
        (500, "create storage failed: storage 'x1' is not online")
    # lvmthin has a driver; without device-mapper (and this volume group) activation fails.
    status, reason = error(node.request("POST", "/storage", data={"storage": "x1", "type": "lvmthin", "vgname": "pve",
                                                                     "thinpool": "data"}))
    assert status == 500 and reason.startswith("create storage failed: could not activate storage 'x1', "), reason
    # zfspool has a driver; this machine has no ZFS (no kernel module, no zpool command), so
    # activation fails as Proxmox's does when the pool cannot be imported, and nothing is kept.
    status, reason = error(node.request("POST", "/storage", data={"storage": "x1", "type": "zfspool",
                                                                     "pool": "rpool/data"}))
    assert status == 500 and reason.startswith("create storage failed: could not activate storage 'x1', zfs error: "), reason
    assert "x1" not in [s["storage"] for s in node.get("/storage")]
    r = node.request("PUT", "/storage/local", data={"path": "/elsewhere"})
    assert r.status_code == 400 and r.json()["errors"]["path"].startswith("property is not defined in schema")
    assert error(node.request("PUT", "/storage/local", data={"delete": "path"})) == \
        (500, "update storage failed: unable to delete required option 'path'")
    assert error(node.request("PUT", "/storage/nosuch", data={"disable": 1})) == \
        (500, "update storage failed: storage 'nosuch' does not exist")
    assert error(node.request("DELETE", "/storage/nosuch")) == \
        (500, "delete storage failed: storage 'nosuch' does not exist")
    assert not os.path.exists(missing)
    assert [s["storage"] for s in node.get("/storage")] == ["local"]
    assert node.get("/storage")[0]["digest"] == digest  # nothing was written


def test_an_nfs_storage_mounts_its_export_and_says_why_it_cannot(node, place):
    # These kernels have no NFS client, so no export can really be mounted here (the unit tests
    # in src/storage/nfs cover a successful mount against recorded outputs). NFSv4's connection
    # check falls back to the NFS port, as Proxmox's: something listening there lets the
    # storage go on to the real `mount -t nfs`, whose failure must come back as the error.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        mnt = os.path.join(place, "nas")
        status, reason = error(node.request("POST", "/storage", data={
            "storage": "nas", "type": "nfs", "server": "127.0.0.1", "export": "/srv/vm", "path": mnt,
            "options": f"vers=4.2,port={port}"}))
        assert status == 500 and reason.startswith("create storage failed: mount error: mount"), reason
        assert "nas" not in [s["storage"] for s in node.get("/storage")]
    finally:
        listener.close()


def test_digest_guards_concurrent_edits(node, place):
    node.post("/storage", data={"storage": "d1", "type": "dir", "path": place, "content": "iso"})
    digest = node.get("/storage/d1")["digest"]
    node.put("/storage/d1", data={"content": "iso,snippets", "digest": digest})
    assert error(node.request("PUT", "/storage/d1", data={"content": "iso", "digest": digest})) == \
        (500, "update storage failed: detected modified configuration - file changed by other user? Try again.")
    assert node.get("/storage/d1")["content"] == "iso,snippets"
    node.delete("/storage/d1")


def test_disabled_and_other_node_storages_are_listed_but_refuse_work(node, place):
    node.post("/storage", data={"storage": "cold", "type": "dir", "path": place, "content": "images"})
    node.put("/storage/cold", data={"disable": 1})
    entry = by_id(node.get(f"/nodes/{node.node}/storage"))["cold"]
    assert (entry["enabled"], entry["active"], entry["total"]) == (0, 0, 0)
    assert "cold" not in by_id(node.get(f"/nodes/{node.node}/storage", params={"enabled": 1}))
    assert "cold" not in by_id(node.get(f"/nodes/{node.node}/storage", params={"content": "images"}))
    assert by_id(node.get("/storage"))["cold"]["disable"] == 1
    assert node.get(f"/nodes/{node.node}/storage/cold/status")["enabled"] == 0
    # Refused before a task starts (Proxmox says the same in the task, at activation).
    r = node.request("POST", f"/nodes/{node.node}/qemu", data={"vmid": 311, "memory": 128, "scsi0": "cold:1"})
    assert r.status_code == 400 and r.json()["errors"]["scsi0"] == "storage 'cold' is disabled"

    node.put("/storage/cold", data={"delete": "disable", "nodes": "othernode"})
    entry = by_id(node.get(f"/nodes/{node.node}/storage"))["cold"]
    assert (entry["enabled"], entry["active"]) == (0, 0)
    # Proxmox's quirk: enabled=1 looks at `disable` only.
    assert "cold" in by_id(node.get(f"/nodes/{node.node}/storage", params={"enabled": 1}))
    r = node.request("GET", f"/nodes/{node.node}/storage", params={"storage": "cold", "content": "images"})
    assert r.status_code == 400 and r.json()["errors"]["storage"] == "No such storage."
    node.put("/storage/cold", data={"nodes": f"{node.node},othernode"})
    assert by_id(node.get(f"/nodes/{node.node}/storage"))["cold"]["active"] == 1
    node.delete("/storage/cold")


def test_a_missing_mount_point_makes_the_storage_inactive_and_refuse_disks(node, place):
    node.post("/storage", data={"storage": "usb", "type": "dir", "path": place, "content": "images,iso"})
    node.put("/storage/usb", data={"is_mountpoint": "yes"})  # the disk is not mounted there
    entry = by_id(node.get(f"/nodes/{node.node}/storage"))["usb"]
    assert (entry["enabled"], entry["active"], entry["total"]) == (1, 0, 0)
    st = node.wait_task(node.create_vm(313, wait=False, memory="128", scsi0="usb:1"), ok=False)
    assert st["exitstatus"].endswith(f"unable to activate storage 'usb' - directory is expected to be a mount "
                                     f"point but is not mounted: '{place}'")
    assert not os.path.exists(os.path.join(place, "images", "313"))  # nothing written on the wrong disk
    node.put("/storage/usb", data={"delete": "is_mountpoint"})
    assert by_id(node.get(f"/nodes/{node.node}/storage"))["usb"]["active"] == 1
    node.delete("/storage/usb")


def test_one_directory_is_one_storage_and_uploads_need_the_content_type(node, place):
    r = node.request("POST", "/storage", data={"storage": "again", "type": "dir", "path": node.dir + "/"})
    assert (r.status_code, r.reason) == (500, f"create storage failed: path '{node.dir}' is already storage "
                                              f"'local' ({node.dir})")
    node.post("/storage", data={"storage": "vms", "type": "dir", "path": place, "content": "images"})
    iso = os.path.join(tempfile.mkdtemp(), "a.iso")
    with open(iso, "wb") as f:
        f.write(b"\0" * 4096)
    r = upload(node, iso, "a.iso", storage="vms")
    assert r.status_code == 400 and r.json()["errors"]["content"] == "storage 'vms' does not support 'iso' content"
    node.put("/storage/vms", data={"delete": "content"})  # back to the type's default, as Proxmox reads it
    assert node.get("/storage/vms")["content"] == "images,rootdir"
    node.delete("/storage/vms")


def test_deleting_a_storage_leaves_its_volumes(node, place):
    node.post("/storage", data={"storage": "keep", "type": "dir", "path": place, "content": "images"})
    node.create_vm(312, memory="128", scsi0="keep:1")
    node.delete("/storage/keep")
    assert os.path.exists(os.path.join(place, "images", "312", "vm-312-disk-0.qcow2"))
    assert "keep" not in by_id(node.get(f"/nodes/{node.node}/storage"))
    # The VM's config still names it; destroying says what is missing and goes on.
    node.post("/storage", data={"storage": "keep", "type": "dir", "path": place, "content": "images"})
    node.wait_task(node.delete(node.vm_path(312)))
    assert not os.path.exists(os.path.join(place, "images", "312"))
    node.delete("/storage/keep")


def test_only_datastore_allocate_changes_storages(node, place):
    node.admin("user", "add", "auditor@pve", "--password-stdin", stdin="audit-secret")
    who = node.login("auditor@pve", "audit-secret")
    assert "local" in by_id(node.get("/storage", auth=who))  # Datastore.Audit lists
    r = node.request("GET", "/storage/local", auth=who)
    assert r.status_code == 403
    r = node.request("POST", "/storage", auth=who, data={"storage": "mine", "type": "dir", "path": place})
    assert r.status_code == 403 and r.reason == "Permission check failed (/storage, Datastore.Allocate)"
    assert node.request("DELETE", "/storage/local", auth=who).status_code == 403
    assert "mine" not in by_id(node.get("/storage"))


@pytest.fixture
def btrfs_mount():
    if not BtrfsLoop.available():
        pytest.skip("needs root and btrfs-progs to mount a btrfs loop device")
    with BtrfsLoop() as fs:
        yield fs.mnt


def test_btrfs_storage_disks_templates_and_clones_are_subvolumes(node, btrfs_mount, place):
    assert error(node.request("POST", "/storage", data={"storage": "notb", "type": "btrfs", "path": place})) == \
        (500, f"create storage failed: '{place}' is not a btrfs file system")
    path = os.path.join(btrfs_mount, "pve")
    node.post("/storage", data={"storage": "tank", "type": "btrfs", "path": path})
    cfg = node.get("/storage/tank")
    assert cfg["type"] == "btrfs" and cfg["content"] == "images,rootdir"  # the type's default, as Proxmox
    # An upload to another file system than the data dir's (copied, not renamed across).
    node.put("/storage/tank", data={"content": "images,rootdir,iso"})
    iso = os.path.join(place, "b.iso")
    with open(iso, "wb") as f:
        f.write(os.urandom(3 << 20))
    node.wait_task(upload(node, iso, "b.iso", storage="tank").json()["data"])
    assert os.path.getsize(os.path.join(path, "template", "iso", "b.iso")) == 3 << 20
    assert node.get(f"/nodes/{node.node}/storage", params={"format": 1, "storage": "tank"})[0]["formats"] == \
        {"supported": ["raw", "subvol"], "default": "raw"}
    node.create_vm(320, memory="128", scsi0="tank:1")
    assert node.get(node.vm_path(320) + "/config")["scsi0"].startswith("tank:320/vm-320-disk-0.raw,")
    sub = os.path.join(path, "images", "320", "vm-320-disk-0")
    assert os.stat(sub).st_ino == 256 and os.path.getsize(os.path.join(sub, "disk.raw")) == 1 << 30  # a subvolume

    node.wait_task(node.post(node.vm_path(320) + "/template"))
    base = os.path.join(path, "images", "320", "base-320-disk-0")
    ro = subprocess.run(["btrfs", "property", "get", base, "ro"], capture_output=True, text=True).stdout.strip()
    assert ro == "ro=true"
    node.wait_task(node.post(node.vm_path(320) + "/clone", data={"newid": 321, "name": "c1"}))  # linked
    assert node.get(node.vm_path(321) + "/config")["scsi0"].startswith("tank:321/vm-321-disk-0.raw,")
    clone = os.path.join(path, "images", "321", "vm-321-disk-0")
    assert os.stat(clone).st_ino == 256
    # QEMU opens it (raw, through the storage's path), and stops.
    node.vm_action(321, "start")
    assert node.get(node.vm_path(321) + "/status/current")["status"] == "running"
    node.vm_action(321, "stop")
    # btrfs clones share extents but not fate: the template can go first.
    node.wait_task(node.delete(node.vm_path(320)))
    assert not os.path.exists(base) and os.path.exists(os.path.join(clone, "disk.raw"))
    vols = node.get(f"/nodes/{node.node}/storage/tank/content", params={"content": "images"})
    assert [v["volid"] for v in vols] == ["tank:321/vm-321-disk-0.raw"]
    node.wait_task(node.delete(node.vm_path(321)))
    assert os.listdir(os.path.join(path, "images")) == []
    node.delete("/storage/tank")

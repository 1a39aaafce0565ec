"""Templates, linked clones and full clones through the API, with real qemu-img and QEMU."""
import os
import re
import subprocess
import threading

from harness import Hearth, wait_for


def test_template_conversion(hearth):
    hearth.create_vm(700, name="tmpl", memory="128", scsi0="local:1", net0="virtio", serial0="socket")
    hearth.vm_action(700, "start")
    r = hearth.request("POST", hearth.vm_path(700) + "/template")
    assert r.status_code == 500 and r.reason == "you can't convert a VM to template if VM is running"
    hearth.vm_action(700, "stop")
    upid = hearth.post(hearth.vm_path(700) + "/template")
    assert hearth.wait_task(upid)["exitstatus"] == "OK"  # packer and Telmate need exactly OK
    c = hearth.get(hearth.vm_path(700) + "/config")
    assert c["template"] == 1
    assert c["scsi0"] == "local:700/base-700-disk-0.qcow2,size=1G"
    assert hearth.get(hearth.vm_path(700) + "/status/current")["template"] == 1
    res = [x for x in hearth.get("/cluster/resources", params={"type": "vm"}) if x["vmid"] == 700][0]
    assert res["template"] == 1
    r = hearth.request("POST", hearth.vm_path(700) + "/template")
    assert r.status_code == 500 and r.reason == "you can't convert a template to a template"
    r = hearth.request("POST", hearth.vm_path(700) + "/status/start")
    assert r.status_code == 500 and r.reason == "you can't start a vm if it's a template"


def test_linked_clone_is_an_overlay_and_boots(hearth):
    upid = hearth.post(hearth.vm_path(700) + "/clone", data={"newid": 701, "name": "node1"})
    assert ":qmclone:700:" in upid
    hearth.wait_task(upid)
    src = hearth.get(hearth.vm_path(700) + "/config")
    c = hearth.get(hearth.vm_path(701) + "/config")
    assert c["scsi0"] == "local:700/base-700-disk-0.qcow2/701/vm-701-disk-0.qcow2,size=1G"
    assert c["name"] == "node1" and "template" not in c
    assert c["net0"] != src["net0"] and re.fullmatch(r"virtio=BC:24:11:[0-9A-F:]{8}", c["net0"])
    assert c["smbios1"] != src["smbios1"] and c["vmgenid"] != src["vmgenid"]
    content = hearth.get(f"/nodes/{hearth.node}/storage/local/content", params={"vmid": 701})
    assert content[0]["parent"] == "local:700/base-700-disk-0.qcow2"
    assert content[0]["used"] < 2 << 20  # no data copied
    hearth.vm_action(701, "start")
    assert hearth.get(hearth.vm_path(701) + "/status/current")["status"] == "running"
    hearth.vm_action(701, "stop")


def test_base_with_linked_clones_cannot_be_deleted(hearth):
    r = hearth.request("DELETE", hearth.vm_path(700))
    assert r.status_code == 500
    assert r.reason == "base volume 'local:700/base-700-disk-0.qcow2' is still in use by linked cloned VM 701"
    r = hearth.request("DELETE", f"/nodes/{hearth.node}/storage/local/content/local:700/base-700-disk-0.qcow2",
                       params={"delay": 10})
    assert r.status_code == 500
    # deleting the clone never harms the base
    hearth.wait_task(hearth.delete(hearth.vm_path(701)))
    assert hearth.get(f"/nodes/{hearth.node}/storage/local/content/local:700/base-700-disk-0.qcow2")["size"] == 1 << 30


def test_full_clone_copies_with_progress(hearth):
    upid = hearth.post(hearth.vm_path(700) + "/clone", data={"newid": 702, "full": 1, "format": "raw"})
    hearth.wait_task(upid)
    assert "scsi0: copied 100%" in hearth.task_log(upid)
    c = hearth.get(hearth.vm_path(702) + "/config")
    assert c["scsi0"] == "local:702/vm-702-disk-0.raw,size=1G"
    assert c["name"] == "Copy-of-VM-tmpl"
    content = hearth.get(f"/nodes/{hearth.node}/storage/local/content", params={"vmid": 702})
    assert "parent" not in content[0]
    # a full clone of an ordinary VM, and the refusals
    upid = hearth.post(hearth.vm_path(702) + "/clone", data={"newid": 703, "name": "copy2"})
    hearth.wait_task(upid)
    r = hearth.request("POST", hearth.vm_path(702) + "/clone", data={"newid": 704, "full": 0})
    assert r.status_code == 500 and r.reason.startswith("Linked clone feature is not supported for 'local:702/")
    r = hearth.request("POST", hearth.vm_path(700) + "/clone", data={"newid": 703})
    assert r.status_code == 500 and r.reason == "unable to create VM 703: config file already exists"
    r = hearth.request("POST", hearth.vm_path(700) + "/clone", data={"newid": 705, "storage": "local"})
    assert r.status_code == 500 and r.reason == "parameter 'storage' not allowed for linked clones"  # PVE: a die
    r = hearth.request("POST", hearth.vm_path(700) + "/clone", data={"newid": 705, "format": "raw"})
    assert r.status_code == 500 and r.reason == "parameter 'format' not allowed for linked clones"
    for vmid in (702, 703):
        hearth.wait_task(hearth.delete(hearth.vm_path(vmid)))


def test_twenty_parallel_linked_clones(hearth):
    results = {}

    def clone(newid):
        results[newid] = hearth.request("POST", hearth.vm_path(700) + "/clone", data={"newid": newid, "name": f"n{newid}"})

    threads = [threading.Thread(target=clone, args=(720 + i,)) for i in range(20)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for newid, r in results.items():
        assert r.status_code == 200, r.text
        hearth.wait_task(r.json()["data"])
    disks = {hearth.get(hearth.vm_path(720 + i) + "/config")["scsi0"] for i in range(20)}
    assert len(disks) == 20
    for i in range(20):
        hearth.wait_task(hearth.delete(hearth.vm_path(720 + i)))
    hearth.wait_task(hearth.delete(hearth.vm_path(700)))
    assert hearth.get(f"/nodes/{hearth.node}/storage/local/content", params={"vmid": 700}) == []


def test_kill9_during_a_clone_leaves_no_half_made_vm():
    h = Hearth().start()
    try:
        h.create_vm(750, memory="128", scsi0="local:2,format=raw")
        # Fill the disk with data so the full copy takes a while.
        disk = os.path.join(h.dir, "images", "750", "vm-750-disk-0.raw")
        with open(disk, "r+b") as f:
            for _ in range(96):
                f.write(os.urandom(8 << 20))
        upid = h.post(h.vm_path(750) + "/clone", data={"newid": 751})
        wait_for("the copy to start", lambda: any("copying" in l for l in h.task_log(upid)), 60)
        h.kill9()
        h.start()
        r = h.request("GET", h.vm_path(751) + "/config")
        assert r.status_code == 500 and r.reason.endswith("does not exist")
        assert not os.path.exists(os.path.join(h.dir, "images", "751")) or os.listdir(os.path.join(h.dir, "images", "751")) == []
        assert h.task_status(upid)["exitstatus"] == "unexpected status"
        # the source is untouched and usable
        assert h.get(h.vm_path(750) + "/config")["scsi0"] == "local:750/vm-750-disk-0.raw,size=2G"
    finally:
        h.close()


def test_resize_grows_disks_and_refuses_to_shrink(hearth):
    hearth.create_vm(760, memory="128", scsi0="local:1", serial0="socket")
    path = hearth.vm_path(760) + "/resize"
    upid = hearth.put(path, data={"disk": "scsi0", "size": "+512M"})
    assert upid.startswith("UPID:") and ":resize:760:" in upid  # bpg needs a task here
    hearth.wait_task(upid)
    assert hearth.get(hearth.vm_path(760) + "/config")["scsi0"].endswith("size=1536M")
    vol = hearth.get(f"/nodes/{hearth.node}/storage/local/content/local:760/vm-760-disk-0.qcow2")
    assert vol["size"] == 1536 << 20
    st = hearth.wait_task(hearth.put(path, data={"disk": "scsi0", "size": "1G"}), ok=False)
    assert st["exitstatus"] == "shrinking disks is not supported"
    hearth.wait_task(hearth.put(path, data={"disk": "scsi0", "size": "1536M"}))  # same size: fine
    # live, through QMP, on a running VM
    hearth.vm_action(760, "start")
    hearth.wait_task(hearth.put(path, data={"disk": "scsi0", "size": "2G"}))
    assert hearth.get(hearth.vm_path(760) + "/config")["scsi0"].endswith("size=2G")
    hearth.vm_action(760, "stop")
    assert hearth.get(f"/nodes/{hearth.node}/storage/local/content/local:760/vm-760-disk-0.qcow2")["size"] == 2 << 30
    r = hearth.request("PUT", path, data={"disk": "net0", "size": "2G"})
    assert r.status_code == 400 and "disk" in r.json()["errors"]
    r = hearth.request("PUT", path, data={"disk": "scsi0", "size": "2 GB"})
    assert r.status_code == 400 and r.json()["errors"]["size"] == "value does not match the regex pattern"
    # As PVE, what depends on the config is checked inside the task: the call returns a UPID.
    st = hearth.wait_task(hearth.put(path, data={"disk": "scsi7", "size": "+1G"}), ok=False)
    assert st["exitstatus"] == "disk 'scsi7' does not exist"
    hearth.wait_task(hearth.delete(hearth.vm_path(760)))


def test_interrupted_template_conversion_is_undone_at_restart():
    h = Hearth().start()
    try:
        h.create_vm(770, memory="128", scsi0="local:1")
        h.stop()
        # The state a crash between "rename the disks" and "write the config" leaves behind.
        images = os.path.join(h.dir, "images", "770")
        os.rename(os.path.join(images, "vm-770-disk-0.qcow2"), os.path.join(images, "base-770-disk-0.qcow2"))
        db = os.path.join(h.dir, "hearth.db")
        subprocess.run(["sqlite3", db, "UPDATE vms SET conf = conf || 'lock: template' || char(10) WHERE vmid = 770"],
                       check=True)
        h.start()
        c = h.get(h.vm_path(770) + "/config")
        assert "lock" not in c and "template" not in c
        assert c["scsi0"] == "local:770/vm-770-disk-0.qcow2,size=1G"
        assert os.path.exists(os.path.join(images, "vm-770-disk-0.qcow2"))
        assert "undoing a template conversion" in h.read_log()
        h.wait_task(h.post(h.vm_path(770) + "/template"))  # and it converts cleanly now
        assert h.get(h.vm_path(770) + "/config")["template"] == 1
    finally:
        h.close()


def test_template_refuses_another_vms_disk(hearth):
    """VM 711 has VM 710's disk attached: converting 711 to a template would leave that disk
    writable by 710 under every linked clone (found by a break-it pass: the conversion
    succeeded and left the disk as it was). Refused before the task, naming disk and owner."""
    h = hearth
    h.create_vm(710, memory=64, scsi0="local:1")
    h.create_vm(711, memory=64, scsi0="local:1")
    disk = h.get(h.vm_path(710) + "/config")["scsi0"].split(",")[0]
    h.request("PUT", h.vm_path(711) + "/config", data={"scsi1": disk})
    r = h.request("POST", h.vm_path(711) + "/template")
    assert r.status_code == 500
    assert r.reason == (f"unable to convert VM 711 to a template: disk 'scsi1' ({disk}) belongs to VM 710; "
                        "detach it or move it to this VM first"), r.reason
    c = h.get(h.vm_path(711) + "/config")
    assert "template" not in c and "lock" not in c
    assert c["scsi0"].startswith("local:711/vm-711-disk-0")
    # only the own disk asked for: fine
    assert h.wait_task(h.post(h.vm_path(711) + "/template", data={"disk": "scsi0"}))["exitstatus"] == "OK"
    assert h.get(h.vm_path(711) + "/config")["scsi0"].startswith("local:711/base-711-disk-0")
    assert h.get(h.vm_path(710) + "/config")["scsi0"].startswith(disk)


def test_template_of_a_linked_clone_is_refused_with_what_to_do(hearth):
    """A linked clone's disk is an overlay on its template's base image: it cannot become a
    base image itself here. Before, the conversion skipped it (its volume id contains
    '/base-') and marked the VM a template with a writable disk."""
    h = hearth
    h.create_vm(713, memory=64, scsi0="local:1")
    assert h.wait_task(h.post(h.vm_path(713) + "/template"))["exitstatus"] == "OK"
    h.wait_task(h.post(h.vm_path(713) + "/clone", data={"newid": 714, "full": 0}))
    disk = h.get(h.vm_path(714) + "/config")["scsi0"].split(",")[0]
    assert disk == "local:713/base-713-disk-0.qcow2/714/vm-714-disk-0.qcow2"
    r = h.request("POST", h.vm_path(714) + "/template")
    assert r.status_code == 500
    assert r.reason == (f"unable to convert VM 714 to a template: disk 'scsi0' ({disk}) is a linked clone of "
                        "local:713/base-713-disk-0.qcow2; make a full clone of the VM and convert that"), r.reason
    assert "template" not in h.get(h.vm_path(714) + "/config")


def test_template_disk_must_name_a_drive_and_pending_disks_count(hearth):
    """`disk` is Proxmox's enum of drive names (before, any string converted nothing and
    still marked the VM a template). Another VM's disk waiting in [PENDING] (the VM's QEMU
    died before a stop applied it) would land in the template at its next config write:
    refused like an applied one (both found by a break-it pass)."""
    h = hearth
    h.create_vm(716, memory=64, scsi0="local:1")
    h.create_vm(717, memory=64, scsi0="local:1")
    for bad in ("name", "unused0", "scsi31"):
        r = h.request("POST", h.vm_path(717) + "/template", data={"disk": bad})
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["errors"]["disk"].startswith(f"value '{bad}' does not have a value in the enumeration 'ide0, ide1,")
    other = h.get(h.vm_path(716) + "/config")["scsi0"].split(",")[0]
    h.vm_action(717, "start")
    h.put(h.vm_path(717) + "/config", data={"scsi1": other})
    assert {e["key"]: e for e in h.get(h.vm_path(717) + "/pending")}["scsi1"]["pending"].startswith(other)
    os.kill(h.get(h.vm_path(717) + "/status/current")["pid"], 9)
    wait_for("VM 717 to be seen as stopped", lambda: h.get(h.vm_path(717) + "/status/current")["status"] == "stopped", 30)
    r = h.request("POST", h.vm_path(717) + "/template")
    assert r.status_code == 500
    assert r.reason.startswith(f"unable to convert VM 717 to a template: disk 'scsi1' ({other}) belongs to VM 716"), r.reason

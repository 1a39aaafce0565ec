"""VM lifecycle through the API, with real QEMU processes (no OS needed to run)."""
import os
import re
import threading

from harness import qemu_pid, wait_for


def test_create_canonicalises_like_pve(hearth):
    hearth.create_vm(100, name="web1", memory="256", cores="2", sockets="1", scsihw="virtio-scsi-single",
                     scsi0="local:1,iothread=1,format=raw", net0="virtio,bridge=vmbr0", tags="Web,db;web",
                     agent="1", onboot="1", ostype="l26")
    c = hearth.get(hearth.vm_path(100) + "/config")
    assert c["scsi0"] == "local:100/vm-100-disk-0.raw,iothread=1,size=1G"
    assert re.fullmatch(r"virtio=BC:24:11:[0-9A-F]{2}:[0-9A-F]{2}:[0-9A-F]{2},bridge=vmbr0", c["net0"])
    assert c["tags"] == "db;web"
    assert c["boot"] == "order=scsi0;net0"
    # Types: integers and booleans as numbers, memory and agent as strings.
    assert c["cores"] == 2 and c["onboot"] == 1
    assert c["memory"] == "256" and c["agent"] == "1"
    assert re.fullmatch(r"[0-9a-f]{40}", c["digest"])
    assert c["smbios1"].startswith("uuid=") and re.fullmatch(r"[0-9a-f-]{36}", c["vmgenid"])
    assert "template" not in c and "lock" not in c
    vol = hearth.get(f"/nodes/{hearth.node}/storage/local/content/local:100/vm-100-disk-0.raw")
    assert vol["format"] == "raw" and vol["size"] == 1 << 30


def test_existing_vmid_is_refused_with_pve_message(hearth):
    r = hearth.request("POST", f"/nodes/{hearth.node}/qemu", data={"vmid": 100})
    assert r.status_code == 500
    assert r.reason == f"unable to create VM 100 - VM 100 already exists on node '{hearth.node}'"
    r = hearth.request("GET", "/cluster/nextid", params={"vmid": 100})
    assert r.status_code == 400 and r.json()["errors"]["vmid"] == "VM 100 already exists"


def test_listings_have_pve_types(hearth):
    vms = hearth.get(f"/nodes/{hearth.node}/qemu")
    vm = [v for v in vms if v["vmid"] == 100][0]
    assert vm["name"] == "web1" and vm["status"] == "stopped" and vm["maxmem"] == 256 << 20
    assert vm["maxdisk"] == 1 << 30 and vm["cpus"] == 2 and "template" not in vm
    res = hearth.get("/cluster/resources", params={"type": "vm"})
    r = [x for x in res if x["vmid"] == 100][0]
    assert r["id"] == "qemu/100" and r["type"] == "qemu" and r["node"] == hearth.node
    assert r["template"] == 0 and "lock" not in r and "content" not in r


def test_put_config_is_sync_null_and_delete_makes_unused(hearth):
    assert hearth.put(hearth.vm_path(100) + "/config", data={"scsi1": "local:1", "description": "two\nlines"}) is None
    c = hearth.get(hearth.vm_path(100) + "/config")
    assert c["scsi1"] == "local:100/vm-100-disk-1.qcow2,size=1G"
    assert c["description"] == "two\nlines"
    hearth.put(hearth.vm_path(100) + "/config", data={"delete": "scsi1"})
    c = hearth.get(hearth.vm_path(100) + "/config")
    assert "scsi1" not in c and c["unused0"] == "local:100/vm-100-disk-1.qcow2"
    # Deleting the unused volume destroys it.
    hearth.put(hearth.vm_path(100) + "/config", data={"delete": "unused0"})
    content = hearth.get(f"/nodes/{hearth.node}/storage/local/content", params={"vmid": 100})
    assert [v["volid"] for v in content] == ["local:100/vm-100-disk-0.raw"]


def test_post_config_is_async(hearth):
    upid = hearth.post(hearth.vm_path(100) + "/config", data={"cores": "1"})
    assert upid.startswith("UPID:") and ":qmconfig:100:" in upid
    hearth.wait_task(upid)
    assert hearth.get(hearth.vm_path(100) + "/config")["cores"] == 1


def test_digest_protects_against_lost_updates(hearth):
    digest = hearth.get(hearth.vm_path(100) + "/config")["digest"]
    hearth.put(hearth.vm_path(100) + "/config", data={"name": "web2"})
    r = hearth.request("PUT", hearth.vm_path(100) + "/config", data={"name": "web3", "digest": digest})
    assert r.status_code == 500 and r.reason == "checksum mismatch (file change by other user?)"
    assert hearth.get(hearth.vm_path(100) + "/config")["name"] == "web2"


def test_bad_config_values_are_400_and_change_nothing(hearth):
    before = hearth.get(hearth.vm_path(100) + "/config")
    for key, value in [("name", "bad\nname"), ("name", "under_score"), ("net1", "virtio,bridge=br0;reboot"),
                       ("scsi2", "local:1,evil=1"), ("cores", "0"), ("cpu", "host,flags=+aes;$(id)"),
                       ("ide2", "../../etc/passwd,media=cdrom"), ("boot", "order=floppy0")]:
        r = hearth.request("PUT", hearth.vm_path(100) + "/config", data={key: value})
        assert r.status_code == 400, (key, value, r.text)
        assert key in r.json()["errors"], (key, r.json())
    r = hearth.request("PUT", hearth.vm_path(100) + "/config", data={"delete": "nonsense"})
    assert r.status_code == 400 and r.json()["errors"]["delete"] == "unknown option 'nonsense'"
    r = hearth.request("PUT", hearth.vm_path(100) + "/config", data={"name": "a", "delete": "name"})
    assert r.status_code == 400
    r = hearth.request("PUT", hearth.vm_path(100) + "/config", data={"tpmstate0": "local:1,version=v2.0"})
    assert r.status_code == 400 and "swtpm" in r.json()["errors"]["tpmstate0"]
    r = hearth.request("PUT", hearth.vm_path(100) + "/config", data={"scsi3": "local:iso/missing.iso,media=cdrom"})
    assert r.status_code == 400 and "does not exist" in r.json()["errors"]["scsi3"]
    after = hearth.get(hearth.vm_path(100) + "/config")
    assert after == before


def test_start_stop_and_status_with_real_qemu(hearth):
    hearth.put(hearth.vm_path(100) + "/config", data={"net0": "virtio", "serial0": "socket"})  # no bridge: user-mode
    st = hearth.get(hearth.vm_path(100) + "/status/current")
    assert st["status"] == "stopped" and st["qmpstatus"] == "stopped" and "pid" not in st and st["agent"] == 1
    hearth.vm_action(100, "start")
    st = hearth.get(hearth.vm_path(100) + "/status/current")
    assert st["status"] == "running" and st["qmpstatus"] == "running" and st["pid"] > 0
    assert open(f"/proc/{st['pid']}/cmdline", "rb").read().startswith(b"qemu-system-x86_64")
    # The firmware reads the boot disk: real counters, not zeros.
    wait_for("disk reads to be counted", lambda: hearth.get(hearth.vm_path(100) + "/status/current")["diskread"] > 0, 30)
    status = hearth.wait_task(hearth.post(hearth.vm_path(100) + "/status/start"), ok=False)
    assert status["exitstatus"] == "VM 100 already running"
    hearth.vm_action(100, "suspend")
    assert hearth.get(hearth.vm_path(100) + "/status/current")["qmpstatus"] == "paused"
    hearth.vm_action(100, "resume")
    assert hearth.get(hearth.vm_path(100) + "/status/current")["qmpstatus"] == "running"
    hearth.vm_action(100, "reset")
    pid = st["pid"]
    hearth.vm_action(100, "stop")
    wait_for("QEMU to exit", lambda: not os.path.exists(f"/proc/{pid}"), 30)
    st = hearth.get(hearth.vm_path(100) + "/status/current")
    assert st["status"] == "stopped" and "pid" not in st
    assert hearth.vm_action(100, "stop")["exitstatus"] == "OK"  # PVE: stopping a stopped VM does nothing


def test_pending_changes_while_running_apply_at_next_start(hearth):
    hearth.vm_action(100, "start")
    hearth.put(hearth.vm_path(100) + "/config", data={"memory": "384", "name": "renamed"})
    pending = {e["key"]: e for e in hearth.get(hearth.vm_path(100) + "/pending")}
    assert pending["memory"] == {"key": "memory", "value": "256", "pending": "384"}
    assert pending["name"] == {"key": "name", "value": "renamed"}  # hot-applied, no extra members
    assert pending["cores"] == {"key": "cores", "value": 1}  # typed values
    assert hearth.get(hearth.vm_path(100) + "/config")["memory"] == "384"
    assert hearth.get(hearth.vm_path(100) + "/config", params={"current": 1})["memory"] == "256"
    # shutdown of a guest that ignores ACPI (no OS): forceStop after the timeout
    hearth.vm_action(100, "shutdown", wait=60, forceStop=1, timeout=2)
    hearth.vm_action(100, "start")
    pending = {e["key"]: e for e in hearth.get(hearth.vm_path(100) + "/pending")}
    assert pending["memory"] == {"key": "memory", "value": "384"}
    assert hearth.get(hearth.vm_path(100) + "/status/current")["maxmem"] == 384 << 20
    hearth.vm_action(100, "stop")


def test_shutdown_without_force_times_out_with_pve_message(hearth):
    hearth.vm_action(100, "start")
    st = hearth.vm_action(100, "shutdown", ok=False, wait=60, timeout=1)
    assert st["exitstatus"] == "VM quit/powerdown failed - got timeout"
    # stop with overrule-shutdown cancels a waiting shutdown
    upid = hearth.post(hearth.vm_path(100) + "/status/shutdown", data={"timeout": 600})
    hearth.vm_action(100, "stop", **{"overrule-shutdown": 1})
    # Overruled while it waited for the guest, or (on a loaded machine) before its worker began.
    assert hearth.wait_task(upid, ok=False)["exitstatus"] in ("shutdown overruled by a stop request",
                                                              "task cancelled before it started")
    assert hearth.get(hearth.vm_path(100) + "/status/current")["status"] == "stopped"


def test_vm_that_dies_is_noticed(hearth):
    hearth.vm_action(100, "start")
    pid = qemu_pid(hearth, 100)
    os.kill(pid, 9)
    wait_for("VM 100 to be seen as stopped",
             lambda: hearth.get(hearth.vm_path(100) + "/status/current")["status"] == "stopped", 30)


def test_missing_bridge_is_a_clear_start_error(hearth):
    hearth.put(hearth.vm_path(100) + "/config", data={"net1": "virtio,bridge=vmbrnone"})
    st = hearth.vm_action(100, "start", ok=False)
    assert st["exitstatus"] == "net1: bridge 'vmbrnone' does not exist"
    assert hearth.get(hearth.vm_path(100) + "/status/current")["status"] == "stopped"
    hearth.put(hearth.vm_path(100) + "/config", data={"delete": "net1"})


def test_qemu_failing_at_start_leaves_state_consistent(hearth):
    r = hearth.request("PUT", hearth.vm_path(100) + "/config", data={"args": "-device no-such-device"})
    assert r.status_code == 500 and r.reason == "only root can set 'args' config"  # PVE's words and status
    r = hearth.request("PUT", hearth.vm_path(100) + "/config", data={"hostpci0": "0000:01:00.0"})
    assert r.status_code == 500 and r.reason == "only root can set 'hostpci0' config for non-mapped devices"
    hearth.put(hearth.vm_path(100) + "/config", data={"hostpci0": "0000:01:00.0"}, auth="root")
    st = hearth.vm_action(100, "start", ok=False)
    assert "hostpci0" in st["exitstatus"] and "not supported" in st["exitstatus"]
    hearth.put(hearth.vm_path(100) + "/config", data={"delete": "hostpci0", "memory": "999999999"}, auth="root")
    st = hearth.vm_action(100, "start", ok=False)
    assert st["exitstatus"].startswith("start failed: QEMU exited")
    assert hearth.get(hearth.vm_path(100) + "/status/current")["status"] == "stopped"
    hearth.put(hearth.vm_path(100) + "/config", data={"memory": "256"})


def test_destroy_removes_vm_and_disks(hearth):
    r = hearth.request("DELETE", hearth.vm_path(100))
    assert r.status_code == 200
    hearth.wait_task(r.json()["data"])
    r = hearth.request("GET", hearth.vm_path(100) + "/status/current")
    assert r.status_code == 500 and r.reason.endswith("does not exist")  # bpg expects an error after delete
    assert hearth.get(f"/nodes/{hearth.node}/storage/local/content", params={"vmid": 100}) == []


def test_destroy_refuses_running_vm(hearth):
    hearth.create_vm(101, memory="128")
    hearth.vm_action(101, "start")
    r = hearth.request("DELETE", hearth.vm_path(101))
    assert r.status_code == 500 and r.reason == "VM 101 is running - destroy failed"
    hearth.vm_action(101, "stop")
    hearth.wait_task(hearth.delete(hearth.vm_path(101)))


def test_nextid_is_the_lowest_free_id_as_a_string(hearth):
    existing = {v["vmid"] for v in hearth.get(f"/nodes/{hearth.node}/qemu")}
    lowest = next(i for i in range(100, 1000000) if i not in existing)
    assert hearth.get("/cluster/nextid") == str(lowest)  # a JSON string, as PVE
    assert hearth.get("/cluster/nextid") == str(lowest)  # nothing is reserved (PVE)
    for vmid in (lowest, lowest + 1, lowest + 2):
        hearth.create_vm(vmid, memory="128")
    hearth.wait_task(hearth.delete(hearth.vm_path(lowest + 1)))
    assert hearth.get("/cluster/nextid") == str(lowest + 1)  # a freed id comes back first
    for vmid in (lowest, lowest + 2):
        hearth.wait_task(hearth.delete(hearth.vm_path(vmid)))


def test_twenty_parallel_creates_all_succeed(hearth):
    results = {}

    def create(vmid):
        r = hearth.request("POST", f"/nodes/{hearth.node}/qemu", data={"vmid": vmid, "scsi0": "local:1", "memory": "128"})
        results[vmid] = r

    threads = [threading.Thread(target=create, args=(300 + i,)) for i in range(20)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for vmid, r in results.items():
        assert r.status_code == 200, r.text
        hearth.wait_task(r.json()["data"])
    vms = {v["vmid"] for v in hearth.get(f"/nodes/{hearth.node}/qemu")}
    assert set(range(300, 320)) <= vms
    # and 20 parallel destroys
    upids = [hearth.delete(hearth.vm_path(300 + i)) for i in range(20)]
    for u in upids:
        hearth.wait_task(u)


def test_same_vm_operations_queue_instead_of_timing_out(hearth):
    hearth.create_vm(102, memory="128")
    upids = [hearth.post(hearth.vm_path(102) + "/config", data={"cores": str(1 + i % 4)}) for i in range(20)]
    for u in upids:
        hearth.wait_task(u)
    assert hearth.get(hearth.vm_path(102) + "/config")["cores"] == 4  # the last one won, in order
    hearth.wait_task(hearth.delete(hearth.vm_path(102)))


def test_nic_options_without_a_bridge_warn_in_the_task_log(hearth):
    # User-mode networking has no tap: a VLAN tag or a rate cannot apply (see test_vm_nics.py
    # for NICs on bridges).
    hearth.create_vm(103, memory="128", net0="virtio,rate=10,tag=20")
    st = hearth.vm_action(103, "start", ok=False)
    assert st["exitstatus"] == "WARNINGS: 2"  # clients treat WARNINGS as success
    log = hearth.task_log(st["upid"])
    assert "WARN: net0: rate=10 has no effect without a bridge" in log
    assert "WARN: net0: tag=20 has no effect without a bridge" in log
    hearth.vm_action(103, "stop")
    hearth.wait_task(hearth.delete(hearth.vm_path(103)))


def test_uefi_vm_with_efidisk(hearth):
    hearth.create_vm(104, memory="256", bios="ovmf", machine="q35", efidisk0="local:1,efitype=4m,pre-enrolled-keys=1",
                     scsi0="local:1", serial0="socket")
    c = hearth.get(hearth.vm_path(104) + "/config")
    # A copy of OVMF's 4m variable store, not a 1 GiB disk.
    # qcow2 on a dir storage, as Proxmox (create_efidisk takes the storage's default format)
    assert c["efidisk0"] == "local:104/vm-104-disk-0.qcow2,efitype=4m,pre-enrolled-keys=1,size=528K"
    hearth.vm_action(104, "start")  # QEMU accepts the flash pair only if code and vars match
    assert hearth.get(hearth.vm_path(104) + "/status/current")["status"] == "running"
    hearth.vm_action(104, "stop")
    hearth.wait_task(hearth.delete(hearth.vm_path(104)))
    assert hearth.get(f"/nodes/{hearth.node}/storage/local/content", params={"vmid": 104}) == []


def test_deleting_another_vms_disk_only_detaches_it(hearth):
    """A disk of VM 260 attached to VM 261 and then deleted there (forced, or via unusedN)
    stays VM 260's: qemu-server frees only volumes the VM owns (vm_is_volid_owner). Before,
    VM 260's disk was deleted while its config still named it (found by a break-it pass)."""
    h = hearth
    h.create_vm(260, memory=64, scsi0="local:1")
    h.create_vm(261, memory=64)
    disk = h.get(h.vm_path(260) + "/config")["scsi0"].split(",")[0]
    h.request("PUT", h.vm_path(261) + "/config", data={"scsi1": disk})
    r = h.request("PUT", h.vm_path(261) + "/config", data={"delete": "scsi1", "force": 1})
    assert r.status_code == 200, r.text
    h.request("PUT", h.vm_path(261) + "/config", data={"scsi2": disk})
    h.request("PUT", h.vm_path(261) + "/config", data={"delete": "scsi2"})
    assert not [k for k in h.get(h.vm_path(261) + "/config") if k.startswith("unused")]
    volids = [c["volid"] for c in h.get(f"/nodes/{h.node}/storage/local/content", params={"content": "images"})]
    assert disk in volids
    assert h.get(h.vm_path(260) + "/config")["scsi0"].startswith(disk)

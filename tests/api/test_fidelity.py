"""Proxmox fidelity found in the field (issue 7): values stored as PVE stores them, PVE's
checks and texts, task warnings, sendkey and move_disk, and random values that must only
ever get PVE's kinds of errors."""
import os
import random
import string

import pytest

from harness import wait_for


@pytest.fixture(scope="module")
def vm(hearth):
    hearth.create_vm(700, name="fid", memory="128", scsi0="local:1", net0="virtio")  # user-mode: no bridge needed
    yield 700
    hearth.request("POST", hearth.vm_path(700) + "/status/stop")
    wait_for("VM 700 stopped", lambda: hearth.get(hearth.vm_path(700) + "/status/current")["status"] == "stopped", 60)
    hearth.wait_task(hearth.delete(hearth.vm_path(700)))


def config(hearth, vmid):
    return hearth.get(hearth.vm_path(vmid) + "/config")


def test_values_come_back_as_proxmox_stores_them(hearth, vm):
    hearth.put(hearth.vm_path(vm) + "/config", data={"net1": "virtio=bc:24:11:aa:bb:cc,bridge=vmbr0",
                                                    "description": "line one\n\n  indented\nlast  \n\n"})
    c = config(hearth, vm)
    assert c["net1"] == "virtio=bc:24:11:aa:bb:cc,bridge=vmbr0"  # the MAC as sent (Terraform diffs on case)
    assert c["description"] == "line one\n\n  indented\nlast"  # trailing whitespace stripped, the rest kept
    assert c["net0"].startswith("virtio=BC:24:11:")  # generated MACs are upper-case
    # Drives and NICs in PVE's canonical order: volume/model first, then the keys sorted.
    hearth.put(hearth.vm_path(vm) + "/config", data={"scsi0": c["scsi0"].split(",")[0] + ",ssd=on,discard=on,cache=none"})
    assert config(hearth, vm)["scsi0"] == f"local:{vm}/vm-{vm}-disk-0.qcow2,cache=none,discard=on,size=1G,ssd=1"
    hearth.put(hearth.vm_path(vm) + "/config", data={"delete": "net1"})


def test_boot_order_is_checked_as_proxmox_does(hearth, vm):
    hearth.put(hearth.vm_path(vm) + "/config", data={"bootdisk": "scsi0"})
    before = config(hearth, vm)
    r = hearth.request("PUT", hearth.vm_path(vm) + "/config", data={"boot": "order=scsi0;net1", "cores": "2"})
    assert r.status_code == 500 and r.reason == "invalid bootorder: device 'net1' does not exist'"  # PVE's stray quote
    assert config(hearth, vm) == before  # nothing else changed either
    r = hearth.request("PUT", hearth.vm_path(vm) + "/config", data={"boot": "order=efidisk0"})
    assert r.status_code == 400
    assert r.json()["errors"]["boot"] == \
        "invalid format - format error\nboot.order: invalid format - invalid boot device 'efidisk0'\n\n"
    hearth.put(hearth.vm_path(vm) + "/config", data={"boot": "order=net0;scsi0"})
    c = config(hearth, vm)
    assert c["boot"] == "order=net0;scsi0" and "bootdisk" not in c  # an explicit order replaces bootdisk
    # The same through the asynchronous POST: the call returns a task, the task fails.
    upid = hearth.post(hearth.vm_path(vm) + "/config", data={"boot": "order=ide3"})
    st = hearth.wait_task(upid, ok=False)
    assert st["exitstatus"] == "invalid bootorder: device 'ide3' does not exist'"


def test_format_errors_use_proxmox_texts(hearth, vm):
    cases = {
        "net2": ("virtio,foo=1", "invalid format - format error\nnet2.foo: property is not defined in schema and "
                                 "the schema does not allow additional properties\n"),
        "net3": ("bridge=vmbr0", "invalid format - format error\nnet3.model: property is missing and it is not optional\n"),
        "scsi1": ("local:1,cache=sometimes", "invalid format - format error\nscsi1.cache: value 'sometimes' does not have "
                                            "a value in the enumeration 'none, writethrough, writeback, unsafe, directsync'\n"),
        "name": ("under_score", "invalid format - value does not look like a valid DNS name\n"),
    }
    for key, (value, message) in cases.items():
        r = hearth.request("PUT", hearth.vm_path(vm) + "/config", data={key: value})
        assert r.status_code == 400 and r.json()["errors"][key] == message, (key, r.json())
    r = hearth.request("PUT", hearth.vm_path(vm) + "/config", data={"virtio0": "local:" + "9" * 30})
    assert r.status_code == 400 and "virtio0" in r.json()["errors"]  # not a 500


def test_ovmf_without_efidisk_warns_and_the_task_says_so(hearth):
    hearth.create_vm(701, memory="128", bios="ovmf")
    st = hearth.vm_action(701, "start", ok=False)
    assert st["exitstatus"] == "WARNINGS: 1"  # a success with warnings, as PVE
    log = hearth.task_log(st["upid"])
    assert "WARN: no efidisk configured! Using temporary efivars disk." in log and log[-1] == "TASK WARNINGS: 1"
    assert hearth.get(hearth.vm_path(701) + "/status/current")["status"] == "running"
    hearth.vm_action(701, "stop")
    hearth.wait_task(hearth.delete(hearth.vm_path(701)))


def test_shutdown_defaults_to_sixty_seconds_and_stop_of_a_stopped_vm_is_fine(hearth):
    hearth.create_vm(702, memory="128")
    assert hearth.vm_action(702, "stop")["exitstatus"] == "OK"
    assert hearth.vm_action(702, "shutdown")["exitstatus"] == "OK"
    hearth.vm_action(702, "start")
    # Ansible's state=stopped force=true: no timeout parameter. The guest has no OS and
    # ignores ACPI, so the default wait (60 s, PVE's) runs out and it is stopped.
    upid = hearth.post(hearth.vm_path(702) + "/status/shutdown", data={"forceStop": 1})
    st = hearth.wait_task(upid, timeout=150)
    assert any("waiting up to 60 s" in l for l in hearth.task_log(upid)), hearth.task_log(upid)
    assert hearth.get(hearth.vm_path(702) + "/status/current")["status"] == "stopped"
    hearth.put(hearth.vm_path(702) + "/config", data={"startup": "order=1,down=7"})
    hearth.vm_action(702, "start")
    upid = hearth.post(hearth.vm_path(702) + "/status/shutdown", data={"forceStop": 1})
    hearth.wait_task(upid, timeout=60)
    assert any("waiting up to 7 s" in l for l in hearth.task_log(upid))  # startup down= wins
    hearth.wait_task(hearth.delete(hearth.vm_path(702)))


def test_sendkey_presses_keys_in_a_running_vm(hearth, vm):
    r = hearth.request("PUT", hearth.vm_path(vm) + "/sendkey", data={"key": "ret"})
    assert r.status_code == 500 and r.reason == f"VM {vm} not running"
    hearth.vm_action(vm, "start")
    for key in ["ctrl-alt-delete", "shift-a", "ret", "kp_enter", "spc", "f1", "0x1c"]:
        assert hearth.put(hearth.vm_path(vm) + "/sendkey", data={"key": key}) is None, key
    r = hearth.request("PUT", hearth.vm_path(vm) + "/sendkey", data={"key": "nosuchkey"})
    assert r.status_code == 500 and r.reason == "invalid parameter: nosuchkey"
    r = hearth.request("PUT", hearth.vm_path(vm) + "/sendkey", data={"key": "a;quit"})
    assert r.status_code == 500 and hearth.get(hearth.vm_path(vm) + "/status/current")["status"] == "running"
    hearth.vm_action(vm, "stop")


def test_move_disk_changes_format_like_telmate_asks(hearth):
    hearth.create_vm(703, memory="128", scsi0="local:1")
    base = f"/nodes/{hearth.node}/qemu/703/move_disk"
    r = hearth.request("POST", base, data={"disk": "scsi0", "storage": "local"})
    assert r.status_code == 500 and r.reason == "you can't move to the same storage with same format"
    r = hearth.request("POST", base, data={"disk": "scsi0"})
    assert r.status_code == 400 and set(r.json()["errors"]) == {"storage", "target-vmid"}
    r = hearth.request("POST", base, data={"disk": "scsi5", "storage": "local", "format": "raw"})
    assert r.status_code == 500 and r.reason == "disk 'scsi5' does not exist"
    hearth.wait_task(hearth.post(base, data={"disk": "scsi0", "storage": "local", "format": "raw"}))
    c = config(hearth, 703)
    assert c["scsi0"] == "local:703/vm-703-disk-1.raw,size=1G" and c["unused0"] == "local:703/vm-703-disk-0.qcow2"
    # Telmate's form: delete=1 drops the source.
    upid = hearth.post(base, data={"disk": "scsi0", "storage": "local", "format": "qcow2", "delete": 1})
    hearth.wait_task(upid)
    assert any("removing source volume 'local:703/vm-703-disk-1.raw'" in l for l in hearth.task_log(upid))
    assert not os.path.exists(os.path.join(hearth.dir, "images", "703", "vm-703-disk-1.raw"))
    # A running VM's disk moves too (QEMU's mirror; tests/api/test_move_disk.py has the details).
    hearth.vm_action(703, "start")
    hearth.wait_task(hearth.post(base, data={"disk": "scsi0", "storage": "local", "format": "raw", "delete": 1}),
                     timeout=300)
    assert config(hearth, 703)["scsi0"].startswith("local:703/vm-703-disk-") and ".raw" in config(hearth, 703)["scsi0"]
    hearth.vm_action(703, "stop")
    hearth.wait_task(hearth.delete(hearth.vm_path(703)))


# --- random and mutated values for every key: PVE's kinds of answers only -------------------

ALLOWED_500 = ("only root can set", "only root can modify", "SSH public key validation error",
               "cloud-init drive is already attached", "invalid bootorder")


def mutations(rng, key):
    alphabet = string.ascii_letters + string.digits + ",=;:/.-_+%@!*() \t'\"\\[]{}<>?$&|^~`#"
    seeds = ["local:1", "virtio,bridge=vmbr0", "order=scsi0;net0", "ip=10.0.0.2/24,gw=10.0.0.1", "1", "0", "512",
             "host", "socket", "/dev/ttyS0", "none,media=cdrom", "local:iso/x.iso,media=cdrom", "uuid=" + "a" * 8,
             "type=virtio", "enabled=1", "order=1,up=5", "q35", "user=local:snippets/x.yaml"]
    out = ["", " ", ",", "=", "==,,", "-1", "1e999", "9" * 40, "0x10", "\u00e9\u00e8", "a" * 5000,
           ''.join(rng.choice(alphabet) for _ in range(rng.randint(1, 80)))]
    for s in rng.sample(seeds, 6):
        t = list(s)
        for _ in range(rng.randint(1, 3)):
            t.insert(rng.randrange(len(t) + 1), rng.choice(alphabet))
        out.append(''.join(t))
        out.append(s + "," + rng.choice(["x=1", "size=", "=1", "file=", "bridge=x" * 3, "tag=99999"]))
    return out


def test_random_values_for_every_config_key_get_400s_naming_it(hearth):
    hearth.create_vm(704, memory="128")
    rng = random.Random(7)
    routes = hearth.get("/hearth/routes")
    put = next(r for r in routes if r["method"] == "PUT" and r["path"] == "/nodes/{node}/qemu/{vmid}/config")
    keys = [p["name"] for p in put["parameters"] if p.get("vm_config")]
    assert len(keys) > 60
    bad = []
    for key in keys:
        for value in mutations(rng, key):
            for route, data in (("PUT", {key: value}), ("POST-create", {"vmid": 705, key: value})):
                if route == "PUT":
                    r = hearth.request("PUT", hearth.vm_path(704) + "/config", data=data)
                else:
                    r = hearth.request("POST", f"/nodes/{hearth.node}/qemu", data=data)
                if r.status_code == 200:
                    if route == "POST-create":  # a valid create: let it finish and remove it
                        hearth.wait_task(r.json()["data"], ok=False)
                        if hearth.request("GET", hearth.vm_path(705) + "/config").status_code == 200:
                            hearth.wait_task(hearth.delete(hearth.vm_path(705)))
                    continue
                if r.status_code == 400 and key in (r.json().get("errors") or {}):
                    continue
                if r.status_code == 400 and value == "":  # an empty value is absent in PVE: "no options specified"
                    continue
                if r.status_code == 500 and r.reason.startswith(ALLOWED_500) or "only root" in r.reason:
                    continue
                bad.append((route, key, value[:40], r.status_code, r.reason[:120]))
    assert not bad, "\n".join(map(str, bad[:40]))
    assert hearth.proc.poll() is None
    hearth.wait_task(hearth.delete(hearth.vm_path(704)))

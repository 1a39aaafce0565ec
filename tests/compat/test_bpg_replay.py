"""Terraform's bpg provider (v0.111.1), replayed from its source: an API-token session that
clones a template, configures it (cloud-init, CPU, memory, NIC without a MAC), rewrites and
grows its disk in bytes, starts it, refreshes, changes memory (shutdown + start) and destroys
it. Bodies and queries are go-querystring's (sorted keys, QueryEscape), the UPID's '!' is
path-escaped, and every JSON type bpg decodes into is checked.

The guest is the tiny ISO (it powers off on ACPI), on a bridge in a network namespace."""
import os
import time
import urllib.parse

import pytest
import requests

from lab import bridged_hearth

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM5YSxhIRowx858BcCj24jfsMXqibW+NfhTUGaWaWrvP user@host"


def q(v):
    return urllib.parse.quote_plus(v, safe="-_.~")


def form(pairs):
    return "&".join(f"{k}={q(v)}" for k, v in sorted(pairs.items()))


class Bpg:
    def __init__(self, h):
        self.h = h
        self.s = requests.Session()
        self.s.verify = False
        self.s.headers.update({"Accept": "application/json", "Authorization": "PVEAPIToken=" + h.token})

    def call(self, method, path, body=None, ok=True):
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
        r = self.s.request(method, self.h.url + path, data=body.encode() if body is not None else None,
                           headers=headers, timeout=60)
        if ok:
            assert 200 <= r.status_code < 300, f"{method} {path}: {r.status_code} {r.reason} {r.text}"
            return r.json()["data"]
        return r

    def wait(self, upid):
        parts = upid.split(":")
        assert len(parts) >= 8 and all(int(p, 16) >= 0 for p in parts[2:5]) and parts[5] and parts[7]
        path = f"/nodes/{parts[1]}/tasks/{urllib.parse.quote(upid, safe=':@')}/status"  # '!' -> %21
        while True:
            r = self.call("GET", path, ok=False)
            if r.status_code == 400:
                time.sleep(1)
                continue
            d = r.json()["data"]
            assert isinstance(d["pid"], int) and isinstance(d["status"], str)
            if d["status"] == "running":
                time.sleep(0.5)
                continue
            if d["exitstatus"].startswith("WARNINGS"):
                log = self.call("GET", f"/nodes/{parts[1]}/tasks/{urllib.parse.quote(upid, safe=':@')}/log")
                assert all(isinstance(l["n"], int) and isinstance(l["t"], str) for l in log)
                return d["exitstatus"]
            assert d["exitstatus"] == "OK", d
            return "OK"

    def until_status(self, qm, want):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.call("GET", qm + "/status/current")["status"] == want:
                return
            time.sleep(0.5)
        raise AssertionError(f"never {want}")


def check_config_types(c):
    """The types bpg's encoding/json structs require (a mismatch fails every read)."""
    for k in ("cores", "sockets", "numa", "onboot", "balloon"):
        if k in c:
            assert isinstance(c[k], int), (k, c[k])
    assert isinstance(c["memory"], (int, str)) and str(c["memory"]).isdigit()
    for k, v in c.items():
        if k.startswith(("ide", "sata", "scsi", "virtio", "net", "ipconfig")) or k in ("agent", "cpu"):
            assert isinstance(v, str), (k, v)


@pytest.fixture(scope="module")
def lab():
    with bridged_hearth("bpg") as h:
        h.create_vm(9000, name="tmpl", memory="current=256", scsi0="local:2", net0="virtio,bridge=vmbr0",
                    ide0="local:iso/tiny.iso,media=cdrom", boot="order=ide0", serial0="socket", agent="1")
        h.wait_task(h.post(h.vm_path(9000) + "/template"))
        yield h


def test_bpg_clone_configure_start_update_destroy(lab):
    h = lab
    node = h.node
    tf = Bpg(h)
    qm = f"/nodes/{node}/qemu/101"
    # --- create
    assert tf.call("GET", "/cluster/nextid") in ("100", "101", 100, 101)
    tf.wait(tf.call("POST", f"/nodes/{node}/qemu/9000/clone", form({"full": "0", "name": "tf-vm", "newid": "101"})))
    while "lock" in tf.call("GET", qm + "/status/current"):
        time.sleep(1)
    c = tf.call("GET", qm + "/config")
    check_config_types(c)
    assert c["memory"] == "256"  # "current=256" comes back plain, as PVE prints it
    assert tf.call("PUT", qm + "/config", form({"delete": "ide2"})) is None  # not there: fine
    sshkeys = urllib.parse.quote_plus(KEY, safe="-_.~").replace("+", "%20")
    main = {"agent": "enabled=1,fstrim_cloned_disks=0,type=virtio", "balloon": "0", "ciuser": "ubuntu", "cores": "2",
            "cpu": "qemu64", "delete": ",".join(f"net{i}" for i in range(1, 32)), "ide2": "file=local:cloudinit,",
            "ipconfig0": "gw=10.0.0.1,ip=10.0.0.50/24", "memory": "2048", "nameserver": "1.1.1.1 8.8.8.8",
            "net0": "model=virtio,bridge=vmbr0,firewall=0", "numa": "0", "onboot": "1", "searchdomain": "example.com",
            "sockets": "1", "sshkeys": sshkeys}
    assert tf.call("PUT", qm + "/config", form(main)) is None
    c = tf.call("GET", qm + "/config")
    check_config_types(c)
    assert c["ide2"] == "local:101/vm-101-cloudinit.qcow2,media=cdrom"
    assert c["net0"].startswith("virtio=BC:24:11:") and c["net0"].endswith(",bridge=vmbr0,firewall=0")
    assert c["agent"] == "enabled=1,fstrim_cloned_disks=0,type=virtio" and c["cores"] == 2
    file = c["scsi0"].split(",")[0]
    disk = (f"file={file},format=qcow2,size=2147483648,aio=io_uring,backup=1,iothread=0,ssd=0,discard=ignore,"
            "cache=none,replicate=1")
    assert tf.call("PUT", qm + "/config", form({"scsi0": disk})) is None
    assert ",size=2G," in tf.call("GET", qm + "/config")["scsi0"]  # bytes in, PVE's units out
    upid = tf.call("PUT", qm + "/resize", form({"disk": "scsi0", "size": "21474836480"}))
    assert isinstance(upid, str)  # bpg: null here is "no data object"
    tf.wait(upid)
    assert tf.call("GET", qm + "/status/current")["status"] == "stopped"
    tf.wait(tf.call("POST", qm + "/status/start", form({"timeout": "1800"})))
    tf.until_status(qm, "running")

    # --- read
    vms = tf.call("GET", "/cluster/resources?type=vm")
    entry = next(v for v in vms if v["vmid"] == 101)
    assert isinstance(entry["maxmem"], int) and isinstance(entry["cpu"], (int, float)) and entry["node"] == node
    c = tf.call("GET", qm + "/config")
    check_config_types(c)
    assert ",size=20G," in c["scsi0"]
    assert tf.call("GET", "/pools") == []  # [] and never null
    r = tf.call("GET", qm + "/agent/network-get-interfaces", ok=False)
    assert r.status_code == 500  # no agent in the tiny guest: bpg keeps trying, then warns

    # --- update memory: shutdown (forceStop, bpg's timeout) and start
    h.serial_until(101, "HEARTH-TINY-READY", timeout=300)
    tf.call("GET", qm + "/config")
    assert tf.call("PUT", qm + "/config", form({"balloon": "0", "memory": "4096", "name": "tf-vm"})) is None
    tf.wait(tf.call("POST", qm + "/status/shutdown", form({"forceStop": "1", "timeout": "1800"})))
    tf.until_status(qm, "stopped")
    tf.wait(tf.call("POST", qm + "/status/start", form({"timeout": "1800"})))
    tf.until_status(qm, "running")
    assert tf.call("GET", qm + "/config")["memory"] == "4096"

    # --- destroy
    h.serial_until(101, "HEARTH-TINY-READY", timeout=300)
    tf.wait(tf.call("POST", qm + "/status/shutdown", form({"forceStop": "1", "timeout": "1800"})))
    tf.until_status(qm, "stopped")
    tf.wait(tf.call("DELETE", f"/nodes/{node}/qemu/101/?destroy-unreferenced-disks=1&purge=1"))
    r = tf.call("GET", qm + "/status/current", ok=False)
    assert r.status_code == 500 and "does not exist" in r.reason  # bpg polls until this fails
    images = os.path.join(h.dir, "images", "101")
    assert not os.path.exists(images) or os.listdir(images) == []  # destroy-unreferenced-disks: nothing left

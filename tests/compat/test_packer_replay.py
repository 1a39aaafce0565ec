"""Packer's Proxmox builders (packer-plugin-proxmox v1.2.4 and its proxmox-api-go), replayed
from their source: proxmox-iso typing a boot_command through sendkey, the agent wait, the
shutdown, the template conversion and the cloud-init drive added to the template; then
proxmox-clone from that template with its cloud-init settings, which removes the drive from
the running VM and adds it back to the new template.

The guest is the tiny ISO (it powers off on ACPI), on a bridge in a network namespace."""
import time
import urllib.parse

import pytest
import requests

from harness import ADMIN_PASSWORD
from lab import bridged_hearth

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM5YSxhIRowx858BcCj24jfsMXqibW+NfhTUGaWaWrvP packer"
# boot_command "<esc><wait>linux ks=http://10.0.0.1:8080/ks.cfg<enter>" through the plugin's key table.
BOOT_KEYS = ["esc", "l", "i", "n", "u", "x", "spc", "k", "s", "equal", "h", "t", "t", "p", "shift-semicolon", "slash",
             "slash", "1", "0", "dot", "0", "dot", "0", "dot", "1", "shift-semicolon", "8", "0", "8", "0", "slash", "k",
             "s", "dot", "c", "f", "g", "ret"]


def q(v):
    return urllib.parse.quote_plus(v, safe="-_.~")


def form(pairs, keep_empty=False):
    return "&".join(f"{k}={q(v)}" for k, v in pairs if keep_empty or v != "")


class Packer:
    """Telmate's proxmox-api-go as Packer drives it: ticket in Authorization, CSRF on everything."""

    def __init__(self, h):
        self.h = h
        self.s = requests.Session()
        self.s.verify = False
        self.s.headers["Accept"] = "application/json"
        r = self.s.post(h.url + "/access/ticket",
                        data=f"username={q('admin@pve')}&password={q(ADMIN_PASSWORD)}".encode(), timeout=30)
        d = r.json()["data"]
        self.s.headers.update({"Authorization": "PVEAuthCookie=" + d["ticket"],
                               "CSRFPreventionToken": d["CSRFPreventionToken"]})

    def call(self, method, path, body=None, ok=True):
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if method in ("POST", "PUT") else {}
        r = self.s.request(method, self.h.url + path, data=(body or "").encode(), headers=headers, timeout=60)
        if ok:
            # Errors reach Packer as the status line: the reason phrase is what it matches.
            assert 200 <= r.status_code < 300, f"{method} {path}: {r.status_code} {r.reason}"
            return r.json()
        return r

    def task(self, reply, exact_ok=False):
        assert "errors" not in reply
        upid = reply["data"]
        if upid is None:
            return ""
        node = upid.split(":")[1]
        deadline = time.monotonic() + 60  # Packer's task_timeout default
        while time.monotonic() < deadline:
            d = self.call("GET", f"/nodes/{node}/tasks/{upid}/status")["data"]
            if d.get("exitstatus") is not None:
                st = d["exitstatus"]
                assert st == "OK" if exact_ok else (st == "OK" or st.startswith("WARNINGS")), st
                return st
            time.sleep(0.5)
        raise AssertionError(f"Wait timeout for:{upid}")


@pytest.fixture(scope="module")
def lab():
    with bridged_hearth("pk") as h:
        yield h


def test_proxmox_iso_then_proxmox_clone(lab):
    h = lab
    node = h.node
    pk = Packer(h)
    # --- proxmox-iso
    nextid = pk.call("GET", "/cluster/nextid")["data"]
    assert isinstance(nextid, str)
    vmid = int(nextid)
    assert pk.call("GET", "/version")["data"]["version"].startswith("8.")
    create = [("vmid", nextid), ("name", "packer-build"), ("agent", "1"), ("kvm", "1"),
              ("description", "Packer ephemeral build VM"), ("cores", "1"), ("sockets", "1"), ("numa", "0"),
              ("cpu", "kvm64"), ("memory", "256"), ("ostype", "other"), ("onboot", "0"), ("scsihw", "lsi"),
              ("ide2", "local:iso/tiny.iso,media=cdrom"), ("scsi0", "local:2,cache=none,format=raw,replicate=0"),
              ("net0", "virtio=0A:1B:2C:3D:4E:5F,bridge=vmbr0"), ("serial0", "socket"), ("tags", "")]
    pk.task(pk.call("POST", f"/nodes/{node}/qemu", form(create)))
    perms = pk.call("GET", "/access/permissions")["data"]
    assert isinstance(perms, dict) and perms
    pk.task(pk.call("POST", f"/nodes/{node}/qemu/{vmid}/status/start"))
    for key in BOOT_KEYS:
        pk.call("PUT", f"/nodes/{node}/qemu/{vmid}/sendkey", form([("key", key)]))
    # The tiny guest has no agent: Packer keeps polling while the reason says so.
    r = pk.call("GET", f"/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces", ok=False)
    assert r.status_code == 500 and r.reason == "QEMU guest agent is not running"
    h.serial_until(vmid, "HEARTH-TINY-READY", timeout=300)  # (SSH provisioning happens here)
    cfg = pk.call("GET", f"/nodes/{node}/qemu/{vmid}/config")["data"]
    assert all(isinstance(cfg[k], int) for k in ("cores", "sockets", "numa", "onboot", "kvm"))
    assert not any("-cloudinit" in str(v) for v in cfg.values())  # nothing to remove yet
    pk.task(pk.call("POST", f"/nodes/{node}/qemu/{vmid}/status/shutdown"))
    pk.task(pk.call("POST", f"/nodes/{node}/qemu/{vmid}/template"), exact_ok=True)
    cfg = pk.call("GET", f"/nodes/{node}/qemu/{vmid}/config")["data"]
    assert "ide0" not in cfg and "media=cdrom" in cfg["ide2"]
    pk.task(pk.call("POST", f"/nodes/{node}/qemu/{vmid}/config",
                    form([("name", "debian-tmpl"), ("ide0", "local:cloudinit"), ("ide2", "local:iso/tiny.iso,media=cdrom")])))
    tmpl = pk.call("GET", f"/nodes/{node}/qemu/{vmid}/config")["data"]
    assert tmpl["template"] == 1 and tmpl["ide0"] == f"local:{vmid}/vm-{vmid}-cloudinit.qcow2,media=cdrom"
    assert tmpl["description"] == "Packer ephemeral build VM" and tmpl["name"] == "debian-tmpl"

    # --- proxmox-clone from that template
    src = next(e for e in pk.call("GET", "/cluster/resources?type=vm")["data"] if e.get("name") == "debian-tmpl")
    assert isinstance(src["vmid"], int)
    pk.call("GET", f"/nodes/{node}/qemu/{src['vmid']}/config")
    newid = pk.call("GET", "/cluster/nextid")["data"]
    pk.call("GET", "/cluster/resources?type=vm")
    pk.task(pk.call("POST", f"/nodes/{node}/qemu/{src['vmid']}/clone",
                    form([("newid", newid), ("target", node), ("name", "packer-clone"), ("full", "1")])))
    new = int(newid)
    pk.call("GET", f"/nodes/{node}/qemu/{new}/config")
    entry = next(e for e in pk.call("GET", "/cluster/resources?type=vm")["data"] if e["vmid"] == new)
    assert "lock" not in entry
    r = pk.call("GET", f"/cluster/ha/resources/{new}", ok=False)
    assert r.status_code == 500 and r.reason.startswith("no such resource")
    pk.call("GET", "/version")
    # PutWithTask keeps empty values (tags=) and repeats vmid in the body.
    sshkeys = urllib.parse.quote(KEY + "\n", safe="")
    update = [("vmid", newid), ("agent", "1"), ("description", "Packer ephemeral build VM"), ("kvm", "1"),
              ("name", "packer-clone"), ("onboot", "0"), ("ostype", "other"), ("scsihw", "lsi"), ("tags", ""),
              ("cores", "1"), ("numa", "0"), ("sockets", "1"), ("cpu", "kvm64"), ("memory", "256"),
              ("net0", "virtio=0A:1B:2C:3D:4E:60,bridge=vmbr0"), ("ciuser", "debian"), ("sshkeys", sshkeys),
              ("ipconfig0", "ip=dhcp")]
    pk.task(pk.call("PUT", f"/nodes/{node}/qemu/{new}/config", form(update, keep_empty=True)))
    assert isinstance(pk.call("GET", f"/nodes/{node}/qemu/{new}/pending")["data"], list)
    pk.task(pk.call("POST", f"/nodes/{node}/qemu/{new}/status/start"))
    h.serial_until(new, "HEARTH-TINY-READY", timeout=300)
    cfg = pk.call("GET", f"/nodes/{node}/qemu/{new}/config")["data"]
    assert cfg["ide0"] == f"local:{new}/vm-{new}-cloudinit.qcow2,media=cdrom" and cfg["ciuser"] == "debian"
    # stepRemoveCloudInitDrive, while the VM runs.
    pk.task(pk.call("POST", f"/nodes/{node}/qemu/{new}/config", form([("delete", "ide0,ciuser,sshkeys,ipconfig0")])))
    pk.task(pk.call("POST", f"/nodes/{node}/qemu/{new}/status/shutdown"))
    pk.task(pk.call("POST", f"/nodes/{node}/qemu/{new}/template"), exact_ok=True)
    cfg = pk.call("GET", f"/nodes/{node}/qemu/{new}/config")["data"]
    assert "ide0" not in cfg and "ciuser" not in cfg  # applied when it stopped: ide0 is free for the next step
    pk.task(pk.call("POST", f"/nodes/{node}/qemu/{new}/config", form([("name", "packer-clone"), ("ide0", "local:cloudinit")])))
    assert pk.call("GET", f"/nodes/{node}/qemu/{new}/config")["data"]["ide0"] == \
        f"local:{new}/vm-{new}-cloudinit.qcow2,media=cdrom"
    # Cleanup as Packer does on failure: stop (fine on a stopped template), delete.
    pk.task(pk.call("POST", f"/nodes/{node}/qemu/{new}/status/stop"))
    pk.task(pk.call("DELETE", f"/nodes/{node}/qemu/{new}"))

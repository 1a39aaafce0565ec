"""VM NICs on the host, through a real QEMU (no guest OS needed) in a network namespace the test
made: rate= as traffic control on the tap (HTB both ways, the guest's side through an ifb
device), changed and removed on the running VM; link_down= set live by QMP; a bridge or VLAN
change of a running VM re-plugs its tap; tag= and trunks= on bridges without VLAN filtering
give Proxmox's errors, or the bridge <bridge>v<tag> where the kernel has 802.1Q.
"""
import os
import re
import subprocess

import pytest

from harness import Hearth
from netns import NetNs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")


@pytest.fixture
def lab():
    name = f"hx-nic-{os.getpid()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    with NetNs(name) as ns:
        ns.ip("link", "add", "ens1", "type", "veth", "peer", "name", "ens1p")
        for br in ("vmbr0", "vmbr1"):
            ns.ip("link", "add", br, "type", "bridge")
            ns.ip("link", "set", br, "up")
        ns.ip("link", "set", "ens1", "master", "vmbr0")
        h = Hearth().start()
        try:
            yield ns, h
        finally:
            h.close()


def htb_rate(dev):
    """The rate of class 1:1 of the device's HTB in bytes per second (tc prints it in bits,
    rounded to 4-5 digits), or None."""
    out = subprocess.run(["tc", "class", "show", "dev", dev], capture_output=True, text=True).stdout
    m = re.search(r"class htb 1:1 .*?rate (\d+(?:\.\d+)?)([KMG]?)bit", out)
    if not m:
        return None
    return float(m.group(1)) * {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}[m.group(2)] / 8


def near(a, b):
    return a is not None and abs(a - b) <= b * 0.001


def config(h, vmid):
    return h.get(h.vm_path(vmid) + "/config")


def set_net(h, vmid, value):
    h.wait_task(h.post(h.vm_path(vmid) + "/config", data={"net0": value}))


def test_rate_limit_both_ways_changed_live(lab):
    ns, h = lab
    h.create_vm(100, memory=64, net0="virtio=BC:24:11:00:01:00,bridge=vmbr0,rate=2")
    upid = h.post(h.vm_path(100) + "/status/start")
    h.wait_task(upid)
    assert any("rate limit 2 MB/s" in l for l in h.task_log(upid))
    # 2 MB/s = 2 * 1,048,576 bytes per second (Proxmox's unit), to the guest on the tap...
    assert near(htb_rate("tap100i0"), 2 * 1048576)
    # ...and from the guest: the tap's ingress goes to ifb100i0, shaped the same.
    assert near(htb_rate("ifb100i0"), 2 * 1048576)
    filters = subprocess.run(["tc", "filter", "show", "dev", "tap100i0", "ingress"], capture_output=True,
                             text=True).stdout
    assert "mirred" in filters and "ifb100i0" in filters, filters

    set_net(h, 100, "virtio=BC:24:11:00:01:00,bridge=vmbr0,rate=0.5")
    assert config(h, 100)["net0"].endswith("rate=0.5"), "a rate change is applied, not pending"
    assert near(htb_rate("tap100i0"), 524288) and near(htb_rate("ifb100i0"), 524288)

    set_net(h, 100, "virtio=BC:24:11:00:01:00,bridge=vmbr0")
    assert htb_rate("tap100i0") is None and ns.link("ifb100i0") is None
    h.vm_action(100, "stop")
    assert ns.link("tap100i0") is None and ns.link("ifb100i0") is None


def test_link_down_and_bridge_move_of_a_running_vm(lab):
    ns, h = lab
    h.create_vm(101, memory=64, net0="virtio=BC:24:11:00:01:01,bridge=vmbr0,link_down=1")
    h.vm_action(101, "start")
    # QEMU shows a NIC's link state only to the guest; the task says what was set (QMP set_link).
    upid = h.post(h.vm_path(101) + "/config", data={"net0": "virtio=BC:24:11:00:01:01,bridge=vmbr0"})
    h.wait_task(upid)
    assert "net0: link up" in h.task_log(upid)
    upid = h.post(h.vm_path(101) + "/config", data={"net0": "virtio=BC:24:11:00:01:01,bridge=vmbr0,link_down=1"})
    h.wait_task(upid)
    assert "net0: link down" in h.task_log(upid)
    assert ns.link("tap101i0")["master"] == "vmbr0"

    set_net(h, 101, "virtio=BC:24:11:00:01:01,bridge=vmbr1,link_down=1")
    assert ns.link("tap101i0")["master"] == "vmbr1" and "UP" in ns.link("tap101i0")["flags"]
    assert config(h, 101)["net0"] == "virtio=BC:24:11:00:01:01,bridge=vmbr1,link_down=1"
    # A new NIC model needs a new device: it waits for the next start (pending).
    set_net(h, 101, "e1000=BC:24:11:00:01:01,bridge=vmbr1")
    pending = {p["key"]: p for p in h.get(h.vm_path(101) + "/pending")}
    assert pending["net0"]["pending"].startswith("e1000=") and pending["net0"]["value"].startswith("virtio=")
    h.vm_action(101, "stop")


def kernel_has_8021q():
    r = subprocess.run(["ip", "link", "add", "link", "ens1", "name", "probe.9", "type", "vlan", "id", "9"],
                       capture_output=True)
    if r.returncode == 0:
        subprocess.run(["ip", "link", "del", "probe.9"])
    return r.returncode == 0


def test_vlan_tag_and_trunks_without_vlan_filtering(lab):
    ns, h = lab
    # trunks need a VLAN-aware bridge (Proxmox's words); vmbr1 has no VLAN filtering.
    h.create_vm(102, memory=64, net0="virtio=BC:24:11:00:01:02,bridge=vmbr1,trunks=10;20")
    st = h.vm_action(102, "start", ok=False)
    assert "vlan aware feature need to be enabled to use trunks" in st["exitstatus"], st
    assert ns.link("tap102i0") is None
    # A tag on a bridge without physical ports: nothing to carry the VLAN.
    h.post(h.vm_path(102) + "/config", data={"net0": "virtio=BC:24:11:00:01:02,bridge=vmbr1,tag=5"})
    st = h.vm_action(102, "start", ok=False)
    assert "no physical interface on bridge 'vmbr1'" in st["exitstatus"], st
    # On vmbr0 (port ens1): the bridge vmbr0v5 with ens1.5, where the kernel has 802.1Q.
    h.post(h.vm_path(102) + "/config", data={"net0": "virtio=BC:24:11:00:01:02,bridge=vmbr0,tag=5"})
    if kernel_has_8021q():
        h.vm_action(102, "start")
        assert ns.link("tap102i0")["master"] == "vmbr0v5" and ns.link("ens1.5")["master"] == "vmbr0v5"
        h.vm_action(102, "stop")
    else:
        st = h.vm_action(102, "start", ok=False)
        assert "can't add vlan tag 5 to interface ens1" in st["exitstatus"], st
        assert "802.1Q" in st["exitstatus"], st
        assert ns.link("vmbr0v5") is None, "no empty VLAN bridge is left behind"
        assert ns.link("tap102i0") is None

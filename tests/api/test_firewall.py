"""The firewall through Proxmox's /cluster/firewall, /nodes/{node}/firewall and
/nodes/{node}/qemu/{vmid}/firewall, applied as nftables rules and checked with real traffic
in network namespaces the test made (never the host's network):

    hx-fw-lan (10.77.0.2) --veth-- [hx-fw: the daemon, 10.77.0.1 on fw0; bridge vmbr0]
    hx-fw-lan2 (10.88.0.5) --lan0--+ vmbr0 +--tap100i0-- hx-fw-vm (10.88.0.100, "VM 100")

"VM 100" is a namespace behind a veth named like the VM's tap: the guest rules match the
interface name, so this checks them with real packets without booting a guest.
"""
import os
import socket
import subprocess
import threading

import pytest

from harness import Hearth, wait_for
from netns import NetNs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, nftables)")

# Namespace names carry the pid: two runs at once (a CI check beside a developer) never meet.
SFX = str(os.getpid() % 100000)
LAN, LAN2, VM = "hx-fw-lan" + SFX, "hx-fw-lan2" + SFX, "hx-fw-vm" + SFX
PEERS = (LAN, LAN2, VM)


def run_in(ns, *cmd, check=True):
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, check=check)


def peer(ns, link_here, link_there, cidr, bridge=None):
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "link", "add", link_here, "type", "veth", "peer", "name", link_there, "netns", ns], check=True)
    if bridge:
        subprocess.run(["ip", "link", "set", link_here, "master", bridge], check=True)
    subprocess.run(["ip", "link", "set", link_here, "up"], check=True)
    run_in(ns, "ip", "addr", "add", cidr, "dev", link_there)
    run_in(ns, "ip", "link", "set", link_there, "up")
    run_in(ns, "ip", "link", "set", "lo", "up")


def listen(ns, ip, port):
    """A TCP server in namespace `ns` that answers every connection with b"hi"."""
    code = ("import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('{ip}', {port})); s.listen(16)\nwhile True:\n c,_=s.accept(); c.sendall(b'hi'); c.close()")
    return subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-c", code])


def can_connect(ns, ip, port):
    code = (f"import socket\ntry:\n s=socket.create_connection(('{ip}', {port}), 2); print(s.recv(2).decode())\n"
            "except Exception as e: print('blocked')")
    return run_in(ns, "python3", "-c", code).stdout.strip() == "hi"


def can_ping(ns, ip):
    return run_in(ns, "ping", "-c", "1", "-W", "2", ip, check=False).returncode == 0


@pytest.fixture
def lab():
    for n in PEERS:
        subprocess.run(["ip", "netns", "del", n], capture_output=True)
    servers = []
    with NetNs("hx-fw" + SFX) as ns:
        try:
            peer(LAN, "fw0", "fw1", "10.77.0.2/24")
            ns.ip("addr", "add", "10.77.0.1/24", "dev", "fw0")
            ns.ip("link", "add", "vmbr0", "type", "bridge")
            ns.ip("link", "set", "vmbr0", "up")
            peer(LAN2, "lan0", "eth0", "10.88.0.5/24", bridge="vmbr0")
            peer(VM, "tap100i0", "eth0", "10.88.0.100/24", bridge="vmbr0")
            # The node's services and the VM's, each on 22 (SSH) and 8080.
            for port in (22, 8080):
                servers.append(threading.Thread(target=serve, args=("10.77.0.1", port), daemon=True))
                servers[-1].start()
                servers.append(listen(VM, "10.88.0.100", port))
            h = Hearth().start()
            try:
                yield ns, h
            finally:
                h.close()
        finally:
            for s in servers:
                if isinstance(s, subprocess.Popen):
                    s.kill()
            for n in PEERS:
                subprocess.run(["ip", "netns", "del", n], capture_output=True)


def serve(ip, port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, port))
    s.listen(16)
    while True:
        c, _ = s.accept()
        c.sendall(b"hi")
        c.close()


def rule(h, path, **fields):
    h.post(path + "/rules", data={"enable": 1, **fields})


def tables():
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout


def test_node_firewall_allows_ssh_and_ping_and_drops_the_rest(lab):
    ns, h = lab
    assert can_connect(LAN, "10.77.0.1", 8080) and can_ping(LAN, "10.77.0.1")
    dc = "/cluster/firewall"
    rule(h, dc, type="in", action="ACCEPT", macro="SSH")
    rule(h, dc, type="in", action="ACCEPT", macro="Ping")
    assert "hearth" not in tables(), "nothing is applied while the datacenter firewall is off"
    h.put(dc + "/options", data={"enable": 1})
    assert "table inet hearth" in tables()
    assert can_connect(LAN, "10.77.0.1", 22)
    assert can_ping(LAN, "10.77.0.1")
    assert not can_connect(LAN, "10.77.0.1", 8080), "the default policy_in DROP"
    # The daemon's API (here on loopback) is never cut off, and its port (picked at start) is
    # among the management ports open from the node's own networks.
    assert h.get("/version")
    listing = subprocess.run(["nft", "list", "table", "inet", "hearth"], capture_output=True, text=True).stdout
    mgmt = [l for l in listing.splitlines() if "ip saddr 10.77.0.0/24 tcp dport {" in l]
    assert mgmt and all(f" {p}" in mgmt[0] for p in (22, 8006, h.port)), listing

    # Rules as Proxmox lists them: newest first, `pos` a number in the list and a string alone.
    rules = h.get(dc + "/rules")
    assert [(r["pos"], r["macro"], r["enable"]) for r in rules] == [(0, "Ping", 1), (1, "SSH", 1)]
    assert len({r["digest"] for r in rules}) == 1
    one = h.get(dc + "/rules/1")
    assert one["pos"] == "1" and one["macro"] == "SSH" and one["type"] == "in"
    h.delete(dc + "/rules/0", params={"digest": rules[0]["digest"]})
    assert not can_ping(LAN, "10.77.0.1")
    r = h.request("DELETE", dc + "/rules/0", params={"digest": rules[0]["digest"]})
    assert r.status_code == 500 and "detected modified configuration" in r.text

    # The node's own rules come first and can open more.
    rule(h, f"/nodes/{h.node}/firewall", type="in", action="ACCEPT", proto="tcp", dport="8080", source="10.77.0.0/24")
    assert can_connect(LAN, "10.77.0.1", 8080)

    # A restart applies the stored rule set again (a kill -9 leaves the kernel's as it was).
    h.kill9()
    subprocess.run(["nft", "delete", "table", "inet", "hearth"], check=True)
    h.start()
    wait_for("the rule set back", lambda: "table inet hearth" in tables(), 30)
    assert can_connect(LAN, "10.77.0.1", 22) and not can_ping(LAN, "10.77.0.1")

    h.put(dc + "/options", data={"enable": 0})
    assert "hearth" not in tables()
    assert can_ping(LAN, "10.77.0.1")


def test_vm_firewall_filters_its_nic_with_real_traffic(lab):
    ns, h = lab
    h.create_vm(100, memory=64, net0="virtio=BC:24:11:00:0F:01,bridge=vmbr0,firewall=1")
    mac = run_in(VM, "cat", "/sys/class/net/eth0/address").stdout.strip()
    # The "VM" is a namespace: its NIC must carry the configured MAC for the macfilter.
    run_in(VM, "ip", "link", "set", "eth0", "address", "bc:24:11:00:0f:01")
    vm = "/nodes/%s/qemu/100/firewall" % h.node
    h.put("/cluster/firewall/options", data={"enable": 1})
    assert can_connect(LAN2, "10.88.0.100", 8080), "the VM's own firewall is still off"
    rule(h, vm, type="in", action="ACCEPT", macro="SSH")
    h.put(vm + "/options", data={"enable": 1})
    wait_for("the VM's chains", lambda: "tap100i0-in" in subprocess.run(
        ["nft", "list", "table", "inet", "hearth"], capture_output=True, text=True).stdout, 30)
    assert can_connect(LAN2, "10.88.0.100", 22)
    assert not can_connect(LAN2, "10.88.0.100", 8080), "the VM's policy_in DROP"
    assert not can_ping(LAN2, "10.88.0.100")
    # Outgoing is allowed (policy_out ACCEPT) and the replies come back (conntrack).
    srv = listen(LAN2, "10.88.0.5", 8081)
    try:
        wait_for("the lan server", lambda: can_connect(VM, "10.88.0.5", 8081), 20, 0.2)
        # macfilter: a spoofed source MAC is dropped on the bridge.
        run_in(VM, "ip", "link", "set", "eth0", "address", "02:00:00:00:00:66")
        run_in(VM, "ip", "neigh", "flush", "all")
        run_in(LAN2, "ip", "neigh", "flush", "all")
        assert not can_connect(VM, "10.88.0.5", 8081)
        h.put(vm + "/options", data={"macfilter": 0})
        # The guest's neighbour entry failed meanwhile; the kernel asks again after a while.
        wait_for("the unfiltered MAC through", lambda: can_connect(VM, "10.88.0.5", 8081), 30, 0.5)
    finally:
        srv.kill()
    assert mac  # the namespace had a MAC of its own before the test set the VM's

    opts = h.get(vm + "/options")
    assert opts["enable"] == 1 and opts["macfilter"] == 0 and "digest" in opts
    # The firewall configuration goes with the VM (a new VM 100 starts without it).
    h.wait_task(h.delete(h.vm_path(100)))
    h.create_vm(100, memory=64)
    assert h.get(vm + "/rules") == [] and h.get(vm + "/options") == {"digest": h.get(vm + "/options")["digest"]}


def test_bad_rules_and_options_name_the_field(lab):
    ns, h = lab
    dc = "/cluster/firewall"
    cases = [
        ({"type": "in", "action": "ACCEPT", "macro": "NoSuch"}, "macro", "unknown macro 'NoSuch'"),
        ({"type": "in", "action": "accept"}, "action", "unknown action 'accept'"),
        ({"type": "in", "action": "ACCEPT", "dport": "22"}, "proto", "'dport' requires this property"),
        ({"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "70000"}, "dport", "invalid port '70000'"),
        ({"type": "in", "action": "ACCEPT", "source": "10.0.0.0/33"}, "source", "invalid IP address"),
        ({"type": "in", "action": "ACCEPT", "source": "+nosuch"}, "source", "no such ipset 'nosuch'"),
        ({"type": "bogus", "action": "ACCEPT"}, "type", "does not have a value in the enumeration"),
    ]
    for data, field, text in cases:
        r = h.request("POST", dc + "/rules", data=data)
        assert r.status_code == 400 and text in r.json()["errors"][field], (data, r.text)
    assert h.get(dc + "/rules") == []
    r = h.request("PUT", dc + "/options", data={"policy_in": "allow"})
    assert r.status_code == 400 and "policy_in" in r.json()["errors"]
    r = h.request("PUT", dc + "/rules/3", data={"comment": "x"})
    assert r.status_code == 500 and "no rule at position 3" in r.text
    r = h.request("GET", "/nodes/%s/qemu/999/firewall/rules" % h.node)
    assert r.status_code >= 400
    macros = {m["macro"]: m["descr"] for m in h.get(dc + "/macros")}
    assert len(macros) == 86 and macros["SSH"] == "Secure shell traffic"

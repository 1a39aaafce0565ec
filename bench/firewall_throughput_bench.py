#!/usr/bin/python3
"""Guest-to-guest TCP throughput on a bridge through hearth's firewall, against the same pair
without it. The two guests are network namespaces behind veths named like VM taps
(tap100i0, tap101i0) on vmbr0 in the daemon's namespace: the firewall matches interface names,
so this measures its cost on the bridge path without the noise of two emulated guests (TCG).
The firewall allows SSH and iperf3's port in both VMs (the datacenter, both VMs and their
NICs enabled, macfilter on), so every packet passes the marking chain, conntrack and the
VM chains. Prints a table; asserts nothing. Needs build/hearth, root and iperf3.

    /usr/bin/python3 bench/firewall_throughput_bench.py [--seconds 5] [--rounds 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "lib"))
for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(var, None)

from harness import Hearth  # noqa: E402
from netns import NetNs  # noqa: E402

GUESTS = {"hx-bench-vm1": ("tap100i0", "10.66.0.1", "bc:24:11:00:66:01"),
          "hx-bench-vm2": ("tap101i0", "10.66.0.2", "bc:24:11:00:66:02")}


def run_in(ns, *cmd):
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, check=True)


def iperf(seconds):
    out = run_in("hx-bench-vm1", "iperf3", "-J", "-c", "10.66.0.2", "-t", str(seconds))
    return json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    for ns in GUESTS:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    with NetNs("hx-bench-fw") as host:
        host.ip("link", "add", "vmbr0", "type", "bridge")
        host.ip("link", "set", "vmbr0", "up")
        for ns, (tap, ip, mac) in GUESTS.items():
            subprocess.run(["ip", "netns", "add", ns], check=True)
            host.ip("link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", ns)
            host.ip("link", "set", tap, "master", "vmbr0", "up")
            for cmd in (["ip", "link", "set", "eth0", "address", mac], ["ip", "addr", "add", ip + "/24", "dev", "eth0"],
                        ["ip", "link", "set", "eth0", "up"], ["ip", "link", "set", "lo", "up"]):
                run_in(ns, *cmd)
        server = subprocess.Popen(["ip", "netns", "exec", "hx-bench-vm2", "iperf3", "-s"], stdout=subprocess.DEVNULL)
        h = Hearth()
        try:
            h.start()
            iperf(1)  # warm-up
            off = [iperf(args.seconds) for _ in range(args.rounds)]
            for vmid, (tap, ip, mac) in zip((100, 101), GUESTS.values()):
                h.create_vm(vmid, memory=64, net0=f"virtio={mac.upper()},bridge=vmbr0,firewall=1")
                fw = f"/nodes/{h.node}/qemu/{vmid}/firewall"
                h.post(fw + "/rules", data={"type": "in", "action": "ACCEPT", "macro": "SSH", "enable": 1})
                h.post(fw + "/rules", data={"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "5201", "enable": 1})
                h.put(fw + "/options", data={"enable": 1})
            h.put("/cluster/firewall/options", data={"enable": 1})
            listing = subprocess.run(["nft", "list", "table", "inet", "hearth"], capture_output=True, text=True).stdout
            assert "tap101i0-in" in listing, listing
            iperf(1)
            on = [iperf(args.seconds) for _ in range(args.rounds)]
        finally:
            server.kill()
            h.close()
            for ns in GUESTS:
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    a, b = statistics.median(off), statistics.median(on)
    print(f"guest-to-guest TCP on a bridge, iperf3 {args.seconds} s x {args.rounds}, medians (Gbit/s)")
    print(f"{'without the firewall':32} {a:8.2f}")
    print(f"{'through the firewall':32} {b:8.2f}")
    print(f"{'ratio':32} {b / a:8.2f}")


if __name__ == "__main__":
    main()

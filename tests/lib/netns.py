"""Run part of a test inside a network namespace the test made (never the host's network).

The test process itself enters the namespace with setns(2), so the daemon it starts, the
taps it creates and the HTTP connections to it all live there.
"""
import ctypes
import json
import os
import subprocess

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


class NetNs:
    def __init__(self, name):
        self.name = name

    def __enter__(self):
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(target)
        self.ip("link", "set", "lo", "up")
        return self

    def ip(self, *args):
        subprocess.run(["ip", *args], check=True)

    def link(self, name):
        """The link as `ip -j link show` reports it in this namespace, or None."""
        r = subprocess.run(["ip", "-j", "link", "show", name], capture_output=True, text=True)
        return json.loads(r.stdout)[0] if r.returncode == 0 else None

    def __exit__(self, *exc):
        _libc.setns(self.home, CLONE_NEWNET)
        os.close(self.home)
        subprocess.run(["ip", "netns", "del", self.name], check=False)


class NetNsPair:
    """Two namespaces joined by a veth pair, for tests with two daemons: the test process enters
    `a` (as NetNs does) and holds `ip_a`/24 on `link`+"0"; namespace `b` holds `ip_b`/24 on
    `link`+"1". A daemon started with `wrapper` runs in `b`. Both are removed on exit."""

    def __init__(self, a, b, link, ip_a, ip_b):
        self.a, self.b, self.link, self.ip_a, self.ip_b = NetNs(a), b, link, ip_a, ip_b
        self.wrapper = ["ip", "netns", "exec", b]

    def __enter__(self):
        subprocess.run(["ip", "netns", "del", self.b], capture_output=True)
        self.a.__enter__()
        try:
            subprocess.run(["ip", "netns", "add", self.b], check=True)
            subprocess.run(["ip", "link", "add", self.link + "0", "type", "veth", "peer", "name", self.link + "1",
                            "netns", self.b], check=True)
            subprocess.run(["ip", "addr", "add", self.ip_a + "/24", "dev", self.link + "0"], check=True)
            subprocess.run(["ip", "link", "set", self.link + "0", "up"], check=True)
            for cmd in (["ip", "addr", "add", self.ip_b + "/24", "dev", self.link + "1"],
                        ["ip", "link", "set", self.link + "1", "up"], ["ip", "link", "set", "lo", "up"]):
                subprocess.run(self.wrapper + cmd, check=True)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        subprocess.run(["ip", "netns", "del", self.b], capture_output=True)
        self.a.__exit__(*exc)

"""libvirt as a peer for hearth's VM benchmarks: Debian's libvirtd (9.0) with its QEMU
driver, started here with no networks, driven through python3-libvirt (/usr/bin/python3).

The daemon needs the `libvirt-qemu` user that Debian's libvirt-daemon-system would create;
it is created here if missing. It runs with a configuration directory of its own (a
qemu.conf with user and group root; the domain XMLs land there too), bind-mounted over
/etc/libvirt in a private mount namespace: with the default
user, libvirt probes QEMU's capabilities as root (KVM device usable) but checks them as
libvirt-qemu (not usable) and so throws its capability cache away on every define - 44 s
each here. Domains this module defines are named `hearth-bench-*` and are removed again."""
import ctypes
import os
import tempfile
import shutil
import subprocess
import threading
import time

import libvirt  # python3-libvirt

SOCK = "/run/libvirt/libvirt-sock"
PREFIX = "hearth-bench-"


class Libvirt:
    def __init__(self, workdir=None):
        self.proc = None
        self.workdir = workdir  # where its configuration (and so the domain XMLs) lives

    def start(self):
        if subprocess.run(["getent", "passwd", "libvirt-qemu"], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/var/lib/libvirt",
                            "--shell", "/usr/sbin/nologin", "--user-group", "libvirt-qemu"], check=True)
        try:
            conn = self.connect()  # one already runs
        except libvirt.libvirtError:
            self.etc = tempfile.mkdtemp(prefix="hearth-bench-libvirt-", dir=self.workdir)
            shutil.copytree("/etc/libvirt", self.etc, dirs_exist_ok=True)
            with open(os.path.join(self.etc, "qemu.conf"), "w") as f:
                f.write('user = "root"\ngroup = "root"\nstdio_handler = "file"\n')
            etc = self.etc.encode()

            def private_qemu_conf():
                libc = ctypes.CDLL("libc.so.6", use_errno=True)
                if libc.unshare(0x00020000) != 0:  # CLONE_NEWNS
                    raise OSError(ctypes.get_errno(), "unshare")
                libc.mount(None, b"/", None, 0x4000 | 0x40000, None)  # MS_REC | MS_PRIVATE
                if libc.mount(etc, b"/etc/libvirt", None, 0x1000, None) != 0:  # MS_BIND
                    raise OSError(ctypes.get_errno(), "mount /etc/libvirt")

            self.proc = subprocess.Popen(["libvirtd", "--timeout", "0"], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, preexec_fn=private_qemu_conf)
            deadline = time.monotonic() + 60
            while True:
                try:
                    conn = self.connect()
                    break
                except libvirt.libvirtError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        # The QEMU driver probes QEMU's capabilities on the first define (tens of seconds
        # under TCG): do it before anything is measured.
        conn.defineXML(domain_xml(PREFIX + "warmup")).undefine()
        self.cleanup(conn)
        conn.close()
        return self

    def connect(self):
        return libvirt.open("qemu:///system")

    def pid(self):
        if self.proc:
            return self.proc.pid
        out = subprocess.run(["pidof", "libvirtd"], capture_output=True, text=True).stdout.split()
        return int(out[0]) if out else None

    def cleanup(self, conn):
        for d in conn.listAllDomains():
            if d.name().startswith(PREFIX):
                if d.isActive():
                    d.destroy()
                d.undefine()

    def stop(self):
        conn = self.connect()
        self.cleanup(conn)
        conn.close()
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            shutil.rmtree(self.etc, ignore_errors=True)


def domain_xml(name, memory_mib=512, vcpus=2, iso=None):
    """What hearth's create makes in the benchmark: memory, vCPUs, a virtio NIC on a bridge."""
    cdrom = (f"<disk type='file' device='cdrom'><source file='{iso}'/><target dev='hdc' bus='ide'/><readonly/></disk>"
             if iso else "")
    nic = "<interface type='user'><model type='virtio'/></interface>" if iso else \
          "<interface type='bridge'><source bridge='vmbr0'/><model type='virtio'/></interface>"
    return (f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>{memory_mib}</memory><vcpu>{vcpus}</vcpu>"
            f"<os><type arch='x86_64' machine='pc'>hvm</type><boot dev='cdrom'/></os>"
            f"<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>{cdrom}{nic}"
            f"<serial type='pty'/></devices></domain>")


def define_many(n, threads=8):
    """n domains defined from `threads` client threads (a connection each). Returns seconds."""
    names = [f"{PREFIX}{i}" for i in range(n)]

    def worker(chunk):
        conn = libvirt.open("qemu:///system")
        for name in chunk:
            conn.defineXML(domain_xml(name))
        conn.close()

    t0 = time.monotonic()
    ts = [threading.Thread(target=worker, args=(names[i::threads],)) for i in range(threads)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    return time.monotonic() - t0


def list_all(conn):
    """What a listing needs per VM: id, name, state, memory, vCPUs, CPU time."""
    return [(d.name(), d.info()) for d in conn.listAllDomains()]


def available():
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return False
    return shutil.which("libvirtd") is not None

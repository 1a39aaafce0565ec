"""Test harness: a real `hearth serve` on loopback with a temporary data dir.

Every test talks HTTPS to the real daemon; VMs are real QEMU processes. Waits are for
events (files, task states, serial markers) with generous deadlines, never fixed sleeps.
"""
import base64
import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.parse

import requests
import urllib3

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

HEARTH_BIN = os.environ.get("HEARTH_BIN", os.path.join(os.path.dirname(__file__), "../../build/hearth"))
SRC = os.environ.get("HEARTH_SRC", os.path.join(os.path.dirname(__file__), "../.."))
ADMIN_PASSWORD = "hearth-test-pw"
# What AddressSanitizer, LeakSanitizer, UndefinedBehaviorSanitizer and ThreadSanitizer print
# (sanitizer builds: docs/hardening.md), from the first line to the end of the report.
SANITIZER_REPORT = re.compile(r"^(?:==\d+==ERROR: \w+Sanitizer|WARNING: ThreadSanitizer|[^\n]*runtime error: ).*?"
                              r"(?:^SUMMARY: .*?$|\Z)", re.M | re.S)


# HEARTH_RECORD_REQUESTS=<file>: every request the tests send (and UPIDs they get back) is
# appended as a JSON line; fuzz/make_corpus.py turns the recording into seed corpora.
RECORD = os.environ.get("HEARTH_RECORD_REQUESTS")


def record_exchange(r):
    req = r.request
    body = req.body or b""
    if isinstance(body, str):
        body = body.encode()
    if not isinstance(body, bytes) or len(body) > 65536:
        body = b""
    entry = {"method": req.method, "target": req.path_url, "headers": dict(req.headers),
             "body": base64.b64encode(body).decode(), "status": r.status_code}
    try:
        data = r.json().get("data")
        if isinstance(data, str) and data.startswith("UPID:"):
            entry["upid"] = data
    except ValueError:
        pass
    with open(RECORD, "a") as f:
        f.write(json.dumps(entry) + "\n")


def wait_for(what, fn, timeout=60.0, interval=0.05):
    """Polls fn() until it returns a truthy value; fails naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Hearth:
    def __init__(self, node="testnode", accel="tcg", data_dir=None, extra_args=()):
        self.node = node
        self.accel = accel
        self.own_dir = data_dir is None
        self.dir = data_dir or tempfile.mkdtemp(prefix="hearth-test-")
        self.extra_args = list(extra_args)
        self.wrapper = []  # e.g. ["prlimit", "--nofile=64:64"], or ["ip", "netns", "exec", "ns"]
        self.listen = "127.0.0.1:0"  # host:port; port 0 = any free one
        self.env = {}  # extra environment for the daemon, e.g. HEARTH_TEST_CRASH_AT
        self.proc = None
        self.port = None
        self.token = None
        self.root = None
        self.session = requests.Session()
        self.session.verify = False

    # --- lifecycle
    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "the previous daemon still runs: stop it first"
        port_file = os.path.join(self.dir, "run", "api-port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        self.log = open(os.path.join(self.dir, "hearth.log"), "ab")
        self.proc = subprocess.Popen(
            self.wrapper + [HEARTH_BIN, "serve", "--data-dir", self.dir, "--listen", self.listen, "--node", self.node,
             "--accel", self.accel] + self.extra_args,
            stdout=self.log, stderr=self.log, env={**os.environ, **self.env})
        wait_for("hearth API ready", lambda: self.proc.poll() is not None or os.path.exists(port_file), 30)
        if self.proc.poll() is not None:
            raise AssertionError("hearth exited at start:\n" + self.read_log())
        self.port = int(open(port_file).read())
        self.host = self.listen.rsplit(":", 1)[0]
        self.url = f"https://{self.host}:{self.port}/api2/json"
        if self.token is None:
            self.admin("user", "add", "admin@pve", "--admin", "--password-stdin", stdin=ADMIN_PASSWORD)
            self.token = self.admin("token", "add", "admin@pve!test").strip()
        # root@pam (not its tokens, as in PVE) is the one user allowed host-level things:
        # host paths, devices, args. Root on the host gets its ticket locally.
        self.root = json.loads(self.admin("ticket", "root@pam"))
        return self

    def admin(self, *args, stdin=None):
        r = subprocess.run([HEARTH_BIN, *args, "--data-dir", self.dir], input=stdin, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        assert not SANITIZER_REPORT.search(r.stderr), r.stderr
        return r.stdout

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()
        self.log = None
        self.session.close()
        self.session = requests.Session()
        self.session.verify = False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def sanitizer_reports(self):
        """Reports a sanitizer build (ASan, UBSan, TSan) wrote to the daemon's log."""
        log = self.read_log()
        return [m.group(0) for m in SANITIZER_REPORT.finditer(log)]

    def kill_vms(self):
        """Kills every QEMU of this data dir (tests must not leave VMs behind)."""
        run = os.path.join(self.dir, "run")
        if not os.path.isdir(run):
            return
        for f in os.listdir(run):
            if f.endswith(".pid"):
                try:
                    pid = int(open(os.path.join(run, f)).read().strip())
                    cmd = open(f"/proc/{pid}/cmdline", "rb").read()
                    if run.encode() in cmd:
                        os.kill(pid, signal.SIGKILL)
                except (OSError, ValueError):
                    pass

    def close(self):
        self.stop()
        self.kill_vms()
        self.session.close()
        reports = self.sanitizer_reports()
        if reports:  # the log stays for the CI artifacts; the report fails the test
            raise AssertionError(f"sanitizer report in {self.dir}/hearth.log:\n" + "\n".join(reports))
        if self.own_dir and not os.environ.get("HEARTH_KEEP_TEST_DIRS"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def fingerprint(self):
        """The SHA-256 fingerprint of the daemon's certificate, as the CLI pins it."""
        pem = open(os.path.join(self.dir, "priv", "hearth.crt")).read()
        digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest().upper()
        return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))

    def read_log(self):
        try:
            return open(os.path.join(self.dir, "hearth.log"), errors="replace").read()
        except OSError:
            return ""

    # --- HTTP
    def request(self, method, path, params=None, data=None, auth="token", headers=None, **kw):
        h = dict(headers or {})
        if auth == "token":
            h["Authorization"] = "PVEAPIToken=" + self.token
        elif auth == "root":
            auth = self.root
        if isinstance(auth, dict):  # a ticket login result
            h["Cookie"] = "PVEAuthCookie=" + auth["ticket"]
            if method != "GET":
                h["CSRFPreventionToken"] = auth["CSRFPreventionToken"]
        r = self.session.request(method, self.url + path, params=params, data=data, headers=h, timeout=30, **kw)
        if RECORD:
            record_exchange(r)
        return r

    def call(self, method, path, **kw):
        """Returns `data`, asserting a 2xx answer."""
        r = self.request(method, path, **kw)
        assert 200 <= r.status_code < 300, f"{method} {path}: {r.status_code} {r.reason} {r.text}"
        return r.json()["data"]

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, **kw):
        return self.call("POST", path, **kw)

    def put(self, path, **kw):
        return self.call("PUT", path, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    def login(self, user="admin@pve", password=ADMIN_PASSWORD):
        r = self.session.post(self.url + "/access/ticket", data={"username": user, "password": password}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["data"]

    # --- tasks
    def task_status(self, upid):
        node = upid.split(":")[1]
        return self.get(f"/nodes/{node}/tasks/{urllib.parse.quote(upid, safe='')}/status")

    def task_log(self, upid):
        node = upid.split(":")[1]
        return [l["t"] for l in self.get(f"/nodes/{node}/tasks/{urllib.parse.quote(upid, safe='')}/log",
                                         params={"limit": 0})]

    def wait_task(self, upid, timeout=120, ok=True):
        st = wait_for(f"task {upid}", lambda: (s := self.task_status(upid)) and s["status"] == "stopped" and s,
                      timeout, 0.05)
        if ok:
            assert st["exitstatus"] == "OK", f"task failed: {st['exitstatus']}\n" + "\n".join(self.task_log(upid))
        return st

    def vm_path(self, vmid):
        return f"/nodes/{self.node}/qemu/{vmid}"

    def create_vm(self, vmid, wait=True, auth="token", **config):
        upid = self.post(f"/nodes/{self.node}/qemu", data={"vmid": vmid, **config}, auth=auth)
        if wait:
            self.wait_task(upid)
        return upid

    def vm_action(self, vmid, action, ok=True, wait=120, **params):
        """Runs a status action and waits for its task. `params` go to the API."""
        upid = self.post(self.vm_path(vmid) + "/status/" + action, data=params)
        return self.wait_task(upid, timeout=wait, ok=ok)

    def serial_until(self, vmid, marker, timeout=300):
        seen = {"text": "", "offset": 0}

        def poll():
            d = self.get(self.vm_path(vmid) + "/serial-log", params={"offset": seen["offset"]})
            seen["text"] += d["text"]
            seen["offset"] = d["offset"]
            return marker in seen["text"]

        wait_for(f"'{marker}' on VM {vmid}'s serial console", poll, timeout, 0.25)
        return seen["text"]


def cli(hearth, *args, ok=True, timeout=300):
    """Runs the `hearth` CLI as a client of this daemon (token and pinned fingerprint in its environment)."""
    env = dict(os.environ, HEARTH_URL=f"https://127.0.0.1:{hearth.port}", HEARTH_TOKEN=hearth.token,
               HEARTH_FINGERPRINT=hearth.fingerprint())
    r = subprocess.run([HEARTH_BIN, *args], capture_output=True, text=True, env=env, timeout=timeout)
    if ok:
        assert r.returncode == 0, f"hearth {' '.join(args)}: {r.stderr}"
    return r


def volume_path(h, volid):
    """The host path of a storage volume ("local:100/vm-100-disk-0.qcow2"), as the API gives it."""
    return h.get(f"/nodes/{h.node}/storage/{volid.split(':')[0]}/content/{volid}")["path"]


def disk_volid(h, vmid, key="scsi0"):
    """The volume a VM's drive `key` names in its current config."""
    return h.get(h.vm_path(vmid) + "/config")[key].split(",")[0]


def disk_path(h, vmid, key="scsi0"):
    """The host path of a VM's drive `key`."""
    return volume_path(h, disk_volid(h, vmid, key))


def raw_bytes(path, out):
    """The guest-visible bytes of image `path` (any format, also while QEMU holds it): converted
    to the raw file `out`, then read."""
    subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", path, out], check=True)
    return open(out, "rb").read()


def qemu_pid(h, vmid):
    st = h.get(h.vm_path(vmid) + "/status/current")
    return st.get("pid")


def qmp(h, vmid, command, **arguments):
    """One QMP command on the VM's command monitor, as the daemon sends them (a short
    connection each): QEMU's "return" value; an AssertionError with QEMU's text on an error.
    For what a test checks or does behind the API's back (a write "inside" the guest with
    human-monitor-command qemu-io, the block nodes a backup leaves)."""
    path = os.path.join(h.dir, "run", f"{vmid}.qmp")
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(path)
        f = s.makefile("rwb")

        def reply():
            while True:
                msg = json.loads(f.readline())
                if "return" in msg or "error" in msg:
                    return msg

        json.loads(f.readline())  # the greeting
        f.write(b'{"execute": "qmp_capabilities"}\n')
        f.flush()
        reply()
        f.write(json.dumps({"execute": command, "arguments": arguments}).encode() + b"\n")
        f.flush()
        msg = reply()
    assert "error" not in msg, f"{command}: {msg['error'].get('desc')}"
    return msg["return"]


def guest_write(h, vmid, drive, cmd):
    """A qemu-io command ("write -P 0x43 8M 4M") on the running VM's device `drive` (scsi0; a
    virtio-blk disk by its QOM path, "/machine/peripheral/virtio0/virtio-backend"),
    as if the guest wrote: it goes through the device's block graph, so a backup sees it as
    a guest write (copied aside, marked dirty). QEMU 7.2 prints qemu-io's result to its own
    stdout, not to the monitor: a test checks the effect (a restore, the disk), not a reply."""
    qmp(h, vmid, "human-monitor-command", **{"command-line": f'qemu-io -d {drive} "{cmd}"'})


def tiny_iso():
    """The cached tiny bootable ISO (built from Debian's packages)."""
    out = subprocess.run([os.path.join(SRC, "scripts/build-tiny-iso.sh")], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def tls_connect(port, source="127.0.0.1"):
    """A raw TLS connection to the daemon from `source` (127.0.0.x), certificate unchecked."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
    return ctx.wrap_socket(raw)


class BtrfsLoop:
    """A btrfs file system of `size` bytes on a loop device, mounted at `.mnt` while in the
    `with` block (root and btrfs-progs needed: scripts/install-deps.sh installs them)."""

    def __init__(self, size=512 << 20):
        self.size = size

    @staticmethod
    def available():
        return os.geteuid() == 0 and shutil.which("mkfs.btrfs") is not None

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="hearth-btrfs-")
        img, self.mnt = os.path.join(self.dir, "fs.img"), os.path.join(self.dir, "mnt")
        os.mkdir(self.mnt)
        with open(img, "wb") as f:
            f.truncate(self.size)
        subprocess.run(["mkfs.btrfs", "-q", img], check=True, capture_output=True)
        subprocess.run(["mount", "-o", "loop", img, self.mnt], check=True)
        return self

    def __exit__(self, *exc):
        subprocess.run(["umount", "-l", self.mnt], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def btrfs_storage(h, storage="tank"):
    """A btrfs storage `storage` of daemon `h` on a fresh loop device for the `with` block
    (yields its mount point); the test is skipped, saying why, where btrfs cannot be mounted."""
    if not BtrfsLoop.available():
        import pytest
        pytest.skip("needs root and btrfs-progs to mount a btrfs loop device")
    with BtrfsLoop() as fs:
        h.post("/storage", data={"storage": storage, "type": "btrfs", "path": fs.mnt})
        yield fs.mnt
        h.delete(f"/storage/{storage}")


def upload(h, path, name, content="iso", storage="local", **fields):
    with open(path, "rb") as f:
        r = h.request("POST", f"/nodes/{h.node}/storage/{storage}/upload",
                      data={"content": content, **fields}, files={"filename": (name, f)})
    return r

"""Security and robustness (issue 6): each defect's kind, through the running daemon."""
import http.client
import os
import random
import resource
import socket
import ssl
import stat
import subprocess
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness import Hearth, tls_connect, wait_for


def task_url(h, upid):
    return f"/nodes/{h.node}/tasks/{urllib.parse.quote(upid, safe='')}"


# --- 1. user ids round-trip exactly through tickets -----------------------------------------

def test_percent_in_a_user_name_never_becomes_another_user(hearth):
    hearth.admin("user", "add", "%61dmin@pve", "--password-stdin", stdin="pct-secret")
    t = hearth.login("%61dmin@pve", "pct-secret")
    assert t["username"] == "%61dmin@pve"
    assert t["ticket"].startswith("PVE:%2561dmin@pve:")  # '%' escaped in the signed text
    r = hearth.request("POST", f"/nodes/{hearth.node}/qemu", data={"vmid": 180}, auth=t)
    assert r.status_code == 403, "a read-only user must stay read-only"
    assert "VM.Allocate" not in hearth.get("/access/permissions", auth=t)["/"]
    # Renewal hands out a ticket for the same user, never for admin@pve.
    assert hearth.login("%61dmin@pve", t["ticket"])["username"] == "%61dmin@pve"
    r = hearth.session.post(hearth.url + "/access/ticket", data={"username": "admin@pve", "password": t["ticket"]})
    assert r.status_code == 401
    # The cookie's own percent-encoding is undone once, and only once.
    cookie = "PVEAuthCookie=" + urllib.parse.quote(t["ticket"], safe="")
    r = hearth.session.get(hearth.url + "/access/permissions", headers={"Cookie": cookie})
    assert r.status_code == 200 and "VM.Allocate" not in r.json()["data"]["/"]


def test_user_ids_follow_proxmox_grammar(hearth):
    for bad in ["a b@pve", "a:b@pve", "a/b@pve", "x@nosuchrealm", "@pve", "x" * 61 + "@pve"]:
        r = subprocess.run([os.environ.get("HEARTH_BIN", "../build/hearth"), "user", "add", bad, "--password-stdin",
                            "--data-dir", hearth.dir], input="pw", capture_output=True, text=True)
        assert r.returncode != 0 and "userid" in r.stderr, bad
    hearth.admin("user", "add", "a@b@pve", "--password-stdin", stdin="at-secret")  # '@' may be in the name
    assert hearth.login("a@b@pve", "at-secret")["username"] == "a@b@pve"


# --- 2. privileges as Proxmox checks them ---------------------------------------------------

@pytest.fixture(scope="module")
def viewer(hearth):
    hearth.admin("user", "add", "viewer@pve", "--password-stdin", stdin="view-secret")
    return hearth.login("viewer@pve", "view-secret")


def test_only_owners_or_sys_modify_stop_tasks(hearth, viewer):
    hearth.create_vm(181, memory="128")
    hearth.vm_action(181, "start")
    # The guest has no OS, so the ACPI shutdown waits for its timeout: a running task.
    upid = hearth.post(hearth.vm_path(181) + "/status/shutdown", data={"timeout": 120})
    wait_for("shutdown task running", lambda: hearth.task_status(upid)["status"] == "running", 30)
    r = hearth.request("DELETE", task_url(hearth, upid), auth=viewer)
    assert r.status_code == 403 and r.reason == f"Permission check failed (/nodes/{hearth.node}, Sys.Modify)"
    assert hearth.task_status(upid)["status"] == "running"
    assert hearth.get(hearth.vm_path(181) + "/status/current")["status"] == "running"
    assert hearth.delete(task_url(hearth, upid)) is None  # an administrator may
    hearth.wait_task(upid, ok=False)
    hearth.vm_action(181, "stop")
    r = hearth.request("DELETE", task_url(hearth, upid.replace(":qmshutdown:", ":qmstart:")))
    assert r.status_code == 400 and r.json()["errors"]["upid"] == "no such task"
    hearth.wait_task(hearth.delete(hearth.vm_path(181)))


def test_read_only_users_cannot_make_the_node_fetch_urls(hearth, viewer):
    r = hearth.request("GET", f"/nodes/{hearth.node}/query-url-metadata", params={"url": "http://127.0.0.1:9/x"},
                       auth=viewer)
    assert r.status_code == 403 and r.reason == "Permission check failed"


def test_read_only_users_see_no_disk_paths_and_no_password_hashes(hearth, viewer):
    hearth.create_vm(184, memory="128", scsi0="local:1", ide2="local:cloudinit", ciuser="ops", cipassword="sekrit")
    vols = hearth.get(f"/nodes/{hearth.node}/storage/local/content", auth=viewer)
    assert not [v for v in vols if v["content"] == "images"]
    r = hearth.request("GET", f"/nodes/{hearth.node}/storage/local/content/local:184/vm-184-disk-0.qcow2", auth=viewer)
    assert r.status_code == 403
    dump = hearth.get(hearth.vm_path(184) + "/cloudinit/dump", params={"type": "user"}, auth=viewer)
    assert "**********" in dump and "$6$" not in dump
    assert "$6$" in hearth.get(hearth.vm_path(184) + "/cloudinit/dump", params={"type": "user"})
    hearth.wait_task(hearth.delete(hearth.vm_path(184)))


# --- 3. nothing blocks the I/O threads; outbound calls have deadlines -----------------------

class SilentServer:
    """Accepts TCP connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(c)

    def close(self):
        self.sock.close()
        for c in self.held:
            c.close()


def test_version_stays_fast_while_agent_and_url_calls_hang(hearth):
    silent = SilentServer()
    hearth.create_vm(182, memory="128", agent="1")
    hearth.vm_action(182, "start")  # no guest agent inside: agent calls wait for it
    try:
        def agent_call(_):
            return hearth.request("GET", hearth.vm_path(182) + "/agent/get-host-name").status_code

        def url_call(_):
            t0 = time.monotonic()
            r = requests.get(hearth.url + f"/nodes/{hearth.node}/query-url-metadata",
                             params={"url": f"http://127.0.0.1:{silent.port}/x.iso"},
                             headers={"Authorization": "PVEAPIToken=" + hearth.token}, verify=False, timeout=120)
            return r.status_code, r.reason, time.monotonic() - t0

        pool = ThreadPoolExecutor(40)
        agents = [pool.submit(agent_call, i) for i in range(24)]
        urls = [pool.submit(url_call, i) for i in range(8)]
        time.sleep(0.5)  # let them get going
        worst = 0.0
        for _ in range(20):
            t0 = time.monotonic()
            r = requests.get(hearth.url + "/version", headers={"Authorization": "PVEAPIToken=" + hearth.token},
                             verify=False, timeout=30)
            worst = max(worst, time.monotonic() - t0)
            assert r.status_code == 200
            time.sleep(0.1)
        assert worst < 2.0, f"GET /version took {worst:.1f} s while agent and URL calls hung"
        assert all(f.result() == 500 for f in agents)  # "QEMU guest agent is not running"
        for f in urls:
            status, reason, took = f.result()
            assert status == 500 and "timed out" in reason and took < 60, (status, reason, took)
        pool.shutdown()

        # A download from a server that never answers can be cancelled while it waits.
        upid = hearth.post(f"/nodes/{hearth.node}/storage/local/download-url",
                           data={"url": f"http://127.0.0.1:{silent.port}/big.iso", "content": "iso",
                                 "filename": "big.iso"})
        wait_for("download running", lambda: hearth.task_status(upid)["status"] == "running", 30)
        time.sleep(1)
        t0 = time.monotonic()
        assert hearth.delete(task_url(hearth, upid)) is None
        st = hearth.wait_task(upid, timeout=30, ok=False)
        assert "cancelled" in st["exitstatus"] and time.monotonic() - t0 < 15
        assert not os.path.exists(os.path.join(hearth.dir, "iso", "big.iso"))
    finally:
        silent.close()
        hearth.vm_action(182, "stop")
        hearth.wait_task(hearth.delete(hearth.vm_path(182)))


# --- 4. connection limits, accept errors, slow clients --------------------------------------

def closed_within(sock, seconds):
    """True if the peer closes `sock` within `seconds`."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError):
        return True
    except socket.timeout:
        return False


def test_slow_and_idle_clients_are_dropped_and_one_address_cannot_take_all_connections():
    h = Hearth(extra_args=["--client-timeout", "3"]).start()
    try:
        # A client that sends one header byte per second is dropped after the timeout.
        s = tls_connect(h.port)
        t0 = time.monotonic()
        closed = False
        for ch in b"GET /api2/json/version HTTP/1.1\r\nHost: x\r\n":
            try:
                s.send(bytes([ch]))
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                closed = True
                break
            time.sleep(1)
            if time.monotonic() - t0 > 20:
                break
        assert closed or closed_within(s, 1), "a slow client was kept past its timeout"
        assert time.monotonic() - t0 < 15
        # 100 idle connections from one address: the next one from it is closed at once...
        idle = [socket.create_connection(("127.0.0.1", h.port)) for _ in range(100)]
        extra = socket.create_connection(("127.0.0.1", h.port))
        assert closed_within(extra, 2)
        # ...while another address is served.
        s2 = tls_connect(h.port, source="127.0.0.2")
        s2.sendall(b"GET /api2/json/version HTTP/1.1\r\nHost: x\r\nAuthorization: PVEAPIToken=" +
                   h.token.encode() + b"\r\n\r\n")
        assert s2.recv(64).startswith(b"HTTP/1.1 200")
        # Idle connections go after the timeout.
        assert all(closed_within(c, 10) for c in idle[:5])
        for c in idle + [extra, s2]:
            c.close()
    finally:
        h.close()


def test_connections_that_never_start_tls_lose_their_place_quickly():
    """With the default 60 s client timeout, connections that never start a TLS handshake
    still go after the 10 s handshake deadline, so one address cannot lock itself (or, from
    many addresses, everyone) out for a minute."""
    h = Hearth().start()
    try:
        idle = [socket.create_connection(("127.0.0.1", h.port)) for _ in range(100)]
        extra = socket.create_connection(("127.0.0.1", h.port))
        assert closed_within(extra, 2)  # the address is at its quota
        t0 = time.monotonic()
        assert closed_within(idle[0], 30)
        assert time.monotonic() - t0 < 25, "handshake deadline not applied"
        for c in idle:
            c.close()
        wait_for("served again", lambda: requests.get(h.url + "/version", verify=False, timeout=5,
                                                      headers={"Authorization": "PVEAPIToken=" + h.token}).ok, 30)
    finally:
        h.close()


def cpu_seconds(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif("UBSAN_OPTIONS" in os.environ, reason=(
    "sanitizer build: UBSan's vptr check validates memory through a pipe(2), so with no "
    "descriptor left it reports valid objects as 'invalid vptr' and aborts; scripts/test.sh "
    "runs this file on the release build too"))
def test_out_of_file_descriptors_does_not_spin():
    h = Hearth(extra_args=["--client-timeout", "5"])
    h.wrapper = ["prlimit", "--nofile=64:64"]
    h.start()
    try:
        conns = [socket.create_connection(("127.0.0.1", h.port)) for _ in range(80)]  # more than it has fds
        time.sleep(0.5)
        c0, t0 = cpu_seconds(h.proc.pid), time.monotonic()
        time.sleep(3)
        used = (cpu_seconds(h.proc.pid) - c0) / (time.monotonic() - t0)
        assert used < 0.5, f"the daemon used {used:.0%} CPU while out of file descriptors"
        # Once the idle ones time out, the API answers again.
        def answers():
            try:
                return requests.get(h.url + "/version", headers={"Authorization": "PVEAPIToken=" + h.token},
                                    verify=False, timeout=5).status_code == 200
            except requests.RequestException:
                return False
        wait_for("API again", answers, 60, 0.5)
        for c in conns:
            c.close()
    finally:
        h.close()


def test_uploads_without_credentials_never_reach_the_disk(hearth, viewer):
    """An upload's body is spooled to disk only after its caller is known to hold the upload
    privilege: otherwise anyone could fill the disk with a few large uploads. As in Proxmox,
    uploads need no CSRF token, so the privilege is checked before the body is read."""
    tmp = os.path.join(hearth.dir, "tmp")
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    forged = hearth.login()["ticket"].replace("admin@pve", "root@pam")
    cookie = lambda t: {"Cookie": "PVEAuthCookie=" + urllib.parse.quote(t)}
    cases = [({}, 401), (cookie(forged), 401), (cookie(viewer["ticket"]), 403)]
    for headers, status in cases:
        conn = http.client.HTTPSConnection("127.0.0.1", hearth.port, context=ctx, timeout=60)
        size = 8 << 20
        conn.putrequest("POST", f"/api2/json/nodes/{hearth.node}/storage/local/upload")
        conn.putheader("Content-Type", "multipart/form-data; boundary=x")
        conn.putheader("Content-Length", str(size))
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        try:
            for i in range(size >> 20):
                conn.send(b"\0" * (1 << 20))
                if i == 6:  # the server has read megabytes of this body by now
                    assert os.listdir(tmp) == [], headers
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the whole body is sent
        r = conn.getresponse()
        assert r.status == status, (headers, r.status, r.reason)
        if status == 403:
            assert r.reason == "Permission check failed (/storage/local, Datastore.AllocateTemplate)"
        conn.close()
    assert os.listdir(tmp) == []
    # A ticket holder with the privilege uploads without a CSRF token, as with Proxmox.
    files = {"filename": ("seed.iso", b"iso bytes")}
    r = requests.post(hearth.url + f"/nodes/{hearth.node}/storage/local/upload", data={"content": "iso"},
                      files=files, cookies={"PVEAuthCookie": hearth.login()["ticket"]}, verify=False, timeout=60)
    assert r.status_code == 200, r.text
    hearth.wait_task(r.json()["data"])
    assert "local:iso/seed.iso" in [v["volid"] for v in hearth.get(f"/nodes/{hearth.node}/storage/local/content")]
    hearth.wait_task(hearth.delete(f"/nodes/{hearth.node}/storage/local/content/local:iso/seed.iso"))


# --- 5. every operation on a VM holds its lock ----------------------------------------------

def test_parallel_cloudinit_regeneration_and_start(hearth):
    hearth.create_vm(183, memory="128", ide2="local:cloudinit", ciuser="ops")
    with ThreadPoolExecutor(16) as pool:
        start = pool.submit(lambda: hearth.vm_action(183, "start"))
        codes = list(pool.map(lambda _: hearth.request("PUT", hearth.vm_path(183) + "/cloudinit").status_code,
                              range(50)))
        start.result()
    assert codes == [200] * 50
    img = os.path.join(hearth.dir, "images", "183")
    assert [f for f in os.listdir(img) if ".new" in f] == []  # no staging files left behind
    hearth.vm_action(183, "stop")
    hearth.wait_task(hearth.delete(hearth.vm_path(183)))


# --- 6. files are private -------------------------------------------------------------------

def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_state_keys_logs_and_volumes_are_private():
    h = Hearth().start()
    try:
        h.create_vm(185, memory="128", scsi0="local:1", ide2="local:cloudinit", cipassword="x")
        assert mode(h.dir) == 0o700
        for rel in ["hearth.db", "priv/authkey.pem", "priv/hearth.key", "images/185/vm-185-disk-0.qcow2",
                    "images/185/vm-185-cloudinit.qcow2"]:
            assert mode(os.path.join(h.dir, rel)) & 0o077 == 0, rel
        logs = [os.path.join(r, f) for r, _, fs in os.walk(os.path.join(h.dir, "tasks")) for f in fs]
        assert logs and all(mode(p) & 0o077 == 0 for p in logs)
        # An install made under a looser umask is fixed at the next start.
        h.stop()
        subprocess.run(["chmod", "-R", "go+rX", h.dir], check=True)
        assert mode(os.path.join(h.dir, "hearth.db")) & 0o044
        h.start()
        assert mode(h.dir) == 0o700 and mode(os.path.join(h.dir, "hearth.db")) & 0o077 == 0
        assert mode(os.path.join(h.dir, "images/185/vm-185-disk-0.qcow2")) & 0o077 == 0
        assert "made" in h.read_log() and "private" in h.read_log()
    finally:
        h.close()


# --- 7. host devices ------------------------------------------------------------------------

def test_device_paths_stay_in_dev_and_need_root(hearth):
    hearth.create_vm(186, memory="128")
    for key, value in [("serial0", "/dev/../tmp/x"), ("serial0", "/dev/./../etc/shadow"), ("serial1", "/tmp/x")]:
        for auth in ("token", "root"):
            r = hearth.request("PUT", hearth.vm_path(186) + "/config", data={key: value}, auth=auth)
            assert r.status_code == 400 and key in r.json()["errors"], (key, value, auth)
    for key, value, why in [("serial0", "/dev/ttyS0", "only root can modify 'serial0' config for real devices"),
                            ("usb0", "host=1234:5678", "only root can set 'usb0' config for real devices"),
                            ("parallel0", "/dev/parport0", "only root can set 'parallel0' config"),
                            ("args", "-no-reboot", "only root can set 'args' config")]:
        r = hearth.request("PUT", hearth.vm_path(186) + "/config", data={key: value})
        assert r.status_code == 500 and r.reason == why, (key, r.status_code, r.reason)
    # root@pam's own API tokens are not root@pam (PVE compares the auth id "root@pam!name").
    root_token = hearth.admin("token", "add", "root@pam!ci").strip()
    for key, value in [("args", "-no-reboot"), ("serial0", "/dev/ttyS0")]:
        r = requests.put(hearth.url + hearth.vm_path(186) + "/config", data={key: value}, verify=False,
                         headers={"Authorization": "PVEAPIToken=" + root_token}, timeout=30)
        assert r.status_code == 500 and r.reason.startswith("only root can"), (key, r.status_code, r.reason)
    assert "args" not in hearth.get(hearth.vm_path(186) + "/config")
    # root may name a device, but at start it must still be a character device under /dev.
    target = tempfile.NamedTemporaryFile(delete=False)
    link = f"/dev/hearth-test-{os.getpid()}"
    os.symlink(target.name, link)
    try:
        hearth.put(hearth.vm_path(186) + "/config", data={"serial0": link}, auth="root")
        # reverting a real device's key re-sets it: root only, as in PVE
        r = hearth.request("PUT", hearth.vm_path(186) + "/config", data={"revert": "serial0"})
        assert r.status_code == 500 and r.reason == "only root can modify 'serial0' config for real devices", r.reason
        st = hearth.vm_action(186, "start", ok=False)
        assert "not a character device under /dev" in st["exitstatus"]
        assert os.path.getsize(target.name) == 0
        assert hearth.get(hearth.vm_path(186) + "/status/current")["status"] == "stopped"
    finally:
        os.unlink(link)
        os.unlink(target.name)
    hearth.wait_task(hearth.delete(hearth.vm_path(186)))


# --- 9. no input crashes the daemon ---------------------------------------------------------

def test_values_of_any_length_get_400_and_the_daemon_lives(hearth):
    hearth.create_vm(187, memory="128")
    rng = random.Random(6)
    keys = ["efidisk0", "scsi0", "net0", "serial0", "name", "cpu", "boot", "smbios1", "ipconfig0", "sshkeys",
            "description", "cicustom", "tags", "machine", "vga", "agent", "memory", "startup", "nameserver"]
    for key in keys:
        for value in ["a" * 60000, "ab" * 30000, "(" * 100000, ",=" * 40000,
                      "".join(rng.choice("ab,=;:/.()[]*+?\\|") for _ in range(5000))]:
            r = hearth.request("PUT", hearth.vm_path(187) + "/config", data={key: value})
            if key == "description" and len(value) <= 8192:
                continue  # free text
            if key == "sshkeys" and r.status_code == 500:
                assert r.reason == "SSH public key validation error"  # PVE's 500 for encoded non-keys
                continue
            assert r.status_code == 400 and key in r.json()["errors"], (key, value[:20], r.status_code, r.text[:200])
    r = hearth.request("PUT", hearth.vm_path(187) + "/config", data={"efidisk0": "a" * 60000})
    assert r.json()["errors"]["efidisk0"] == "value may only be 4096 characters long"
    r = hearth.request("GET", "/cluster/resources", params={"type": "v" * 60000})
    assert r.status_code == 400 and "type" in r.json()["errors"]
    r = hearth.request("GET", "/cluster/resources", params={"type": "v" * 100000})
    assert r.status_code == 414  # past the 64 KiB header limit
    # Deeply nested JSON is refused before it is parsed.
    r = hearth.request("PUT", hearth.vm_path(187) + "/config", data="[" * 200000,
                       headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    r = hearth.request("PUT", hearth.vm_path(187) + "/config", data='{"name": [[[["x"]]]]}',
                       headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert hearth.proc.poll() is None and hearth.get("/version")["version"].startswith("8.")
    hearth.wait_task(hearth.delete(hearth.vm_path(187)))


def test_requests_that_do_not_parse_get_400_not_a_silent_close(hearth):
    heads = [(b"Content-Length: -5\r\n", b"abc"), (b"Content-Length: 99999999999999999999999\r\n", b"abc"),
             (b"Content-Length: 3\r\nContent-Length: 4\r\n", b"abc"),
             (b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", b"abc"),
             (b"Transfer-Encoding: gzip\r\n", b"abc"),  # not ending in chunked: no knowable length
             (b"Transfer-Encoding: chunked\r\n", b"fffffffffffffffffff\r\nabc"),  # chunk size overflows
             (b"Transfer-Encoding: chunked\r\n", b"a" * 3_000_000)]  # a chunk-size line that never ends
    for extra, body in heads:
        s = tls_connect(hearth.port)
        s.settimeout(30)
        try:
            s.sendall(b"POST /api2/json/access/ticket HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n" + body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # answered and shut before the whole body went out; the answer is still readable
        answer = s.recv(64)
        assert answer.startswith(b"HTTP/1.1 400"), (extra, answer)
        s.close()
    assert hearth.get("/version")["version"]

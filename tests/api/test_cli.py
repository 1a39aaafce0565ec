"""The `hearth` CLI against a real daemon: it is a client of the API (token in the environment)."""
import json
import os
import select
import socket
import ssl
import subprocess
import threading
import time

from harness import HEARTH_BIN, cli  # noqa: F401 (cli: other suites import it from here)


def test_vm_verbs(hearth):
    r = cli(hearth, "vm", "create", "900", "name=cli1", "memory=128", "scsi0=local:1", "net0=virtio")
    assert "TASK OK" in r.stderr and "scsi0: allocating" in r.stderr  # progress from the task log
    assert "cli1" in cli(hearth, "vm", "list").stdout
    cli(hearth, "vm", "config", "900", "cores=2", "description=from the cli")
    cfg = cli(hearth, "vm", "config", "900").stdout
    assert "cores: 2" in cfg and "scsi0: local:900/vm-900-disk-0.qcow2,size=1G" in cfg
    cli(hearth, "vm", "resize", "900", "scsi0", "+1G")
    assert "size=2G" in cli(hearth, "vm", "config", "900").stdout
    cli(hearth, "vm", "start", "900")
    assert "status: running" in cli(hearth, "vm", "status", "900").stdout
    r = cli(hearth, "vm", "agent", "900", "ping", ok=False)
    assert r.returncode != 0 and "No QEMU guest agent configured" in r.stderr
    cli(hearth, "vm", "stop", "900")
    cli(hearth, "vm", "template", "900")
    cli(hearth, "vm", "clone", "900", "901", "name=cli2")
    assert "local:900/base-900-disk-0.qcow2/901/vm-901-disk-0.qcow2" in cli(hearth, "vm", "config", "901").stdout
    cli(hearth, "vm", "destroy", "901")
    cli(hearth, "vm", "destroy", "900")
    assert "cli1" not in cli(hearth, "vm", "list").stdout


def test_errors_name_the_field_and_exit_nonzero(hearth):
    r = cli(hearth, "vm", "create", "902", "cores=many", ok=False)
    assert r.returncode == 2 and "cores: type check ('integer') failed - got 'many'" in r.stderr
    r = cli(hearth, "vm", "status", "999", ok=False)
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_api_verb_and_tasks(hearth):
    out = cli(hearth, "api", "get", "/version").stdout
    assert '"version": "8.4.1"' in out
    upid = cli(hearth, "api", "post", f"/nodes/{hearth.node}/qemu", "vmid=903", "memory=128").stdout.strip()
    assert upid.startswith("UPID:")
    assert "TASK OK" in cli(hearth, "task", "wait", upid).stderr
    assert "TASK OK" in cli(hearth, "task", "log", upid).stdout
    assert "qmcreate" in cli(hearth, "task", "list").stdout
    cli(hearth, "vm", "destroy", "903")


def test_storage_verbs(hearth, tmp_path):
    iso = tmp_path / "cli.iso"
    iso.write_bytes(os.urandom(1 << 20))
    assert "TASK OK" in cli(hearth, "storage", "upload", str(iso)).stderr
    assert "local:iso/cli.iso" in cli(hearth, "storage", "content", "local", "--content", "iso").stdout
    assert "local" in cli(hearth, "storage", "list").stdout
    url = f"https://127.0.0.1:{hearth.port}/api2/json/access/domains"
    assert "TASK OK" in cli(hearth, "storage", "download-url", url, "v.raw", "--content", "import",
                            "--no-verify-certificates").stderr


def test_login_keeps_a_ticket_for_later_calls(hearth, tmp_path):
    session = tmp_path / "session.json"
    env = dict(os.environ, HEARTH_SESSION=str(session), HEARTH_FINGERPRINT=hearth.fingerprint())
    env.pop("HEARTH_TOKEN", None)
    url = f"https://127.0.0.1:{hearth.port}"
    r = subprocess.run([HEARTH_BIN, "--url", url, "login", "--user", "admin@pve", "--password-stdin"],
                       input="hearth-test-pw\n", capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert oct(session.stat().st_mode & 0o777) == "0o600"
    r = subprocess.run([HEARTH_BIN, "vm", "create", "905", "memory=128"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr  # a write: the saved CSRF token is sent too
    r = subprocess.run([HEARTH_BIN, "vm", "destroy", "905"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([HEARTH_BIN, "--url", url, "login", "--user", "admin@pve", "--password-stdin"],
                       input="wrong\n", capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode != 0 and "authentication failure" in r.stderr


def test_a_saved_ticket_goes_only_to_the_server_that_issued_it(hearth, tmp_path):
    session = tmp_path / "session.json"
    env = dict(os.environ, HEARTH_SESSION=str(session), HEARTH_FINGERPRINT=hearth.fingerprint())
    env.pop("HEARTH_TOKEN", None)
    env.pop("HEARTH_URL", None)
    r = subprocess.run([HEARTH_BIN, "--url", f"https://127.0.0.1:{hearth.port}", "login", "--user", "admin@pve",
                        "--password-stdin"], input="hearth-test-pw\n", capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    # Another server (any TLS listener) records what the CLI sends it.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(hearth.dir, "priv", "hearth.crt"), os.path.join(hearth.dir, "priv", "hearth.key"))
    listener = socket.create_server(("127.0.0.1", 0))
    seen = []

    def serve():
        conn, _ = listener.accept()
        with ctx.wrap_socket(conn, server_side=True) as tls:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                data += chunk
            seen.append(data.decode(errors="replace"))
            body = b'{"data":null}'
            tls.sendall(b"HTTP/1.1 401 authentication failure\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    other = f"https://127.0.0.1:{listener.getsockname()[1]}"
    r = subprocess.run([HEARTH_BIN, "--url", other, "api", "get", "/version"], capture_output=True, text=True,
                       env=env, timeout=60)
    t.join(30)
    listener.close()
    assert seen and "GET /api2/json/version" in seen[0]
    assert "PVEAuthCookie" not in seen[0] and "CSRF" not in seen[0]
    assert r.returncode != 0 and f"not logged in to {other}" in r.stderr
    # The issuing server still gets it.
    r = subprocess.run([HEARTH_BIN, "api", "get", "/version"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    # A malformed token is reported here, not sent.
    r = subprocess.run([HEARTH_BIN, "api", "get", "/version"], capture_output=True, text=True,
                       env=dict(env, HEARTH_TOKEN="garbage"), timeout=60)
    assert r.returncode != 0 and "HEARTH_TOKEN must look like user@realm!tokenid=secret" in r.stderr
    for bad in ["admin@pve!tt=a\r\nX-Evil: 1", "admin@pve!tt=4f49 extra", " admin@pve!tt=x", "admin@pve!tt=a\tb"]:
        r = subprocess.run([HEARTH_BIN, "api", "get", "/version"], capture_output=True, text=True,
                           env=dict(env, HEARTH_TOKEN=bad), timeout=60)
        assert r.returncode != 0 and "HEARTH_TOKEN must look like" in r.stderr, bad


# --- the CLI checks whom it talks to (issue 6.8) --------------------------------------------

def untrusting_env(hearth, tmp_path, **extra):
    env = dict(os.environ, HEARTH_URL=f"https://127.0.0.1:{hearth.port}", HEARTH_TOKEN=hearth.token,
               HEARTH_KNOWN_HOSTS=str(tmp_path / "known_hosts"), HEARTH_SESSION=str(tmp_path / "session.json"))
    for var in ("HEARTH_FINGERPRINT", "HEARTH_INSECURE"):
        env.pop(var, None)
    env.update(extra)
    return env


def test_cli_refuses_an_unknown_server_when_it_cannot_ask(hearth, tmp_path):
    env = untrusting_env(hearth, tmp_path)
    r = subprocess.run([HEARTH_BIN, "api", "get", "/version"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode != 0 and "is not trusted" in r.stderr and hearth.fingerprint() in r.stderr
    r = subprocess.run([HEARTH_BIN, "login", "--user", "admin@pve", "--password-stdin"], input="hearth-test-pw\n",
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode != 0 and "is not trusted" in r.stderr
    assert not (tmp_path / "session.json").exists()


def test_cli_pinned_and_remembered_fingerprints(hearth, tmp_path):
    wrong = "AA:" * 31 + "AA"
    r = subprocess.run([HEARTH_BIN, "--fingerprint", wrong, "api", "get", "/version"], capture_output=True, text=True,
                       env=untrusting_env(hearth, tmp_path), timeout=60)
    assert r.returncode != 0 and "not the pinned one" in r.stderr
    r = subprocess.run([HEARTH_BIN, "--fingerprint", hearth.fingerprint().lower(), "api", "get", "/version"],
                       capture_output=True, text=True, env=untrusting_env(hearth, tmp_path), timeout=60)
    assert r.returncode == 0, r.stderr
    known = tmp_path / "known_hosts"
    known.write_text(f"127.0.0.1:{hearth.port} {wrong}\n")
    r = subprocess.run([HEARTH_BIN, "api", "get", "/version"], capture_output=True, text=True,
                       env=untrusting_env(hearth, tmp_path), timeout=60)
    assert r.returncode != 0 and "HAS CHANGED" in r.stderr
    known.write_text(f"127.0.0.1:{hearth.port} {hearth.fingerprint()}\n")
    r = subprocess.run([HEARTH_BIN, "api", "get", "/version"], capture_output=True, text=True,
                       env=untrusting_env(hearth, tmp_path), timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([HEARTH_BIN, "--insecure", "api", "get", "/version"], capture_output=True, text=True,
                       env=untrusting_env(hearth, tmp_path / "elsewhere"), timeout=60)
    assert r.returncode == 0, r.stderr


def test_cli_asks_at_a_terminal_and_remembers(hearth, tmp_path):
    master, slave = os.openpty()
    proc = subprocess.Popen([HEARTH_BIN, "api", "get", "/version"], stdin=slave, stderr=slave,
                            stdout=subprocess.PIPE, env=untrusting_env(hearth, tmp_path))
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    while b"(yes/no)?" not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if ready:
            seen += os.read(master, 4096)
    assert hearth.fingerprint().encode() in seen
    os.write(master, b"yes\n")
    out, _ = proc.communicate(timeout=60)
    os.close(master)
    assert proc.returncode == 0 and b"8.4.1" in out
    assert (tmp_path / "known_hosts").read_text() == f"127.0.0.1:{hearth.port} {hearth.fingerprint()}\n"


def test_lists_read_as_people_expect_and_as_json_for_scripts(hearth):
    cli(hearth, "vm", "create", "906", "name=units", "memory=1536", "scsi0=local:2")
    out = cli(hearth, "vm", "list").stdout
    row = next(l for l in out.splitlines() if l.startswith("906"))
    assert "1.5 GiB" in row and "2.0 GiB" in row and "units" in row and "stopped" in row
    assert out.splitlines()[0].split()[:5] == ["VMID", "NAME", "STATUS", "CPUS", "MEM"]
    data = json.loads(cli(hearth, "--output", "json", "vm", "list").stdout)
    vm = next(v for v in data if v["vmid"] == 906)
    assert vm["maxmem"] == 1536 << 20 and vm["uptime"] == 0  # the API's numbers, unchanged
    tasks = json.loads(cli(hearth, "-o", "json", "task", "list").stdout)
    assert tasks and all("upid" in t for t in tasks)
    assert "TYPE" in cli(hearth, "task", "list").stdout.splitlines()[0]
    json.loads(cli(hearth, "-o", "json", "storage", "list").stdout)
    json.loads(cli(hearth, "-o", "json", "storage", "content", "local").stdout)
    cli(hearth, "vm", "destroy", "906")


def test_admin_verbs_never_overwrite_or_invent_state(hearth, tmp_path):
    def admin(*args, stdin=None):
        return subprocess.run([HEARTH_BIN, *args], input=stdin, capture_output=True, text=True, timeout=60)
    # A typo in --data-dir gets an error, not a new empty install with a useless ticket.
    r = admin("ticket", "root@pam", "--data-dir", str(tmp_path / "typo"))
    assert r.returncode != 0 and "no hearth data dir" in r.stderr and not (tmp_path / "typo").exists()
    # Existing users and tokens are not silently replaced (PVE: "already exists").
    d = ["--data-dir", hearth.dir]
    assert admin("user", "add", "carol@pve", "--password-stdin", *d, stdin="c-pw-1").returncode == 0
    r = admin("user", "add", "carol@pve", "--admin", "--password-stdin", *d, stdin="other")
    assert r.returncode != 0 and "user 'carol@pve' already exists" in r.stderr and "--update" in r.stderr
    hearth.login("carol@pve", "c-pw-1")  # the password did not change
    first = admin("token", "add", "carol@pve!ci", *d)
    assert first.returncode == 0
    r = admin("token", "add", "carol@pve!ci", *d)
    assert r.returncode != 0 and "already exists" in r.stderr and "--replace" in r.stderr
    secret = first.stdout.strip()
    ok = hearth.request("GET", "/version", headers={"Authorization": "PVEAPIToken=" + secret}, auth=None)
    assert ok.status_code == 200  # the first secret still works
    assert admin("user", "add", "carol@pve", "--update", "--password-stdin", *d, stdin="c-pw-2").returncode == 0
    hearth.login("carol@pve", "c-pw-2")


def test_snapshot_verbs(hearth):
    cli(hearth, "vm", "create", "910", "name=snapcli", "memory=128", "scsi0=local:1")
    r = cli(hearth, "snapshot", "create", "910", "before-upgrade", "--description", "known good")
    assert "TASK OK" in r.stderr
    listed = cli(hearth, "snapshot", "list", "910").stdout
    assert "before-upgrade" in listed and "known good" in listed
    snaps = json.loads(cli(hearth, "-o", "json", "snapshot", "list", "910").stdout)
    assert {s["name"] for s in snaps} == {"before-upgrade", "current"}
    cli(hearth, "vm", "config", "910", "cores=4")
    cli(hearth, "snapshot", "rollback", "910", "before-upgrade")
    assert "cores: 4" not in cli(hearth, "vm", "config", "910").stdout
    r = cli(hearth, "snapshot", "create", "910", "1bad", ok=False)
    assert r.returncode != 0 and "snapname" in r.stderr

    cli(hearth, "snapshot", "schedule", "add", "nightly", "schedule=mon..fri 02:00", "vmid=910", "keep-daily=7")
    assert "nightly" in cli(hearth, "snapshot", "schedule", "list").stdout
    cli(hearth, "snapshot", "schedule", "set", "nightly", "keep-last=2")
    shown = cli(hearth, "snapshot", "schedule", "show", "nightly").stdout
    assert "keep-last: 2" in shown and "keep-daily: 7" in shown
    r = cli(hearth, "snapshot", "schedule", "run", "nightly")
    assert "snapshot 'auto-nightly-" in r.stderr and "TASK OK" in r.stderr
    assert any(s["name"].startswith("auto-nightly-")
               for s in json.loads(cli(hearth, "-o", "json", "snapshot", "list", "910").stdout))
    r = cli(hearth, "snapshot", "schedule", "add", "bad", "schedule=xyz", "vmid=910", ok=False)
    assert r.returncode != 0 and "invalid calendar event 'xyz'" in r.stderr
    cli(hearth, "snapshot", "schedule", "remove", "nightly")
    cli(hearth, "snapshot", "delete", "910", "before-upgrade")
    cli(hearth, "vm", "destroy", "910")

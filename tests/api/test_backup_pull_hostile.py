"""A pull from a hostile node: a Python HTTPS server (self-signed, its fingerprint pinned) plays
a hearth node serving one real backup (read from the daemon's own datastore) and lies in one
way per run: a flipped chunk, another chunk's blob, a manifest naming another backup, an index
that does not match its manifest, an oversized answer, a listed volid of another shape, a
backup dated in the future. Each pull must fail naming what is wrong, publish nothing, and
leave the next honest pull able to complete.
"""
import hashlib
import json
import os
import ssl
import subprocess
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import Hearth, disk_volid, volume_path


class EvilNode:
    """Serves `datastore`'s backup of VM 900 as node 'evil', storage 'store', per `mode`."""

    def __init__(self, datastore, tmp):
        self.datastore, self.mode = datastore, "honest"
        key, cert = os.path.join(tmp, "evil.key"), os.path.join(tmp, "evil.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-subj", "/CN=evil", "-days", "2", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        der = ssl.PEM_cert_to_DER_cert(open(cert).read())
        digest = hashlib.sha256(der).hexdigest().upper()
        self.fingerprint = ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def send(self, body, ctype="application/octet-stream", status=200):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                q = dict(urllib.parse.parse_qsl(url.query))
                try:
                    body, ctype = node.answer(url.path, q)
                except KeyError as e:
                    return self.send(json.dumps({"data": None, "message": f"no {e}\n"}).encode(), "application/json", 500)
                self.send(body, ctype)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def snapshot_dir(self):
        [t] = os.listdir(os.path.join(self.datastore, "vm", "900"))
        return t, os.path.join(self.datastore, "vm", "900", t)

    def answer(self, path, q):
        t, d = self.snapshot_dir()
        data = lambda v: (json.dumps({"data": v}).encode(), "application/json")
        base = "/api2/json/nodes/evil/storage/store"
        m = self.mode
        if path == base + "/content":
            volid = f"store:backup/vm/900/{t}"
            if m == "bad-volid":
                volid = "store:backup/vm/900/../../../etc"
            entries = [{"volid": volid, "size": 1 << 30, "ctime": 0, "vmid": 900}]
            if m == "future":
                entries = [{"volid": "store:backup/vm/900/2099-01-01T00:00:00Z", "size": 1, "ctime": 0, "vmid": 900}]
            return data(entries)
        if q.get("volume") != f"store:backup/vm/900/{t}":
            raise KeyError(q.get("volume"))
        if path == base + "/hearth/backup":
            manifest = open(os.path.join(d, "index.json")).read()
            if m == "manifest-other":
                manifest = manifest.replace('"backup-id": "900"', '"backup-id": "901"').replace('"backup-id":"900"', '"backup-id":"901"')
            return data({"manifest": manifest, "notes": "evil\u001b[31m", "protected": 0})
        if path == base + "/hearth/backup-file":
            body = open(os.path.join(d, q["file"]), "rb").read()
            if m == "file-mismatch" and q["file"].endswith(".fidx"):
                body = body[:-1] + bytes([body[-1] ^ 1])
            return body, "application/octet-stream"
        if path == base + "/hearth/chunk":
            digest = q["digest"]
            chunks = os.path.join(self.datastore, ".chunks")
            body = open(os.path.join(chunks, digest[:4], digest), "rb").read()
            if m == "flip-chunk":
                body = body[:-1] + bytes([body[-1] ^ 1])
            elif m == "other-chunk":
                others = [f for f in os.listdir(os.path.join(chunks)) for f in os.listdir(os.path.join(chunks, f))
                          if f != digest]
                body = open(os.path.join(chunks, others[0][:4], others[0]), "rb").read()
            elif m == "oversized":
                body = b"hrthchk1" + b"\0" * (20 << 20)
            return body, "application/octet-stream"
        raise KeyError(path)

    def close(self):
        self.server.shutdown()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("evil"))
    h = Hearth().start()
    try:
        h.create_vm(900, memory="64", scsi0="local:1")
        disk = volume_path(h, disk_volid(h, 900))
        for i in range(3):
            subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P {0x30 + i} {i * 4}M 4M", disk], check=True,
                           capture_output=True)
        h.wait_task(h.post(f"/nodes/{h.node}/vzdump", data={"vmid": 900, "storage": "local"}), timeout=300)
        evil = EvilNode(h.get("/storage/local")["path"] + "/dump", tmp)
        h.post("/storage", data={"storage": "copies", "type": "dir", "content": "backup", "path": os.path.join(h.dir, "copies")})
        h.post("/cluster/hearth/replication-remotes", data={"node": "evil", "host": "127.0.0.1", "port": evil.port,
                                                              "fingerprint": evil.fingerprint,
                                                              "apitoken": "admin@pve!pull=0123456789"})
        yield h, evil
        evil.close()
    finally:
        h.close()


def pull(h, ok):
    upid = h.post(f"/nodes/{h.node}/storage/copies/hearth/sync", data={"remote": "evil", "remote-store": "store"})
    st = h.wait_task(upid, timeout=300, ok=ok)
    return st, "\n".join(h.task_log(upid))


@pytest.mark.parametrize("mode, says", [
    ("flip-chunk", "is corrupt"),
    ("other-chunk", "is corrupt (digest mismatch)"),
    ("manifest-other", "manifest names another backup"),
    ("file-mismatch", "does not match its manifest"),
    ("oversized", "request failed"),
    ("bad-volid", "of another shape"),
    ("future", "dated more than a day ahead"),
])
def test_each_lie_fails_by_name_and_publishes_nothing(lab, mode, says):
    h, evil = lab
    evil.mode = mode
    st, log = pull(h, ok=False)
    assert says in st["exitstatus"] + "\n" + log, (st, log)
    assert "\x1b" not in log
    assert h.get(f"/nodes/{h.node}/storage/copies/content", params={"content": "backup"}) == []
    staged = os.path.join(h.dir, "copies", "dump", "vm", "900")
    assert not os.path.isdir(staged) or os.listdir(staged) == []  # no staging directory left either


def test_then_an_honest_pull_completes(lab):
    h, evil = lab
    evil.mode = "honest"
    st, log = pull(h, ok=True)
    assert "copied 1 backup(s)" in log, log
    [copy] = h.get(f"/nodes/{h.node}/storage/copies/content", params={"content": "backup"})
    assert copy["vmid"] == 900 and copy["notes"] == "evil\x1b[31m"  # notes are data: kept as the source has them

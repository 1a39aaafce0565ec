"""Starting from an upstream image: download-url (HTTP/HTTPS, checksums, redirects) and
disks created with import-from."""
import hashlib
import http.server
import os
import shutil
import subprocess
import tempfile
import threading

import pytest


class Handler(http.server.SimpleHTTPRequestHandler):
    def redirected(self):
        if self.path != "/old-location.qcow2":
            return False
        self.send_response(302)
        self.send_header("Location", "/disk.qcow2")
        self.end_headers()
        return True

    def do_GET(self):
        if not self.redirected():
            super().do_GET()

    def do_HEAD(self):
        if not self.redirected():
            super().do_HEAD()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    root = tempfile.mkdtemp()
    image = os.path.join(root, "disk.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", image, "64M"], check=True)
    subprocess.run(["qemu-io", "-c", "write -P 0xab 1M 2M", image], check=True, capture_output=True)
    handler = lambda *a, **kw: Handler(*a, directory=root, **kw)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_port}", image
    httpd.shutdown()
    shutil.rmtree(root)


def download(hearth, **params):
    return hearth.request("POST", f"/nodes/{hearth.node}/storage/local/download-url", data=params)


def test_download_url_with_checksum_and_redirect(hearth, server):
    base, image = server
    digest = hashlib.sha256(open(image, "rb").read()).hexdigest()
    r = download(hearth, url=base + "/old-location.qcow2", content="import", filename="upstream.qcow2",
                 checksum=digest, **{"checksum-algorithm": "sha256"})
    assert r.status_code == 200, r.text
    upid = r.json()["data"]
    assert ":download:" in upid
    hearth.wait_task(upid)
    log = hearth.task_log(upid)
    assert "sha256 checksum verified" in log and "stored as local:import/upstream.qcow2" in log
    vol = hearth.get(f"/nodes/{hearth.node}/storage/local/content/local:import/upstream.qcow2")
    assert vol["format"] == "qcow2" and vol["size"] == 64 << 20  # the virtual size, as for disks
    r = download(hearth, url=base + "/disk.qcow2", content="import", filename="upstream.qcow2")
    assert r.status_code == 500 and "refusing to override" in r.reason


def test_download_failures_leave_nothing(hearth, server):
    base, _ = server
    st = hearth.wait_task(download(hearth, url=base + "/disk.qcow2", content="import", filename="bad.qcow2",
                                   checksum="0" * 64, **{"checksum-algorithm": "sha256"}).json()["data"], ok=False)
    assert st["exitstatus"].startswith("checksum mismatch")
    st = hearth.wait_task(download(hearth, url=base + "/missing.qcow2", content="import", filename="gone.qcow2").json()["data"], ok=False)
    assert "HTTP 404" in st["exitstatus"]
    names = [c["volid"] for c in hearth.get(f"/nodes/{hearth.node}/storage/local/content", params={"content": "import"})]
    assert "local:import/bad.qcow2" not in names and "local:import/gone.qcow2" not in names
    assert os.listdir(os.path.join(hearth.dir, "tmp")) == []
    r = download(hearth, url="ftp://example/x", content="iso", filename="x.iso")
    assert r.status_code == 400 and "url" in r.json()["errors"]


def test_https_download_verifies_certificates_unless_told_not_to(hearth):
    url = f"https://127.0.0.1:{hearth.port}/api2/json/access/domains"
    st = hearth.wait_task(download(hearth, url=url, content="import", filename="v1.raw").json()["data"], ok=False)
    assert "certificate verify failed" in st["exitstatus"]
    hearth.wait_task(download(hearth, url=url, content="import", filename="v2.raw", **{"verify-certificates": 0}).json()["data"])
    content = open(os.path.join(hearth.dir, "import", "v2.raw")).read()
    assert '"realm":"pam"' in content


def test_disk_from_import_from(hearth, server):
    _, image = server
    hearth.create_vm(830, memory="128", scsi0="local:0,import-from=local:import/upstream.qcow2,discard=on")
    c = hearth.get(hearth.vm_path(830) + "/config")
    assert c["scsi0"] == "local:830/vm-830-disk-0.qcow2,discard=on,size=64M"
    new = os.path.join(hearth.dir, "images", "830", "vm-830-disk-0.qcow2")
    assert subprocess.run(["qemu-img", "compare", "-q", image, new]).returncode == 0  # same data
    # grow while importing, from a host path (root@pam only, as PVE)
    r = hearth.request("POST", f"/nodes/{hearth.node}/qemu", data={"vmid": 831, "scsi0": f"local:1,import-from={image}"})
    assert r.status_code == 403 and r.reason == "Only root can pass arbitrary filesystem paths."
    hearth.create_vm(831, memory="128", scsi0=f"local:1,import-from={image}", auth="root")
    assert hearth.get(hearth.vm_path(831) + "/config")["scsi0"] == "local:831/vm-831-disk-0.qcow2,size=1G"
    # not in the synchronous PUT
    r = hearth.request("PUT", hearth.vm_path(830) + "/config", data={"scsi1": "local:0,import-from=local:import/upstream.qcow2"})
    assert r.status_code == 400 and "POST" in r.json()["errors"]["scsi1"]
    upid = hearth.post(hearth.vm_path(830) + "/config", data={"scsi1": "local:0,import-from=local:import/upstream.qcow2"})
    hearth.wait_task(upid)
    assert hearth.get(hearth.vm_path(830) + "/config")["scsi1"] == "local:830/vm-830-disk-1.qcow2,size=64M"
    st = hearth.wait_task(hearth.create_vm(832, wait=False, scsi0="local:0,import-from=local:import/nope.qcow2"), ok=False)
    assert "does not exist" in st["exitstatus"]
    for vmid in (830, 831):
        hearth.wait_task(hearth.delete(hearth.vm_path(vmid)))


def test_query_url_metadata_before_download(hearth, server):
    base, image = server
    meta = hearth.get(f"/nodes/{hearth.node}/query-url-metadata", params={"url": base + "/old-location.qcow2"})
    assert meta["filename"] == "disk.qcow2"  # after the redirect
    assert meta["size"] == os.path.getsize(image)
    r = hearth.request("GET", f"/nodes/{hearth.node}/query-url-metadata", params={"url": base + "/nope.img"})
    assert r.status_code == 500 and "HTTP 404" in r.reason

"""Storage `local`: listing, uploads (multipart, checksums), volumes, full disks."""
import hashlib
import os
import shutil
import subprocess
import tempfile

import pytest

from harness import Hearth, upload, wait_for


def random_file(size, name="big.iso"):
    """`size` random bytes in a new temporary directory; returns the path."""
    path = os.path.join(tempfile.mkdtemp(), name)
    with open(path, "wb") as f:
        f.write(os.urandom(size))
    return path


@pytest.fixture(scope="module")
def iso_file():
    d = tempfile.mkdtemp()
    path = os.path.join(d, "small.iso")
    with open(path, "wb") as f:
        f.write(os.urandom(3 << 20))
    yield path
    shutil.rmtree(d)


def test_storage_list_and_status(hearth):
    storages = hearth.get(f"/nodes/{hearth.node}/storage")
    local = [s for s in storages if s["storage"] == "local"][0]
    assert local["type"] == "dir" and local["active"] == 1 and local["enabled"] == 1 and local["shared"] == 0
    assert "images" in local["content"] and "iso" in local["content"]
    assert local["total"] > local["avail"] > 0
    st = hearth.get(f"/nodes/{hearth.node}/storage/local/status")
    assert st["type"] == "dir" and st["total"] == local["total"]
    r = hearth.request("GET", f"/nodes/{hearth.node}/storage/nosuch/status")
    assert r.status_code == 400 and r.json()["errors"]["storage"] == "No such storage."  # pve-storage Status.pm


def test_upload_with_checksum(hearth, iso_file):
    digest = hashlib.sha256(open(iso_file, "rb").read()).hexdigest()
    r = upload(hearth, iso_file, "small.iso", checksum=digest, **{"checksum-algorithm": "sha256"})
    assert r.status_code == 200, r.text
    upid = r.json()["data"]
    assert ":imgcopy:" in upid
    hearth.wait_task(upid)
    content = hearth.get(f"/nodes/{hearth.node}/storage/local/content", params={"content": "iso"})
    entry = [c for c in content if c["volid"] == "local:iso/small.iso"][0]
    assert entry["size"] == 3 << 20 and entry["format"] == "iso" and entry["content"] == "iso"
    # an upload to an existing name fails in its task, leaving the original
    st = hearth.wait_task(upload(hearth, iso_file, "small.iso").json()["data"], ok=False)
    assert "already exists" in st["exitstatus"]


def test_upload_checksum_mismatch_leaves_nothing(hearth, iso_file):
    r = upload(hearth, iso_file, "bad.iso", checksum="0" * 64, **{"checksum-algorithm": "sha256"})
    st = hearth.wait_task(r.json()["data"], ok=False)
    assert st["exitstatus"].startswith("checksum mismatch")
    content = hearth.get(f"/nodes/{hearth.node}/storage/local/content", params={"content": "iso"})
    assert "local:iso/bad.iso" not in [c["volid"] for c in content]
    assert os.listdir(os.path.join(hearth.dir, "tmp")) == []  # no staged or spooled leftovers


def test_upload_rejects_path_tricks(hearth, iso_file):
    r = upload(hearth, iso_file, "../../etc/evil.iso")
    # the directory part of a part filename is dropped, as browsers do
    assert r.status_code == 200, r.text
    hearth.wait_task(r.json()["data"])
    assert os.path.exists(os.path.join(hearth.dir, "iso", "evil.iso"))
    assert not os.path.exists("/etc/evil.iso")
    # Other characters become '_', as pve-storage's normalize_content_filename does.
    r = upload(hearth, iso_file, "bad name.iso")
    assert r.status_code == 200
    hearth.wait_task(r.json()["data"])
    assert os.path.exists(os.path.join(hearth.dir, "iso", "bad_name.iso"))
    # Names that do not fit are refused before any task, naming the field (PVE's texts).
    for name, why in [("noext", "wrong file extension"), ("..", "wrong file extension"),
                      (".hidden.iso", "invalid file name"), ("a" * 300 + ".iso", "invalid file name")]:
        r = upload(hearth, iso_file, name)
        assert r.status_code == 400 and why in r.json()["errors"]["filename"], (name, r.text)
    r = upload(hearth, iso_file, "disk.txt", content="import")
    assert r.status_code == 400 and r.json()["errors"]["filename"] == "invalid filename or wrong extension"
    r = upload(hearth, iso_file, "y.iso", checksum="00", **{"checksum-algorithm": "crc32"})
    assert r.status_code == 400 and "checksum-algorithm" in r.json()["errors"]
    r = upload(hearth, iso_file, "x.iso", content="images")
    assert r.status_code == 400 and "content" in r.json()["errors"]


def test_volume_info_and_delete(hearth):
    hearth.create_vm(200, scsi0="local:1")
    vol = "local:200/vm-200-disk-0.qcow2"
    info = hearth.get(f"/nodes/{hearth.node}/storage/local/content/{vol}")
    assert info["format"] == "qcow2" and info["size"] == 1 << 30
    # Proxmox's imgdel task; `delay` waits for it and answers with its error.
    r = hearth.request("DELETE", f"/nodes/{hearth.node}/storage/local/content/{vol}", params={"delay": 10})
    assert r.status_code == 500 and "in use by VM 200" in r.reason
    upid = hearth.delete(f"/nodes/{hearth.node}/storage/local/content/{vol}")
    st = hearth.wait_task(upid, ok=False)
    assert (st["type"], st["id"]) == ("imgdel", "200@local") and "in use by VM 200" in st["exitstatus"]
    hearth.wait_task(hearth.delete(hearth.vm_path(200)))
    r = hearth.request("GET", f"/nodes/{hearth.node}/storage/local/content/{vol}")
    assert r.status_code == 500 and "does not exist" in r.reason


def test_allocate_volume_endpoint(hearth):
    volid = hearth.post(f"/nodes/{hearth.node}/storage/local/content",
                        data={"vmid": 201, "filename": "vm-201-disk-0.raw", "size": "4M"})
    assert volid == "local:201/vm-201-disk-0.raw"
    assert hearth.get(f"/nodes/{hearth.node}/storage/local/content/{volid}")["size"] == 4 << 20
    r = hearth.request("POST", f"/nodes/{hearth.node}/storage/local/content",
                       data={"vmid": 201, "filename": "../../x.raw", "size": "4M"})
    assert r.status_code == 400
    upid = hearth.delete(f"/nodes/{hearth.node}/storage/local/content/{volid}")
    hearth.wait_task(upid)
    assert f"Removed volume '{volid}'" in hearth.task_log(upid)
    assert hearth.request("GET", f"/nodes/{hearth.node}/storage/local/content/{volid}").status_code == 500


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_full_disk_gives_clear_errors_and_leaves_nothing():
    mnt = tempfile.mkdtemp(prefix="hearth-full-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mnt], check=True)
    h = None
    try:
        h = Hearth(data_dir=mnt).start()
        big = random_file(30 << 20)
        r = upload(h, big, "big.iso")
        assert r.status_code == 500, r.text
        assert r.reason.startswith("not enough space on storage 'local'"), r.reason
        assert not os.path.exists(os.path.join(mnt, "iso", "big.iso"))
        assert os.listdir(os.path.join(mnt, "tmp")) == []
        # the space is checked before the body, but the disk can fill up during it (another
        # writer): the client still gets an answer saying so, and nothing is left behind
        boundary = "hearthboundary"
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\niso\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"filename\"; filename=\"late.iso\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n").encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        filler = os.path.join(mnt, "filler")

        class FillsTheDiskMidway:  # a body of known length (hearth wants one, as PVE)
            def __init__(self):
                self.parts = [head, os.urandom(1 << 20), None] + [os.urandom(1 << 20)] * 3 + [tail]

            def __len__(self):
                return len(head) + (4 << 20) + len(tail)

            def read(self, n=-1):
                if not self.parts:
                    return b""
                part = self.parts.pop(0)
                if part is None:  # the first MiB is sent: now someone else fills the disk
                    # ... once the server has taken the head and opened its spool file: the
                    # client writes ahead into socket buffers, and filling before the head is
                    # read would get the up-front "not enough space" (seen on a loaded machine).
                    wait_for("the upload's spool file", lambda: os.listdir(os.path.join(mnt, "tmp")), 30)
                    with open(filler, "wb", buffering=0) as f:
                        try:
                            while True:
                                f.write(b"\0" * (1 << 20))
                        except OSError:
                            pass
                    return self.read(n)
                return part
        r = h.request("POST", f"/nodes/{h.node}/storage/local/upload", data=FillsTheDiskMidway(),
                      headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        os.unlink(filler)
        assert r.status_code == 500, r.text
        assert r.reason.startswith("writing the upload failed: No space left on device"), r.reason
        assert not os.path.exists(os.path.join(mnt, "iso", "late.iso"))
        assert os.listdir(os.path.join(mnt, "tmp")) == []
        # a raw disk needs its full size up front
        r = h.request("POST", f"/nodes/{h.node}/qemu", data={"vmid": 100, "scsi0": "local:1,format=raw"})
        st = h.wait_task(r.json()["data"], ok=False)
        assert "not enough space on storage 'local'" in st["exitstatus"]
        assert h.request("GET", h.vm_path(100) + "/config").status_code == 500  # no half-made VM
        images = os.path.join(mnt, "images", "100")
        assert not os.path.exists(images) or os.listdir(images) == []
        os.unlink(big)
    finally:
        if h:
            h.close()
        subprocess.run(["umount", mnt], check=False)
        os.rmdir(mnt)


def test_a_file_size_limit_fails_the_upload_not_the_daemon():
    """Under `ulimit -f` (systemd LimitFSIZE=) the write that crosses the limit raised
    SIGXFSZ and killed the daemon mid-upload (found by a break-it pass): now it is EFBIG, the
    client gets a 500 saying so, and the daemon keeps serving."""
    h = Hearth()
    h.wrapper = ["prlimit", f"--fsize={6 << 20}", "--"]
    h.start()
    try:
        big = random_file(8 << 20)
        r = upload(h, big, "big.iso")
        assert r.status_code == 500, r.text
        assert r.reason.startswith("writing the upload failed: File too large"), r.reason
        assert h.proc.poll() is None, "the daemon died"
        assert h.get("/version")["version"]
        assert os.listdir(os.path.join(h.dir, "tmp")) == []
        assert not os.path.exists(os.path.join(h.dir, "iso", "big.iso"))
        os.unlink(big)
    finally:
        h.close()

"""Encrypted backups (Proxmox's `encryption-key` storage option, PBSPlugin.pm, here on any
storage that holds backups): a key made by the daemon (autogen) or given as a key file, the
chunks and the VM config sealed on disk under names that reveal nothing, the fingerprint in
the storage config and in the content listing, restores byte-identical with the key and
refused before anything is written without it or with another, an offsite copy that needs
no key until it is restored from, key rotation and turning encryption off."""
import json
import os
import stat
import subprocess
import time
import hashlib

import pytest

from harness import Hearth
from test_backup import backups, disk_volid, error, volume_path, vzdump
from test_cli import cli

MARKER = b"hearth-secret-marker:"


@pytest.fixture(scope="module")
def node():
    h = Hearth().start()
    yield h
    h.close()


def write_marked_data(path, tmp_path):
    """4 MiB at offset 0 of the qcow2 `path`: random bytes with a marker every 4 KiB, so
    that compression keeps the marker's first copy readable in a plain chunk."""
    src = tmp_path / "marked.bin"
    with open(src, "wb") as f:
        for i in range(1024):
            f.write(MARKER + b"%08d" % i + os.urandom(4096 - len(MARKER) - 8))
    r = subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -s {src} 0 4M", path], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return hashlib.sha256(src.read_bytes()).hexdigest()


def files_under(root):
    """Every file below `root`, hidden ones (.chunks) included."""
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]


def same_disk(h, vmid, reference):
    r = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "raw", volume_path(h, disk_volid(h, vmid)),
                        reference], capture_output=True, text=True)
    return r.returncode == 0


def content(h, storage, vmid):
    return h.get(f"/nodes/{h.node}/storage/{storage}/content", params={"content": "backup", "vmid": vmid})


def test_encrypted_backups_end_to_end(node, tmp_path):
    vault = str(tmp_path / "vault")
    r = node.post("/storage", data={"storage": "vault", "type": "dir", "path": vault, "content": "backup",
                                    "encryption-key": "autogen"})
    key_file = r["config"]["encryption-key"]
    key = json.loads(key_file)
    fp = key["fingerprint"]
    assert key["kdf"] is None and len(fp) == 95 and fp.count(":") == 31
    assert node.get("/storage/vault")["encryption-key"] == fp  # the fingerprint, never the key
    assert key["data"] not in json.dumps(node.get("/storage"))

    node.create_vm(700, name="secretname", memory="64", scsi0="local:1")
    disk = volume_path(node, disk_volid(node, 700))
    chunk_sha = write_marked_data(disk, tmp_path)
    reference = str(tmp_path / "700.raw")
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", disk, reference], check=True)

    st, log = vzdump(node, vmid=700, storage="vault")
    [b] = content(node, "vault", 700)
    assert b["encrypted"] == fp
    # Nothing on disk gives the data, the VM's name or the chunk's plain digest away.
    stored = files_under(vault)
    assert any("/.chunks/" in p for p in stored)
    for p in stored:
        data = open(p, "rb").read()
        assert MARKER not in data and b"secretname" not in data, p
        assert chunk_sha not in p
    # The same data backed up to a plain storage shows the marker: the check above can fail.
    vzdump(node, vmid=700, storage="local")
    plain_chunks = files_under(node.get("/storage/local")["path"] + "/dump/.chunks")
    assert any(MARKER in open(p, "rb").read() for p in plain_chunks)
    assert any(chunk_sha in p for p in plain_chunks)

    # Restore and verify with the key.
    node.wait_task(node.post(f"/nodes/{node.node}/qemu", data={"vmid": 701, "archive": b["volid"]}), timeout=300)
    assert same_disk(node, 701, reference)
    assert node.get(node.vm_path(701) + "/config")["name"] == "secretname"
    upid = node.post(f"/nodes/{node.node}/storage/vault/hearth/verify", data={"volume": b["volid"]})
    node.wait_task(upid)
    assert content(node, "vault", 700)[0]["verification"]["state"] == "ok"

    # Offsite: a storage without the key takes the copy as it is ...
    node.post("/storage", data={"storage": "usb", "type": "dir", "path": str(tmp_path / "usb"), "content": "backup"})
    node.wait_task(node.post(f"/nodes/{node.node}/storage/vault/hearth/sync", data={"target": "usb"}))
    [c] = content(node, "usb", 700)
    assert c["encrypted"] == fp
    for p in files_under(str(tmp_path / "usb")):
        assert MARKER not in open(p, "rb").read(), p
    # ... verifies it as far as it can without the key ...
    upid = node.post(f"/nodes/{node.node}/storage/usb/hearth/verify", data={"vmid": 700})
    node.wait_task(upid)
    assert any("checked the files and the chunks' checksums" in l for l in node.task_log(upid))
    # ... and cannot restore it until it has the key: refused before anything is made.
    r = node.request("POST", f"/nodes/{node.node}/qemu", data={"vmid": 702, "archive": c["volid"]})
    assert r.status_code >= 400
    assert f"is encrypted (key fingerprint {fp}) and the storage has no encryption key" in r.text + r.reason, r.text
    assert node.request("GET", node.vm_path(702) + "/config").status_code != 200
    other = json.loads(node.put("/storage/usb", data={"encryption-key": "autogen"})["config"]["encryption-key"])
    r = node.request("POST", f"/nodes/{node.node}/qemu", data={"vmid": 702, "archive": c["volid"]})
    assert r.status_code >= 400
    assert f"wrong encryption key: backup 'vm/700/" in r.text + r.reason and other["fingerprint"] in r.text + r.reason
    assert node.request("GET", node.vm_path(702) + "/config").status_code != 200
    node.put("/storage/usb", data={"encryption-key": key_file})
    assert node.get("/storage/usb")["encryption-key"] == fp
    node.wait_task(node.post(f"/nodes/{node.node}/qemu", data={"vmid": 702, "archive": c["volid"]}), timeout=300)
    assert same_disk(node, 702, reference)

    # A new key: new backups use it; the older backups still restore, with the retired key
    # the storage keeps (also after a second rotation and with encryption turned off).
    r = node.put("/storage/vault", data={"encryption-key": "autogen"})
    fp2 = json.loads(r["config"]["encryption-key"])["fingerprint"]
    assert fp2 != fp and node.get("/storage/vault")["encryption-key"] == fp2
    time.sleep(1.1)  # backup names have a one-second resolution
    vzdump(node, vmid=700, storage="vault")
    assert sorted(x.get("encrypted") for x in content(node, "vault", 700)) == sorted([fp, fp2])
    node.put("/storage/vault", data={"encryption-key": "autogen"})
    node.put("/storage/vault", data={"delete": "encryption-key"})
    assert "encryption-key" not in node.get("/storage/vault")
    node.wait_task(node.post(f"/nodes/{node.node}/qemu", data={"vmid": 703, "archive": b["volid"]}), timeout=300)
    assert same_disk(node, 703, reference)

    # Encryption off: new backups are plain.
    time.sleep(1.1)
    vzdump(node, vmid=700, storage="vault")
    newest = max(content(node, "vault", 700), key=lambda x: x["ctime"])
    assert "encrypted" not in newest

    # The storage removed and added again: its backups still restore (the keys are kept).
    node.delete("/storage/vault")
    node.post("/storage", data={"storage": "vault", "type": "dir", "path": vault, "content": "backup"})
    node.wait_task(node.post(f"/nodes/{node.node}/qemu", data={"vmid": 704, "archive": b["volid"]}), timeout=300)
    assert same_disk(node, 704, reference)


def test_bad_keys_are_refused_naming_the_field(node, tmp_path):
    for bad in ("not json", '{"data": "c2hvcnQ="}', '{"kdf": {"Scrypt": {}}, "data": "x"}'):
        r = node.request("POST", "/storage", data={"storage": "bad1", "type": "dir", "path": str(tmp_path / "b"),
                                                   "content": "backup", "encryption-key": bad})
        code, errors = error(r)
        assert code == 400 and "encryption-key" in errors, (bad, r.text)
    assert node.request("GET", "/storage/bad1").status_code != 200
    # A type that cannot hold backups has no such option.
    r = node.request("POST", "/storage", data={"storage": "bad2", "type": "zfspool", "pool": "tank",
                                               "encryption-key": "autogen"})
    assert r.status_code >= 400 and "encryption-key" in r.text + r.reason, r.text


def test_cli_key_verbs(node, tmp_path):
    path = str(tmp_path / "backup.key")
    r = cli(node, "backup", "key", "create", path)
    assert "fingerprint: " in r.stdout and "Keep a copy" in r.stdout
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    fp = r.stdout.split("fingerprint: ")[1].split()[0]
    assert cli(node, "backup", "key", "show", path).stdout.strip() == "fingerprint: " + fp
    # Never over an existing file.
    again = cli(node, "backup", "key", "create", path, ok=False)
    assert again.returncode != 0 and "exists" in again.stderr
    node.post("/storage", data={"storage": "clivault", "type": "dir", "path": str(tmp_path / "cv"),
                                "content": "backup"})
    r = cli(node, "backup", "key", "set", "clivault", path)
    assert fp in r.stdout
    assert node.get("/storage/clivault")["encryption-key"] == fp
    saved = str(tmp_path / "auto.key")
    r = cli(node, "backup", "key", "set", "clivault", "autogen", "--save", saved)
    new_fp = json.load(open(saved))["fingerprint"]
    assert new_fp in r.stdout and node.get("/storage/clivault")["encryption-key"] == new_fp
    cli(node, "backup", "key", "remove", "clivault")
    assert "encryption-key" not in node.get("/storage/clivault")


def test_cli_refuses_before_it_changes_anything(node, tmp_path):
    node.post("/storage", data={"storage": "clivault2", "type": "dir", "path": str(tmp_path / "cv2"),
                                "content": "backup", "encryption-key": "autogen"})
    fp = node.get("/storage/clivault2")["encryption-key"]
    empty = tmp_path / "empty.key"
    empty.write_text("")
    for args in (["set", "clivault2", str(empty)], ["set", "clivault2", str(tmp_path)],
                 ["set", "clivault2", "autogen", "--save", str(empty)],        # exists: no new key made
                 ["set", "clivault2", "autogen", "--save", str(tmp_path / "no" / "such.key")],
                 ["show", "/dev/zero"]):
        r = cli(node, "backup", "key", *args, ok=False)
        assert r.returncode != 0, (args, r.stdout, r.stderr)
        assert node.get("/storage/clivault2")["encryption-key"] == fp, args
    assert "is not a key file" in cli(node, "backup", "key", "show", str(empty), ok=False).stderr

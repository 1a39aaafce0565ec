#!/usr/bin/env python3
"""Seed corpora for the fuzz targets from the tests' real inputs.

    HEARTH_RECORD_REQUESTS=/tmp/rec.jsonl ctest --test-dir build -L api   # record
    fuzz/make_corpus.py /tmp/rec.jsonl                                     # write seeds

Sources: the requests the API tests send (tests/lib/harness.py records them), the UPIDs
they get back, the golden VM configs in tests/golden/qemu, and the QMP lines a real QEMU
prints for the commands hearth sends. Each seed is a file named by its SHA-1 under
fuzz/corpus/<target>/; run `scripts/fuzz.sh --merge` afterwards to keep only seeds that
add coverage.
"""
import base64
import glob
import hashlib
import json
import os
import subprocess
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")
VM_KEYS_HINT = ("scsi", "virtio", "sata", "ide", "net", "ipconfig", "efidisk", "tpmstate", "serial", "usb", "hostpci",
                "unused", "numa", "virtiofs")


def seed(target, data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def raw_http(e, body):
    head = f"{e['method']} {e['target']} HTTP/1.1\r\nHost: 127.0.0.1:8006\r\n"
    for k, v in e["headers"].items():
        if k.lower() not in ("host", "content-length"):
            head += f"{k}: {v}\r\n"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def from_recording(path):
    configs = {}
    for line in open(path):
        e = json.loads(line)
        body = base64.b64decode(e["body"])
        ctype = next((v for k, v in e["headers"].items() if k.lower() == "content-type"), "")
        seed("http_request", raw_http(e, body))
        if ctype.startswith("multipart/form-data"):
            seed("multipart", ctype.encode() + b"\0" + body)
            continue
        seed("form_body", ctype.encode() + b"\0" + e["target"].encode() + b"\0" + body)
        for k, v in e["headers"].items():
            if k.lower() in ("cookie", "authorization"):
                seed("auth", v + "\0" + v.split("=", 1)[-1].split("!")[0].split(":")[-1])
        if "upid" in e:
            seed("upid", e["upid"])
        split = urllib.parse.urlsplit(e["target"])
        api_path = urllib.parse.unquote(split.path)[len("/api2/json"):]
        params = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
        if ctype.startswith("application/x-www-form-urlencoded"):
            params += urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        elif ctype.startswith("application/json"):
            try:
                params += [(k, str(v)) for k, v in json.loads(body).items()]
            except (ValueError, AttributeError):
                pass
        seed("route_params", "\0".join([f"{e['method']} {api_path}"] + [f"{k}={v}" for k, v in params]))
        vm = {}
        for k, v in params:
            if ":" in v and "," not in v.split(":")[0]:
                seed("volume_id", v.split(",")[0])
            if k.isidentifier() or k.rstrip("0123456789") in VM_KEYS_HINT:
                seed("vm_value", f"{k}\0{v}")
                vm[k] = v
        if "/qemu" in api_path and vm:
            seed("cloudinit", "\0".join(f"{k}={v}" for k, v in vm.items()))
            key = api_path.split("/qemu/")[-1].split("/")[0] if "/qemu/" in api_path else "new"
            configs.setdefault(key, {}).update(vm)
    # Config files: what the tests configured, plain, with a pending section and a snapshot.
    for vm in configs.values():
        body = "".join(f"{k}: {v}\n" for k, v in sorted(vm.items()) if "\n" not in v)
        seed("vm_config", body)
        seed("vm_config", body + "\n[PENDING]\ndelete: net1\nmemory: 4096\n")
        seed("vm_config", body + "\n[pre-upgrade]\nsnaptime: 1767225600\n" + body)


def golden_configs():
    for f in glob.glob(os.path.join(HERE, "../tests/golden/qemu/*.conf")):
        seed("vm_config", open(f, "rb").read())
        for line in open(f):
            if ": " in line and not line.startswith("#"):
                k, v = line.rstrip("\n").split(": ", 1)
                seed("vm_value", f"{k}\0{v}")


def qemu_lines():
    """What QEMU itself answers to the commands hearth sends, plus the agent's shapes."""
    cmds = ["qmp_capabilities", "query-status", "query-blockstats", "query-version", "stop", "cont",
            "query-no-such-command"]
    stdin = "".join(json.dumps({"execute": c}) + "\n" for c in cmds)
    try:
        out = subprocess.run(["qemu-system-x86_64", "-M", "none", "-display", "none", "-nodefaults", "-qmp", "stdio"],
                             input=stdin + '{"execute": "quit"}\n', capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    for line in out.splitlines():
        seed("qemu_replies", line)
    # Guest agent replies (qemu-ga's schema), with the 0xFF delimiter of guest-sync-delimited.
    for line in ['\xff{"return": 12345}',
                 '{"return": {"exited": true, "exitcode": 0, "out-data": "aGVsbG8K", "out-truncated": false}}',
                 '{"return": {"pid": 1234}}', '{"return": {"count": 5, "buf-b64": "aGVsbG8=", "eof": true}}',
                 '{"error": {"class": "GenericError", "desc": "Guest agent command failed"}}',
                 '{"return": [{"name": "eth0", "hardware-address": "bc:24:11:00:00:01", "ip-addresses": '
                 '[{"ip-address-type": "ipv4", "ip-address": "10.0.0.5", "prefix": 24}]}]}']:
        seed("qemu_replies", line.encode("latin-1"))


def nbd_sessions():
    """What QEMU's and libnbd's NBD clients send a read-only server (doc/proto.md)."""
    import struct
    opt = lambda o, d=b"": struct.pack(">QII", 0x49484156454F5054, o, len(d)) + d
    go = lambda o, name, infos=(): opt(o, struct.pack(">I", len(name)) + name + struct.pack(">H", len(infos)) +
                                       b"".join(struct.pack(">H", i) for i in infos))
    req = lambda t, off, ln, cookie=1: struct.pack(">IHHQQI", 0x25609513, 0, t, cookie, off, ln)
    hello = struct.pack(">I", 3)
    reads = req(0, 0, 512) + req(0, 4194300, 9000, 2) + req(3, 0, 0, 3) + req(0, 3 << 20, 1, 4) + req(2, 0, 0, 5)
    seed("nbd_session", hello + opt(8) + opt(10, b"\0" * 12) + go(7, b"drive-scsi0", (3, 0)) + reads)  # QEMU's order
    seed("nbd_session", hello + opt(3) + go(6, b"drive-scsi0") + go(7, b"drive-scsi0") + reads)  # libnbd list+info
    seed("nbd_session", hello + opt(1, b"drive-scsi0") + reads)  # the old EXPORT_NAME
    seed("nbd_session", struct.pack(">I", 1) + opt(1, b"") + req(1, 0, 4) + b"abcd")  # zeroes, then a write
    seed("nbd_session", hello + go(7, b"drive-scsi9") + opt(2))  # unknown export, abort


if __name__ == "__main__":
    if len(sys.argv) > 1:
        from_recording(sys.argv[1])
    golden_configs()
    qemu_lines()
    nbd_sessions()
    for t in sorted(os.listdir(OUT)):
        print(f"{t}: {len(os.listdir(os.path.join(OUT, t)))} seeds")

"""Many clients at once against one daemon: create, clone, configure, start, stop, delete,
upload and poll tasks concurrently. Run by CI under ThreadSanitizer (the tsan preset), where
any data race aborts the daemon, and on the normal build as a consistency check.

After the storm every VM must be consistent: its config reads back, nothing is left locked,
no task is still running, every task ended OK, and each client's VMs are exactly the ones
it expected to exist.
"""
import concurrent.futures
import os
import random
import tempfile
import threading

import pytest

from harness import Hearth, upload

CLIENTS = 8
ROUNDS = 4


@pytest.fixture(scope="module")
def hearth():
    h = Hearth().start()
    yield h
    h.close()


def client(h, n, errors, upids):
    """One client's life: its own VMs (base 1000 + 100 n), touching the shared template too."""
    rnd = random.Random(n)
    base = 1000 + 100 * n
    lock = threading.Lock()

    def task(upid):
        with lock:
            upids.append(upid)
        st = h.wait_task(upid, timeout=600, ok=False)
        if st["exitstatus"] != "OK":
            errors.append(f"client {n}: {upid}: {st['exitstatus']}: " + " | ".join(h.task_log(upid)[-3:]))
        return st

    alive = set()
    for r in range(ROUNDS):
        vmid = base + r
        task(h.post(f"/nodes/{h.node}/qemu", data={"vmid": vmid, "name": f"c{n}-r{r}", "memory": 64,
                                                    "scsi0": "local:1,format=qcow2", "net0": "virtio,link_down=1",
                                                    "serial0": "socket"}))
        alive.add(vmid)
        # Linked clone of the shared template (clones of one base run in parallel).
        clone = base + 50 + r
        task(h.post(h.vm_path(900) + "/clone", data={"newid": clone, "name": f"c{n}-clone{r}"}))
        alive.add(clone)
        # Config changes with and without digest; a stale digest must be refused, not lost.
        cfg = h.get(h.vm_path(vmid) + "/config")
        h.put(h.vm_path(vmid) + "/config", data={"description": f"round {r}", "digest": cfg["digest"]})
        stale = h.request("PUT", h.vm_path(vmid) + "/config", data={"cores": 2, "digest": cfg["digest"]})
        if stale.status_code != 500 or "checksum mismatch" not in stale.text:  # PVE's words
            errors.append(f"client {n}: stale digest accepted: {stale.status_code} {stale.text}")
        task(h.post(h.vm_path(vmid) + "/config", data={"memory": 96, "tags": f"c{n};round{r}"}))
        task(h.put(h.vm_path(vmid) + "/resize", data={"disk": "scsi0", "size": "+64M"}))
        task(h.post(h.vm_path(vmid) + "/status/start"))
        for _ in range(rnd.randint(1, 4)):  # status and listing polls while things move
            h.get(h.vm_path(vmid) + "/status/current")
            h.get(f"/nodes/{h.node}/qemu")
            h.get(f"/nodes/{h.node}/tasks", params={"limit": 20})
        task(h.post(h.vm_path(vmid) + "/status/stop"))
        if r % 2 == 1:  # delete every other round's VM and its clone
            task(h.delete(h.vm_path(vmid)))
            task(h.delete(h.vm_path(clone)))
            alive -= {vmid, clone}
    return alive


def test_many_clients_at_once_leave_everything_consistent(hearth):
    h = hearth
    h.create_vm(900, name="template", memory=64, scsi0="local:1")
    h.wait_task(h.post(h.vm_path(900) + "/template"))
    errors, upids = [], []
    iso = tempfile.NamedTemporaryFile(suffix=".iso", delete=False)
    iso.write(os.urandom(3 << 20))
    iso.close()

    def uploader(k):
        r = upload(h, iso.name, f"up{k}.iso")
        if r.status_code != 200:
            errors.append(f"upload {k}: {r.status_code} {r.text}")
            return set()
        upid = r.json()["data"]
        upids.append(upid)
        if h.wait_task(upid, timeout=600, ok=False)["exitstatus"] != "OK":
            errors.append(f"upload {k} task failed")
        return set()

    with concurrent.futures.ThreadPoolExecutor(CLIENTS + 2) as pool:
        futures = [pool.submit(client, h, n, errors, upids) for n in range(CLIENTS)]
        futures += [pool.submit(uploader, k) for k in range(2)]
        expected = set()
        for f in futures:
            expected |= f.result()
    os.unlink(iso.name)
    assert not errors, "\n".join(errors)

    vms = {v["vmid"]: v for v in h.get(f"/nodes/{h.node}/qemu")}
    assert set(vms) == expected | {900}
    for vmid in expected:
        cfg = h.get(h.vm_path(vmid) + "/config")
        assert "lock" not in cfg, f"VM {vmid} left locked: {cfg['lock']}"
        assert vms[vmid]["status"] == "stopped"
    # Every task ended; none is left running.
    running = [t for t in h.get(f"/nodes/{h.node}/tasks", params={"limit": 10000, "source": "active"})]
    assert running == []
    isos = {c["volid"] for c in h.get(f"/nodes/{h.node}/storage/local/content", params={"content": "iso"})}
    assert {"local:iso/up0.iso", "local:iso/up1.iso"} <= isos
    # The daemon is still healthy and has written no sanitizer report so far.
    assert h.get("/version")["version"]
    assert h.sanitizer_reports() == []

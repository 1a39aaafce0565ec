"""The homelab provisioning flow under TCG, end to end:
image build -> template -> linked clones with their own names, static IPs and SSH keys on a
bridge (in a network namespace) -> cloud-init applies them -> the guest agent reports the
node ready -> SSH with the injected key works -> a restore drill of one waits for its agent ->
a full clone boots too -> the base image
survives deleting the clones. Images are cached across runs (HEARTH_CACHE)."""
import os
import subprocess
import tempfile
import urllib.parse

import pytest

from harness import Hearth, wait_for
from netns import NetNs

CACHE = os.environ.get("HEARTH_CACHE", "/var/cache/hearth-dev")
BOOT = 600  # seconds: generous, for a loaded 2-core machine under TCG


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces, loop devices")
    keydir = tempfile.mkdtemp()
    key = os.path.join(keydir, "id")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    warm_image_cache()
    with NetNs(f"hearth-prov-{os.getpid()}") as ns:
        ns.ip("link", "add", "vmbr0", "type", "bridge")
        ns.ip("addr", "add", "10.99.0.1/24", "dev", "vmbr0")
        ns.ip("link", "set", "vmbr0", "up")
        h = Hearth(extra_args=["--image-cache", os.path.join(CACHE, "images")]).start()
        try:
            yield h, key
        finally:
            h.close()


def warm_image_cache():
    """Builds (or finds) the image in the host's network namespace: Debian's mirror is not
    reachable from the test's namespace, so on a new machine with an empty cache the build
    must happen here first. The namespaced daemon then finds it in the cache by recipe."""
    h = Hearth(extra_args=["--image-cache", os.path.join(CACHE, "images")]).start()
    try:
        upid = h.post(f"/nodes/{h.node}/hearth/images", data={"vmid": 9000, "name": "debian12"})
        h.wait_task(upid, timeout=1800)
    finally:
        h.close()


def agent_ready(h, vmid):
    r = h.request("GET", h.vm_path(vmid) + "/agent/get-host-name")
    return r.status_code == 200 and r.json()["data"]["result"]["host-name"]


def ipv4s(h, vmid):
    ifaces = h.get(h.vm_path(vmid) + "/agent/network-get-interfaces")["result"]
    return {a["ip-address"] for i in ifaces for a in i.get("ip-addresses", []) if a["ip-address-type"] == "ipv4"}


def ssh(key, ip, *cmd):
    return subprocess.run(["ssh", "-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                           "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", f"ops@{ip}", *cmd],
                          capture_output=True, text=True, timeout=60)


def test_image_build_makes_a_template(lab):
    h, _ = lab
    upid = h.post(f"/nodes/{h.node}/hearth/images", data={"vmid": 9000, "name": "debian12", "bridge": "vmbr0"})
    h.wait_task(upid, timeout=1800)
    c = h.get(h.vm_path(9000) + "/config")
    assert c["template"] == 1 and c["scsi0"].startswith("local:9000/base-9000-disk-0.qcow2")
    assert c["ide2"] == "local:9000/vm-9000-cloudinit.qcow2,media=cdrom" and c["agent"] == "1"
    # Rebuilding an unchanged recipe is instant: the cache answers.
    assert len(h.get(f"/nodes/{h.node}/hearth/images")) >= 1


def test_two_linked_clones_come_up_with_their_own_identity(lab):
    h, key = lab
    sshkeys = urllib.parse.quote(open(key + ".pub").read(), safe="")
    for vmid, ip in ((101, "10.99.0.11"), (102, "10.99.0.12")):
        h.wait_task(h.post(h.vm_path(9000) + "/clone", data={"newid": vmid, "name": f"node{vmid - 100}"}))
        h.put(h.vm_path(vmid) + "/config", data={"ciuser": "ops", "sshkeys": sshkeys, "ciupgrade": 0,
                                                "ipconfig0": f"ip={ip}/24,gw=10.99.0.1", "nameserver": "10.99.0.1"})
    # Grow one clone's disk before its first boot: growpart must grow the root partition.
    h.wait_task(h.put(h.vm_path(102) + "/resize", data={"disk": "scsi0", "size": "+1G"}))
    for vmid in (101, 102):
        h.vm_action(vmid, "start")
    for vmid, ip in ((101, "10.99.0.11"), (102, "10.99.0.12")):
        name = wait_for(f"VM {vmid}'s guest agent", lambda: agent_ready(h, vmid), BOOT, 2)
        assert name == f"node{vmid - 100}"
        assert ip in wait_for(f"VM {vmid}'s address", lambda: ip in ipv4s(h, vmid) and ipv4s(h, vmid), BOOT, 2)
        st = h.get(h.vm_path(vmid) + "/status/current")
        assert st["agent"] == 1 and st["qmpstatus"] == "running"


def test_ssh_with_the_injected_key(lab):
    h, key = lab
    for vmid, ip in ((101, "10.99.0.11"), (102, "10.99.0.12")):
        r = wait_for(f"SSH to VM {vmid}", lambda: (x := ssh(key, ip, "hostname")).returncode == 0 and x, BOOT, 3)
        assert r.stdout.strip() == f"node{vmid - 100}"
    st = h.get(h.vm_path(101) + "/status/current")
    assert st["netin"] > 0 and st["netout"] > 0 and st["diskread"] > 0 and st["diskwrite"] > 0  # real counters
    # sshd is hardened: no password logins, no root
    r = ssh(key, "10.99.0.11", "sudo", "sshd", "-T")
    assert "passwordauthentication no" in r.stdout and "permitrootlogin no" in r.stdout


def test_agent_exec_and_shutdown_through_the_agent(lab):
    h, _ = lab
    pid = h.post(h.vm_path(101) + "/agent/exec", data={"command": ["cat", "/etc/hostname"]})["pid"]
    st = wait_for("exec", lambda: (s := h.get(h.vm_path(101) + "/agent/exec-status", params={"pid": pid}))["exited"] and s, 60)
    assert st["exitcode"] == 0 and st["out-data"].strip() == "node1"
    pid = h.post(h.vm_path(102) + "/agent/exec", data={"command": ["df", "-B1", "--output=size", "/"]})["pid"]
    st = wait_for("df", lambda: (s := h.get(h.vm_path(102) + "/agent/exec-status", params={"pid": pid}))["exited"] and s, 60)
    assert int(st["out-data"].split()[-1]) > 2.5 * 2**30  # the 2G image grew to 3G
    # A backup of the running guest (snapshot mode): its filesystems are frozen through the
    # agent only around the instant, and it is never paused; afterwards it writes again.
    upid = h.post(f"/nodes/{h.node}/vzdump", data={"vmid": 101, "storage": "local", "mode": "snapshot"})
    h.wait_task(upid, timeout=BOOT)
    log = "\n".join(h.task_log(upid))
    assert "issuing guest-agent 'fs-freeze' command" in log and "issuing guest-agent 'fs-thaw' command" in log, log
    assert "suspending" not in log and "WARN" not in log, log
    pid = h.post(h.vm_path(101) + "/agent/exec", data={"command": ["sh", "-c", "echo ok > /var/tmp/w && sync && cat /var/tmp/w"]})["pid"]
    st = wait_for("a write after the backup", lambda: (s := h.get(h.vm_path(101) + "/agent/exec-status",
                                                                  params={"pid": pid}))["exited"] and s, 120)
    assert st["exitcode"] == 0 and st["out-data"].strip() == "ok"
    for vmid in (101, 102):
        st = h.vm_action(vmid, "shutdown", wait=BOOT, timeout=300)
        assert any("asked the guest agent to shut down" in l for l in h.task_log(st["upid"]))


def test_restore_drill_waits_for_the_guest_agent(lab):
    """A drill of a VM with the agent needs no marker: the copy is up when its agent answers
    (the serial-marker drills of a guest without an agent are in test_restore_drill.py)."""
    h, _ = lab
    h.wait_task(h.post(f"/nodes/{h.node}/vzdump", data={"vmid": 101, "storage": "local"}), timeout=BOOT)
    upid = h.post(f"/nodes/{h.node}/storage/local/hearth/drill", data={"vmid": 101, "timeout": BOOT})
    h.wait_task(upid, timeout=3 * BOOT)
    log = "\n".join(h.task_log(upid))
    assert "waiting for the guest agent" in log and "the guest agent answered" in log, log
    assert 999900000 not in {v["vmid"] for v in h.get(f"/nodes/{h.node}/qemu")}


def test_full_clone_boots_and_the_base_survives_deleting_clones(lab):
    h, _ = lab
    h.wait_task(h.post(h.vm_path(9000) + "/clone", data={"newid": 103, "name": "full1", "full": 1}), timeout=600)
    h.put(h.vm_path(103) + "/config", data={"ciupgrade": 0, "ipconfig0": "ip=10.99.0.13/24,gw=10.99.0.1"})
    h.vm_action(103, "start")
    assert wait_for("VM 103's guest agent", lambda: agent_ready(h, 103), BOOT, 2) == "full1"
    h.vm_action(103, "stop")
    for vmid in (101, 102, 103):
        h.wait_task(h.delete(h.vm_path(vmid)))
    base = h.get(f"/nodes/{h.node}/storage/local/content/local:9000/base-9000-disk-0.qcow2")
    assert base["format"] == "qcow2"
    h.wait_task(h.delete(h.vm_path(9000)))

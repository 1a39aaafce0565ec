"""A real guest under TCG: the tiny ISO (built from Debian's packages) boots to a serial
marker, ACPI shutdown ends it, and VMs survive a kill -9 of the daemon."""
import os

import pytest

from harness import Hearth, qemu_pid, tiny_iso, upload, wait_for
from netns import NetNs


@pytest.fixture(scope="module")
def h():
    h = Hearth().start()
    r = upload(h, tiny_iso(), "tiny.iso")
    assert r.status_code == 200, r.text
    h.wait_task(r.json()["data"])
    yield h
    h.close()


def create_tiny(h, vmid, **extra):
    h.create_vm(vmid, name=f"tiny{vmid}", memory="256", ide2="local:iso/tiny.iso,media=cdrom", serial0="socket",
                boot="order=ide2", **extra)


def test_boots_to_marker_and_acpi_shutdown_ends_it(h):
    create_tiny(h, 100)
    h.vm_action(100, "start")
    text = h.serial_until(100, "HEARTH-TINY-READY", timeout=300)
    assert "kernel=6.1" in text
    pid = qemu_pid(h, 100)
    st = h.vm_action(100, "shutdown", wait=300, timeout=240)
    assert st["exitstatus"] == "OK"
    assert "HEARTH-TINY-POWEROFF" in h.get(h.vm_path(100) + "/serial-log")["text"]
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert h.get(h.vm_path(100) + "/status/current")["status"] == "stopped"


def test_kill9_of_the_daemon_keeps_vms_running_and_readopts_them(h):
    h.vm_action(100, "start")
    h.serial_until(100, "HEARTH-TINY-READY", timeout=300)
    pid = qemu_pid(h, 100)
    h.kill9()
    assert os.path.exists(f"/proc/{pid}")  # the guest did not notice
    h.start()
    st = h.get(h.vm_path(100) + "/status/current")
    assert st["status"] == "running" and st["pid"] == pid and st["qmpstatus"] == "running"
    assert "re-adopted 1 running VM" in h.read_log()
    # The re-adopted VM is fully manageable: a clean ACPI shutdown.
    h.vm_action(100, "shutdown", wait=300, timeout=240)
    assert h.get(h.vm_path(100) + "/status/current")["status"] == "stopped"


def test_vm_powered_off_from_inside_is_noticed(h):
    h.vm_action(100, "start")
    h.serial_until(100, "HEARTH-TINY-READY", timeout=300)
    # ACPI power button pressed directly through QMP-less means: kill the QEMU instead.
    os.kill(qemu_pid(h, 100), 9)
    wait_for("VM 100 seen as stopped", lambda: h.get(h.vm_path(100) + "/status/current")["status"] == "stopped", 30)


@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
def test_nic_on_a_bridge_gets_a_tap_in_a_network_namespace(h):
    with NetNs(f"hearth-e2e-{os.getpid()}") as ns:
        ns.ip("link", "add", "vmbr0", "type", "bridge")
        ns.ip("link", "set", "vmbr0", "up")
        inner = Hearth(data_dir=None).start()
        try:
            r = upload(inner, tiny_iso(), "tiny.iso")
            inner.wait_task(r.json()["data"])
            create_tiny(inner, 120, net0="virtio,bridge=vmbr0,mtu=1400")
            inner.vm_action(120, "start")
            link = ns.link("tap120i0")
            assert link["master"] == "vmbr0" and link["mtu"] == 1400 and "UP" in link["flags"]
            inner.serial_until(120, "HEARTH-TINY-READY", timeout=300)
            inner.vm_action(120, "stop")
            assert ns.link("tap120i0") is None  # cleaned up with the VM
        finally:
            inner.close()

"""Host facts: the KVM probe's verdict, and a missing QEMU."""
from harness import Hearth, wait_for


def test_kvm_probe_reports_a_verdict():
    h = Hearth(accel="auto").start()
    try:
        st = wait_for("the KVM probe", lambda: (s := h.get(f"/nodes/{h.node}/status"))["accel"] != "probing" and s, 60)
        assert st["accel"] in ("kvm", "tcg")
        if st["accel"] == "tcg":
            assert st["accel-reason"]  # says why, e.g. broken nested KVM
            assert "VMs run under TCG" in h.read_log()
    finally:
        h.close()


def test_missing_qemu_is_a_clear_task_error():
    h = Hearth(extra_args=["--qemu", "/nonexistent/qemu-system-x86_64"]).start()
    try:
        h.create_vm(100, memory="128")
        st = h.vm_action(100, "start", ok=False)
        assert st["exitstatus"].startswith("start failed: QEMU exited")
        assert "cannot run '/nonexistent/qemu-system-x86_64'" in st["exitstatus"]
        assert h.get(h.vm_path(100) + "/status/current")["status"] == "stopped"
    finally:
        h.close()

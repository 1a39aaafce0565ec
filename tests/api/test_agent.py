"""Guest agent endpoints: PVE's precondition errors, in PVE's order and words."""


def test_agent_preconditions(hearth):
    hearth.create_vm(810, memory="128")
    r = hearth.request("POST", hearth.vm_path(810) + "/agent/ping")
    assert r.status_code == 500 and r.reason == "No QEMU guest agent configured"
    hearth.put(hearth.vm_path(810) + "/config", data={"agent": "enabled=1,fstrim_cloned_disks=1"})
    assert hearth.get(hearth.vm_path(810) + "/status/current")["agent"] == 1
    r = hearth.request("GET", hearth.vm_path(810) + "/agent/network-get-interfaces")
    assert r.status_code == 500 and r.reason == "VM 810 is not running"
    hearth.vm_action(810, "start")
    # The channel exists but nothing in the guest answers (there is no OS).
    for method, cmd in [("POST", "ping"), ("GET", "get-osinfo"), ("GET", "info")]:
        r = hearth.request(method, hearth.vm_path(810) + "/agent/" + cmd)
        assert r.status_code == 500 and r.reason == "QEMU guest agent is not running", cmd
    r = hearth.request("POST", hearth.vm_path(810) + "/agent/exec", data={"command": ["/bin/true"]})
    assert r.status_code == 500 and r.reason == "QEMU guest agent is not running"


def test_shutdown_falls_back_to_acpi_when_the_agent_does_not_answer(hearth):
    st = hearth.vm_action(810, "shutdown", wait=120, forceStop=1, timeout=2)
    log = hearth.task_log(st["upid"])
    assert any("QEMU guest agent is not running; using ACPI" in l for l in log), log
    assert hearth.get(hearth.vm_path(810) + "/status/current")["status"] == "stopped"
    hearth.wait_task(hearth.delete(hearth.vm_path(810)))

"""Debian's python3-proxmoxer, unchanged, against a real hearth: login with a password and
with an API token, nextid, create, start, status, stop, destroy, task polling."""
import sys

import pytest

sys.path.insert(0, "/usr/lib/python3/dist-packages")
from proxmoxer import ProxmoxAPI  # noqa: E402

from harness import ADMIN_PASSWORD, wait_for  # noqa: E402


def wait_task(px, upid, timeout=120):
    """Polls the task as proxmoxer users do (Debian's proxmoxer 1.2 has no tools.Tasks)."""
    node = upid.split(":")[1]
    task = px.nodes(node).tasks(upid)
    status = wait_for(f"task {upid}", lambda: (s := task.status.get())["status"] == "stopped" and s, timeout, 0.2)
    if status["exitstatus"] != "OK":
        log = "\n".join(line["t"] for line in task.log.get(limit=0))
        raise AssertionError(f"{upid}: {status['exitstatus']}\n{log}")
    return status


def clients(hearth):
    user, rest = hearth.token.split("!", 1)
    name, secret = rest.split("=", 1)
    ticket = ProxmoxAPI("127.0.0.1", port=hearth.port, user="admin@pve", password=ADMIN_PASSWORD, verify_ssl=False)
    token = ProxmoxAPI("127.0.0.1", port=hearth.port, user=user, token_name=name, token_value=secret, verify_ssl=False)
    return {"ticket": ticket, "token": token}


@pytest.mark.parametrize("auth", ["ticket", "token"])
def test_vm_lifecycle_through_proxmoxer(hearth, auth):
    px = clients(hearth)[auth]
    assert px.version.get()["version"].startswith("8.")
    node = px.nodes.get()[0]["node"]
    assert node == hearth.node
    vmid = int(px.cluster.nextid.get())
    upid = px.nodes(node).qemu.post(vmid=vmid, name=f"px-{auth}", memory=128, scsi0="local:1", net0="virtio",
                                   serial0="socket")
    assert wait_task(px, upid)["exitstatus"] == "OK"
    vm = px.nodes(node).qemu(vmid)
    assert vm.config.get()["scsi0"] == f"local:{vmid}/vm-{vmid}-disk-0.qcow2,size=1G"
    wait_task(px, vm.status.start.post())
    assert vm.status.current.get()["status"] == "running"
    resources = [r for r in px.cluster.resources.get(type="vm") if r["vmid"] == vmid]
    assert resources[0]["status"] == "running" and resources[0]["template"] == 0
    wait_task(px, vm.status.stop.post())
    assert vm.status.current.get()["status"] == "stopped"
    wait_task(px, vm.delete(purge=1))
    with pytest.raises(Exception) as err:
        vm.status.current.get()
    assert "does not exist" in str(err.value)


def test_proxmoxer_reports_parameter_errors(hearth):
    px = clients(hearth)["token"]
    with pytest.raises(Exception) as err:
        px.nodes(hearth.node).qemu.post(vmid=170, cores="lots")
    # proxmoxer 1.2 keeps only the status line (its JSON loader drops `errors`), as with PVE.
    assert err.value.status_code == 400
    assert "Parameter verification failed" in str(err.value)


def test_template_clone_cloudinit_and_agent_through_proxmoxer(hearth):
    import urllib.parse

    px = clients(hearth)["token"]
    node = hearth.node
    wait_task(px, px.nodes(node).qemu.post(vmid=880, name="tmpl", memory=128, scsi0="local:1", ide2="local:cloudinit",
                                           agent=1, net0="virtio", serial0="socket"))
    tmpl = px.nodes(node).qemu(880)
    wait_task(px, tmpl.template.post())
    assert tmpl.config.get()["template"] == 1
    wait_task(px, tmpl.clone.post(newid=881, name="n1"))
    vm = px.nodes(node).qemu(881)
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM5YSxhIRowx858BcCj24jfsMXqibW+NfhTUGaWaWrvP px@test"
    assert vm.config.put(ciuser="ops", ipconfig0="ip=10.1.0.5/24,gw=10.1.0.1",
                         sshkeys=urllib.parse.quote(key, safe="")) is None
    assert vm.cloudinit.put() is None
    user = vm.cloudinit.dump.get(type="user")
    assert "\"ops\"" in user and key in user and "\"n1\"" in user
    assert vm.config.get()["ide2"] == "local:881/vm-881-cloudinit.qcow2,media=cdrom"
    wait_task(px, vm.status.start.post())
    # No OS in this VM: the agent channel exists but nothing answers, in PVE's words.
    with pytest.raises(Exception) as err:
        vm.agent.ping.post()
    assert err.value.status_code == 500 and "QEMU guest agent is not running" in str(err.value)
    wait_task(px, vm.status.stop.post())
    wait_task(px, vm.delete())
    wait_task(px, tmpl.delete())

"""Cloud-init as Proxmox does it: a NoCloud drive generated from the VM's ci* keys."""
import os
import subprocess
import tempfile
import urllib.parse

import yaml

from harness import SRC

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM5YSxhIRowx858BcCj24jfsMXqibW+NfhTUGaWaWrvP test@hearth"


def read_seed(hearth, vmid, name):
    """Extracts one file from the VM's cloud-init drive, as the guest would read it."""
    vol = os.path.join(hearth.dir, "images", str(vmid), f"vm-{vmid}-cloudinit.qcow2")
    with tempfile.TemporaryDirectory() as d:
        iso = os.path.join(d, "seed.iso")
        subprocess.run(["qemu-img", "convert", "-U", "-f", "qcow2", "-O", "raw", vol, iso], check=True)
        label = subprocess.run(["xorriso", "-indev", iso, "-pvd_info"], capture_output=True, text=True).stdout
        assert "Volume Id    : cidata" in label
        subprocess.run(["xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/" + name, os.path.join(d, name)],
                       check=True, capture_output=True)
        return open(os.path.join(d, name)).read()


def schema_valid(text):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    r = subprocess.run([os.path.join(SRC, "scripts/cloud-init-schema.sh"), f.name], capture_output=True, text=True)
    os.unlink(f.name)
    return r.returncode == 0, r.stdout + r.stderr


def test_cloudinit_drive_and_documents(hearth):
    hearth.create_vm(800, name="ci1", memory="128", ide2="local:cloudinit", net0="virtio", ciuser="ops",
                     cipassword="s3cret", sshkeys=urllib.parse.quote(KEY + "\n", safe=""),
                     ipconfig0="ip=10.20.0.10/24,gw=10.20.0.1", nameserver="10.20.0.1", searchdomain="lab.example")
    c = hearth.get(hearth.vm_path(800) + "/config")
    assert c["ide2"] == "local:800/vm-800-cloudinit.qcow2,media=cdrom"  # packer/bpg find it by these substrings
    assert c["cipassword"] == "**********"
    user = hearth.get(hearth.vm_path(800) + "/cloudinit/dump", params={"type": "user"})
    u = yaml.safe_load(user)
    assert u["hostname"] == "ci1" and u["fqdn"] == "ci1.lab.example" and u["user"] == "ops"
    assert u["password"].startswith("$6$") and "s3cret" not in user  # stored and delivered hashed
    assert u["ssh_authorized_keys"] == [KEY]
    net = yaml.safe_load(hearth.get(hearth.vm_path(800) + "/cloudinit/dump", params={"type": "network"}))
    assert net["config"][0]["subnets"][0] == {"type": "static", "address": "10.20.0.10", "netmask": "255.255.255.0",
                                              "gateway": "10.20.0.1"}
    meta = yaml.safe_load(hearth.get(hearth.vm_path(800) + "/cloudinit/dump", params={"type": "meta"}))
    assert meta["local-hostname"] == "ci1"
    ok, out = schema_valid(user)
    assert ok, out
    # PUT …/cloudinit writes exactly these documents to the drive
    assert hearth.put(hearth.vm_path(800) + "/cloudinit") is None
    assert read_seed(hearth, 800, "user-data") == user
    assert yaml.safe_load(read_seed(hearth, 800, "meta-data")) == meta


def test_changes_reach_the_drive_at_start(hearth):
    hearth.put(hearth.vm_path(800) + "/config", data={"ciuser": "admin2", "ipconfig0": "ip=dhcp"})
    pending = hearth.get(hearth.vm_path(800) + "/cloudinit")
    assert {"key": "ciuser", "value": "admin2"} in pending
    upid = hearth.post(hearth.vm_path(800) + "/status/start")
    hearth.wait_task(upid)
    assert any("cloud-init: wrote the NoCloud seed" in l for l in hearth.task_log(upid))
    assert yaml.safe_load(read_seed(hearth, 800, "user-data"))["user"] == "admin2"
    assert yaml.safe_load(read_seed(hearth, 800, "network-config"))["config"][0]["subnets"] == [{"type": "dhcp4"}]
    hearth.vm_action(800, "stop")


def test_one_cloudinit_drive_and_its_removal(hearth):
    r = hearth.request("PUT", hearth.vm_path(800) + "/config", data={"ide0": "local:cloudinit"})
    assert r.status_code == 500 and r.reason == "ide0 - cloud-init drive is already attached at 'ide2'"  # PVE: a die
    r = hearth.request("PUT", hearth.vm_path(800) + "/config", data={"ipconfig0": "ip=10.0.0.1", "sshkeys": "ssh-rsa AAA x"})
    assert r.status_code == 400 and {"ipconfig0", "sshkeys"} <= set(r.json()["errors"])
    r = hearth.request("PUT", hearth.vm_path(800) + "/config", data={"sshkeys": "ssh-rsa%20AAAA%20x"})
    assert r.status_code == 500 and r.reason == "SSH public key validation error"  # encoded, but not a key


def test_telmate_resends_the_cloudinit_drive_as_raw(hearth):
    """Telmate always sends ide2=<storage>:cloudinit,format=raw with the rest of its config."""
    hearth.create_vm(810, memory="128", ide2="local:cloudinit,format=raw")
    assert hearth.get(hearth.vm_path(810) + "/config")["ide2"] == "local:810/vm-810-cloudinit.raw,media=cdrom"
    hearth.put(hearth.vm_path(810) + "/config", data={"ide2": "local:cloudinit,format=raw", "cores": "2", "memory": "256",
                                                      "ciuser": "ops", "tags": "k3s"})
    c = hearth.get(hearth.vm_path(810) + "/config")
    assert c["ide2"] == "local:810/vm-810-cloudinit.raw,media=cdrom" and c["cores"] == 2 and c["ciuser"] == "ops"
    # Asking for another format swaps the drive: the old volume goes, nothing is left unused.
    hearth.put(hearth.vm_path(810) + "/config", data={"ide2": "local:cloudinit"})
    c = hearth.get(hearth.vm_path(810) + "/config")
    assert c["ide2"] == "local:810/vm-810-cloudinit.qcow2,media=cdrom" and not any(k.startswith("unused") for k in c)
    assert sorted(os.listdir(os.path.join(hearth.dir, "images", "810"))) == ["vm-810-cloudinit.qcow2"]
    hearth.wait_task(hearth.delete(hearth.vm_path(810)))


def test_packer_removes_the_drive_while_running_then_adds_one_to_the_template(hearth):
    """Packer: delete the cloud-init drive on the running VM, shut down, template, add ide0."""
    hearth.create_vm(811, memory="128", ide2="local:cloudinit", scsi0="local:1")
    hearth.vm_action(811, "start")
    hearth.wait_task(hearth.post(hearth.vm_path(811) + "/config", data={"delete": "ide2"}))
    assert {"key": "ide2", "delete": 1, "value": "local:811/vm-811-cloudinit.qcow2,media=cdrom"} in \
        hearth.get(hearth.vm_path(811) + "/pending")
    hearth.vm_action(811, "stop")  # pending changes apply once it is down, as in PVE
    c = hearth.get(hearth.vm_path(811) + "/config")
    assert "ide2" not in c and not any(k.startswith("unused") for k in c)
    assert not os.path.exists(os.path.join(hearth.dir, "images", "811", "vm-811-cloudinit.qcow2"))
    hearth.wait_task(hearth.post(hearth.vm_path(811) + "/template"))
    hearth.wait_task(hearth.post(hearth.vm_path(811) + "/config", data={"ide0": "local:cloudinit"}))
    assert hearth.get(hearth.vm_path(811) + "/config")["ide0"] == "local:811/vm-811-cloudinit.qcow2,media=cdrom"
    hearth.wait_task(hearth.delete(hearth.vm_path(811)))


def test_custom_user_data_from_an_uploaded_snippet(hearth):
    snippet = "#cloud-config\nruncmd:\n  - [touch, /etc/hearth-custom]\n"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(snippet)
    with open(f.name, "rb") as fh:
        r = hearth.request("POST", f"/nodes/{hearth.node}/storage/local/upload", data={"content": "snippets"},
                           files={"filename": ("custom.yaml", fh)})
    os.unlink(f.name)
    hearth.wait_task(r.json()["data"])
    hearth.put(hearth.vm_path(800) + "/config", data={"cicustom": "user=local:snippets/custom.yaml"})
    assert hearth.get(hearth.vm_path(800) + "/cloudinit/dump", params={"type": "user"}) == snippet
    hearth.put(hearth.vm_path(800) + "/cloudinit")
    assert read_seed(hearth, 800, "user-data") == snippet
    hearth.put(hearth.vm_path(800) + "/config", data={"delete": "cicustom"})


def test_clones_get_their_own_seed_and_removal_destroys_it(hearth):
    hearth.wait_task(hearth.post(hearth.vm_path(800) + "/template"))
    hearth.wait_task(hearth.post(hearth.vm_path(800) + "/clone", data={"newid": 801, "name": "ci2"}))
    c = hearth.get(hearth.vm_path(801) + "/config")
    assert c["ide2"] == "local:801/vm-801-cloudinit.qcow2,media=cdrom"
    assert yaml.safe_load(hearth.get(hearth.vm_path(801) + "/cloudinit/dump", params={"type": "user"}))["hostname"] == "ci2"
    hearth.put(hearth.vm_path(801) + "/config", data={"delete": "ide2"})
    c = hearth.get(hearth.vm_path(801) + "/config")
    assert "ide2" not in c and not any(k.startswith("unused") for k in c)
    assert not os.path.exists(os.path.join(hearth.dir, "images", "801", "vm-801-cloudinit.qcow2"))
    hearth.wait_task(hearth.delete(hearth.vm_path(801)))
    hearth.wait_task(hearth.delete(hearth.vm_path(800)))
    assert not os.path.exists(os.path.join(hearth.dir, "images", "800", "vm-800-cloudinit.qcow2"))

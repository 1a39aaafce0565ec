"""A real Ansible playbook (Debian 12's ansible 7.7: community.general 6.6.2 proxmox_kvm on
proxmoxer 1.2) against hearth: create, start, update, stop with force, clone, delete. The
guest is the tiny ISO (it powers off on ACPI), on a bridge in a network namespace."""
import json
import os
import shutil
import subprocess
import textwrap

import pytest

from harness import ADMIN_PASSWORD
from lab import bridged_hearth

PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    api: &api
      api_host: "127.0.0.1:{port}"
      api_user: admin@pve
      api_password: "{password}"
      validate_certs: false
      node: "{node}"
  tasks:
    - name: create a VM
      community.general.proxmox_kvm:
        <<: *api
        name: ans1
        cores: 1
        memory: 256
        net: {{net0: "virtio,bridge=vmbr0"}}
        scsi: {{scsi0: "local:1"}}
        ide: {{ide2: "local:iso/tiny.iso,media=cdrom"}}
        serial: {{serial0: socket}}
        boot: order=ide2
        ciuser: ops
        ipconfig: {{ipconfig0: "ip=dhcp"}}
      register: created
    - name: creating it again changes nothing
      community.general.proxmox_kvm:
        <<: *api
        name: ans1
      register: again
    - name: start it
      community.general.proxmox_kvm: {{<<: *api, name: ans1, state: started}}
    - name: change cores and memory
      community.general.proxmox_kvm: {{<<: *api, name: ans1, update: true, cores: 2, memory: 512}}
    - name: stop it, forcefully if it must be
      community.general.proxmox_kvm: {{<<: *api, name: ans1, state: stopped, force: true, timeout: 120}}
    - name: a full clone
      community.general.proxmox_kvm: {{<<: *api, name: ans2, clone: ans1, full: true, timeout: 120}}
    - name: the state of the clone
      community.general.proxmox_kvm: {{<<: *api, name: ans2, state: current}}
      register: current
    - name: delete both
      community.general.proxmox_kvm: {{<<: *api, name: "{{{{ item }}}}", state: absent}}
      loop: [ans1, ans2]
    - ansible.builtin.copy:
        dest: "{out}"
        content: "{{{{ {{'created': created, 'again': again, 'current': current}} | to_json }}}}"
"""


@pytest.mark.skipif(shutil.which("ansible-playbook") is None, reason="Debian's ansible is not installed")
def test_proxmox_kvm_playbook(tmp_path):
    work = str(tmp_path)
    with bridged_hearth("ans") as h:
        out = os.path.join(work, "out.json")
        book = os.path.join(work, "play.yml")
        with open(book, "w") as f:
            f.write(textwrap.dedent(PLAYBOOK).format(port=h.port, password=ADMIN_PASSWORD, node=h.node, out=out))
        env = dict(os.environ, ANSIBLE_PYTHON_INTERPRETER="/usr/bin/python3", ANSIBLE_NOCOLOR="1",
                   ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
                   HOME=work)
        r = subprocess.run(["ansible-playbook", book], capture_output=True, text=True, env=env, timeout=900)
        assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
        res = json.load(open(out))
        assert res["created"]["changed"] and res["created"]["mac"]["net0"].startswith("BC:24:11:")
        assert not res["again"]["changed"]
        assert res["current"]["status"] == "stopped"
        assert not [v for v in h.get(f"/nodes/{h.node}/qemu") if v["name"] in ("ans1", "ans2")]
        # Every step ran as hearth tasks, in the order the module drives them.
        tasks = h.get(f"/nodes/{h.node}/tasks", params={"limit": 100})
        assert {"qmcreate", "qmstart", "qmshutdown", "qmclone", "qmdestroy"} <= {t["type"] for t in tasks}

"""Authentication: tickets, CSRF, API tokens, PAM, and the matrix over every route."""
import os
import re
import subprocess
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import requests

import pytest

from harness import wait_for

PUBLIC = {("POST", "/access/ticket"), ("GET", "/access/ticket"), ("GET", "/access/domains")}


def test_login_returns_pve_shaped_ticket(hearth):
    d = hearth.login()
    assert d["username"] == "admin@pve"
    assert re.fullmatch(r"PVE:admin@pve:[0-9A-F]{8}::[A-Za-z0-9+/=]+", d["ticket"])
    assert re.fullmatch(r"[0-9A-F]{8}:[A-Za-z0-9+/]{43}", d["CSRFPreventionToken"])
    assert d["cap"]["vms"]["VM.PowerMgmt"] == 1


def test_wrong_password_is_401_authentication_failure(hearth):
    r = hearth.session.post(hearth.url + "/access/ticket", data={"username": "admin@pve", "password": "nope"})
    assert r.status_code == 401
    assert r.reason == "authentication failure"
    assert r.json()["message"] == "authentication failure\n"
    r = hearth.session.post(hearth.url + "/access/ticket", data={"username": "ghost@pve", "password": "nope"})
    assert r.status_code == 401 and r.reason == "authentication failure"


def test_ticket_in_cookie_or_authorization_header(hearth):
    t = hearth.login()
    r = hearth.session.get(hearth.url + "/nodes", headers={"Cookie": "PVEAuthCookie=" + t["ticket"]})
    assert r.status_code == 200
    r = hearth.session.get(hearth.url + "/nodes", headers={"Authorization": "PVEAuthCookie=" + t["ticket"]})
    assert r.status_code == 200
    # Ticket renewal: the ticket works as a password.
    renewed = hearth.login("admin@pve", t["ticket"])
    assert renewed["ticket"].startswith("PVE:admin@pve:")


def test_ticket_writes_need_csrf_tokens_do_not(hearth):
    t = hearth.login()
    path = hearth.url + f"/nodes/{hearth.node}/qemu"
    r = hearth.session.post(path, data={"vmid": 190}, headers={"Cookie": "PVEAuthCookie=" + t["ticket"]})
    assert r.status_code == 401 and r.reason == "Permission denied - invalid csrf token"
    r = hearth.session.post(path, data={"vmid": 190}, headers={"Cookie": "PVEAuthCookie=" + t["ticket"],
                                                               "CSRFPreventionToken": "6720A1B2:" + "A" * 43})
    assert r.status_code == 401
    upid = hearth.post(f"/nodes/{hearth.node}/qemu", data={"vmid": 190}, auth=t)
    hearth.wait_task(upid)
    upid = hearth.delete(hearth.vm_path(190))  # token: no CSRF needed
    hearth.wait_task(upid)


def test_token_user_appears_in_upid(hearth):
    upid = hearth.create_vm(191)
    assert upid.split(":")[7] == "admin@pve!test"
    st = hearth.task_status(upid)
    assert st["user"] == "admin@pve" and st["tokenid"] == "test"
    hearth.wait_task(hearth.delete(hearth.vm_path(191)))


def test_tokens_cannot_log_in(hearth):
    r = hearth.request("POST", "/access/ticket", data={"username": "admin@pve", "password": "x"})
    assert r.status_code in (401, 403)


def test_non_admin_is_read_only(hearth):
    hearth.admin("user", "add", "viewer@pve", "--password-stdin", stdin="viewpw")
    t = hearth.login("viewer@pve", "viewpw")
    assert hearth.request("GET", f"/nodes/{hearth.node}/qemu", auth=t).status_code == 200
    r = hearth.request("POST", f"/nodes/{hearth.node}/qemu", data={"vmid": 192}, auth=t)
    assert r.status_code == 403
    assert r.reason == "Permission check failed (/vms/192, VM.Allocate)"
    perms = hearth.get("/access/permissions", auth=t)
    assert "VM.Audit" in perms["/"] and "VM.Allocate" not in perms["/"]


def test_users_and_permissions_for_telmate(hearth):
    users = hearth.get("/access/users", params={"full": 1})
    ids = [u["userid"] for u in users]
    assert "admin@pve" in ids and "root@pam" in ids
    admin = [u for u in users if u["userid"] == "admin@pve"][0]
    assert {"tokenid": "test", "expire": 0, "privsep": 0} in admin["tokens"]
    perms = hearth.get("/access/permissions", params={"userid": "admin@pve", "path": "/"})
    for p in ["Datastore.AllocateSpace", "Datastore.Audit", "Pool.Allocate", "Sys.Audit", "Sys.Console", "Sys.Modify",
              "VM.Allocate", "VM.Audit", "VM.Clone", "VM.Config.Cloudinit", "VM.Migrate", "VM.PowerMgmt"]:
        assert perms["/"][p] == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a host user")
def test_pam_realm_authenticates_host_users(hearth):
    user = f"hearthpam{os.getpid() % 10000}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user], check=True)
    try:
        subprocess.run(["chpasswd"], input=f"{user}:pam-secret-1\n", text=True, check=True)
        hearth.admin("user", "add", f"{user}@pam")
        t = hearth.login(f"{user}@pam", "pam-secret-1")
        assert t["username"] == f"{user}@pam"
        r = hearth.session.post(hearth.url + "/access/ticket", data={"username": f"{user}@pam", "password": "wrong"})
        assert r.status_code == 401
    finally:
        subprocess.run(["userdel", user], check=False)


def concrete(path, values):
    def sub(m):
        name = m.group(1).rstrip("*")
        return urllib.parse.quote(values.get(name, "x"), safe="")
    return re.sub(r"\{([^}]+)\}", sub, path)


def test_auth_matrix_over_every_route(hearth):
    """Every route but the public ones rejects missing and bad credentials, and ticket
    writes without a CSRF token — before doing anything."""
    routes = hearth.get("/hearth/routes")
    assert len(routes) > 40
    upid = hearth.create_vm(195)
    values = {"node": hearth.node, "vmid": "195", "upid": upid, "storage": "local", "volume": "local:iso/none.iso",
              "userid": "admin@pve", "sid": "195"}
    ticket = hearth.login()
    probes = []
    for r in routes:
        method, path = r["method"], r["path"]
        if (method, path) in PUBLIC:
            assert r["auth"] == 0
            continue
        assert r["auth"] == 1, f"{method} {path} must require authentication"
        url = hearth.url + concrete(path, values)
        for headers in ({}, {"Cookie": "PVEAuthCookie=PVE:admin@pve:6720A1B2::bogus"},
                        {"Authorization": "PVEAPIToken=admin@pve!test=wrong-secret"},
                        {"Authorization": "PVEAPIToken=admin@pve!nosuch=" + hearth.token.split("=", 1)[1]}):
            probes.append((method, path, url, headers, "401"))
        if method != "GET" and not path.endswith("/upload"):
            probes.append((method, path, url, {"Cookie": "PVEAuthCookie=" + ticket["ticket"]}, "csrf"))

    def probe(p):
        method, path, url, headers, kind = p
        t0 = time.monotonic()
        resp = requests.request(method, url, headers=headers, verify=False, timeout=60)
        took = time.monotonic() - t0
        assert resp.status_code == 401, f"{method} {path} with {headers}: {resp.status_code}"
        assert resp.text == "", "401s carry no JSON body, as PVE"
        if kind == "csrf":
            assert resp.reason == "Permission denied - invalid csrf token", f"{method} {path}"
        return took

    # PVE answers every authentication failure after 3 s: run the probes side by side.
    with ThreadPoolExecutor(48) as pool:
        took = list(pool.map(probe, probes))
    assert len({p[1] for p in probes}) > 40
    assert min(took) >= 2.9, "authentication failures are delayed by 3 s, as PVE"
    # Nothing happened to the VM on the way.
    assert hearth.get(hearth.vm_path(195) + "/status/current")["status"] == "stopped"
    hearth.wait_task(hearth.delete(hearth.vm_path(195)))

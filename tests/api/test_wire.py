"""Proxmox wire fidelity: prefix, envelope, errors, parameter decoding."""
import json


def test_version_needs_a_login_and_is_pve8_compatible(hearth):
    r = hearth.session.get(hearth.url + "/version")
    assert r.status_code == 401 and r.reason == "No ticket"  # as PVE: not for the world
    r = hearth.request("GET", "/version")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json;charset=UTF-8"
    data = r.json()["data"]
    assert data["version"].startswith("8.")
    assert data["release"] == "8.4"
    assert data["repoid"]


def test_unknown_route_is_501_with_reason(hearth):
    r = hearth.request("GET", "/no/such/thing")
    assert r.status_code == 501
    assert r.reason == "Method 'GET /no/such/thing' not implemented"
    assert r.json() == {"data": None, "message": "Method 'GET /no/such/thing' not implemented\n"}
    r = hearth.session.get(f"https://127.0.0.1:{hearth.port}/elsewhere", verify=False)
    assert r.status_code == 501


def test_parameter_errors_name_the_field(hearth):
    r = hearth.request("POST", f"/nodes/{hearth.node}/qemu", data={"vmid": 150, "cores": "abc", "bogus": "1"})
    assert r.status_code == 400
    assert r.reason == "Parameter verification failed."
    body = r.json()
    assert body["data"] is None
    assert body["message"] == "Parameter verification failed.\n"
    assert body["errors"]["cores"] == "type check ('integer') failed - got 'abc'"
    assert "not defined in schema" in body["errors"]["bogus"]


def test_values_that_are_not_strict_utf8_are_refused(hearth):
    # An overlong "\xc1\xa9" was let in, stored, and made the cloud-init renderer throw at
    # the next start (found by fuzzing). Surrogates and NUL are refused the same way.
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for raw in ("%C1%A9ch", "%ED%A0%80", "a%00b"):
        r = hearth.request("POST", f"/nodes/{hearth.node}/qemu", data=f"vmid=151&ciuser={raw}", headers=form)
        assert r.status_code == 400, raw
        assert r.json()["errors"]["ciuser"] == "value must be valid UTF-8 without NUL bytes"
    r = hearth.request("POST", f"/nodes/{hearth.node}/qemu", data="vmid=151&ciuser=j%C3%BCrgen", headers=form)
    assert r.status_code == 200
    hearth.wait_task(r.json()["data"])
    assert hearth.get(hearth.vm_path(151) + "/config")["ciuser"] == "jürgen"


def test_booleans_are_0_or_1_only(hearth):
    r = hearth.request("GET", f"/cluster/resources", params={"type": "nonsense"})
    assert r.status_code == 400 and "type" in r.json()["errors"]
    r = hearth.request("GET", f"/nodes/{hearth.node}/qemu", params={"full": "true"})
    assert r.status_code == 400
    assert r.json()["errors"]["full"] == "type check ('boolean') failed - got 'true'"


def test_form_body_without_content_type_and_json_body(hearth):
    # Telmate logs in with a form body and no Content-Type header at all.
    r = hearth.session.post(hearth.url + "/access/ticket", data="username=admin%40pve&password=hearth-test-pw",
                            headers={"Content-Type": ""})
    assert r.status_code == 200, r.text
    r = hearth.session.post(hearth.url + "/access/ticket", data=json.dumps({"username": "admin@pve", "password": "hearth-test-pw"}),
                            headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text


def test_body_on_get_is_rejected(hearth):
    r = hearth.request("DELETE", f"/nodes/{hearth.node}/tasks/x", data="a=1",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 501
    assert r.reason == "Unexpected content for method 'DELETE'"


def test_conflicting_path_parameter(hearth):
    r = hearth.request("GET", f"/nodes/{hearth.node}/qemu/100/config", params={"vmid": "101"})
    assert r.status_code == 400
    assert r.json()["errors"]["vmid"] == "duplicate parameter (already defined in URI) with conflicting values!"


def test_unknown_vm_has_pve_message(hearth):
    r = hearth.request("GET", f"/nodes/{hearth.node}/qemu/9999/config")
    assert r.status_code == 500
    msg = f"Configuration file 'nodes/{hearth.node}/qemu-server/9999.conf' does not exist"
    assert r.reason == msg
    assert r.json()["message"] == msg + "\n"


def test_wrong_node_is_a_5xx(hearth):
    r = hearth.request("GET", "/nodes/othernode/qemu")
    assert r.status_code == 500
    assert "hostname lookup 'othernode' failed" in r.reason


def test_empty_lists_the_exporter_probes(hearth):
    n = hearth.node
    assert hearth.get(f"/nodes/{n}/lxc") == []
    assert hearth.get(f"/nodes/{n}/replication") == []
    assert hearth.get(f"/nodes/{n}/subscription")["status"] == "notfound"
    assert hearth.get("/pools") == []
    r = hearth.request("GET", "/pools", params={"poolid": "p1"})
    assert r.status_code == 500 and r.reason == "pool 'p1' does not exist"
    r = hearth.request("GET", "/cluster/ha/resources/100")
    assert r.status_code == 500 and r.reason == "no such resource 'vm:100'"


def test_cluster_status_and_nodes(hearth):
    status = hearth.get("/cluster/status")
    assert status == [{"type": "node", "id": f"node/{hearth.node}", "name": hearth.node, "ip": "127.0.0.1",
                       "local": 1, "nodeid": 0, "online": 1, "level": ""}]
    nodes = hearth.get("/nodes")
    assert nodes[0]["node"] == hearth.node and nodes[0]["status"] == "online"
    assert isinstance(nodes[0]["maxmem"], int) and nodes[0]["ssl_fingerprint"].count(":") == 31
    st = hearth.get(f"/nodes/{hearth.node}/status")
    assert st["accel"] == "tcg"  # the harness runs --accel tcg
    assert st["memory"]["total"] > 0 and st["cpuinfo"]["cpus"] >= 1


def test_storage_resources_are_numeric(hearth):
    res = hearth.get("/cluster/resources", params={"type": "storage"})
    local = [r for r in res if r["storage"] == "local"][0]
    assert local["id"] == f"storage/{hearth.node}/local"
    assert local["status"] == "available" and local["plugintype"] == "dir"
    assert isinstance(local["shared"], int) and isinstance(local["disk"], int) and isinstance(local["maxdisk"], int)


def test_large_answers_are_gzipped_for_clients_that_ask(hearth):
    for i in range(20):
        hearth.create_vm(600 + i, name=f"gz{i}")
    path = hearth.url + "/cluster/resources"
    auth = {"Authorization": "PVEAPIToken=" + hearth.token}
    plain = hearth.session.get(path, headers={**auth, "Accept-Encoding": "identity"})
    zipped = hearth.session.get(path, headers={**auth, "Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in plain.headers
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.json() == plain.json()  # requests decompresses transparently
    # The cached listing follows changes at once.
    hearth.wait_task(hearth.delete(hearth.vm_path(619)))
    after = hearth.get("/cluster/resources", params={"type": "vm"})
    assert 619 not in [r["vmid"] for r in after] and 618 in [r["vmid"] for r in after]
    for i in range(19):
        hearth.wait_task(hearth.delete(hearth.vm_path(600 + i)))


def test_a_long_value_is_not_echoed_whole_in_the_reason_phrase(hearth):
    # The error names the value; the reason phrase is cut (the JSON body has the whole message).
    r = hearth.request("POST", hearth.vm_path(100) + "/move_disk", data={"disk": "scsi0", "storage": "x" * 5000})
    assert r.status_code == 400
    assert len(r.reason) <= 515 and r.reason == "Parameter verification failed."
    r = hearth.request("DELETE", f"/nodes/{hearth.node}/storage/local/content/local:100/{'v' * 3000}.qcow2",
                       params={"delay": 10})
    assert r.status_code == 500 and r.reason.endswith("...") and len(r.reason) <= 515, (r.status_code, r.reason[:80])
    assert "v" * 3000 in r.json()["message"]

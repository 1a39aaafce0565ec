#!/usr/bin/python3
"""hearth benchmarks. Prints figures; asserts nothing (machines are noisy: compare ratios
measured in one run). Results go to bench/RESULTS.md by hand, with this command:

    /usr/bin/python3 bench/run_benchmarks.py [--vms 1000] [--duration 10]

Needs: a built build/hearth, wrk (Debian package), root (QEMU runs as hearth-qemu); for the
libvirt peer (--only libvirt): apt-get install libvirt-daemon python3-libvirt.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "lib"))
for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(var, None)

from harness import HEARTH_BIN, Hearth, wait_for  # noqa: E402


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wrk(h, path, connections, duration, gzip=False):
    lua = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    lua.write('wrk.headers["Authorization"] = "PVEAPIToken=%s"\n' % h.token)
    if gzip:
        lua.write('wrk.headers["Accept-Encoding"] = "gzip"\n')
    lua.close()
    out = subprocess.run(["wrk", "-t", "2" if connections > 1 else "1", "-c", str(connections), "-d", f"{duration}s",
                          "--latency", "-s", lua.name, h.url + path], capture_output=True, text=True).stdout
    os.unlink(lua.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, lat.get("50"), lat.get("99"), int(errors.group(1)) if errors else 0


CREATE_LUA = """
local n_per_thread = %d
local threads = {}
function setup(thread)
  thread:set("base", 1000 + #threads * 100000)
  table.insert(threads, thread)
end
function init(args)
  sent, done = 0, 0
  wrk.headers["Authorization"] = "PVEAPIToken=%s"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
function request()
  sent = sent + 1
  local vmid = base + sent
  local body = "vmid=" .. vmid .. "&name=vm" .. vmid .. "&memory=512&cores=2&net0=virtio%%2Cbridge%%3Dvmbr0&tags=bench"
  return wrk.format("POST", "/api2/json/nodes/%s/qemu", nil, body)
end
function response(status, headers, body)
  done = done + 1
  if done >= n_per_thread then wrk.thread:stop() end
end
"""


def create_many_wrk(h, n, connections=8, threads=2):
    """n VMs created by wrk (a C client, so the client is not what is measured), then waited
    for: the time until all n exist and none is locked (every create task has ended)."""
    lua = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    lua.write(CREATE_LUA % (n // threads, h.token, h.node))
    lua.close()
    auth = {"Authorization": "PVEAPIToken=" + h.token}
    t0 = time.monotonic()
    # wrk stops sending after n requests, but only exits after -d: watch for the end here.
    proc = subprocess.Popen(["wrk", "-t", str(threads), "-c", str(connections), "-d", "300s", "-s", lua.name, h.url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # Cheap polls (task counts from the store), so that watching does not cost the daemon
    # more than the creates: the VM listing would be rebuilt after every create.
    tasks = h.url + f"/nodes/{h.node}/tasks"

    def all_created():
        made = h.session.get(tasks, params={"typefilter": "qmcreate", "limit": 1}, headers=auth).json()["total"]
        running = h.session.get(tasks, params={"source": "active", "limit": 1}, headers=auth).json()["total"]
        return made >= n and running == 0
    wait_for(f"{n} VMs created", all_created, 300, 0.01)
    took = time.monotonic() - t0
    proc.terminate()
    proc.wait()
    os.unlink(lua.name)
    return took


def create_many(h, n):
    """n VMs defined (memory and a NIC, no disks), created through the API in parallel."""
    ids = list(range(1000, 1000 + n))
    upids = []
    lock = threading.Lock()

    def worker(chunk):
        for vmid in chunk:
            u = h.post(f"/nodes/{h.node}/qemu", data={"vmid": vmid, "name": f"vm{vmid}", "memory": "512",
                                                      "cores": "2", "net0": "virtio,bridge=vmbr0",
                                                      "tags": "bench"})
            with lock:
                upids.append(u)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(ids[i::8],)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for u in upids:
        h.wait_task(u, timeout=300)
    return time.monotonic() - t0


def bench_api(args):
    print(f"== API throughput with {args.vms} VMs defined (wrk over TLS, keep-alive, {args.duration}s each)")
    h = Hearth().start()
    try:
        took = create_many(h, args.vms)
        print(f"created {args.vms} VMs through the API in {took:.1f} s ({args.vms / took:.0f} creates/s)")
        for path in ["/cluster/resources", f"/nodes/{h.node}/qemu", "/version"]:
            for gzip in (False, True):
                if gzip and path == "/version":
                    continue
                for c in (1, 64):
                    rps, p50, p99, errors = wrk(h, path, c, args.duration, gzip)
                    enc = "gzip" if gzip else "identity"
                    print(f"GET {path:<22} {enc:<8} c={c:<3} {rps:9.0f} req/s  p50 {p50:>8}  p99 {p99:>8}  non-2xx {errors}")
        size = len(h.session.get(h.url + "/cluster/resources", headers={"Authorization": "PVEAPIToken=" + h.token}).content)
        print(f"/cluster/resources response: {size / 1024:.0f} KiB")
        time.sleep(3)
        print(f"daemon RSS with {args.vms} VMs defined, after the load: {rss_kib(h.proc.pid) / 1024:.1f} MiB")
    finally:
        h.close()
    # Idle footprint: a fresh daemon on the same data.
    h2 = Hearth()
    h2.dir = tempfile.mkdtemp(prefix="hearth-bench-")
    h2.own_dir = True
    h2.start()
    try:
        create_many(h2, args.vms)
        h2.stop()
        h2.start()
        time.sleep(5)
        print(f"idle RSS of a freshly started daemon with {args.vms} VMs defined: {rss_kib(h2.proc.pid) / 1024:.1f} MiB")
    finally:
        h2.close()


def bench_startup(args):
    print("== start to API ready (spawn -> first successful GET /version), 10 runs, 1000 VMs defined")
    h = Hearth().start()
    create_many(h, args.vms)
    h.stop()
    times = []
    try:
        for _ in range(10):
            port_file = os.path.join(h.dir, "run", "api-port")
            os.unlink(port_file)
            t0 = time.monotonic()
            proc = subprocess.Popen([HEARTH_BIN, "serve", "--data-dir", h.dir, "--listen", "127.0.0.1:0", "--node",
                                     h.node, "--accel", "tcg"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for("port file", lambda: os.path.exists(port_file), 30, 0.001)
            url = f"https://127.0.0.1:{int(open(port_file).read())}/api2/json/version"
            auth = {"Authorization": "PVEAPIToken=" + h.token}
            wait_for("/version", lambda: h.session.get(url, headers=auth, timeout=5).status_code == 200, 30, 0.001)
            times.append((time.monotonic() - t0) * 1000)
            proc.terminate()
            proc.wait()
        print(f"median {statistics.median(times):.0f} ms, min {min(times):.0f} ms, max {max(times):.0f} ms")
    finally:
        h.close()


def qmp_running(sock, deadline):
    import socket
    while time.monotonic() < deadline:
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock)
            f = s.makefile("rw")
            f.readline()
            f.write('{"execute":"qmp_capabilities"}\n{"execute":"query-status"}\n')
            f.flush()
            f.readline()
            reply = json.loads(f.readline())
            s.close()
            if reply.get("return", {}).get("status") == "running":
                return True
        except OSError:
            time.sleep(0.005)
    return False


def bench_vm_start(args):
    print("== VM start overhead: POST status/start -> QMP 'running', vs the same argv started by hand (5 runs each)")
    h = Hearth().start()
    try:
        h.create_vm(100, memory="256", scsi0="local:1", net0="virtio", serial0="socket")
        via_api, by_hand = [], []
        argv = None
        for _ in range(5):
            qmp = os.path.join(h.dir, "run", "100.qmp")
            t0 = time.monotonic()
            upid = h.post(h.vm_path(100) + "/status/start")
            assert qmp_running(qmp, time.monotonic() + 60)
            via_api.append(time.monotonic() - t0)
            h.wait_task(upid)
            pid = h.get(h.vm_path(100) + "/status/current")["pid"]
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[:-1]
            h.vm_action(100, "stop")
        run = os.path.join(h.dir, "run")
        for _ in range(5):
            for f in ("100.qmp", "100.pid"):
                if os.path.exists(os.path.join(run, f)):
                    os.unlink(os.path.join(run, f))
            t0 = time.monotonic()
            p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            assert qmp_running(os.path.join(run, "100.qmp"), time.monotonic() + 60)
            by_hand.append(time.monotonic() - t0)
            p.kill()
            p.wait()
        a, b = statistics.median(via_api), statistics.median(by_hand)
        print(f"via API median {a * 1000:.0f} ms, by hand median {b * 1000:.0f} ms, ratio {a / b:.2f}x")
    finally:
        h.close()


def bench_clone(args):
    print("== linked clones of a template: API call to task OK (10 sequential), then 20 in parallel")
    h = Hearth().start()
    try:
        h.create_vm(9000, name="tmpl", memory="512", scsi0="local:8", net0="virtio")
        h.wait_task(h.post(h.vm_path(9000) + "/template"))
        one = []
        for i in range(10):
            t0 = time.monotonic()
            upid = h.post(h.vm_path(9000) + "/clone", data={"newid": 100 + i})
            st = wait_for("clone", lambda: (s := h.task_status(upid))["status"] == "stopped" and s, 60, 0.002)
            one.append((time.monotonic() - t0) * 1000)
            assert st["exitstatus"] == "OK"
        print(f"one linked clone, API call to task OK: median {statistics.median(one):.0f} ms "
              f"(min {min(one):.0f}, max {max(one):.0f})")
        results = {}

        def clone(newid):
            results[newid] = h.request("POST", h.vm_path(9000) + "/clone", data={"newid": newid})

        t0 = time.monotonic()
        threads = [threading.Thread(target=clone, args=(200 + i,)) for i in range(20)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        failures = 0
        for r in results.values():
            if r.status_code != 200:
                failures += 1
                continue
            st = wait_for("clone", lambda: (s := h.task_status(r.json()["data"]))["status"] == "stopped" and s, 120, 0.005)
            failures += st["exitstatus"] != "OK"
        print(f"20 parallel linked clones: all done in {(time.monotonic() - t0) * 1000:.0f} ms, {failures} failures")
    finally:
        h.close()


def bench_provision(args):
    print("== provisioning under TCG: image build (cold, cached), then clone + start + kernel + cloud-init + agent")
    cache = tempfile.mkdtemp(prefix="hearth-bench-images-")
    h = Hearth(extra_args=["--image-cache", cache]).start()
    try:
        t0 = time.monotonic()
        h.wait_task(h.post(f"/nodes/{h.node}/hearth/images", data={"vmid": 9000}), timeout=1800)
        cold = time.monotonic() - t0
        t0 = time.monotonic()
        h.wait_task(h.post(f"/nodes/{h.node}/hearth/images", data={"vmid": 9001}), timeout=600)
        cached = time.monotonic() - t0
        print(f"image build: cold {cold:.0f} s, cached recipe {cached:.1f} s (clone of the cached image into a template)")

        def provision(vmids):
            marks = {v: {} for v in vmids}
            for v in vmids:
                t = time.monotonic()
                h.wait_task(h.post(h.vm_path(9000) + "/clone", data={"newid": v, "name": f"b{v}"}))
                marks[v]["clone"] = time.monotonic() - t
                h.put(h.vm_path(v) + "/config", data={"ciupgrade": 0, "ipconfig0": "ip=dhcp"})
            t0 = time.monotonic()
            for v in vmids:
                marks[v]["start"] = h.post(h.vm_path(v) + "/status/start")
            offsets = {v: 0 for v in vmids}
            text = {v: "" for v in vmids}
            pending = set(vmids)
            while pending and time.monotonic() - t0 < 900:
                for v in list(pending):
                    m = marks[v]
                    now = time.monotonic() - t0
                    if "qemu" not in m and h.task_status(m["start"])["status"] == "stopped":
                        m["qemu"] = now
                    d = h.get(h.vm_path(v) + "/serial-log", params={"offset": offsets[v]})
                    offsets[v] = d["offset"]
                    text[v] += d["text"]
                    if "kernel" not in m and "Linux version" in text[v]:
                        m["kernel"] = now
                    if "cloud-init" not in m and re.search(r"Cloud-init v\. \S+ finished", text[v]):
                        m["cloud-init"] = now
                    if "agent" not in m and h.request("POST", h.vm_path(v) + "/agent/ping").status_code == 200:
                        m["agent"] = now
                    if all(k in m for k in ("qemu", "kernel", "cloud-init", "agent")):
                        pending.discard(v)
                time.sleep(0.5)
            for v in vmids:
                m = marks[v]
                print(f"  VM {v}: clone {m['clone'] * 1000:.0f} ms; from start: QEMU up {m.get('qemu', -1):.1f} s, "
                      f"kernel {m.get('kernel', -1):.1f} s, agent {m.get('agent', -1):.1f} s, "
                      f"cloud-init done {m.get('cloud-init', -1):.1f} s")
            for v in vmids:
                h.vm_action(v, "stop")
                h.wait_task(h.delete(h.vm_path(v)))

        print("one VM:")
        provision([101])
        print("three VMs at once:")
        provision([111, 112, 113])
    finally:
        h.close()
        import shutil
        shutil.rmtree(cache, ignore_errors=True)


class FreshFilesystem:
    """A new ext4 file system on a loop device, so that both peers write to a file system
    with the same (empty) history: ext4's inode allocator slows down markedly after many
    recent deletions, which earlier runs leave behind on the host's file system."""

    def __enter__(self):
        self.image = tempfile.NamedTemporaryFile(prefix="hearth-bench-", suffix=".img", dir="/var/tmp", delete=False).name
        os.truncate(self.image, 4 << 30)
        subprocess.run(["mkfs.ext4", "-q", "-F", self.image], check=True)
        self.path = tempfile.mkdtemp(prefix="hearth-bench-fs-")
        subprocess.run(["mount", "-o", "loop", self.image, self.path], check=True)
        return self.path

    def __exit__(self, *exc):
        subprocess.run(["umount", self.path], check=False)
        os.rmdir(self.path)
        os.unlink(self.image)


def bench_libvirt(args):
    """hearth against libvirtd, the same VMs on the same machine in one run."""
    with FreshFilesystem() as fs:
        run_libvirt_comparison(args, fs)


def run_libvirt_comparison(args, fs):
    from peer_libvirt import PREFIX, Libvirt, define_many, domain_xml, list_all
    print(f"== hearth vs libvirt (Debian's libvirtd 9.0, started here with no networks): {args.vms} VMs, "
          f"both on a fresh ext4 file system")
    lv = Libvirt(fs).start()
    h = Hearth(data_dir=tempfile.mkdtemp(prefix="hearth-", dir=fs)).start()
    try:
        took_h = create_many_wrk(h, args.vms)
        took_l = define_many(args.vms)
        print(f"define {args.vms} VMs, 8 connections: hearth {args.vms / took_h:.0f} VMs/s (POST create from wrk, "
              f"until every create task ended), libvirt {args.vms / took_l:.0f} VMs/s (defineXML, 8 threads)")
        conn = lv.connect()
        lt, ht = [], []
        auth = {"Authorization": "PVEAPIToken=" + h.token}
        for _ in range(20):
            t0 = time.monotonic()
            assert len(list_all(conn)) >= args.vms
            lt.append(time.monotonic() - t0)
            t0 = time.monotonic()
            assert len(h.session.get(h.url + "/cluster/resources", params={"type": "vm"}, headers=auth).json()["data"]) >= args.vms
            ht.append(time.monotonic() - t0)
        print(f"list {args.vms} VMs with state and resources (median of 20): hearth {statistics.median(ht) * 1000:.1f} ms "
              f"(GET /cluster/resources?type=vm), libvirt {statistics.median(lt) * 1000:.1f} ms "
              f"(listAllDomains + info)")
        print(f"daemon RSS with {args.vms} VMs defined: hearth {rss_kib(h.proc.pid) / 1024:.1f} MiB, "
              f"libvirtd {rss_kib(lv.pid()) / 1024:.1f} MiB")
        from harness import tiny_iso, upload
        iso = tiny_iso()
        h.wait_task(upload(h, iso, "tiny.iso").json()["data"])
        h.create_vm(999999, memory="256", ide2="local:iso/tiny.iso,media=cdrom", net0="virtio", boot="order=ide2")
        dom = conn.defineXML(domain_xml(PREFIX + "start", 256, 1, iso))
        hs, ls = [], []
        for _ in range(5):
            t0 = time.monotonic()
            h.vm_action(999999, "start")
            hs.append(time.monotonic() - t0)
            h.vm_action(999999, "stop")
            t0 = time.monotonic()
            dom.create()
            ls.append(time.monotonic() - t0)
            dom.destroy()
        print(f"start a VM until QEMU runs (median of 5): hearth {statistics.median(hs) * 1000:.0f} ms "
              f"(POST status/start to task OK), libvirt {statistics.median(ls) * 1000:.0f} ms (create())")
        conn.close()
    finally:
        h.close()
        lv.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", type=int, default=1000)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--only", choices=["api", "startup", "vmstart", "clone", "provision", "libvirt"])
    args = ap.parse_args()
    if args.only in (None, "api"):
        bench_api(args)
    if args.only in (None, "startup"):
        bench_startup(args)
    if args.only in (None, "vmstart"):
        bench_vm_start(args)
    if args.only in (None, "clone"):
        bench_clone(args)
    if args.only in (None, "provision"):
        bench_provision(args)
    if args.only in (None, "libvirt"):
        bench_libvirt(args)


if __name__ == "__main__":
    main()

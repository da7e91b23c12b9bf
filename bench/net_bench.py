#!/usr/bin/python3
"""make bench-net: the cluster DNS and the service data plane (issue 13), with peers in the same run.

  dns_*        dnsperf (Debian) against kiso's cluster DNS and against unbound (Debian) serving the
               same names as local data, both on 127.0.0.1, alternated three times: queries per
               second and p99 latency (from dnsperf -v's per-query times); medians printed.
  program_*    Service data plane programming latency: a Service's first endpoint written
               (Endpoints through the API, mirrored to an EndpointSlice) → a connection to its
               cluster IP reaches that endpoint (a listener of the benchmark's on the host's
               address; before, the kernel refuses it: no endpoints), p50/p99 at 100, 1,000 and
               10,000 Services, and the 10,000 / 100 ratio of p50s (goal ≤ 2×). The probe is a
               connect() every 2 ms (below the kernel's ICMP rate limit, since a refusal is an
               ICMP port unreachable); `nft get element` would take 200 ms a look at 10,000.
  rss_*        kiso server's resident memory (its DNS zone, data plane state and caches) at each
               scale.
  dp_*         the data path: new connections per second (wrk, one request per connection) and
               their p99, through a Service's cluster IP against straight to its endpoint (an
               nginx on the host's address, two ports: the Service's two endpoints), per
               load-balancing algorithm, alternated three times; the overhead in percent
               (goal ≤ 5%). Conntrack's TIME_WAIT timeout is lowered for the phase (and put
               back) so that its ~10^5 closed connections do not fill the table.
  dp_nodeport_*  the same from another node (a network namespace of the bench's own on a veth
               pair, standing for one): new connections per second through a node port with
               round robin (nftables) and least connections (the tc programs' choice, then
               nftables), against straight to the endpoint; the least-connections cost over
               round robin in percent.
  ingress_*    the ingress controller against Debian's nginx as the same reverse proxy in front
               of the same backend: requests per second and p99 (wrk, kept-alive connections),
               and each proxy's CPU time per request (user plus system, all its threads).

NET_BENCH_PHASES (program,dns,datapath,ingress) picks phases; dns needs program's Services.

Needs root (the node agent programs nftables). Prints `name=value unit` lines. Everything it
starts it stops, and `kiso node reset` removes the node's table, also when it fails."""
import concurrent.futures
import json
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
KISO = os.environ.get("KISO_BIN", os.path.join(HERE, "..", "build", "src", "cmd", "kiso"))
BRIDGE = f"kisobn{os.getpid() % 10000}"
TABLE = f"kiso-{BRIDGE}"
SERVICE_CIDR = "10.199.0.0/16"
SCALES = [int(n) for n in os.environ.get("NET_BENCH_SCALES", "100,1000,10000").split(",")]
SAMPLES = int(os.environ.get("NET_BENCH_SAMPLES", "40"))
DNS_SECONDS = int(os.environ.get("NET_BENCH_DNS_SECONDS", "8"))
PHASES = set(os.environ.get("NET_BENCH_PHASES", "program,dns,datapath,ingress").split(","))
DP_SECONDS = int(os.environ.get("NET_BENCH_DP_SECONDS", "3"))
ALGORITHMS = ["random", "round-robin", "least-connections", "weighted-round-robin", "source-ip-hash",
              "consistent-hash"]
INGRESS_SECONDS = int(os.environ.get("NET_BENCH_INGRESS_SECONDS", "8"))


def out(name, value, unit):
    print(f"{name}={value} {unit}", flush=True)


class Api:
    """Plain HTTPS with the admin token and keep-alive per thread (no client library overhead)."""

    def __init__(self, port, token):
        self.base = f"https://127.0.0.1:{port}"
        self.token = token
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE

    def call(self, method, path, body=None, ok_missing=False):
        """The decoded answer; None for a 404 when `ok_missing` (a DELETE of what went already)."""
        req = urllib.request.Request(self.base + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=60) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            if ok_missing and e.code == 404:
                return None
            raise


def service(i):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"s{i}"},
            "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}}


def endpoints(i, ip, port=8080):
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": f"s{i}"},
            "subsets": [{"addresses": [{"ip": ip}],
                         "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}]}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def in_kernel(ip):
    return subprocess.run(["nft", "get", "element", "ip", TABLE, "service-ips",
                           f"{{ {ip} . tcp . 80 }}"], capture_output=True).returncode == 0


def routed(ip):
    """Whether a connection to ip:80 gets through (to the benchmark's listener)."""
    try:
        with socket.create_connection((ip, 80), timeout=0.05):
            return True
    except OSError:
        return False


def host_address():
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True,
                         text=True).stdout.split()
    return next(out[i + 1].split("/")[0] for i, w in enumerate(out) if w == "inet")


def listen(address):
    """A listener that accepts and closes every connection; its port."""
    server = socket.create_server((address, 0), backlog=512)

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.close()
    threading.Thread(target=serve, daemon=True).start()
    return server


def dnsperf(port, queries, seconds):
    """QPS and p99 latency (ms) of one dnsperf run."""
    p = subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", queries,
                        "-l", str(seconds), "-c", "8", "-T", "2", "-q", "256", "-v"],
                       capture_output=True, text=True)
    qps, latencies = 0.0, []
    for line in p.stdout.splitlines():
        if line.startswith("> "):
            try:
                latencies.append(float(line.split()[-1]))
            except ValueError:
                pass
        elif "Queries per second:" in line:
            qps = float(line.split(":")[1])
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan")
    return qps, p99


def main():
    if os.geteuid() != 0:
        sys.exit("bench-net needs root (the node agent programs nftables)")
    leak = subprocess.run([os.path.join(HERE, "..", "tests", "leak_check")])
    if leak.returncode != 0:
        sys.exit("bench-net: the machine is not clean (see above); run `kiso node reset`")
    work = tempfile.mkdtemp(prefix="kiso-bench-net-")
    procs = []
    try:
        run(work, procs)
    finally:
        stop_all(procs, os.path.join(work, "kiso"))
        if os.environ.get("NET_BENCH_LOG"):  # The server's log, to look into a figure.
            shutil.copy(os.path.join(work, "kiso.log"), os.environ["NET_BENCH_LOG"])
        shutil.rmtree(work, ignore_errors=True)


def stop_all(procs, data_dir):
    """Stops what the benchmark started (the last started first: SIGTERM, SIGKILL after 30 s),
    then `kiso node reset` removes what the node under `data_dir` left."""
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    subprocess.run([KISO, "node", "reset", "--data-dir", data_dir], capture_output=True)


def run(work, procs):
    data = os.path.join(work, "kiso")
    os.makedirs(data)
    resolv = os.path.join(work, "resolv.conf")
    with open(resolv, "w") as f:
        f.write("# no upstream\n")
    log = open(os.path.join(work, "kiso.log"), "wb")
    port = free_port("tcp")
    ingress_port = free_port("tcp")
    server = subprocess.Popen([KISO, "server", "--data-dir", data, "--https-port", str(port),
                               "--node-name", "bench-net", "--cni-bridge", BRIDGE,
                               "--pod-cidr", "10.198.0.0/24", "--service-cidr", SERVICE_CIDR,
                               "--dns-port", "0", "--resolv-conf", resolv,
                               "--ingress-http-port", str(ingress_port), "--ingress-https-port", "0"],
                              stdout=log, stderr=subprocess.STDOUT)
    procs.append(server)
    token = os.path.join(data, "tls", "admin.token")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", context=insecure(), timeout=1)
            break
        except OSError:
            time.sleep(0.05)  # Polling with a deadline: the server is starting.
    with open(token) as f:
        api = Api(port, f.read().strip())
    ns = "/api/v1/namespaces/default"

    def wait_table():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if subprocess.run(["nft", "list", "table", "ip", TABLE], capture_output=True).returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("the node's table never appeared")
    wait_table()

    target = host_address()
    listener = listen(target)
    target_port = listener.getsockname()[1]
    created = 0
    cold = []  # Services without endpoints yet, for the latency samples.
    pool = concurrent.futures.ThreadPoolExecutor(8)
    addresses = {}
    program_p50 = {}
    for scale in SCALES if "program" in PHASES else []:
        # Grow to `scale` Services with one endpoint each, plus SAMPLES cold ones.
        def make(i, with_endpoints):
            svc = api.call("POST", ns + "/services", service(i))
            addresses[i] = svc["spec"]["clusterIP"]
            if with_endpoints:
                api.call("POST", ns + "/endpoints", endpoints(i, f"10.198.{i % 250}.{i // 250 % 250 + 1}"))
        list(pool.map(lambda i: make(i, True), range(created, scale)))
        created = scale
        base = 1_000_000 + scale * 10
        cold = list(range(base, base + SAMPLES))
        list(pool.map(lambda i: make(i, False), cold))
        # Let the data plane catch up with the bulk load before measuring.
        last = scale - 1
        deadline = time.monotonic() + 300
        while not in_kernel(addresses[last]) and time.monotonic() < deadline:
            time.sleep(0.1)
        deadline = time.monotonic() + 300
        while not in_kernel(addresses[cold[-1]]) and not subprocess.run(
                ["nft", "get", "element", "ip", TABLE, "no-endpoint-services",
                 f"{{ {addresses[cold[-1]]} . tcp . 80 }}"], capture_output=True).returncode == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the cold Services never reached the kernel")
            time.sleep(0.1)
        samples = []
        for i in cold:
            assert not routed(addresses[i]), f"s{i} routed before it had an endpoint"
            start = time.monotonic()
            api.call("POST", ns + "/endpoints", endpoints(i, target, target_port))
            while not routed(addresses[i]):
                if time.monotonic() - start > 30:
                    raise RuntimeError(f"service s{i} never programmed")
                # Paced below the kernel's ICMP rate limit (1,000/s): a refusal it did not
                # send would look like a lost SYN and cost the probe its timeout.
                time.sleep(0.002)
            samples.append((time.monotonic() - start) * 1000)
        samples.sort()
        program_p50[scale] = statistics.median(samples)
        out(f"program_p50_{scale}", f"{program_p50[scale]:.1f}", "ms")
        out(f"program_p99_{scale}", f"{samples[int(len(samples) * 0.99)]:.1f}", "ms")
        out(f"rss_server_{scale}", rss_kib(server.pid) // 1024, "MiB")
    if 100 in program_p50 and 10000 in program_p50:
        out("program_p50_10000_over_100", f"{program_p50[10000] / program_p50[100]:.2f}", "x")

    if "dns" in PHASES and created:
        dns(api, work, procs, created, addresses)
    if "datapath" in PHASES:
        data_path(api, work, procs)
    if "ingress" in PHASES:
        ingress(api, ingress_port, server.pid, work, procs)


def dns(api, work, procs, created, addresses):
    """DNS: the same names from kiso and from unbound."""
    ep = api.call("GET", "/api/v1/namespaces/kube-system/endpoints/kube-dns")
    dns_port = ep["subsets"][0]["ports"][0]["port"]
    names = [f"s{i}.default.svc.cluster.local" for i in range(min(created, 1000))]
    queries = os.path.join(work, "queries.txt")
    with open(queries, "w") as f:
        for n in names:
            f.write(f"{n} A\n")
    unbound_port = free_port()
    conf = os.path.join(work, "unbound.conf")
    with open(conf, "w") as f:
        f.write(f"""server:
  interface: 127.0.0.1
  port: {unbound_port}
  num-threads: 2
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "{work}"
  pidfile: "{work}/unbound.pid"
  use-syslog: no
  logfile: "{work}/unbound.log"
  access-control: 127.0.0.0/8 allow
  do-ip6: no
  local-zone: "cluster.local." static
""")
        for i, n in enumerate(names):
            f.write(f'  local-data: "{n}. 5 IN A {addresses[i]}"\n')
    unbound = subprocess.Popen(["unbound", "-d", "-c", conf], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    procs.append(unbound)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        probe = subprocess.run(["dig", "@127.0.0.1", "-p", str(unbound_port), "+short", "+time=1",
                                "+tries=1", names[0]], capture_output=True, text=True)
        if probe.stdout.strip():
            break
    results = {"kiso": [], "unbound": []}
    for _ in range(3):
        for who, p in (("kiso", dns_port), ("unbound", unbound_port)):
            results[who].append(dnsperf(p, queries, DNS_SECONDS))
    for who, runs in results.items():
        out(f"dns_qps_{who}", f"{statistics.median(r[0] for r in runs):.0f}", "queries/s")
        out(f"dns_p99_{who}", f"{statistics.median(r[1] for r in runs):.3f}", "ms")
    kiso_qps = statistics.median(r[0] for r in results["kiso"])
    unbound_qps = statistics.median(r[0] for r in results["unbound"])
    out("dns_qps_kiso_over_unbound", f"{kiso_qps / unbound_qps:.2f}", "x")


def nginx(work, name, body, procs, netns=None, enter=None):
    """An nginx of its own (2 workers, no access log) with `body` as its http block's servers; in
    the named network namespace `netns`, or run behind the command prefix `enter` (nsenter …)."""
    prefix = os.path.join(work, name)
    os.makedirs(prefix)
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 2;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
{body}
}}
""")
    p = subprocess.Popen((enter or (["ip", "netns", "exec", netns] if netns else [])) +
                         ["nginx", "-p", prefix, "-c", conf, "-g", "daemon off;"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(p)
    return p


def wrk(url, headers, seconds, netns=None):
    """One wrk run (2 threads, 32 connections), in the network namespace `netns` if given:
    (requests/s, p99 ms)."""
    args = (["ip", "netns", "exec", netns] if netns else []) + [
        "wrk", "-t", "2", "-c", "32", "-d", f"{seconds}s", "--latency"]
    for h in headers:
        args += ["-H", h]
    r = subprocess.run(args + [url], capture_output=True, text=True, timeout=seconds + 60)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", r.stdout).group(1))
    value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", r.stdout).groups()
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    if "Non-2xx" in r.stdout or "Socket errors" in r.stdout:
        raise RuntimeError(f"wrk saw errors at {url}:\n{r.stdout}")
    return rps, p99


def answers(url, prefix, deadline, host=None):
    """Polls `url` (no proxy) until its body starts with `prefix`, or fails at the deadline."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        try:
            req = urllib.request.Request(url, headers={"Host": host} if host else {})
            if direct.open(req, timeout=2).read().startswith(prefix):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing answers at {url}")
        time.sleep(0.05)  # Polling with a deadline: the route is being programmed.


POD_IP = "10.198.0.250"  # In the bench node's pod range, above what its IPAM hands out here.


def data_path(api, work, procs):
    """New connections through a cluster IP against straight to the pod IP, per algorithm."""
    netns = f"kisobench{os.getpid() % 10000}"
    veth = f"kbv{os.getpid() % 100000}"
    try:
        sh("ip", "netns", "add", netns)
        sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        # The bridge has its gateway address once a pod attached; none has here.
        sh("ip", "addr", "replace", "10.198.0.1/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        sh("ip", "link", "set", veth, "master", BRIDGE, "up")
        sh("ip", "-n", netns, "addr", "add", f"{POD_IP}/24", "dev", "eth0")
        sh("ip", "-n", netns, "link", "set", "eth0", "up")
        sh("ip", "-n", netns, "link", "set", "lo", "up")
        sh("ip", "-n", netns, "route", "add", "default", "via", "10.198.0.1")
        measure_data_path(api, work, procs, netns)
        measure_node_ports(api, netns)
    finally:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)  # Takes the veth.


def sh(*args):
    r = subprocess.run(list(args), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")


def measure_data_path(api, work, procs, netns):
    """The endpoint: an nginx in a network namespace of the bench's own on the node's bridge,
    as a pod is (no masquerade on the way, as for a pod; the host's own address as endpoint
    would be hairpin traffic, masqueraded). Each algorithm's Service has two ports of its own as
    endpoints, and the direct runs a third: with one request per connection the client reuses
    its ports within a second, and a connection that reached a port through another address
    (another cluster IP, or none) left a TIME_WAIT there that refuses the new SYN (the client's
    timestamps are offset per destination address), costing a 1 s SYN retransmit. Kernel
    behaviour with any NAT, kube-proxy's too; measured here, it would be the order of the runs,
    not the data path."""
    address = POD_IP
    ports = {a: [8080 + 3 * i, 8081 + 3 * i, 8082 + 3 * i] for i, a in enumerate(ALGORITHMS)}
    listens = "\n".join(f"    listen {address}:{p} backlog=4096;"
                        for each in list(ports.values()) + list(NODE_PORT_ENDPOINTS.values())
                        for p in each)
    nginx(work, "endpoints", f"""  server {{
{listens}
    location / {{ return 200 "hello from an endpoint\\n"; }}
  }}""", procs, netns=netns)
    ns = "/api/v1/namespaces/default"
    ips = {}
    for algorithm in ALGORITHMS:
        name = f"dp-{algorithm}"
        annotations = {} if algorithm == "random" else {"kiso.dev/load-balancer": algorithm}
        svc = api.call("POST", f"{ns}/services", {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": ports[algorithm][1]}]}})
        ips[algorithm] = svc["spec"]["clusterIP"]
        api.call("POST", f"{ns}/endpoints", {
            "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name},
            "subsets": [{"addresses": [{"ip": address}], "ports": [{"name": "http", "port": p}]}
                        for p in ports[algorithm][1:]]})
    deadline = time.monotonic() + 30
    answers(f"http://{address}:{ports[ALGORITHMS[0]][0]}/", b"hello", deadline)
    for ip in ips.values():
        answers(f"http://{ip}/", b"hello", deadline)
    sysctl = "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_time_wait"
    with open(sysctl) as f:
        time_wait = f.read().strip()
    try:
        with open(sysctl, "w") as f:
            f.write("1")
        close = ["Connection: close"]
        for algorithm, ip in ips.items():
            direct, cluster = [], []
            for _ in range(3):
                direct.append(wrk(f"http://{address}:{ports[algorithm][0]}/", close, DP_SECONDS))
                cluster.append(wrk(f"http://{ip}/", close, DP_SECONDS))
            d = statistics.median(r[0] for r in direct)
            c = statistics.median(r[0] for r in cluster)
            out(f"dp_conns_{algorithm}", f"{c:.0f}", "connections/s")
            out(f"dp_conns_direct_{algorithm}", f"{d:.0f}", "connections/s")
            out(f"dp_overhead_{algorithm}", f"{(1 - c / d) * 100:.1f}", "%")
            out(f"dp_p99_{algorithm}", f"{statistics.median(r[1] for r in cluster):.2f}", "ms")
            out(f"dp_p99_direct_{algorithm}", f"{statistics.median(r[1] for r in direct):.2f}",
                "ms")
    finally:
        with open(sysctl, "w") as f:
            f.write(time_wait)


# The endpoint's ports for the node-port runs (each path ports of its own, as above).
NODE_PORT_ENDPOINTS = {"direct": [9080], "round-robin": [9081, 9082],
                       "least-connections": [9083, 9084]}


def measure_node_ports(api, endpoint_netns):
    """From another node: a network namespace of the bench's own joined to the host by a veth
    pair. Its connect() would be balanced by the socket hook (it is a process of this machine),
    so it connects to an address of its own link that its nftables translates to the node's;
    the direct runs reach the endpoint through the host's routing. The endpoint's nginx is
    measure_data_path's, in `endpoint_netns`, which keeps no TIME_WAIT sockets meanwhile: a node
    port's traffic is masqueraded with random source ports, and a new SYN meeting a TIME_WAIT of
    another client's connection on the same port is refused about half the time (timestamps
    offset per connection), a 1 s SYN retransmit each — the kernel's with any NAT in front of a
    backend, which would measure the collisions, not the data path."""
    pid = os.getpid()
    netns, veth = f"kisobno{pid % 10000}", f"kbo{pid % 100000}"
    n = pid % 250
    node_ip, client_ip, alias = f"198.18.{n}.1", f"198.18.{n}.2", f"198.18.{n}.5"
    try:
        sh("ip", "netns", "add", netns)
        sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        sh("ip", "addr", "add", f"{node_ip}/29", "dev", veth)
        sh("ip", "link", "set", veth, "up")
        sh("ip", "-n", netns, "addr", "add", f"{client_ip}/29", "dev", "eth0")
        sh("ip", "-n", netns, "link", "set", "eth0", "up")
        sh("ip", "-n", netns, "link", "set", "lo", "up")
        sh("ip", "-n", netns, "route", "add", "10.198.0.0/24", "via", node_ip)
        sh("ip", "netns", "exec", netns, "nft",
           "add table ip other; add chain ip other out { type nat hook output priority -100; }; "
           f"add rule ip other out ip daddr {alias} dnat to {node_ip}")
        sh("ip", "netns", "exec", netns, "sysctl", "-qw",
           "net.netfilter.nf_conntrack_tcp_timeout_time_wait=1")
        sh("ip", "netns", "exec", endpoint_netns, "sysctl", "-qw", "net.ipv4.tcp_max_tw_buckets=0")
        ns = "/api/v1/namespaces/default"
        node_ports = {}
        for algorithm in ("round-robin", "least-connections"):
            name = f"dp-np-{algorithm}"
            svc = api.call("POST", f"{ns}/services", {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "annotations": {"kiso.dev/load-balancer": algorithm}},
                "spec": {"type": "NodePort",
                         "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
            node_ports[algorithm] = svc["spec"]["ports"][0]["nodePort"]
            api.call("POST", f"{ns}/endpoints", {
                "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name},
                "subsets": [{"addresses": [{"ip": POD_IP}], "ports": [{"name": "http", "port": p}]}
                            for p in NODE_PORT_ENDPOINTS[algorithm]]})
        urls = {"direct": f"http://{POD_IP}:{NODE_PORT_ENDPOINTS['direct'][0]}/"}
        urls.update({a: f"http://{alias}:{p}/" for a, p in node_ports.items()})
        deadline = time.monotonic() + 30
        for url in urls.values():
            while subprocess.run(["ip", "netns", "exec", netns, "curl", "-sf", "--noproxy", "*",
                                  "-m", "2", "-o", "/dev/null", url],
                                 capture_output=True).returncode != 0:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nothing answers at {url} from the other node")
                time.sleep(0.05)  # Polling with a deadline: the route is being programmed.
        # The agent gives node ports to the new address within its housekeeping period.
        key = {"ip": int.from_bytes(socket.inet_aton(node_ip), "little"),
               "port": int.from_bytes(node_ports["least-connections"].to_bytes(2, "big"), "little"),
               "pad": 0}
        while not any(e.get("formatted", e).get("key") == key for e in json.loads(
                subprocess.run(["bpftool", "-j", "map", "dump", "name", "kiso_lb_svcs"],
                               capture_output=True, text=True).stdout or "[]")):
            if time.monotonic() > deadline:
                raise RuntimeError("least connections never reached the new node address")
            time.sleep(0.05)  # Polling with a deadline.
        runs = {path: [] for path in urls}
        close = ["Connection: close"]
        for _ in range(3):
            for path, url in urls.items():
                runs[path].append(wrk(url, close, DP_SECONDS, netns=netns))
        conns = {path: statistics.median(r[0] for r in rs) for path, rs in runs.items()}
        for path, rs in runs.items():
            out(f"dp_nodeport_conns_{path}", f"{conns[path]:.0f}", "connections/s")
            out(f"dp_nodeport_p99_{path}", f"{statistics.median(r[1] for r in rs):.2f}", "ms")
        lc, rr = conns["least-connections"], conns["round-robin"]
        out("dp_nodeport_least_connections_cost", f"{(1 - lc / rr) * 100:.1f}", "%")
    finally:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)  # Takes the veth.


def cpu_seconds(pids):
    """User plus system CPU time of the processes `pids` (all their threads), in seconds."""
    ticks = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def ingress(api, kiso_port, kiso_pid, work, procs):
    """The ingress controller against Debian's nginx as the same reverse proxy, in front of the
    same backend (an nginx answering a fixed body on the host's address, keep-alive on both)."""
    address = host_address()
    backend_port, nginx_port = free_port("tcp"), free_port("tcp")
    nginx(work, "backend", f"""  server {{
    listen {address}:{backend_port} backlog=4096;
    keepalive_requests 100000;
    location / {{ return 200 "hello from the backend\\n"; }}
  }}""", procs)
    proxy = nginx(work, "proxy", f"""  upstream web {{ server {address}:{backend_port}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{nginx_port} backlog=4096;
    keepalive_requests 100000;
    location / {{
      proxy_pass http://web;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
  }}""", procs)
    ns = "/api/v1/namespaces/default"
    api.call("POST", f"{ns}/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "bench-web"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": backend_port}]}})
    api.call("POST", f"{ns}/endpoints", {
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "bench-web"},
        "subsets": [{"addresses": [{"ip": address}],
                     "ports": [{"name": "http", "port": backend_port}]}]})
    api.call("POST", "/apis/networking.k8s.io/v1/namespaces/default/ingresses", {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "bench"},
        "spec": {"rules": [{"host": "web.bench", "http": {"paths": [
            {"path": "/", "pathType": "Prefix",
             "backend": {"service": {"name": "bench-web", "port": {"number": 80}}}}]}}]}})
    deadline = time.monotonic() + 30
    for port in (kiso_port, nginx_port):
        answers(f"http://127.0.0.1:{port}/", b"hello", deadline, host="web.bench")
    with open(f"/proc/{proxy.pid}/task/{proxy.pid}/children") as f:  # nginx's workers
        pids = {"kiso": [kiso_pid], "nginx": [proxy.pid] + [int(p) for p in f.read().split()]}
    results = {"kiso": [], "nginx": []}
    for _ in range(3):
        for who, port in (("kiso", kiso_port), ("nginx", nginx_port)):
            before = cpu_seconds(pids[who])
            rps, p99 = wrk(f"http://127.0.0.1:{port}/", ["Host: web.bench"], INGRESS_SECONDS)
            cpu = cpu_seconds(pids[who]) - before
            # The proxy's own CPU time per request: what decides the race on shared cores.
            results[who].append((rps, p99, cpu * 1e6 / (rps * INGRESS_SECONDS)))
    for who, runs in results.items():
        out(f"ingress_rps_{who}", f"{statistics.median(r[0] for r in runs):.0f}", "requests/s")
        out(f"ingress_p99_{who}", f"{statistics.median(r[1] for r in runs):.2f}", "ms")
        out(f"ingress_cpu_per_request_{who}", f"{statistics.median(r[2] for r in runs):.1f}", "us")
    ratio = (statistics.median(r[0] for r in results["kiso"]) /
             statistics.median(r[0] for r in results["nginx"]))
    out("ingress_rps_kiso_over_nginx", f"{ratio:.2f}", "x")


def free_port(kind="udp"):
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def insecure():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""make bench-net, NetworkPolicy part (issue 15): each enforcer (nftables, then ebpf: the same
node restarted with the other --network-policy) in one run, on one real node with two busybox
pods (a server running httpd, a client) and 10,000 hollow pods on 91 hollow nodes.

  policy_program_p50/max_<enforcer>  with 1,000 policies in force on the server pod (each
               allowing one of ten groups of 1,000 hollow pods on a port of its own) and a
               deny-all: a policy allowing the client created → the client's next connect()
               to the server succeeds (probed every 2 ms from inside the client pod's network
               namespace); then the policy deleted → refused again (not timed). SAMPLES samples.
  policy_conn_rate_<enforcer>_{none,100}, policy_conn_p99_…  new connections per second (wrk,
               one request per connection, run in the client pod's network namespace) and their
               p99 from client to server: with no policy, and with 100 policies on the server
               (one of them allowing the client), alternated three times, medians; the
               overhead in percent (goal ≤ 5%).

Needs root. Prints `name=value unit` lines. Everything it starts it stops, and `kiso node reset`
removes what the node left, also when it fails."""
import concurrent.futures
import ctypes
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from images import build_oci_archive  # noqa: E402
from net_bench import Api, free_port, insecure, nginx, out, stop_all  # noqa: E402
from registry import LocalRegistry  # noqa: E402

KISO = os.environ.get("KISO_BIN", os.path.join(HERE, "..", "build", "src", "cmd", "kiso"))
BRIDGE = f"kisobp{os.getpid() % 10000}"
SAMPLES = int(os.environ.get("POLICY_BENCH_SAMPLES", "40"))
POLICIES = int(os.environ.get("POLICY_BENCH_POLICIES", "1000"))
HOLLOW_PODS = int(os.environ.get("POLICY_BENCH_PODS", "10000"))
DP_SECONDS = int(os.environ.get("POLICY_BENCH_DP_SECONDS", "3"))
ENFORCERS = os.environ.get("POLICY_BENCH_ENFORCERS", "nftables,ebpf").split(",")
CLONE_NEWNET = 0x40000000


def policy(name, spec):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": "bench"}, "spec": spec}


SERVER = {"podSelector": {"matchLabels": {"app": "server"}}}
POLICY_PATH = "/apis/networking.k8s.io/v1/namespaces/bench/networkpolicies"


def group_policy(i):
    return policy(f"group-{i}", {**SERVER, "ingress": [{
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "hollow"}},
                  "podSelector": {"matchLabels": {"group": str(i % 10)}}}],
        "ports": [{"port": 10000 + i}]}]})


def allow_client(name):
    return policy(name, {**SERVER, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                                                "ports": [{"port": 80}]}]})


class NetnsProbe:
    """connect() attempts from inside a network namespace (a thread that entered it)."""

    def __init__(self, pid):
        self.pid = pid

    def until(self, target, want, timeout=60):
        """Seconds until a connect to `target` succeeds (want=True) or fails (want=False)."""
        result = {}

        def run():
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/proc/{self.pid}/ns/net", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    result["error"] = os.strerror(ctypes.get_errno())
                    return
            finally:
                os.close(fd)
            start = time.monotonic()
            while time.monotonic() - start < timeout:
                try:
                    with socket.create_connection(target, timeout=0.005):
                        ok = True
                except OSError:
                    ok = False
                if ok == want:
                    result["seconds"] = time.monotonic() - start
                    return
                time.sleep(0.002)  # Paced: a refusal is ICMP or a reset, rate-limited.
            result["error"] = f"no {'success' if want else 'refusal'} within {timeout}s"

        t = threading.Thread(target=run)  # A thread of its own: setns changes only it.
        t.start()
        t.join()
        if "error" in result:
            raise RuntimeError(result["error"])
        return result["seconds"]


def pod_pid(ip):
    """A process inside the pod whose address is `ip` (its network namespace)."""
    for pid in subprocess.run(["pgrep", "-f", "^sleep 86400"], capture_output=True,
                              text=True).stdout.split():
        shown = subprocess.run(["nsenter", "-t", pid, "-n", "ip", "-4", "-o", "addr"],
                               capture_output=True, text=True).stdout
        if f" {ip}/" in shown:
            return pid
    raise RuntimeError(f"no process in the pod at {ip}")


def wrk_in(pid, url, seconds):
    """wrk in the client pod's network namespace, one request per connection: (conn/s, p99 ms)."""
    p = subprocess.run(["nsenter", "-t", pid, "-n", "wrk", "-t", "2", "-c", "16", "-d", f"{seconds}s",
                        "--latency", "-H", "Connection: close", url],
                       capture_output=True, text=True, timeout=seconds + 30)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", p.stdout).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", p.stdout)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    return rate, p99


def main():
    if os.geteuid() != 0:
        sys.exit("policy bench needs root (a node agent)")
    work = tempfile.mkdtemp(prefix="kiso-bench-policy-")
    procs = []
    registry = None
    try:
        registry = LocalRegistry()
        image = build_oci_archive(os.path.join(work, "busybox.tar"))
        registry.push(image, "library/busybox:latest")
        run(work, procs, registry)
    except Exception:
        for name in sorted(os.listdir(work)):
            if name.endswith(".log"):  # The servers' logs, to see why.
                with open(os.path.join(work, name), errors="replace") as f:
                    sys.stderr.write(f"--- {name} (last 30 lines)\n" + "".join(f.readlines()[-30:]))
        raise
    finally:
        stop_all(procs, os.path.join(work, "kiso"))
        if registry:
            registry.stop()
        if os.environ.get("POLICY_BENCH_LOG"):  # The servers' logs, to look into a figure.
            subprocess.run(f"cp {work}/*.log {os.environ['POLICY_BENCH_LOG']}/", shell=True)
        subprocess.run(["rm", "-rf", work])


def start_server(work, procs, enforcer, registry):
    data = os.path.join(work, "kiso")
    os.makedirs(data, exist_ok=True)
    mirrors = os.path.join(work, "registries.yaml")
    with open(mirrors, "w") as f:
        f.write(f'mirrors:\n  docker.io:\n    endpoint: ["http://{registry.address}"]\n')
    resolv = os.path.join(work, "resolv.conf")
    with open(resolv, "w") as f:
        f.write("# no upstream\n")
    port = getattr(start_server, "port", None) or free_port("tcp")
    start_server.port = port
    log = open(os.path.join(work, f"kiso-{enforcer}.log"), "wb")
    server = subprocess.Popen([KISO, "server", "--data-dir", data, "--https-port", str(port),
                               "--node-name", "bench-policy", "--cni-bridge", BRIDGE,
                               "--pod-cidr", "10.197.0.0/24", "--service-cidr", "10.196.0.0/16",
                               "--dns-port", "0", "--resolv-conf", resolv, "--disable-ingress",
                               "--registries", mirrors, "--network-policy", enforcer],
                              stdout=log, stderr=subprocess.STDOUT)
    procs.append(server)
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", context=insecure(), timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("kiso server did not start")
            time.sleep(0.05)  # Polling with a deadline: the server is starting.
    with open(os.path.join(data, "tls", "admin.token")) as f:
        return server, Api(port, f.read().strip()), data


def wait(what, predicate, timeout=300, every=0.5):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out: {what}")
        time.sleep(every)  # Polling with a deadline.


def run(work, procs, registry):
    server, api, data = start_server(work, procs, ENFORCERS[0], registry)
    hollow_nodes = (HOLLOW_PODS + 109) // 110 + 1
    procs.append(subprocess.Popen([KISO, "hollow", "--kubeconfig", os.path.join(data, "kubeconfig.yaml"),
                                   "--count", str(hollow_nodes)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for ns in ("hollow", "bench"):
        api.call("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    per_group = HOLLOW_PODS // 10
    for g in range(10):
        api.call("POST", "/apis/apps/v1/namespaces/hollow/deployments", {
            "metadata": {"name": f"group-{g}"},
            "spec": {"replicas": per_group, "selector": {"matchLabels": {"group": str(g)}},
                     "template": {"metadata": {"labels": {"group": str(g)}},
                                  "spec": {"nodeSelector": {"kiso.dev/hollow": "true"},
                                           "containers": [{"name": "c", "image": "busybox"}]}}}})
    for name, command in (("server", "sleep 86400"), ("client", "sleep 86400")):
        api.call("POST", "/api/v1/namespaces/bench/pods", {
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"nodeName": "bench-policy", "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "image": "busybox", "command": command.split()}]}})

    def running(ns, minimum):
        items = api.call("GET", f"/api/v1/namespaces/{ns}/pods?fieldSelector=status.phase%3DRunning")["items"]
        return len([p for p in items if p.get("status", {}).get("podIP")]) >= minimum

    wait("the hollow pods running", lambda: running("hollow", HOLLOW_PODS), 600, 2)
    wait("the bench pods running", lambda: running("bench", 2))
    ips = {p["metadata"]["name"]: p["status"]["podIP"]
           for p in api.call("GET", "/api/v1/namespaces/bench/pods")["items"]}
    # The server pod's network namespace serves with Debian's nginx (busybox httpd forks per
    # connection: it would be the figure). Its processes are the benchmark's: stopped with it.
    nginx(work, "nginx", 'server { listen 80; location / { return 200 "ok\\n"; } }', procs,
          enter=["nsenter", "-t", pod_pid(ips["server"]), "-n"])
    target = (ips["server"], 80)
    url = f"http://{ips['server']}:80/"
    for i, enforcer in enumerate(ENFORCERS):
        if i > 0:  # The same node, restarted with the other enforcer.
            server.send_signal(signal.SIGTERM)
            server.wait(60)
            server, api, data = start_server(work, procs, enforcer, registry)
            wait("the bench pods running again", lambda: running("bench", 2))
        measure(api, enforcer, target, url)
        for p in api.call("GET", POLICY_PATH)["items"]:
            api.call("DELETE", f"{POLICY_PATH}/{p['metadata']['name']}", ok_missing=True)


def measure(api, enforcer, target, url):
    client = NetnsProbe(pod_pid(api.call("GET", "/api/v1/namespaces/bench/pods/client")["status"]["podIP"]))
    client.until(target, True)  # No policy: reachable.
    pool = concurrent.futures.ThreadPoolExecutor(8)
    api.call("POST", POLICY_PATH, policy("deny", {**SERVER, "policyTypes": ["Ingress"]}))
    list(pool.map(lambda i: api.call("POST", POLICY_PATH, group_policy(i)), range(POLICIES)))
    client.until(target, False, 300)
    # Everything before it programmed: an allowance made last is in force.
    api.call("POST", POLICY_PATH, allow_client("warm"))
    client.until(target, True, 300)
    api.call("DELETE", f"{POLICY_PATH}/warm")
    client.until(target, False)
    samples = []
    for k in range(SAMPLES):
        start = time.monotonic()
        api.call("POST", POLICY_PATH, allow_client(f"allow-{k}"))
        client.until(target, True)
        samples.append((time.monotonic() - start) * 1000)
        api.call("DELETE", f"{POLICY_PATH}/allow-{k}")
        client.until(target, False)
    samples.sort()
    out(f"policy_program_p50_{enforcer}", f"{statistics.median(samples):.1f}", "ms")
    # Of 40 samples a p99 would be the largest: it is said as the maximum.
    out(f"policy_program_max_{enforcer}", f"{samples[-1]:.1f}", "ms")

    # The data path: no policy against 100 in force (one allowing the client).
    pid = client.pid
    rates = {"none": [], "100": []}
    p99s = {"none": [], "100": []}
    for p in api.call("GET", POLICY_PATH)["items"]:
        api.call("DELETE", f"{POLICY_PATH}/{p['metadata']['name']}", ok_missing=True)
    client.until(target, True)
    for _ in range(3):
        for state in ("none", "100"):
            if state == "100":
                api.call("POST", POLICY_PATH, policy("deny", {**SERVER, "policyTypes": ["Ingress"]}))
                list(pool.map(lambda i: api.call("POST", POLICY_PATH, group_policy(i)), range(98)))
                api.call("POST", POLICY_PATH, allow_client("allow"))
                client.until(target, True)
            rate, p99 = wrk_in(pid, url, DP_SECONDS)
            rates[state].append(rate)
            p99s[state].append(p99)
            if state == "100":
                for p in api.call("GET", POLICY_PATH)["items"]:
                    api.call("DELETE", f"{POLICY_PATH}/{p['metadata']['name']}", ok_missing=True)
                client.until(target, True)
    for state in ("none", "100"):
        out(f"policy_conn_rate_{enforcer}_{state}", f"{statistics.median(rates[state]):.0f}", "conn/s")
        out(f"policy_conn_p99_{enforcer}_{state}", f"{statistics.median(p99s[state]):.2f}", "ms")
    none, hundred = statistics.median(rates["none"]), statistics.median(rates["100"])
    out(f"policy_conn_overhead_{enforcer}", f"{(none - hundred) / none * 100:.1f}", "%")


if __name__ == "__main__":
    main()

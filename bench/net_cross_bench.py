#!/usr/bin/python3
"""make bench-net-cross (issue 17): the pod network across nodes, measured with iperf3
(Debian's) on the simulated cluster of tests/cluster/cluster.py (nodes in network namespaces of
their own on one underlay bridge, one server on etcd). For each backend, vxlan and host-gw,
three pods run `sleep` (busybox: no iperf3 inside); iperf3 is run from the host in each pod's
network namespace (nsenter --net=/proc/PID/ns/net), so the packets take the pods' real path:
pod veth, the node's bridge, the backend (VXLAN device or route), the underlay, and back up.

  net_cross_underlay      node to node over the underlay itself (Gbit/s)
  net_cross_<backend>     a pod to a pod on another node (Gbit/s)
  net_same_node_<backend> a pod to a pod on the same node (Gbit/s)
  net_cross_<backend>_over_underlay   same-run ratio (goal for vxlan: >= 0.90)

TCP, one stream, RUN_SECONDS each, median of three runs; everything same run. Prints
`name=value unit` lines. Everything it starts it stops, also when it fails."""
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "cluster"))
from cluster import Cluster, pod_on, run, wait_for  # noqa: E402

RUN_SECONDS = 5
RUNS = 3


def pod_pid(marker):
    """The host pid of the container running `sleep <marker>`."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read() == b"sleep\0" + marker.encode() + b"\0":
                    return pid
        except OSError:
            continue
    return None


def iperf(server_ns, client_ns, address):
    """Gbit/s received, one TCP stream from `client_ns` to an iperf3 in `server_ns`."""
    server = subprocess.Popen(["nsenter", f"--net={server_ns}", "--", "iperf3", "-s", "-1",
                               "-p", "5201"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        for _ in range(50):  # The server listens within a moment; the client retries till then.
            r = run("nsenter", f"--net={client_ns}", "--", "iperf3", "-c", address, "-p", "5201",
                    "-t", str(RUN_SECONDS), "-J", check=False)
            result = json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}
            if r.returncode == 0 and "sum_received" in result.get("end", {}):
                return result["end"]["sum_received"]["bits_per_second"] / 1e9
            time.sleep(0.1)  # Polling with a bound: the server is starting.
        raise RuntimeError(f"iperf3 to {address} failed: {r.stdout[-800:]}{r.stderr}")
    finally:
        server.kill()
        server.wait()


def measure(backend):
    figures = {}
    with Cluster(backend=backend, servers=1, nodes=2) as c:
        k = c.kubectl
        n1, n2 = c.nodes
        for name, node, marker in (("a", n1, "3601"), ("b", n2, "3602"), ("c", n1, "3603")):
            k("apply", "-f", "-", input=pod_on(node.name, name, ["sleep", marker]))
        for name in "abc":
            wait_for(lambda: json.loads(k("get", "pod", name, "-o", "json"))["status"]
                     .get("phase") == "Running", 90, f"pod {name} Running")
        ip = {n: json.loads(k("get", "pod", n, "-o", "json"))["status"]["podIP"] for n in "bc"}
        ns = {n: f"/proc/{pod_pid(m)}/ns/net" for n, m in (("a", "3601"), ("b", "3602"),
                                                              ("c", "3603"))}
        node_ns = {n.name: f"/run/netns/{n.netns}" for n in c.nodes}
        runs = {"underlay": [], "cross": [], "same": []}
        for _ in range(RUNS):
            runs["underlay"].append(iperf(node_ns[n2.name], node_ns[n1.name], n2.ip))
            runs["cross"].append(iperf(ns["b"], ns["a"], ip["b"]))
            runs["same"].append(iperf(ns["c"], ns["a"], ip["c"]))
        for key, values in runs.items():
            figures[key] = statistics.median(values)
        k("delete", "pods", "--all", "--wait=true", "--timeout=60s")
    return figures


def main():
    leak = subprocess.run([os.path.join(HERE, "..", "tests", "leak_check")],
                          capture_output=True, text=True)
    if leak.returncode != 0:
        sys.exit("refusing to measure on a dirty machine:\n" + leak.stdout + leak.stderr)
    name = {"vxlan": "vxlan", "host-gw": "hostgw"}
    for backend in ("vxlan", "host-gw"):
        f = measure(backend)
        print(f"net_cross_underlay_{name[backend]}_run={f['underlay']:.2f} Gbit/s")
        print(f"net_cross_{name[backend]}={f['cross']:.2f} Gbit/s")
        print(f"net_same_node_{name[backend]}={f['same']:.2f} Gbit/s")
        print(f"net_cross_{name[backend]}_over_underlay={f['cross'] / f['underlay']:.2f} x")


if __name__ == "__main__":
    main()

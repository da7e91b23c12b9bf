"""The load-balancer conformance suite (issue 13; seed 07.6.3): the same assertions, with real
TCP connections from the host to a node port on 127.0.0.1 (each client its own address of
127.0.0.0/8), against the data plane: round robin cycles through the ready endpoints; weighted
round robin keeps to the weights over 10,000 connections; source-IP hash is sticky per client and
spreads clients; Maglev consistent hashing moves, when a backend goes, only that backend's
clients; an endpoint that turns not-ready leaves the rotation; ClientIP affinity holds for its
timeout; least connections (the eBPF socket balancer) sends each connection to the endpoint with
the fewest open ones, from this node and, through its tc programs, from another node (a network
namespace of the test's own). Three busybox httpd pods answer with their names; weights 1, 2
and 3."""
import concurrent.futures
import ctypes
import json
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import wait_for
from test_node import BRIDGE, apply, node, registry  # noqa: F401

TABLE = f"kiso-{BRIDGE}"
BACKENDS = {"lb-a": 1, "lb-b": 2, "lb-c": 3}
POD = """
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: lb}}
  annotations: {{kiso.dev/weight: "{weight}"}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: busybox
    command: ["sh", "-c", "mkdir -p /tmp/w && hostname > /tmp/w/index.html && touch /tmp/ready && exec httpd -f -p 8080 -h /tmp/w"]
    readinessProbe:
      exec: {{command: ["test", "-f", "/tmp/ready"]}}
      periodSeconds: 1
"""


def open_held(port, source):
    """A connection from `source` to the node port, left open."""
    return socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))


def answer(s):
    """The pod's name on a held connection (it stays open on this side until closed)."""
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    data = b""
    while chunk := s.recv(4096):
        data += chunk
    return data.split(b"\r\n\r\n", 1)[1].decode().strip()


def ask(port, source):
    """One connection from `source` to the node port: the name of the pod that answered."""
    with open_held(port, source) as s:
        return answer(s)


def client(i):
    """The i-th client's address: 127.1.x.y."""
    return f"127.1.{i // 250}.{i % 250 + 1}"


def chain_of(port):
    """The nft chain a node port leads to, as listed now."""
    text = subprocess.run(["nft", "list", "map", "ip", TABLE, "service-nodeports"],
                          capture_output=True, text=True).stdout
    for line in text.replace(",", "\n").splitlines():
        if f"tcp . {port} : goto " in line:
            name = line.split("goto ")[1].strip(" }")
            return subprocess.run(["nft", "list", "chain", "ip", TABLE, name], capture_output=True,
                                  text=True).stdout
    return ""


@pytest.fixture(scope="module")
def lb(node):
    s, k = node
    for name, weight in BACKENDS.items():
        apply(k, POD.format(name=name, weight=weight))
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
           "spec": {"type": "NodePort", "selector": {"app": "lb"},
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
    k("apply", "-f", "-", input=json.dumps(svc))
    k("wait", "--for=condition=Ready", "pod", *BACKENDS, "--timeout=60s")
    port = json.loads(k("get", "service", "lb", "-o", "json"))["spec"]["ports"][0]["nodePort"]
    yield k, port
    k("delete", "service", "lb")
    k("delete", "pod", *BACKENDS, "--wait=false")


def use(k, port, algorithm, expect, affinity=None):
    """Sets the Service's algorithm (and affinity) and waits until the kernel has it."""
    patch = {"metadata": {"annotations": {"kiso.dev/load-balancer": algorithm}},
             "spec": {"sessionAffinity": "ClientIP" if affinity else "None"}}
    if affinity:
        patch["spec"]["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": affinity}}
    k("patch", "service", "lb", "--type=merge", "-p", json.dumps(patch))
    wait_for(lambda: expect in chain_of(port), 10, f"{algorithm} in the kernel")


def socket_balancer_backends(port):
    """How many endpoints the socket balancer has for 127.0.0.1:port (0: no entry)."""
    # Every map of the name: another test's node agent may hold one meanwhile (bpftool then
    # dumps each map apart), and only this test's has its Service's port.
    want = {"ip": int.from_bytes(socket.inet_aton("127.0.0.1"), "little"),
            "port": int.from_bytes(port.to_bytes(2, "big"), "little")}
    for f in bpf_entries("kiso_lb_svcs"):
        if isinstance(f.get("key"), dict) and all(f["key"].get(k) == v for k, v in want.items()):
            return f["value"]["count"]
    return 0


def set_ready(k, name, ready):
    k("exec", name, "--", "sh", "-c", "touch /tmp/ready" if ready else "rm -f /tmp/ready")


def test_round_robin_cycles_through_the_ready_endpoints(lb):
    k, port = lb
    use(k, port, "round-robin", "numgen inc mod 3")
    seen = [ask(port, "127.0.0.1") for _ in range(30)]
    assert set(seen[:3]) == set(BACKENDS), seen
    assert all(seen[i] == seen[i + 3] for i in range(27)), seen


def test_an_endpoint_turning_not_ready_leaves_the_rotation(lb):
    k, port = lb
    use(k, port, "round-robin", "numgen inc mod 3")
    set_ready(k, "lb-b", False)
    try:
        wait_for(lambda: "numgen inc mod 2" in chain_of(port), 20, "lb-b out of the rotation")
        seen = [ask(port, "127.0.0.1") for _ in range(20)]
        assert set(seen) == {"lb-a", "lb-c"}, seen
    finally:
        set_ready(k, "lb-b", True)
    wait_for(lambda: "numgen inc mod 3" in chain_of(port), 20, "lb-b back")


def test_weighted_round_robin_keeps_to_the_weights(lb):
    k, port = lb
    use(k, port, "weighted-round-robin", "numgen inc mod 6")
    n = 10_000
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        seen = list(pool.map(lambda i: ask(port, client(i % 500)), range(n)))
    total = sum(BACKENDS.values())
    for name, weight in BACKENDS.items():
        share = seen.count(name) / n
        assert abs(share - weight / total) <= 0.05 * weight / total, (name, share)


def test_source_ip_hash_is_sticky_per_client_and_spreads_clients(lb):
    k, port = lb
    use(k, port, "source-ip-hash", "jhash ip saddr mod 3")
    chosen = {}
    for i in range(60):
        answers = {ask(port, client(i)) for _ in range(4)}
        assert len(answers) == 1, (client(i), answers)
        chosen[client(i)] = answers.pop()
    assert set(chosen.values()) == set(BACKENDS), chosen


def test_consistent_hash_moves_only_the_removed_backends_clients(lb):
    k, port = lb
    use(k, port, "consistent-hash", "jhash ip saddr mod 8191")
    clients = [client(i) for i in range(900)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        before = dict(zip(clients, pool.map(lambda c: ask(port, c), clients)))
    set_ready(k, "lb-c", False)
    try:
        wait_for(lambda: "jhash ip saddr mod 8191" in chain_of(port) and
                 len(set(re.findall(r"goto (ep-[0-9a-f]+)", chain_of(port)))) == 2, 20, "lb-c out")
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            after = dict(zip(clients, pool.map(lambda c: ask(port, c), clients)))
    finally:
        set_ready(k, "lb-c", True)
    assert "lb-c" not in after.values()
    # Clients of the backends that stayed keep them (Maglev: at most 1/N + 1% of keys move,
    # the removed backend's own share being the 1/N).
    stayed = [c for c in clients if before[c] != "lb-c"]
    moved = [c for c in stayed if after[c] != before[c]]
    assert len(moved) <= 0.01 * len(clients), (len(moved), len(clients))
    wait_for(lambda: len(set(re.findall(r"goto (ep-[0-9a-f]+)", chain_of(port)))) == 3, 20, "lb-c back")


def test_client_ip_affinity_holds_for_its_timeout(lb):
    k, port = lb
    use(k, port, "round-robin", "@aff-", affinity=2)
    first = ask(port, "127.2.0.1")
    # Round robin would rotate; the client stays with its endpoint while the affinity lasts.
    start = time.monotonic()
    answers = [ask(port, "127.2.0.1") for _ in range(15)]
    assert time.monotonic() - start < 2 and set(answers) == {first}, answers
    # Another client is not bound by it.
    others = {ask(port, f"127.2.0.{i}") for i in range(2, 8)}
    assert others - {first}, others
    # Each connection renews it; 2 s without one and the kernel forgets the client (polled in
    # the kernel's affinity sets, without connecting, which would renew it).
    def remembered():
        text = subprocess.run(["nft", "list", "table", "ip", TABLE], capture_output=True,
                              text=True).stdout
        return "127.2.0.1" in text
    assert remembered()
    wait_for(lambda: not remembered(), 20, "the affinity expired")
    use(k, port, "round-robin", "numgen inc mod 3")


def test_least_connections_sends_each_connection_to_the_endpoint_with_fewest(lb):
    k, port = lb
    use(k, port, "least-connections", "numgen inc mod 3")  # nftables: for what comes unmarked.
    wait_for(lambda: socket_balancer_backends(port) == 3, 10, "least connections in the kernel")
    held = []
    try:
        # Nine connections kept open: three each, whatever order the endpoints are in.
        held = [open_held(port, client(i)) for i in range(9)]
        names = [answer(s) for s in held]
        assert sorted(names) == sorted(list(BACKENDS) * 3), names
        # lb-a's three close: it has the fewest, so the next three are all its (round robin
        # would give it one).
        for s, name in zip(held, names):
            if name == "lb-a":
                s.close()
        more = [open_held(port, client(20 + i)) for i in range(3)]
        held += more
        assert [answer(s) for s in more] == ["lb-a"] * 3
        for s in held:
            s.close()
        # From a pod, to the cluster IP: one connection at a time finds every count at 0, so
        # each goes to the same first endpoint (round robin would rotate).
        ip = json.loads(k("get", "service", "lb", "-o", "json"))["spec"]["clusterIP"]
        from_pod = {k("exec", "lb-c", "--", "wget", "-qO-", f"http://{ip}/").strip()
                    for _ in range(4)}
        assert len(from_pod) == 1, from_pod
        # An endpoint that turns not-ready leaves the choice, however few connections it has.
        set_ready(k, "lb-b", False)
        try:
            wait_for(lambda: socket_balancer_backends(port) == 2, 20, "lb-b out")
            held = [open_held(port, client(40 + i)) for i in range(6)]
            assert sorted(answer(s) for s in held) == ["lb-a"] * 3 + ["lb-c"] * 3
        finally:
            set_ready(k, "lb-b", True)
        wait_for(lambda: socket_balancer_backends(port) == 3, 20, "lb-b back")
    finally:
        for s in held:
            s.close()
    use(k, port, "round-robin", "numgen inc mod 3")
    wait_for(lambda: socket_balancer_backends(port) == 0, 10, "least connections gone")


CLONE_NEWNET = 0x40000000
LIBC = ctypes.CDLL(None, use_errno=True)


class OtherNode:
    """Another node, as far as the node's interfaces can tell: a network namespace of the test's
    own joined to this one by a veth pair, whose end here has an address node ports answer on.
    Being a process of this machine, its connect() would be balanced by the socket hook before
    any packet left; so it connects to an address of its own link that its nftables translates to
    the node's, and the node's address is first seen on the wire, as from another machine."""

    def __init__(self):
        pid = os.getpid()
        self.ns, self.host_if = f"kiso-lbo-{pid}", f"klbo{pid}"
        n = pid % 250
        self.node_ip, self.ip, self.alias = f"198.18.{n}.1", f"198.18.{n}.2", f"198.18.{n}.5"
        try:
            for cmd in (["netns", "add", self.ns],
                        ["link", "add", self.host_if, "type", "veth", "peer", "name", "eth0",
                         "netns", self.ns],
                        ["addr", "add", f"{self.node_ip}/29", "dev", self.host_if],
                        ["link", "set", self.host_if, "up"],
                        ["-n", self.ns, "addr", "add", f"{self.ip}/29", "dev", "eth0"],
                        ["-n", self.ns, "link", "set", "eth0", "up"],
                        ["-n", self.ns, "link", "set", "lo", "up"]):
                subprocess.run(["ip", *cmd], check=True, capture_output=True)
            subprocess.run(["ip", "netns", "exec", self.ns, "nft",
                            "add table ip other; add chain ip other out { type nat hook output "
                            f"priority -100; }}; add rule ip other out ip daddr {self.alias} "
                            f"dnat to {self.node_ip}"], check=True, capture_output=True)
        except BaseException:
            self.remove()
            raise

    def connect(self, port):
        """A connection from the other node to the node port, left open."""
        here = os.open("/proc/self/ns/net", os.O_RDONLY)
        there = os.open(f"/run/netns/{self.ns}", os.O_RDONLY)
        try:
            assert LIBC.setns(there, CLONE_NEWNET) == 0, os.strerror(ctypes.get_errno())
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # The other node's.
            finally:
                assert LIBC.setns(here, CLONE_NEWNET) == 0, os.strerror(ctypes.get_errno())
        finally:
            os.close(there)
            os.close(here)
        s.settimeout(5)
        s.connect((self.alias, port))
        return s

    def remove(self):
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)  # Takes the veth.


def bpf_entries(map_name):
    """The entries of every map of that name (each kiso agent has its own)."""
    out = subprocess.run(["bpftool", "-j", "map", "dump", "name", map_name], capture_output=True,
                         text=True).stdout
    found, todo = [], [json.loads(out or "[]")]
    while todo:
        item = todo.pop()
        if isinstance(item, list):
            todo.extend(item)
        elif isinstance(item, dict):
            f = item.get("formatted", item)
            if "key" in f and "value" in f:
                found.append(f)
            else:
                todo.extend(v for v in item.values() if isinstance(v, (list, dict)))
    return found


def le_ip(ip):
    return int.from_bytes(socket.inet_aton(ip), "little")


def le_port(port):
    return int.from_bytes(port.to_bytes(2, "big"), "little")


def counted_backend(client_ip, conn):
    """The endpoint IP the tc program counted a connection from another node to (None: not)."""
    port = le_port(conn.getsockname()[1])
    for e in bpf_entries("kiso_lb_remotes"):
        if e["key"]["client_ip"] == le_ip(client_ip) and e["key"]["client_port"] == port:
            return socket.inet_ntoa(e["value"]["backend"]["ip"].to_bytes(4, "little"))
    return None


def test_least_connections_from_another_node(lb):
    k, port = lb
    other = OtherNode()
    held = []
    try:
        use(k, port, "least-connections", "meta mark & 0xffff0000 vmap")
        # The agent takes the new address and interface within its housekeeping period.
        wait_for(lambda: any(e["key"] == {"ip": le_ip(other.node_ip), "port": le_port(port),
                                          "pad": 0} and e["value"]["count"] == 3
                             for e in bpf_entries("kiso_lb_svcs")),
                 20, "least connections on the new node address")
        pods = json.loads(k("get", "pods", *BACKENDS, "-o", "json"))["items"]
        name_of = {p["status"]["podIP"]: p["metadata"]["name"] for p in pods}
        # Six held connections, none asked anything yet: two counted to each endpoint.
        held = [other.connect(port) for _ in range(6)]
        counted = [counted_backend(other.ip, s) for s in held]
        assert sorted(name_of.get(ip) for ip in counted) == sorted(list(BACKENDS) * 2), counted
        # Each reached the endpoint it was counted to; answering ends it (the endpoint's FIN),
        # which counts it off. Both of lb-a's first: it has the fewest, so the next two are
        # its (round robin would give it at most one).
        a = [s for s, ip in zip(held, counted) if name_of[ip] == "lb-a"]
        assert [answer(s) for s in a] == ["lb-a", "lb-a"]
        wait_for(lambda: all(counted_backend(other.ip, s) is None for s in a), 10,
                 "lb-a's connections counted off")
        more = [other.connect(port) for _ in range(2)]
        held += more
        assert [name_of.get(counted_backend(other.ip, s)) for s in more] == ["lb-a", "lb-a"]
        rest = [s for s, ip in zip(held, counted) if name_of[ip] != "lb-a"]
        assert sorted(answer(s) for s in rest + more) == ["lb-a"] * 2 + ["lb-b"] * 2 + ["lb-c"] * 2
    finally:
        for s in held:
            s.close()
        other.remove()
    use(k, port, "round-robin", "numgen inc mod 3")
    wait_for(lambda: socket_balancer_backends(port) == 0, 10, "least connections gone")

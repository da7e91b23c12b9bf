"""The load-balancer conformance suite (issue 13; seed 07.6.3): the same assertions, with real
TCP connections from the host to a node port on 127.0.0.1 (each client its own address of
127.0.0.0/8), against the data plane: round robin cycles through the ready endpoints; weighted
round robin keeps to the weights over 10,000 connections; source-IP hash is sticky per client and
spreads clients; Maglev consistent hashing moves, when a backend goes, only that backend's
clients; an endpoint that turns not-ready leaves the rotation; ClientIP affinity holds for its
timeout; least connections (the eBPF socket balancer) sends each connection to the endpoint with
the fewest open ones. Three busybox httpd pods answer with their names; weights 1, 2 and 3."""
import concurrent.futures
import json
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
    out = subprocess.run(["bpftool", "-j", "map", "dump", "name", "kiso_lb_svcs"],
                         capture_output=True, text=True).stdout
    entries = json.loads(out or "[]")
    want = {"ip": int.from_bytes(socket.inet_aton("127.0.0.1"), "little"),
            "port": int.from_bytes(port.to_bytes(2, "big"), "little")}
    for e in entries:
        f = e.get("formatted", e)
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
    use(k, port, "least-connections", "numgen inc mod 3")  # nftables: for other nodes' traffic.
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

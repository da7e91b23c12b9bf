"""The network-policy suite (issue 15; seed 07.2.4, the "policy" of the network tuple), after
the upstream suite's approach: three namespaces x, y, z with three pods a, b, c each (real runc
pods running a small TCP/UDP server, tests/e2e/netpol/netpol.c), every case a set of
NetworkPolicies and the reachability it should give, probed from every pod to every other on
TCP and UDP ports 80 and 81 and compared cell by cell — the same cases against both enforcers
(`--network-policy nftables` and `ebpf`: the seed's isomorphism). Then what changes under a
policy: pod and namespace labels, pods created after it, an established connection it forbids
(cut), the cluster DNS (reachable only when allowed), and the node agent killed and restarted
with policies in force. Afterwards nothing of kiso's remains in nftables or on tc.

SCTP is in the unit tests only: this machine's kernel has no SCTP."""
import concurrent.futures
import json
import os
import select
import socket
import subprocess
import time

import pytest

from conftest import Kubectl, Server, node_reset, wait_for
from images import build_oci_archive
from test_node import (BRIDGE, NODE, POD_CIDR, SERVICE_CIDR, leftovers,  # noqa: F401
                       registry)

NAMESPACES = ("x", "y", "z")
NAMES = ("a", "b", "c")
PORTS = ((80, "tcp"), (81, "tcp"), (80, "udp"), (81, "udp"))
PROBE_MS = 1500
SOURCE = os.path.join(os.path.dirname(__file__), "netpol", "netpol.c")

POD = """
apiVersion: v1
kind: Pod
metadata:
  name: "{name}"
  namespace: "{ns}"  # Quoted: YAML 1.1 reads a bare y as true.
  labels: {{pod: "{name}"}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: serve
    image: kiso.test/netpol:1
    command: ["/bin/netpol", "serve", "80", "81", "82"]
    ports:
    - {{name: serve-80-tcp, containerPort: 80, protocol: TCP}}
    - {{name: serve-81-tcp, containerPort: 81, protocol: TCP}}
    - {{name: serve-80-udp, containerPort: 80, protocol: UDP}}
    - {{name: serve-81-udp, containerPort: 81, protocol: UDP}}
    readinessProbe:
      tcpSocket: {{port: 80}}
      periodSeconds: 1
"""


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True)


class Cluster:
    def __init__(self, server, kubectl, enforcer):
        self.s, self.k, self.enforcer = server, kubectl, enforcer
        self.ips = {}

    def pods(self):
        return [f"{ns}/{n}" for ns in NAMESPACES for n in NAMES]

    def add_pod(self, ns, name):
        self.k("apply", "-f", "-", input=POD.format(ns=ns, name=name))

    def wait_ready(self, pods):
        for p in pods:
            ns, name = p.split("/")
            self.k("wait", "-n", ns, "--for=condition=Ready", "pod", name, "--timeout=90s",
                   timeout=100)
            self.ips[p] = json.loads(self.k("get", "-n", ns, "pod", name, "-o", "json"))[
                "status"]["podIP"]

    def probe_from(self, src, targets, ms=PROBE_MS):
        """{target: answer or None} probed from pod `src` at once."""
        ns, name = src.split("/")
        p = self.k.run("exec", "-n", ns, name, "--", "/bin/netpol", "probe", str(ms), *targets,
                       timeout=30, check=False)
        # An exec that fails (the agent restarting) reached nothing: converge() probes again.
        result = {}
        for line in (p.stdout if p.returncode == 0 else "").splitlines():
            parts = line.split(" ", 2)
            result[parts[0]] = parts[2] if parts[1] == "ok" else None
        return result

    def matrix(self, pods=None):
        """{(src, dst, port, protocol): reached} from every pod to every other pod."""
        pods = pods or self.pods()

        def row(src):
            targets = {f"{self.ips[d]}:{port}/{proto}": (d, port, proto)
                       for d in pods if d != src for port, proto in PORTS}
            answers = self.probe_from(src, list(targets))
            return {(src, *targets[t]): answers.get(t) == d.split("/")[1]
                    for t, d in ((t, targets[t][0]) for t in targets)}

        cells = {}
        with concurrent.futures.ThreadPoolExecutor(len(pods)) as pool:
            for r in pool.map(row, pods):
                cells.update(r)
        return cells


def table(cells, expect):
    """The wrong cells, as lines a person can read."""
    wrong = [f"{s} -> {d} {port}/{proto}: reached={got}, expected={expect(s, d, port, proto)}"
             for (s, d, port, proto), got in sorted(cells.items())
             if got != expect(s, d, port, proto)]
    return wrong


def converge(c, expect, what, pods=None, timeout=20):
    """Probes until the matrix is `expect`'s (programming takes a moment), or fails showing how not."""
    last = []

    def ok():
        nonlocal last
        last = table(c.matrix(pods), expect)
        return not last

    try:
        wait_for(ok, timeout, what)
    except AssertionError:
        pytest.fail(f"{c.enforcer}: {what}: {len(last)} cells wrong:\n" + "\n".join(last[:40]))


def policy(name, ns, spec):
    return json.dumps({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                       "metadata": {"name": name, "namespace": ns}, "spec": spec})


def apply_policies(c, *manifests):
    for m in manifests:
        c.k("apply", "-f", "-", input=m)


def clear_policies(c):
    for ns in NAMESPACES:
        c.k("delete", "networkpolicy", "--all", "-n", ns)


@pytest.fixture(scope="module")
def image(registry, tmp_path_factory):
    """The suite's image: busybox and the static netpol server, mirrored as kiso.test/netpol:1."""
    d = tmp_path_factory.mktemp("netpol")
    binary = str(d / "netpol")
    subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", binary, SOURCE], check=True)
    archive = build_oci_archive(str(d / "netpol.tar"), ref="kiso.test/netpol:1",
                                extra=[("bin/netpol", binary)])
    registry.push(archive, "netpol:1")
    return registry


@pytest.fixture(scope="module", params=["ebpf", "nftables"])
def cluster(request, image, tmp_path_factory):
    enforcer = request.param
    mirrors = tmp_path_factory.mktemp("conf") / "registries.yaml"
    mirrors.write_text(f"""mirrors:
  kiso.test:
    endpoint: ["http://{image.address}"]
""")
    s = Server(["--node-name", NODE, "--pod-cidr", POD_CIDR, "--cni-bridge", BRIDGE,
                "--service-cidr", SERVICE_CIDR, "--network-policy", enforcer,
                "--registries", str(mirrors)], agent=True)
    k = Kubectl(s)
    c = Cluster(s, k, enforcer)
    try:
        wait_for(lambda: "Ready" in k("get", "node", NODE, "--no-headers", check=False), 20)
        for ns in NAMESPACES:
            k("create", "namespace", ns)
            k("label", "namespace", ns, f"ns={ns}")
        for p in c.pods():
            c.add_pod(*p.split("/"))
        c.wait_ready(c.pods())
        yield c
        for ns in NAMESPACES:
            k("delete", "namespace", ns, "--wait=true", "--timeout=90s", timeout=100)
        deadline = time.monotonic() + 30
        while (left := leftovers(s.dir)) and time.monotonic() < deadline:
            time.sleep(0.2)  # Polling with a deadline.
        assert not left, f"left behind: {left}"
    finally:
        try:
            s.stop(keep_dir=True)
        finally:
            node_reset(s.dir)
            subprocess.run(["rm", "-rf", s.dir])
    # Nothing of the enforcer remains: no table, no program on the bridge.
    assert run("nft", "list", "table", "ip", f"kiso-policy-{BRIDGE}").returncode != 0
    if os.path.exists(f"/sys/class/net/{BRIDGE}"):
        assert "kiso_np" not in run("tc", "filter", "show", "dev", BRIDGE, "ingress").stdout


def everything(s, d, port, proto):
    return True


def test_no_policy_reaches_everything(cluster):
    clear_policies(cluster)
    converge(cluster, everything, "every pod reaches every pod")


# The cases of the truth table: (name, policies (given the cluster), expectation).
def ns_of(p):
    return p.split("/")[0]


def name_of(p):
    return p.split("/")[1]


CASES = [
    ("default deny ingress in x",
     lambda c: [policy("deny", "x", {"podSelector": {}, "policyTypes": ["Ingress"]})],
     lambda s, d, port, proto: ns_of(d) != "x"),
    ("x/a from pods b of x on TCP 80 (podSelector)",
     lambda c: [policy("web", "x", {"podSelector": {"matchLabels": {"pod": "a"}},
                                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}],
                                                 "ports": [{"port": 80}]}]})],
     lambda s, d, port, proto: d != "x/a" or (s == "x/b" and (port, proto) == (80, "tcp"))),
    ("x/a from namespace y (namespaceSelector)",
     lambda c: [policy("from-y", "x", {"podSelector": {"matchLabels": {"pod": "a"}},
                                       "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]})],
     lambda s, d, port, proto: d != "x/a" or ns_of(s) == "y"),
    ("x/a from pods c of y and z (both selectors)",
     lambda c: [policy("both", "x", {"podSelector": {"matchLabels": {"pod": "a"}},
                                     "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [
                                         {"key": "ns", "operator": "In", "values": ["y", "z"]}]},
                                         "podSelector": {"matchLabels": {"pod": "c"}}}]}]})],
     lambda s, d, port, proto: d != "x/a" or s in ("y/c", "z/c")),
    ("x/a from the pod range except y/b (ipBlock)",
     lambda c: [policy("block", "x", {"podSelector": {"matchLabels": {"pod": "a"}},
                                      "ingress": [{"from": [{"ipBlock": {"cidr": POD_CIDR,
                                                                         "except": [c.ips["y/b"] + "/32"]}}]}]})],
     lambda s, d, port, proto: d != "x/a" or s != "y/b"),
    ("x/a on its named port serve-81-udp only",
     lambda c: [policy("named", "x", {"podSelector": {"matchLabels": {"pod": "a"}},
                                      "ingress": [{"ports": [{"port": "serve-81-udp", "protocol": "UDP"}]}]})],
     lambda s, d, port, proto: d != "x/a" or (port, proto) == (81, "udp")),
    ("x/a on TCP 80-81 (endPort), UDP not at all",
     lambda c: [policy("range", "x", {"podSelector": {"matchLabels": {"pod": "a"}},
                                      "ingress": [{"ports": [{"port": 80, "endPort": 81, "protocol": "TCP"}]}]})],
     lambda s, d, port, proto: d != "x/a" or proto == "tcp"),
    ("policies add up: x/a from y on 80, from z on 81",
     lambda c: [policy("y80", "x", {"podSelector": {"matchLabels": {"pod": "a"}},
                                    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}],
                                                 "ports": [{"port": 80}, {"port": 80, "protocol": "UDP"}]}]}),
                policy("z81", "x", {"podSelector": {"matchLabels": {"pod": "a"}},
                                    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "z"}}}],
                                                 "ports": [{"port": 81}, {"port": 81, "protocol": "UDP"}]}]})],
     lambda s, d, port, proto: d != "x/a" or (ns_of(s), port) in (("y", 80), ("z", 81))),
    ("default deny egress in x, but to y on TCP 80",
     lambda c: [policy("egress", "x", {"podSelector": {}, "policyTypes": ["Egress"],
                                       "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}],
                                                   "ports": [{"port": 80, "protocol": "TCP"}]}]})],
     lambda s, d, port, proto: ns_of(s) != "x" or (ns_of(d) == "y" and (port, proto) == (80, "tcp"))),
    ("egress by named port: x/b to serve-81-tcp anywhere",
     lambda c: [policy("egress-named", "x", {"podSelector": {"matchLabels": {"pod": "b"}},
                                             "policyTypes": ["Egress"],
                                             "egress": [{"ports": [{"port": "serve-81-tcp"}]}]})],
     lambda s, d, port, proto: s != "x/b" or (port, proto) == (81, "tcp")),
    ("deny all both ways in y",
     lambda c: [policy("deny-all", "y", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})],
     lambda s, d, port, proto: ns_of(s) != "y" and ns_of(d) != "y"),
    ("allow all ingress in x despite a deny",
     lambda c: [policy("deny", "x", {"podSelector": {}, "policyTypes": ["Ingress"]}),
                policy("allow", "x", {"podSelector": {}, "ingress": [{}]})],
     everything),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_truth_table(cluster, case):
    name, policies, expect = case
    clear_policies(cluster)
    converge(cluster, everything, "no policy in force")
    apply_policies(cluster, *policies(cluster))
    converge(cluster, expect, name)


def test_label_changes_on_live_pods_and_namespaces(cluster):
    c = cluster
    clear_policies(c)
    apply_policies(c, policy("web", "x", {"podSelector": {"matchLabels": {"pod": "a"}},
                                          "ingress": [{"from": [
                                              {"podSelector": {"matchLabels": {"pod": "b"}}},
                                              {"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}]}))
    only_xb = lambda s, d, port, proto: d != "x/a" or s == "x/b"  # noqa: E731
    converge(c, only_xb, "x/a from x/b")
    c.k("label", "pod", "-n", "x", "c", "pod=b", "--overwrite")  # x/c becomes a peer.
    try:
        converge(c, lambda s, d, port, proto: d != "x/a" or s in ("x/b", "x/c"),
                 "x/a from x/b and the relabelled x/c")
    finally:
        c.k("label", "pod", "-n", "x", "c", "pod=c", "--overwrite")
    converge(c, only_xb, "x/c back to c")
    c.k("label", "namespace", "z", "team=blue")  # Every pod of z becomes a peer.
    try:
        converge(c, lambda s, d, port, proto: d != "x/a" or s == "x/b" or ns_of(s) == "z",
                 "x/a from namespace z once it is labelled")
    finally:
        c.k("label", "namespace", "z", "team-")
    converge(c, only_xb, "z's label gone")
    # The selected pod itself relabelled: it is no longer isolated.
    c.k("label", "pod", "-n", "x", "a", "pod=free", "--overwrite")
    try:
        converge(c, everything, "x/a no longer selected")
    finally:
        c.k("label", "pod", "-n", "x", "a", "pod=a", "--overwrite")
    converge(c, only_xb, "x/a selected again")
    clear_policies(c)


def test_pods_created_after_the_policy_are_isolated(cluster):
    c = cluster
    clear_policies(c)
    apply_policies(c, policy("deny", "x", {"podSelector": {}, "policyTypes": ["Ingress"]}))
    converge(c, lambda s, d, port, proto: ns_of(d) != "x", "x isolated")
    c.add_pod("x", "d")
    try:
        c.wait_ready(["x/d"])
        pods = c.pods() + ["x/d"]
        converge(c, lambda s, d, port, proto: ns_of(d) != "x", "the new x/d isolated too", pods=pods)
        # The node itself still reaches them (kubelet probes), from the bridge's address too.
        gateway = POD_CIDR.rsplit(".", 1)[0] + ".1"
        for p in ("x/a", "x/d"):
            for source in (None, gateway):
                with socket.create_connection((c.ips[p], 80), timeout=5,
                                              source_address=(source, 0) if source else None) as conn:
                    assert conn.recv(64).strip() == p.split("/")[1].encode(), (p, source)
    finally:
        c.k("delete", "pod", "-n", "x", "d", "--wait=true")
        c.ips.pop("x/d", None)
    clear_policies(c)


def test_an_established_connection_a_new_policy_forbids_is_cut(cluster):
    c = cluster
    clear_policies(c)
    converge(c, everything, "no policy in force")
    # y/a holds a connection to x/a's echo port 82.
    env = dict(os.environ, KUBECONFIG=c.s.kubeconfig, HOME=c.s.home)
    conn = subprocess.Popen(["kubectl", "exec", "-i", "-n", "y", "a", "--", "nc", c.ips["x/a"], "82"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def echoed(line, within):
        conn.stdin.write(line.encode() + b"\n")
        conn.stdin.flush()
        ready, _, _ = select.select([conn.stdout], [], [], within)
        return bool(ready) and conn.stdout.readline().strip() == line.encode()

    try:
        assert echoed("one", 10), "the connection does not work to begin with"
        apply_policies(c, policy("deny", "x", {"podSelector": {}, "policyTypes": ["Ingress"]}))
        converge(c, lambda s, d, port, proto: ns_of(d) != "x", "x isolated")
        # The open connection is cut: what y/a sends now gets no echo (or the connection ends).
        try:
            got = echoed("two", 3)
        except BrokenPipeError:
            got = False
        assert not got, "a connection the policy forbids still carries data"
    finally:
        conn.kill()
        conn.wait()
    clear_policies(c)


def test_cluster_dns_only_when_a_policy_allows_it(cluster):
    c = cluster
    clear_policies(c)
    dns = json.loads(c.k("get", "service", "-n", "kube-system", "kube-dns", "-o", "json"))["spec"]["clusterIP"]
    target = f"{dns}:53/udp"

    def resolves():
        return c.probe_from("x/a", [target]).get(target) == "dns"

    wait_for(resolves, 20, "x/a resolves names with no policy")
    apply_policies(c, policy("egress-deny", "x", {"podSelector": {}, "policyTypes": ["Egress"]}))
    wait_for(lambda: not resolves(), 20, "no DNS under an egress deny-all")
    apply_policies(c, policy("dns", "x", {
        "podSelector": {}, "policyTypes": ["Egress"],
        "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]}))
    wait_for(resolves, 20, "DNS once a policy allows it")
    # ... and nothing else.
    converge(c, lambda s, d, port, proto: ns_of(s) != "x", "x reaches no pod")
    clear_policies(c)


def test_policies_hold_while_the_agent_is_down_and_after_it_restarts(cluster):
    c = cluster
    clear_policies(c)
    apply_policies(c, policy("deny", "x", {"podSelector": {}, "policyTypes": ["Ingress"]}))
    isolated = lambda s, d, port, proto: ns_of(d) != "x"  # noqa: E731
    converge(c, isolated, "x isolated")
    c.s.kill()
    try:
        assert not table(c_matrix_without_api(c), isolated), "the kernel let go while the agent was down"
    finally:
        c.s.start()
    converge(c, isolated, "x isolated after the restart", timeout=60)
    clear_policies(c)
    converge(c, everything, "the policy deleted after the restart")


def c_matrix_without_api(c):
    """The matrix probed without the API (the server is down): in the pods' network namespaces
    (nsenter into each pod's server process), by the same prober built on the host."""
    binary = os.path.join(c.s.dir, "netpol-probe")
    if not os.path.exists(binary):
        subprocess.run(["gcc", "-static", "-O2", "-o", binary, SOURCE], check=True)
    by_pod = {}
    for pid in run("pgrep", "-f", "^/bin/netpol serve").stdout.split():
        out = run("nsenter", "-t", pid, "-n", "ip", "-4", "-o", "addr", "show", "eth0").stdout
        for p, ip in c.ips.items():
            if f" {ip}/" in out:
                by_pod[p] = pid
    assert set(by_pod) >= set(c.pods()), f"found the network namespaces of {sorted(by_pod)} only"
    cells = {}
    for src in c.pods():
        targets = {f"{c.ips[d]}:{port}/{proto}": (d, port, proto)
                   for d in c.pods() if d != src for port, proto in PORTS}
        out = run("nsenter", "-t", by_pod[src], "-n", binary, "probe", str(PROBE_MS), *targets).stdout
        for line in out.splitlines():
            t, verdict = line.split(" ", 2)[:2]
            cells[(src, *targets[t])] = verdict == "ok"
    return cells

"""Failure drills on a simulated cluster (cluster.py: three etcd members, two servers, three
nodes in namespaces of their own), each under a steady stream of writes, with invariants checked
after: no acknowledged write lost, no controller acting twice, nothing left behind. Each prints
its figures (how long writes stalled, how long until it recovered): MTTR measured."""
import base64
import json
import os
import ssl
import threading
import time
import urllib.error
import urllib.request

import pytest

from cluster import Cluster, Kubectl, diagnostics_on_failure, run, wait_for  # noqa: F401
from conftest import micro_time_seconds  # tests/e2e, on the path cluster.py set.

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and nodes need root")


@pytest.fixture(scope="module")
def cluster():
    with Cluster(backend="vxlan") as c:
        yield c


class Writer:
    """ConfigMaps created one after another through one server; what was acknowledged, and the
    longest stretch without an acknowledgement."""

    def __init__(self, cluster, server, prefix):
        self.url = f"https://{server.address}:{server.port}/api/v1/namespaces/default/configmaps"
        self.token = server.token
        self.ctx = ssl.create_default_context(cafile=cluster.ca_file)
        self.prefix = prefix
        self.acked = []
        self.times = []
        self.errors = []  # (monotonic time, what failed), for a drill's report on failure.
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        n = 0
        while not self.stop.is_set():
            name = f"{self.prefix}-{n}"
            body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": name}, "data": {"n": str(n)}}).encode()
            req = urllib.request.Request(self.url, data=body, method="POST", headers={
                "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, context=self.ctx, timeout=5) as r:
                    if r.status == 201:
                        self.acked.append(name)
                        self.times.append(time.monotonic())
                        n += 1
            except urllib.error.HTTPError as e:  # 409 after a lost answer, or a 5xx: the next name.
                self.errors.append((time.monotonic(), f"{e.code} {e.read()[:300]!r}"))
                n += 1
            except OSError as e:
                self.errors.append((time.monotonic(), repr(e)))
                time.sleep(0.05)  # The API is down for a moment: the drill is about this.

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def wait_for_more(self, n, timeout=60):
        start, since = len(self.acked), time.monotonic()
        try:
            wait_for(lambda: len(self.acked) >= start + n, timeout, f"{n} more acknowledged writes")
        except AssertionError:
            errors = [f"{t - since:.1f} s: {e}" for t, e in self.errors if t >= since]
            print(f"{len(self.acked) - start} writes acknowledged; failures:\n"
                  + "\n".join(errors[-20:]))
            raise

    def longest_gap_ms(self, since):
        times = [since] + [t for t in self.times if t >= since]
        return max((b - a for a, b in zip(times, times[1:])), default=0) * 1000


def stored_configmaps(k, prefix):
    items = json.loads(k("get", "configmaps", "-o", "json"))["items"]
    return {i["metadata"]["name"] for i in items if i["metadata"]["name"].startswith(prefix)}


def member_revision(client_url):
    """The revision one etcd member has applied (a serializable read: its own state)."""
    body = json.dumps({"key": base64.b64encode(b"/").decode(), "serializable": True,
                       "limit": 1}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(
                client_url + "/v3/kv/range", data=body, method="POST"), timeout=2) as r:
            return int(json.loads(r.read())["header"]["revision"])
    except OSError:
        return -1


def test_an_etcd_member_dies_and_comes_back(cluster):
    k = cluster.kubectl
    with Writer(cluster, cluster.servers[1], "etcd-drill") as w:
        w.wait_for_more(20)
        killed_at = time.monotonic()
        cluster.etcd.kill(0)
        w.wait_for_more(50, 30)  # The API keeps serving on the two members left.
        gap = w.longest_gap_ms(killed_at)
        cluster.etcd.start(0)
        restarted_at = time.monotonic()
        w.wait_for_more(20)
    target = member_revision(cluster.etcd.clients[1])
    wait_for(lambda: member_revision(cluster.etcd.clients[0]) >= target, 30,
             "the restarted member to catch up")
    caught_up = (time.monotonic() - restarted_at) * 1000
    print(f"drill etcd-member-kill: longest write stall {gap:.0f} ms, "
          f"restarted member caught up {caught_up:.0f} ms after its start")
    lost = set(w.acked) - stored_configmaps(k, "etcd-drill")
    assert not lost, f"acknowledged writes lost: {sorted(lost)[:10]}"


def holder(k, lease):
    return json.loads(k("get", "lease", lease, "-n", "kube-system", "-o", "json"))["spec"]


def test_the_leading_server_is_killed_under_load(cluster):
    leader_id = holder(cluster.kubectl, "kube-controller-manager")["holderIdentity"]
    ids = []
    for s in cluster.servers:
        with open(os.path.join(s.dir, "server-id")) as f:
            ids.append(f.read().strip())
    leader = next(s for s, i in zip(cluster.servers, ids) if leader_id.endswith(i))
    survivor = next(s for s in cluster.servers if s is not leader)
    k = Kubectl(survivor)
    k("create", "deployment", "ha", "--image=busybox:1.35", "--replicas=3", "--", "sleep", "3600")
    wait_for(lambda: len(running(k, "app=ha")) == 3, 90, "three ha pods Running")
    with Writer(cluster, survivor, "leader-drill") as w:
        w.wait_for_more(20)
        killed_at_wall, killed_at = time.time(), time.monotonic()
        leader.kill()
        k("scale", "deployment", "ha", "--replicas=6")  # Acted on by whichever leads next.
        wait_for(lambda: all(not holder(k, l)["holderIdentity"].endswith(
            next(i for s, i in zip(cluster.servers, ids) if s is leader))
            for l in ("kube-controller-manager", "kube-scheduler")), 30, "the other to lead")
        took = max(micro_time_seconds(holder(k, l)["acquireTime"])
                   for l in ("kube-controller-manager", "kube-scheduler")) - killed_at_wall
        wait_for(lambda: len(running(k, "app=ha")) == 6, 90, "six ha pods Running")
        recovered = (time.monotonic() - killed_at) * 1000
        w.wait_for_more(10)
        gap = w.longest_gap_ms(killed_at)
    print(f"drill leader-kill: leases taken over {took * 1000:.0f} ms after the kill (lease 3 s), "
          f"the scale-up done {recovered:.0f} ms after it; writes through the survivor stalled "
          f"{gap:.0f} ms at most")
    assert took <= 3.0 + 0.55 + 1.0
    # No controller acted twice: six pods, not more; each bound once, to a live node.
    pods = json.loads(k("get", "pods", "-l", "app=ha", "-o", "json"))["items"]
    assert len(pods) == 6, [p["metadata"]["name"] for p in pods]
    assert len(json.loads(k("get", "rs", "-l", "app=ha", "-o", "json"))["items"]) == 1
    lost = set(w.acked) - stored_configmaps(k, "leader-drill")
    assert not lost, f"acknowledged writes lost: {sorted(lost)[:10]}"
    leader.start()  # Back on its data directory: a candidate again.
    k("delete", "deployment", "ha", "--wait=true")
    wait_for(lambda: not running(k, "app=ha"), 60, "the ha pods to go")


def running(k, selector):
    pods = json.loads(k("get", "pods", "-l", selector, "-o", "json"))["items"]
    return [p for p in pods if p["status"].get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")]


def test_every_agent_restarts_during_a_rolling_update(cluster):
    k = cluster.kubectl
    k("create", "deployment", "roll", "--image=busybox:1.35", "--replicas=6", "--", "sleep",
      "3600")
    wait_for(lambda: len(running(k, "app=roll")) == 6, 120, "six roll pods Running")
    started = time.monotonic()
    k("set", "env", "deployment/roll", "VERSION=2")
    for node in cluster.nodes:  # One after another, while the rollout goes on.
        node.restart_agent()
        wait_for(lambda: "Ready" in k("get", "node", node.name, "--no-headers", check=False),
                 60, f"{node.name} back")
    rollout = k.run("rollout", "status", "deployment/roll", "--timeout=150s", check=False,
                    timeout=170)
    if rollout.returncode != 0:
        for n in cluster.nodes:
            print(f"--- {n.name}'s agent:\n" + n.agent_log()[-4000:])
    assert rollout.returncode == 0, (rollout.stdout + rollout.stderr + "\n" +
                                     k("get", "pods", "-o", "wide", check=False))
    took = (time.monotonic() - started) * 1000
    pods = running(k, "app=roll")
    assert len(pods) == 6
    assert all(any(e.get("name") == "VERSION" and e.get("value") == "2"
                   for e in p["spec"]["containers"][0].get("env", [])) for p in pods)
    print(f"drill agents-restarted-during-rollout: the rollout completed {took:.0f} ms after it "
          f"began, with all three agents restarted meanwhile")
    k("delete", "deployment", "roll", "--wait=true")
    try:
        wait_for(lambda: not json.loads(k("get", "pods", "-l", "app=roll", "-o",
                                          "json"))["items"], 90, "the roll pods to go")
    except AssertionError:
        left = k("get", "pods", "-o", "wide", check=False)
        print(left)
        for n in cluster.nodes:
            lines = [line for line in n.agent_log().splitlines()
                     if any(p.split()[0] in line for p in left.splitlines()[1:])]
            print(f"--- {n.name}'s agent on them:\n" + "\n".join(lines[-40:]))
        raise
    for node in cluster.nodes:
        wait_for(lambda: not node.leftovers(), 30, f"nothing of the pods left on {node.name}")


SPREAD = {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
          "whenUnsatisfiable": "DoNotSchedule"}
# Evicted two seconds after their node is found unreachable (the default is 300 s).
TOLERATE = [{"key": f"node.kubernetes.io/{t}", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 2} for t in ("unreachable", "not-ready")]


def workload(kind, name, replicas):
    spec = {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {
                "terminationGracePeriodSeconds": 1, "tolerations": TOLERATE,
                "topologySpreadConstraints": [dict(SPREAD, labelSelector={
                    "matchLabels": {"app": name}})],
                "containers": [{"name": "c", "image": "busybox:1.35",
                                "command": ["sleep", "3600"]}]}}}
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return json.dumps({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name},
                       "spec": spec})


def test_a_node_cut_off_has_its_pods_replaced_and_is_cleaned_up_when_it_returns(cluster):
    k = cluster.kubectl
    cut = cluster.nodes[2]
    k("apply", "-f", "-", input=workload("Deployment", "cut", 6))
    k("apply", "-f", "-", input=workload("StatefulSet", "st", 3))
    wait_for(lambda: len(running(k, "app=cut")) == 6 and len(running(k, "app=st")) == 3, 120,
             "the workloads Running")
    on_cut = [p["metadata"]["name"] for p in running(k, "app=cut") + running(k, "app=st")
              if p["spec"]["nodeName"] == cut.name]
    assert on_cut, "the spread left the node to cut without pods"
    containers_before = len(cut.leftovers().get("containers", []))
    lease = json.loads(k("get", "lease", cut.name, "-n", "kube-node-lease", "-o", "json"))
    assert lease["spec"]["leaseDurationSeconds"] == 8  # Renewed every 2 s (cluster.py).
    host_end = f"kisoc{cluster.slot}v{cut.name[-1]}"
    cut_at = time.monotonic()
    run("ip", "link", "set", host_end, "down")
    try:
        wait_for(lambda: "NotReady" in k("get", "node", cut.name, "--no-headers"), 60,
                 "the cut node NotReady")
        detected = (time.monotonic() - cut_at) * 1000
        # Not before the grace period less one renewal could have run out.
        assert detected >= (10 - 2) * 1000, detected
        wait_for(lambda: len([p for p in running(k, "app=cut")
                              if p["spec"]["nodeName"] != cut.name]) == 6, 90,
                 "six cut pods Running on the other nodes")
        replaced = (time.monotonic() - cut_at) * 1000
        # The cut node's containers go on running: it cannot hear that its pods went.
        assert len(cut.leftovers().get("containers", [])) == containers_before
        # A StatefulSet's pod on it is not made again elsewhere while it may still run.
        names = [p["metadata"]["name"] for p in json.loads(
            k("get", "pods", "-l", "app=st", "-o", "json"))["items"]]
        assert len(names) == len(set(names)) == 3, names
    finally:
        run("ip", "link", "set", host_end, "up")
    healed_at = time.monotonic()
    wait_for(lambda: "NotReady" not in k("get", "node", cut.name, "--no-headers")
             and "Ready" in k("get", "node", cut.name, "--no-headers"), 90, "the node back")
    # Its stale pods finish: the StatefulSet gets its three again, once each.
    wait_for(lambda: sorted(p["metadata"]["name"] for p in running(k, "app=st")) ==
             ["st-0", "st-1", "st-2"] and len(json.loads(
                 k("get", "pods", "-l", "app=st", "-o", "json"))["items"]) == 3, 120,
             "the StatefulSet whole again")
    wait_for(lambda: len(json.loads(k("get", "pods", "-l", "app=cut", "-o", "json"))["items"])
             == 6, 60, "the cut node's stale pods gone")
    recovered = (time.monotonic() - healed_at) * 1000
    print(f"drill node-link-cut: NotReady {detected:.0f} ms after the cut (grace 10 s), its "
          f"pods running elsewhere {replaced:.0f} ms after it; once healed, its stale pods were "
          f"gone and the StatefulSet whole {recovered:.0f} ms later")
    k("delete", "deployment", "cut", "--wait=true")
    k("delete", "statefulset", "st", "--wait=true")
    wait_for(lambda: not json.loads(k("get", "pods", "-o", "json"))["items"], 90,
             "every pod gone")
    for node in cluster.nodes:
        wait_for(lambda: not node.leftovers(), 30, f"nothing of the pods left on {node.name}")


def server_in_use(node, port):
    """The API server address most of a node's connections go to."""
    lines = node.sh("ss", "-tnH", "state", "established").stdout.splitlines()
    # With a state filter ss leaves the state out: Recv-Q, Send-Q, local, peer.
    peers = [line.split()[3].rsplit(":", 1)[0] for line in lines
             if len(line.split()) >= 4 and line.split()[3].endswith(f":{port}")]
    return max(set(peers), key=peers.count) if peers else None


def test_a_server_that_goes_silent_is_left_for_the_other(cluster):
    """The server each node's client is on stops answering without a word (every packet from
    the node to it dropped, as when its machine is gone: no reset ever comes). The nodes' next
    requests find it silent (a dial gives up on a server after 5 s when another is listed) and
    go on through the other server: heartbeats resume, and the nodes are Ready again."""
    k = cluster.kubectl
    port = cluster.servers[0].port
    silenced = {}
    for node in cluster.nodes:
        silenced[node.name] = server_in_use(node, port)
        assert silenced[node.name], f"{node.name} has no connection to a server"
    cut_wall, cut_at = time.time(), time.monotonic()
    for node in cluster.nodes:
        rule = f"ip daddr {silenced[node.name]} tcp dport {port} drop"
        node.sh("nft", "-f", "-", input="table ip kiso-drill {\n chain out {\n"
                                        "  type filter hook output priority 0;\n"
                                        f"  {rule}\n }}\n}}\n")
    try:
        def renewed(node):
            lease = json.loads(k("get", "lease", node.name, "-n", "kube-node-lease", "-o", "json"))
            return micro_time_seconds(lease["spec"]["renewTime"]) > cut_wall + 1
        for node in cluster.nodes:
            wait_for(lambda: renewed(node), 60, f"{node.name}'s heartbeat through the other")
        resumed = (time.monotonic() - cut_at) * 1000
    finally:
        for node in cluster.nodes:
            node.sh("nft", "delete", "table", "ip", "kiso-drill", check=False)
    for node in cluster.nodes:
        wait_for(lambda: " Ready " in k("get", "node", node.name, "--no-headers"), 30,
                 f"{node.name} Ready")
    print(f"drill silent-server: every node heartbeating through the other server "
          f"{resumed:.0f} ms after its server went silent")

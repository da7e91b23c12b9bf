"""Scheduler and workload controllers on hollow nodes (`kiso hollow`), driven
with the real kubectl and the Python client."""
import json
import threading

import pytest
from kubernetes import client, watch

from conftest import Hollow, Kubectl, Server, wait_for

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  strategy:
    rollingUpdate: {{maxSurge: {surge}, maxUnavailable: {unavailable}}}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: web
        image: {image}
        resources: {{requests: {{cpu: {cpu}, memory: 64Mi}}}}
"""


@pytest.fixture(scope="module")
def cluster():
    server = Server()
    hollow = Hollow(server, 10, extra=["--cpu", "4", "--memory", "16Gi", "--pods", "110"])
    yield server
    hollow.stop()
    server.stop()


@pytest.fixture(scope="module")
def kctl(cluster):
    return Kubectl(cluster)


@pytest.fixture(scope="module")
def api(cluster):
    import kubernetes
    return kubernetes.config.new_client_from_config(config_file=cluster.kubeconfig)


def test_300_replicas_on_10_nodes_bound_within_capacity(kctl, api):
    kctl("apply", "-f", "-", input=DEPLOYMENT.format(name="big", replicas=300, surge="25%", unavailable="25%",
                                                     image="app:1", cpu="100m"))
    kctl("rollout", "status", "deployment/big", "--timeout=120s", timeout=150)
    core = client.CoreV1Api(api)
    pods = core.list_namespaced_pod("default", label_selector="app=big").items
    assert len(pods) == 300
    assert all(p.spec.node_name and p.status.phase == "Running" for p in pods)
    per_node = {}
    for p in pods:
        per_node[p.spec.node_name] = per_node.get(p.spec.node_name, 0) + 100
    nodes = {n.metadata.name: n for n in core.list_node().items}
    for name, milli in per_node.items():
        assert milli <= 4000, f"{name} over capacity: {milli}m"
    assert len(per_node) == 10   # Least-allocated scoring spreads the pods.
    kctl("delete", "deployment", "big", "--timeout=120s", timeout=150)
    wait_for(lambda: not core.list_namespaced_pod("default", label_selector="app=big").items,
               what="the pods of a deleted deployment to go")


def test_unschedulable_pod_reports_why_and_waits(kctl, api):
    pod = ("apiVersion: v1\nkind: Pod\nmetadata: {name: huge}\nspec:\n  containers:\n  - name: c\n"
           "    image: x\n    resources: {requests: {cpu: '64'}}\n")
    kctl("apply", "-f", "-", input=pod)
    core = client.CoreV1Api(api)

    def condition():
        p = core.read_namespaced_pod("huge", "default")
        for c in p.status.conditions or []:
            if c.type == "PodScheduled" and c.status == "False":
                return c
    c = wait_for(condition, what="PodScheduled=False")
    assert c.reason == "Unschedulable"
    assert c.message == "0/10 nodes are available: 10 Insufficient cpu."
    # Events are recorded asynchronously (as the scheduler's recorder does upstream): poll for it.
    def event():
        events = core.list_namespaced_event("default", field_selector="involvedObject.name=huge").items
        return any(e.reason == "FailedScheduling" and e.type == "Warning" for e in events)
    wait_for(event, what="a FailedScheduling warning event")
    kctl("delete", "pod", "huge")


def test_rolling_update_keeps_availability_and_undo_restores(kctl, api):
    replicas, unavailable = 10, 2
    kctl("apply", "-f", "-", input=DEPLOYMENT.format(name="roll", replicas=replicas, surge=3, unavailable=unavailable,
                                                     image="app:1", cpu="10m"))
    kctl("rollout", "status", "deployment/roll", "--timeout=60s", timeout=90)
    apps = client.AppsV1Api(api)
    rv = apps.read_namespaced_deployment("roll", "default").metadata.resource_version
    seen = []
    done = threading.Event()

    def observe():
        w = watch.Watch()
        for e in w.stream(apps.list_namespaced_deployment, "default", field_selector="metadata.name=roll",
                          resource_version=rv, timeout_seconds=60):
            d = e["object"]
            seen.append((d.metadata.generation, d.status.observed_generation, d.status.available_replicas or 0,
                         d.status.updated_replicas or 0))
            if done.is_set() and d.status.updated_replicas == replicas and d.status.available_replicas == replicas:
                return

    t = threading.Thread(target=observe)
    t.start()
    kctl("set", "image", "deployment/roll", "web=app:2")
    kctl("rollout", "status", "deployment/roll", "--timeout=60s", timeout=90)
    done.set()
    kctl("annotate", "deployment/roll", "poke=1")  # One more event so the observer sees the end.
    t.join(timeout=70)
    assert len(seen) > 3
    for generation, observed, available, updated in seen:
        assert available >= replicas - unavailable, seen
    history = kctl("rollout", "history", "deployment/roll")
    assert "1 " in history and "2 " in history
    kctl("rollout", "undo", "deployment/roll")
    kctl("rollout", "status", "deployment/roll", "--timeout=60s", timeout=90)
    d = json.loads(kctl("get", "deployment", "roll", "-o", "json"))
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "app:1"
    sets = json.loads(kctl("get", "rs", "-l", "app=roll", "-o", "json"))["items"]
    live = [s for s in sets if s["spec"]["replicas"] > 0]
    assert len(live) == 1 and live[0]["spec"]["template"]["spec"]["containers"][0]["image"] == "app:1"
    assert len(sets) == 2   # The undo reused revision 1's ReplicaSet.
    kctl("delete", "deployment", "roll")


@pytest.mark.parametrize("mode", ["background", "foreground", "orphan"])
def test_garbage_collection_modes(kctl, api, mode):
    name = f"gc-{mode}"
    kctl("apply", "-f", "-", input=DEPLOYMENT.format(name=name, replicas=3, surge=1, unavailable=0,
                                                     image="app:1", cpu="10m"))
    kctl("rollout", "status", f"deployment/{name}", "--timeout=60s", timeout=90)
    kctl("delete", "deployment", name, f"--cascade={mode}", "--timeout=60s", timeout=90)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    if mode == "orphan":
        sets = apps.list_namespaced_replica_set("default", label_selector=f"app={name}").items
        assert len(sets) == 1 and not sets[0].metadata.owner_references
        assert len(core.list_namespaced_pod("default", label_selector=f"app={name}").items) == 3
        kctl("delete", "rs", "-l", f"app={name}", "--timeout=60s", timeout=90)
    wait_for(lambda: not apps.list_namespaced_replica_set("default", label_selector=f"app={name}").items and
               not core.list_namespaced_pod("default", label_selector=f"app={name}").items,
               what=f"{mode} deletion to remove the dependents")


def test_silent_node_is_marked_and_its_pods_recreated_elsewhere():
    server = Server(["--node-monitor-grace-period", "3"])
    hollows = []
    try:
        kctl = Kubectl(server)
        fast = ["--heartbeat", "1"]
        hollows.append(Hollow(server, 1, prefix="stays", extra=fast))
        doomed = Hollow(server, 1, prefix="doomed", extra=fast)
        hollows.append(doomed)
        # Two pods that each need most of a node: one lands on each node.
        manifest = DEPLOYMENT.format(name="survivor", replicas=2, surge=1, unavailable=0, image="app:1", cpu="3")
        manifest = manifest.replace("      containers:", "      tolerations:\n"
                                    "      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute,"
                                    " tolerationSeconds: 1}\n      containers:")
        kctl("apply", "-f", "-", input=manifest)
        kctl("rollout", "status", "deployment/survivor", "--timeout=60s", timeout=90)
        nodes = sorted(kctl("get", "pods", "-l", "app=survivor", "-o",
                            "jsonpath={.items[*].spec.nodeName}").split())
        assert nodes == ["doomed-0", "stays-0"]
        hollows.append(Hollow(server, 1, prefix="spare", extra=fast))
        doomed.kill()

        def moved():
            out = json.loads(kctl("get", "pods", "-l", "app=survivor", "-o", "json"))["items"]
            running = [p["spec"].get("nodeName") for p in out
                       if not p["metadata"].get("deletionTimestamp") and p["status"].get("phase") == "Running"]
            return sorted(running) == ["spare-0", "stays-0"] and running
        wait_for(moved, timeout=60, what="the silent node's pod to be recreated on the spare node")
        node = json.loads(kctl("get", "node", "doomed-0", "-o", "json"))
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"][0]
        assert ready["status"] == "Unknown" and ready["reason"] == "NodeStatusUnknown"
        assert any(t["key"] == "node.kubernetes.io/unreachable" and t["effect"] == "NoExecute"
                   for t in node["spec"]["taints"])
        assert "NotReady" in kctl("get", "node", "doomed-0")
    finally:
        for h in hollows:
            h.stop()
        server.stop()


def test_job_runs_to_completion_and_fails_past_its_backoff_limit(kctl, api):
    job = """
apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
  completions: {completions}
  parallelism: 2
  backoffLimit: 1
  template:
    metadata:
      annotations: {{kiso.dev/hollow-exit-code: "{code}"}}
    spec:
      restartPolicy: Never
      containers:
      - name: task
        image: busybox
"""
    kctl("apply", "-f", "-", input=job.format(name="works", completions=3, code=0))
    kctl("wait", "--for=condition=complete", "job/works", "--timeout=60s", timeout=90)
    j = json.loads(kctl("get", "job", "works", "-o", "json"))
    assert j["status"]["succeeded"] == 3 and j["status"].get("failed", 0) == 0
    assert j["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"] == j["metadata"]["uid"]
    assert "Complete" in kctl("get", "job", "works")
    kctl("apply", "-f", "-", input=job.format(name="breaks", completions=3, code=1))
    kctl("wait", "--for=condition=failed", "job/breaks", "--timeout=60s", timeout=90)
    j = json.loads(kctl("get", "job", "breaks", "-o", "json"))
    failed = [c for c in j["status"]["conditions"] if c["type"] == "Failed"][0]
    assert failed["reason"] == "BackoffLimitExceeded" and j["status"]["failed"] >= 2
    kctl("delete", "job", "works", "breaks", "--timeout=60s", timeout=90)
    # Indexed: one pod per index, each told its index; finished, then gone after its TTL.
    indexed = job.format(name="indexed", completions=3, code=0).replace(
        "  parallelism: 2", "  parallelism: 2\n  completionMode: Indexed\n  ttlSecondsAfterFinished: 8")
    kctl("apply", "-f", "-", input=indexed)
    # The pods are read while they exist: the Job and they go 8 s after it completes.
    pods = wait_for(lambda: len(p := json.loads(kctl("get", "pods", "-l", "batch.kubernetes.io/job-name=indexed",
                                                      "-o", "json"))["items"]) == 3 and
                    all(x["status"].get("phase") == "Succeeded" for x in p) and p, 60, "the indexed pods done")
    kctl("wait", "--for=condition=complete", "job/indexed", "--timeout=60s", timeout=90)
    assert sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods) == ["0", "1", "2"]
    wait_for(lambda: kctl.run("get", "job", "indexed", check=False).returncode != 0, 30, "the Job deleted by its TTL")


def test_endpoints_follow_ready_pods(kctl, api):
    kctl("apply", "-f", "-", input=DEPLOYMENT.format(name="backend", replicas=3, surge=1, unavailable=0,
                                                     image="app:1", cpu="10m"))
    kctl("apply", "-f", "-", input="apiVersion: v1\nkind: Service\nmetadata: {name: backend}\nspec:\n"
                                   "  selector: {app: backend}\n  ports:\n  - {port: 80, targetPort: 8080}\n")
    kctl("rollout", "status", "deployment/backend", "--timeout=60s", timeout=90)
    core = client.CoreV1Api(api)

    def addresses():
        ep = core.read_namespaced_endpoints("backend", "default")
        subsets = ep.subsets or []
        ips = sorted(a.ip for s in subsets for a in (s.addresses or []))
        return len(ips) == 3 and (ips, subsets)
    ips, subsets = wait_for(addresses, what="3 ready endpoints")
    pod_ips = sorted(p.status.pod_ip for p in core.list_namespaced_pod("default", label_selector="app=backend").items)
    assert ips == pod_ips
    assert subsets[0].ports[0].port == 8080
    kctl("scale", "deployment", "backend", "--replicas=1")
    wait_for(lambda: sum(len(s.addresses or []) for s in
                           core.read_namespaced_endpoints("backend", "default").subsets or []) == 1,
               what="endpoints to shrink with the deployment")
    kctl("delete", "service", "backend")
    kctl("delete", "deployment", "backend")


DAEMONSET = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  updateStrategy: {{type: RollingUpdate, rollingUpdate: {{maxUnavailable: 2}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec:
      containers: [{{name: agent, image: "agent:{version}"}}]
"""


def test_daemonset_runs_on_every_node_a_new_one_too_but_not_a_tainted_one(cluster, kctl):
    nodes = sorted(n["metadata"]["name"] for n in json.loads(kctl("get", "nodes", "-o", "json"))["items"])
    tainted = nodes[0]
    kctl("taint", "node", tainted, "dedicated=db:NoSchedule")
    late = None

    def pods():
        return [p for p in json.loads(kctl("get", "pods", "-l", "app=agent", "-o", "json"))["items"]
                if not p["metadata"].get("deletionTimestamp")]

    try:
        kctl("apply", "-f", "-", input=DAEMONSET.format(version=1))
        kctl("rollout", "status", "ds/agent", "--timeout=60s", timeout=90)
        assert sorted(p["spec"].get("nodeName", "") for p in pods()) == nodes[1:]
        # A node that joins gets its pod, bound there by the scheduler.
        late = Hollow(cluster, 1, prefix="late")
        wait_for(lambda: "late-0" in [p["spec"].get("nodeName") for p in pods()], 30, "late-0's pod")
        kctl("rollout", "status", "ds/agent", "--timeout=60s", timeout=90)
        status = json.loads(kctl("get", "ds", "agent", "-o", "json"))["status"]
        assert status["desiredNumberScheduled"] == len(nodes) == status["numberReady"]
        assert status["numberMisscheduled"] == 0
        # A new template rolls out, no more than maxUnavailable nodes at a time without a pod.
        kctl("set", "image", "ds/agent", "agent=agent:2")
        kctl("rollout", "status", "ds/agent", "--timeout=90s", timeout=120)
        now = pods()
        assert {p["spec"]["containers"][0]["image"] for p in now} == {"agent:2"}
        assert sorted(p["spec"]["nodeName"] for p in now) == sorted(nodes[1:] + ["late-0"])
        # Each template is a ControllerRevision: history lists both, undo goes back to the first.
        history = kctl("rollout", "history", "ds/agent")
        assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
        kctl("rollout", "undo", "ds/agent")
        kctl("rollout", "status", "ds/agent", "--timeout=90s", timeout=120)
        wait_for(lambda: {p["spec"]["containers"][0]["image"] for p in pods()} == {"agent:1"}, 60,
                 "the first template back")
    finally:
        kctl("delete", "ds", "agent", "--ignore-not-found")
        kctl("taint", "node", tainted, "dedicated=db:NoSchedule-")
        if late:
            late.stop()
            kctl("delete", "node", "late-0", "--ignore-not-found")


STATEFULSET = """
apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{port: 5432}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 3
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      containers:
      - name: db
        image: db:1
"""


def test_statefulset_names_order_rollout_history_undo_and_scale(kctl, api):
    def pods():
        items = json.loads(kctl("get", "pods", "-l", "app=db", "-o", "json"))["items"]
        return {p["metadata"]["name"]: p for p in items if not p["metadata"].get("deletionTimestamp")}

    try:
        kctl("apply", "-f", "-", input=STATEFULSET)
        kctl("rollout", "status", "sts/db", "--timeout=90s", timeout=120)
        now = pods()
        assert sorted(now) == ["db-0", "db-1", "db-2"]
        assert all(p["spec"]["hostname"] == name and p["spec"]["subdomain"] == "db" for name, p in now.items())
        # Made in order: each pod created after the one before it was ready.
        created = [now[f"db-{i}"]["metadata"]["creationTimestamp"] for i in range(3)]
        assert created == sorted(created)
        # The headless Service's endpoints carry each pod's hostname (its DNS name db-N.db).
        def hostnames():
            slices = json.loads(kctl("get", "endpointslices", "-l", "kubernetes.io/service-name=db",
                                     "-o", "json"))["items"]
            return sorted(e.get("hostname", "") for s in slices for e in s.get("endpoints") or [])
        wait_for(lambda: hostnames() == ["db-0", "db-1", "db-2"], 30, "the pods' hostnames in the slice")

        kctl("set", "image", "sts/db", "db=db:2")
        kctl("rollout", "status", "sts/db", "--timeout=90s", timeout=120)
        assert {p["spec"]["containers"][0]["image"] for p in pods().values()} == {"db:2"}
        history = kctl("rollout", "history", "sts/db")
        assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
        kctl("rollout", "undo", "sts/db")
        kctl("rollout", "status", "sts/db", "--timeout=90s", timeout=120)
        assert {p["spec"]["containers"][0]["image"] for p in pods().values()} == {"db:1"}
        status = json.loads(kctl("get", "sts", "db", "-o", "json"))["status"]
        assert status["currentRevision"] == status["updateRevision"] and status["readyReplicas"] == 3

        kctl("scale", "sts/db", "--replicas=1")
        wait_for(lambda: sorted(pods()) == ["db-0"], 60, "db scaled down to db-0")
    finally:
        kctl("delete", "sts", "db", "--ignore-not-found")
        kctl("delete", "service", "db", "--ignore-not-found")


GUARDED = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: guarded
spec:
  replicas: 2
  selector:
    matchLabels: {app: guarded}
  template:
    metadata:
      labels: {app: guarded}
    spec:
      nodeSelector: {kubernetes.io/hostname: NODE}
      containers:
      - name: app
        image: app:1
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: guarded
spec:
  minAvailable: 2
  selector:
    matchLabels: {app: guarded}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: everywhere
spec:
  selector:
    matchLabels: {app: everywhere}
  template:
    metadata:
      labels: {app: everywhere}
    spec:
      containers:
      - name: agent
        image: agent:1
"""


def test_drain_waits_for_the_disruption_budget_and_leaves_daemon_pods(kctl):
    nodes = sorted(n["metadata"]["name"] for n in json.loads(kctl("get", "nodes", "-o", "json"))["items"])
    node = nodes[-1]

    def pods(app):
        items = json.loads(kctl("get", "pods", "-l", f"app={app}", "-o", "json"))["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    try:
        kctl("apply", "-f", "-", input=GUARDED.replace("NODE", node))
        kctl("rollout", "status", "deployment/guarded", "--timeout=60s", timeout=90)
        kctl("rollout", "status", "ds/everywhere", "--timeout=60s", timeout=90)
        first = sorted(p["metadata"]["name"] for p in pods("guarded"))
        wait_for(lambda: json.loads(kctl("get", "pdb", "guarded", "-o", "json"))["status"].get("currentHealthy") == 2,
                 30, "the budget's status")
        pdb = json.loads(kctl("get", "pdb", "guarded", "-o", "json"))["status"]
        assert pdb["disruptionsAllowed"] == 0 and pdb["expectedPods"] == 2 and pdb["desiredHealthy"] == 2
        # The budget allows no disruption: drain cordons the node, then gives up evicting.
        blocked = kctl.run("drain", node, "--ignore-daemonsets", "--timeout=8s", check=False, timeout=60)
        assert blocked.returncode != 0
        assert "disruption budget" in blocked.stdout + blocked.stderr
        assert json.loads(kctl("get", "node", node, "-o", "json"))["spec"].get("unschedulable") is True
        assert sorted(p["metadata"]["name"] for p in pods("guarded")) == first
        # With room in the budget, the drain evicts them; the daemon pod stays.
        kctl("patch", "pdb", "guarded", "--type=merge", "-p", '{"spec":{"minAvailable":0}}')
        kctl("drain", node, "--ignore-daemonsets", "--timeout=60s", timeout=90)
        wait_for(lambda: not set(first) & {p["metadata"]["name"] for p in pods("guarded")}, 30,
                 "the guarded pods evicted")
        # Their replacements cannot go anywhere but the cordoned node: they wait.
        assert all(not p["spec"].get("nodeName") for p in pods("guarded"))
        assert node in [p["spec"].get("nodeName") for p in pods("everywhere")]
    finally:
        kctl("uncordon", node)
        kctl("delete", "deployment", "guarded", "--ignore-not-found")
        kctl("delete", "pdb", "guarded", "--ignore-not-found")
        kctl("delete", "ds", "everywhere", "--ignore-not-found")


def test_pod_anti_affinity_and_topology_spread_place_replicas(kctl, api):
    """Required anti-affinity on the hostname puts one replica per node (an eleventh stays
    Pending and says why); a topology spread constraint keeps nodes within maxSkew."""
    core = client.CoreV1Api(api)
    kctl("apply", "-f", "-", input="""
apiVersion: apps/v1
kind: Deployment
metadata: {name: apart}
spec:
  replicas: 10
  selector: {matchLabels: {app: apart}}
  template:
    metadata: {labels: {app: apart}}
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: apart}}
            topologyKey: kubernetes.io/hostname
      containers: [{name: c, image: x}]
""")
    kctl("rollout", "status", "deployment/apart", "--timeout=120s", timeout=150)
    pods = core.list_namespaced_pod("default", label_selector="app=apart").items
    assert len({p.spec.node_name for p in pods}) == 10
    kctl("scale", "deployment/apart", "--replicas=11")

    def pending_reason():
        for p in core.list_namespaced_pod("default", label_selector="app=apart").items:
            for c in p.status.conditions or []:
                if c.type == "PodScheduled" and c.status == "False":
                    return c.message
    message = wait_for(pending_reason, what="the eleventh replica's reason")
    assert message == "0/10 nodes are available: 10 node(s) didn't match pod anti-affinity rules."
    kctl("delete", "deployment", "apart", "--timeout=120s", timeout=150)
    kctl("apply", "-f", "-", input="""
apiVersion: apps/v1
kind: Deployment
metadata: {name: spread}
spec:
  replicas: 25
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: DoNotSchedule
        labelSelector: {matchLabels: {app: spread}}
      containers: [{name: c, image: x, resources: {requests: {cpu: 10m}}}]
""")
    kctl("rollout", "status", "deployment/spread", "--timeout=120s", timeout=150)
    per_node = {}
    for p in core.list_namespaced_pod("default", label_selector="app=spread").items:
        per_node[p.spec.node_name] = per_node.get(p.spec.node_name, 0) + 1
    assert len(per_node) == 10 and max(per_node.values()) - min(per_node.values()) <= 1, per_node
    kctl("delete", "deployment", "spread", "--timeout=120s", timeout=150)
    wait_for(lambda: not core.list_namespaced_pod("default", label_selector="app in (apart,spread)").items,
             what="the pods gone")


def test_preemption_makes_room_for_a_high_priority_pod(kctl, api):
    """Every node full of low-priority pods: a high-priority pod preempts one (DisruptionTarget,
    a Preempted event), is nominated to its node and bound there; the evicted pod's replacement
    waits. A pod whose preemptionPolicy is Never only waits."""
    core = client.CoreV1Api(api)
    kctl("apply", "-f", "-", input="""
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: low}
value: 10
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
value: 1000
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high-polite}
value: 1000
preemptionPolicy: Never
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: filler}
spec:
  replicas: 10
  selector: {matchLabels: {app: filler}}
  template:
    metadata: {labels: {app: filler}}
    spec:
      priorityClassName: low
      containers: [{name: c, image: x, resources: {requests: {cpu: "3"}}}]
""")
    kctl("rollout", "status", "deployment/filler", "--timeout=120s", timeout=150)
    vip = ("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  priorityClassName: {cls}\n"
           "  containers:\n  - name: c\n    image: x\n    resources: {{requests: {{cpu: '3'}}}}\n")
    kctl("apply", "-f", "-", input=vip.format(name="polite", cls="high-polite"))
    kctl("apply", "-f", "-", input=vip.format(name="vip", cls="high"))
    bound = wait_for(lambda: core.read_namespaced_pod("vip", "default").spec.node_name,
                     what="the high-priority pod bound")
    fillers = core.list_namespaced_pod("default", label_selector="app=filler").items
    assert sum(1 for p in fillers if not p.spec.node_name) == 1  # The replacement waits.
    assert all(p.spec.node_name != bound for p in fillers), "a filler still shares the vip's node"

    def preempted_event():
        events = core.list_namespaced_event("default").items
        return [e for e in events if e.reason == "Preempted" and "on node " + bound in e.message]
    wait_for(preempted_event, what="the Preempted event")
    polite = core.read_namespaced_pod("polite", "default")
    assert not polite.spec.node_name and not polite.status.nominated_node_name
    kctl("delete", "pod", "vip", "polite")
    kctl("delete", "deployment", "filler", "--timeout=120s", timeout=150)
    kctl("delete", "priorityclass", "low", "high", "high-polite")
    wait_for(lambda: not core.list_namespaced_pod("default", label_selector="app=filler").items,
             what="the fillers gone")

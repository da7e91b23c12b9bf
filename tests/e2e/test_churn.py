"""Churn: for 60 s, pods and nodes are created and deleted at random and nodes
are resized. From the watch streams, at every observed binding no node is over
its allocatable and no pod is ever bound twice; at the end every pod that fits
somewhere is bound.

Resizes only grow a node: shrinking one below what is already bound to it
over-commits it whatever the scheduler does (and a scheduler deciding on a
cache can always be one resize behind, upstream's included)."""
import os
import random
import threading
import time

from kubernetes import client, watch

from conftest import Server

DURATION = float(os.environ.get("KISO_CHURN_SECONDS", "60"))


def node_body(name, cpu):
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"churn": "true"}},
            "status": {"allocatable": {"cpu": f"{cpu}m", "memory": "64Gi", "pods": "110"},
                       "capacity": {"cpu": f"{cpu}m", "memory": "64Gi", "pods": "110"}}}


def set_allocatable(core, name, cpu):
    body = {"status": {"allocatable": {"cpu": f"{cpu}m"}, "capacity": {"cpu": f"{cpu}m"}}}
    core.patch_node_status(name, body)


def test_churn_keeps_capacity_and_binds_each_pod_once():
    server = Server()
    violations = []
    try:
        import kubernetes
        api = kubernetes.config.new_client_from_config(config_file=server.kubeconfig)
        core = client.CoreV1Api(api)
        rng = random.Random(7)
        # Observed state, from the watches only.
        lock = threading.Lock()
        allocatable = {}   # node → milli cpu
        bound = {}         # pod uid → node
        requests = {}      # pod uid → milli cpu
        stop = threading.Event()

        def watch_nodes():
            for e in watch.Watch().stream(core.list_node, timeout_seconds=int(DURATION) + 60):
                n = e["object"]
                with lock:
                    if e["type"] == "DELETED":
                        allocatable.pop(n.metadata.name, None)
                    else:
                        cpu = (n.status.allocatable or {}).get("cpu", "0m")
                        allocatable[n.metadata.name] = int(cpu[:-1]) if cpu.endswith("m") else int(cpu) * 1000
                if stop.is_set():
                    return

        def watch_pods():
            for e in watch.Watch().stream(core.list_namespaced_pod, "default", timeout_seconds=int(DURATION) + 60):
                p = e["object"]
                uid, node = p.metadata.uid, p.spec.node_name
                with lock:
                    if e["type"] == "DELETED":
                        bound.pop(uid, None)
                        continue
                    if not node:
                        continue
                    if uid in bound and bound[uid] != node:
                        violations.append(f"pod {p.metadata.name} bound to {bound[uid]} then {node}")
                    if uid not in bound:
                        bound[uid] = node
                        requests[uid] = 100
                        used = sum(requests[u] for u, n in bound.items() if n == node)
                        if node in allocatable and used > allocatable[node]:
                            violations.append(f"{node}: {used}m bound > {allocatable[node]}m allocatable")
                if stop.is_set():
                    return

        threads = [threading.Thread(target=watch_nodes, daemon=True), threading.Thread(target=watch_pods, daemon=True)]
        for t in threads:
            t.start()
        nodes, pods, size = [], [], {}
        for i in range(5):
            core.create_node(node_body(f"churn-{i}", 1000))
            nodes.append(f"churn-{i}")
            size[f"churn-{i}"] = 1000
        next_node, next_pod = 5, 0
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": ""},
               "spec": {"containers": [{"name": "c", "image": "x",
                                        "resources": {"requests": {"cpu": "100m", "memory": "1Mi"}}}]}}
        end = time.monotonic() + DURATION
        while time.monotonic() < end:
            r = rng.random()
            try:
                if r < 0.55:
                    pod["metadata"]["name"] = f"p-{next_pod}"
                    core.create_namespaced_pod("default", pod)
                    pods.append(f"p-{next_pod}")
                    next_pod += 1
                elif r < 0.80 and pods:
                    name = pods.pop(rng.randrange(len(pods)))
                    core.delete_namespaced_pod(name, "default", grace_period_seconds=0)
                elif r < 0.88:
                    size[f"churn-{next_node}"] = rng.choice([500, 1000, 2000])
                    core.create_node(node_body(f"churn-{next_node}", size[f"churn-{next_node}"]))
                    nodes.append(f"churn-{next_node}")
                    next_node += 1
                elif r < 0.93 and len(nodes) > 2:
                    core.delete_node(nodes.pop(rng.randrange(len(nodes))))
                elif nodes:
                    grown = rng.choice(nodes)
                    size[grown] += rng.choice([100, 500, 1000])
                    set_allocatable(core, grown, size[grown])
            except client.rest.ApiException as e:
                assert e.status in (404, 409), e.body
        # Enough room for everything still pending, then every pod must be bound.
        for i in range(3):
            core.create_node(node_body(f"churn-final-{i}", 20000))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pending = [p.metadata.name for p in core.list_namespaced_pod("default").items if not p.spec.node_name]
            if not pending:
                break
            time.sleep(0.2)  # Polling with a deadline.
        assert not pending, f"still pending: {pending[:10]}"
        stop.set()
        with lock:
            assert not violations, violations[:10]
            assert len(bound) > 100
    finally:
        server.stop()

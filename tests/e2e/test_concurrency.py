"""Optimistic concurrency through the real API: N clients increment one counter
with resourceVersion preconditions. Exactly one update wins per revision, and no
acknowledged increment is lost."""
import threading

from kubernetes import client
from kubernetes.client.rest import ApiException

CLIENTS = 8
INCREMENTS = 15


def test_one_winner_per_revision_and_no_lost_update(k8s):
    api = client.CoreV1Api(k8s)
    api.create_namespaced_config_map("default", {"metadata": {"name": "counter"}, "data": {"n": "0"}})
    wins = []      # (base resourceVersion, new resourceVersion, value written)
    conflicts = [0]
    lock = threading.Lock()

    def worker():
        done = 0
        while done < INCREMENTS:
            cm = api.read_namespaced_config_map("counter", "default")
            base = cm.metadata.resource_version
            value = int(cm.data["n"]) + 1
            try:
                out = api.replace_namespaced_config_map(
                    "counter", "default",
                    {"metadata": {"name": "counter", "resourceVersion": base}, "data": {"n": str(value)}})
            except ApiException as e:
                assert e.status == 409 and e.reason == "Conflict", e.body
                with lock:
                    conflicts[0] += 1
                continue
            with lock:
                wins.append((base, out.metadata.resource_version, value))
            done += 1

    threads = [threading.Thread(target=worker) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = api.read_namespaced_config_map("counter", "default")
    assert int(final.data["n"]) == CLIENTS * INCREMENTS            # No lost update.
    bases = [b for b, _, _ in wins]
    assert len(bases) == len(set(bases))                            # One winner per revision.
    assert sorted(v for _, _, v in wins) == list(range(1, CLIENTS * INCREMENTS + 1))
    assert len({r for _, r, _ in wins}) == len(wins)
    assert conflicts[0] > 0                                         # Contention really happened.
    api.delete_namespaced_config_map("counter", "default")

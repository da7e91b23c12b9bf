"""The official Python client (Debian python3-kubernetes 22) against kiso server,
following the scenarios of the client's own e2e suite (kubernetes/e2e_test, v22.6.0)."""
import os
import threading
import time
import uuid

import pytest
from kubernetes import client, utils, watch
from kubernetes.client.rest import ApiException

HERE = os.path.dirname(os.path.abspath(__file__))


def short_uuid():
    return str(uuid.uuid4())[-12:]


def test_configmap_crud_and_selector(k8s):
    api = client.CoreV1Api(k8s)
    name = "cm-" + short_uuid()
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"e2e-tests": "true"}},
            "data": {"config.json": '{"command":"/usr/bin/mysqld_safe"}', "frontend.cnf": "[mysqld]\n"}}
    created = api.create_namespaced_config_map(namespace="default", body=body)
    assert created.metadata.name == name
    got = api.read_namespaced_config_map(name=name, namespace="default")
    assert got.data["frontend.cnf"] == "[mysqld]\n"
    got.data["config.json"] = "{}"
    patched = api.patch_namespaced_config_map(name=name, namespace="default", body=got)
    assert patched.data["config.json"] == "{}"
    api.delete_namespaced_config_map(name=name, namespace="default", body={})
    resp = api.list_namespaced_config_map("default", pretty=True, label_selector="e2e-tests=true")
    assert resp.items == []


def test_service_strategic_merge_of_ports(k8s):
    api = client.CoreV1Api(k8s)
    name = "frontend-" + short_uuid()
    service = {"kind": "Service", "apiVersion": "v1",
               "metadata": {"labels": {"name": name}, "name": name, "resourceversion": "v1"},
               "spec": {"ports": [{"name": "port", "port": 80, "protocol": "TCP", "targetPort": 80}],
                        "selector": {"name": name}}}
    resp = api.create_namespaced_service(body=service, namespace="default")
    assert resp.metadata.name == name and resp.status
    resp = api.read_namespaced_service(name=name, namespace="default")
    assert resp.spec.ports[0].port == 80
    service["spec"]["ports"] = [{"name": "new", "port": 8080, "protocol": "TCP", "targetPort": 8080}]
    resp = api.patch_namespaced_service(body=service, name=name, namespace="default")
    assert sorted(p.port for p in resp.spec.ports) == [80, 8080]   # Merged by key `port`.
    assert resp.status
    api.delete_namespaced_service(name=name, body={}, namespace="default")


def test_watch_configmaps_with_timeout(k8s):
    api = client.CoreV1Api(k8s)
    suffix = short_uuid()
    api.create_namespaced_config_map("default", {"metadata": {"name": "a-" + suffix, "labels": {"w": suffix}}})
    rv = api.list_namespaced_config_map("default", label_selector="w=" + suffix).metadata.resource_version
    api.create_namespaced_config_map("default", {"metadata": {"name": "b-" + suffix, "labels": {"w": suffix}}})
    api.patch_namespaced_config_map("b-" + suffix, "default", {"data": {"k": "v"}})
    api.delete_collection_namespaced_config_map("default", label_selector="w=" + suffix)
    w = watch.Watch()
    started = time.monotonic()
    events = [(e["type"], e["object"].metadata.name, e["object"].data)
              for e in w.stream(api.list_namespaced_config_map, namespace="default",
                                label_selector="w=" + suffix, resource_version=rv, timeout_seconds=2)]
    elapsed = time.monotonic() - started
    # Each version as it was written: b's first, replaced since (the server
    # reads it back from the store), then b's patched one.
    assert events[:2] == [("ADDED", "b-" + suffix, None), ("MODIFIED", "b-" + suffix, {"k": "v"})]
    assert sorted(e[:2] for e in events[2:]) == [("DELETED", "a-" + suffix), ("DELETED", "b-" + suffix)]
    assert 1.5 < elapsed < 10   # The server ends the stream after timeoutSeconds.


def test_watch_live_events(k8s):
    api = client.CoreV1Api(k8s)
    name = "live-" + short_uuid()
    seen = []
    # From a list's resourceVersion: the create and delete below are the
    # watch's whatever moment its request reaches the server (a watch from
    # "now" that started after them would rightly see neither).
    rv = api.list_namespaced_config_map("default").metadata.resource_version

    def watcher():
        for e in watch.Watch().stream(api.list_namespaced_config_map, namespace="default",
                                      field_selector="metadata.name=" + name,
                                      resource_version=rv, timeout_seconds=5):
            seen.append(e["type"])
            if e["type"] == "DELETED":
                return

    t = threading.Thread(target=watcher)
    t.start()
    deadline = time.monotonic() + 5
    api.create_namespaced_config_map("default", {"metadata": {"name": name}})
    api.delete_namespaced_config_map(name, "default")
    t.join(timeout=max(0, deadline - time.monotonic()) + 5)
    assert seen == ["ADDED", "DELETED"]


def test_apps_and_batch(k8s):
    apps = client.AppsV1Api(k8s)
    name = "deploy-" + short_uuid()
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25",
                                                          "ports": [{"containerPort": 80}]}]}}}}
    resp = apps.create_namespaced_deployment(body=dep, namespace="default")
    assert resp.metadata.generation == 1 and resp.spec.strategy.type == "RollingUpdate"
    assert apps.read_namespaced_deployment(name, "default").spec.replicas == 3
    scale = apps.patch_namespaced_deployment_scale(name, "default", {"spec": {"replicas": 5}})
    assert scale.spec.replicas == 5
    apps.delete_namespaced_deployment(name, "default", body=client.V1DeleteOptions())
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "ds-" + name},
          "spec": {"selector": {"matchLabels": {"app": "ds"}},
                   "template": {"metadata": {"labels": {"app": "ds"}},
                                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    apps.create_namespaced_daemon_set(body=ds, namespace="default")
    apps.delete_namespaced_daemon_set("ds-" + name, "default", body=client.V1DeleteOptions())
    batch = client.BatchV1Api(k8s)
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "job-" + name},
           "spec": {"template": {"spec": {"restartPolicy": "Never",
                                          "containers": [{"name": "pi", "image": "perl"}]}}}}
    resp = batch.create_namespaced_job(body=job, namespace="default")
    assert resp.spec.backoff_limit == 6 and resp.spec.completions == 1
    batch.delete_namespaced_job("job-" + name, "default", propagation_policy="Background")


def test_replication_controller(k8s):
    api = client.CoreV1Api(k8s)
    name = "rc-" + short_uuid()
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name, "labels": {"name": name}},
          "spec": {"replicas": 2, "selector": {"name": name},
                   "template": {"metadata": {"labels": {"name": name}},
                                "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}}
    assert api.create_namespaced_replication_controller(body=rc, namespace="default").metadata.name == name
    assert api.read_namespaced_replication_controller(name, "default").spec.replicas == 2
    api.delete_namespaced_replication_controller(name, "default", propagation_policy="Background")


def test_multi_document_yaml_and_exact_conflict_bodies(k8s):
    objs = utils.create_from_yaml(k8s, os.path.join(HERE, "yaml", "multi.yaml"))
    assert len(objs) == 4
    with pytest.raises(utils.FailToCreateError) as e:
        utils.create_from_yaml(k8s, os.path.join(HERE, "yaml", "multi.yaml"))
    messages = [str(x) for x in e.value.api_exceptions]
    text = str(e.value)
    assert ('Error from server (Conflict): {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
            '"message":"services \\"mock-2\\" already exists","reason":"AlreadyExists",'
            '"details":{"name":"mock-2","kind":"services"},"code":409}\n') in text
    assert ('Error from server (Conflict): {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
            '"message":"deployments.apps \\"triple-nginx\\" already exists","reason":"AlreadyExists",'
            '"details":{"name":"triple-nginx","group":"apps","kind":"deployments"},"code":409}\n') in text
    assert ('Error from server (Conflict): {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
            '"message":"apiservices.apiregistration.k8s.io \\"v1alpha1.wardle.k8s.io\\" already exists",'
            '"reason":"AlreadyExists","details":{"name":"v1alpha1.wardle.k8s.io",'
            '"group":"apiregistration.k8s.io","kind":"apiservices"},"code":409}\n') in text
    assert len(messages) == 4
    client.ApiregistrationV1Api(k8s).delete_api_service("v1alpha1.wardle.k8s.io")
    client.CoreV1Api(k8s).delete_namespace("mock-ns")


def test_lists_and_pagination(k8s):
    api = client.CoreV1Api(k8s)
    tag = short_uuid()
    for i in range(5):
        api.create_namespaced_config_map("default", {"metadata": {"name": f"page-{i}-{tag}", "labels": {"p": tag}}})
    first = api.list_namespaced_config_map("default", label_selector="p=" + tag, limit=2)
    assert len(first.items) == 2 and first.metadata._continue
    names = [i.metadata.name for i in first.items]
    token = first.metadata._continue
    while token:
        page = api.list_namespaced_config_map("default", label_selector="p=" + tag, limit=2, _continue=token)
        names += [i.metadata.name for i in page.items]
        token = page.metadata._continue
    assert names == [f"page-{i}-{tag}" for i in range(5)]
    all_ns = api.list_config_map_for_all_namespaces(label_selector="p=" + tag)
    assert len(all_ns.items) == 5
    api.delete_collection_namespaced_config_map("default", label_selector="p=" + tag)


def test_update_conflict_is_exact(k8s):
    api = client.CoreV1Api(k8s)
    name = "cas-" + short_uuid()
    cm = api.create_namespaced_config_map("default", {"metadata": {"name": name}, "data": {"n": "0"}})
    stale = cm.metadata.resource_version
    api.replace_namespaced_config_map(name, "default", {"metadata": {"name": name, "resourceVersion": stale},
                                                        "data": {"n": "1"}})
    with pytest.raises(ApiException) as e:
        api.replace_namespaced_config_map(name, "default", {"metadata": {"name": name, "resourceVersion": stale},
                                                            "data": {"n": "2"}})
    assert e.value.status == 409 and e.value.reason == "Conflict"
    assert e.value.body == ('{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
                            '"Operation cannot be fulfilled on configmaps \\"%s\\": the object has been modified; '
                            'please apply your changes to the latest version and try again","reason":"Conflict",'
                            '"details":{"name":"%s","kind":"configmaps"},"code":409}\n' % (name, name))
    api.delete_namespaced_config_map(name, "default")


def test_dry_run_persists_nothing(k8s):
    api = client.CoreV1Api(k8s)
    name = "dry-" + short_uuid()
    out = api.create_namespaced_config_map("default", {"metadata": {"name": name}}, dry_run="All")
    assert out.metadata.name == name
    with pytest.raises(ApiException) as e:
        api.read_namespaced_config_map(name, "default")
    assert e.value.status == 404


def test_nodes_list(k8s):
    api = client.CoreV1Api(k8s)
    name = "node-" + short_uuid()
    api.create_node({"apiVersion": "v1", "kind": "Node",
                     "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                     "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"}}})
    nodes = {n.metadata.name: n for n in api.list_node().items}
    assert name in nodes and nodes[name].metadata.labels["kubernetes.io/hostname"] == name
    assert nodes[name].status.allocatable["cpu"] == "2"   # A node registers with its status.
    for n in nodes.values():
        assert n.metadata.labels
    api.delete_node(name)

"""Admission as kube-apiserver does it (issue 12): ResourceQuota (usage counted by its controller,
charged atomically with each create, upstream's 403 texts), LimitRange defaults and bounds, and
fieldValidation's Warning headers. The real kubectl and plain HTTPS against the real kiso server
(no node agent: pods stay Pending, which is all quota needs)."""
import concurrent.futures
import json
import os
import ssl
import urllib.error
import urllib.request

import pytest

from conftest import wait_for


@pytest.fixture
def ns(kubectl, request):
    name = "a-" + request.node.name.replace("_", "-")[5:40].strip("-").lower()
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


def get(kubectl, *args):
    return json.loads(kubectl("get", *args, "-o", "json"))


def request(server, method, path, body=None, content_type="application/json"):
    """One HTTPS request as the admin; (status, headers, parsed body)."""
    ctx = ssl.create_default_context(cafile=os.path.join(server.dir, "tls", "ca.crt"))
    ctx.check_hostname = False
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(f"https://127.0.0.1:{server.port}{path}", method=method, data=data,
                                 headers={"Authorization": f"Bearer {server.token}",
                                          "Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            return r.status, r.headers, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read() or b"{}")


def used(kubectl, ns, quota):
    return get(kubectl, "resourcequota", quota, "-n", ns).get("status", {}).get("used", {})


def pod(name, resources=None):
    container = {"name": "c", "image": "busybox"}
    if resources:
        container["resources"] = resources
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [container]}}


def test_quota_counts_objects_and_refuses_past_hard(kubectl, ns):
    kubectl("create", "quota", "objects", "-n", ns, "--hard=pods=2,configmaps=2")
    # The controller counts what is there: the namespace's kube-root-ca.crt ConfigMap.
    wait_for(lambda: used(kubectl, ns, "objects") == {"configmaps": "1", "pods": "0"} or None, 20,
             "the quota's usage")
    kubectl("create", "configmap", "a", "-n", ns)
    refused = kubectl.run("create", "configmap", "b", "-n", ns, check=False)
    assert refused.returncode != 0
    assert ('configmaps "b" is forbidden: exceeded quota: objects, requested: configmaps=1, '
            'used: configmaps=2, limited: configmaps=2') in refused.stderr
    for name in ("p1", "p2"):
        kubectl("run", name, "-n", ns, "--image=busybox")
    refused = kubectl.run("run", "p3", "-n", ns, "--image=busybox", check=False)
    assert ('pods "p3" is forbidden: exceeded quota: objects, requested: pods=1, used: pods=2, '
            'limited: pods=2') in refused.stderr
    assert "pods: 2/2" in kubectl("get", "quota", "objects", "-n", ns)
    # What a deleted object used is given back by the controller.
    kubectl("delete", "pod", "p1", "-n", ns, "--wait=false")
    wait_for(lambda: used(kubectl, ns, "objects").get("pods") == "1" or None, 20, "pods given back")
    kubectl("run", "p3", "-n", ns, "--image=busybox")
    # A dry run checks but does not charge.
    refused = kubectl.run("run", "p4", "-n", ns, "--image=busybox", "--dry-run=server",
                          check=False)
    assert "exceeded quota: objects" in refused.stderr
    assert used(kubectl, ns, "objects")["pods"] == "2"


def test_quota_on_compute_resources(kubectl, server, ns):
    kubectl("create", "quota", "compute", "-n", ns, "--hard=requests.cpu=1,limits.memory=1Gi")
    wait_for(lambda: used(kubectl, ns, "compute") or None, 20, "the quota's usage")
    status, _, body = request(server, "POST", f"/api/v1/namespaces/{ns}/pods", pod("bare"))
    assert status == 403
    assert body["message"] == ('pods "bare" is forbidden: failed quota: compute: must specify '
                               'limits.memory for: c; requests.cpu for: c')
    sized = {"requests": {"cpu": "600m"}, "limits": {"memory": "512Mi"}}
    status, _, _ = request(server, "POST", f"/api/v1/namespaces/{ns}/pods", pod("one", sized))
    assert status == 201
    assert used(kubectl, ns, "compute") == {"limits.memory": "512Mi", "requests.cpu": "600m"}
    status, _, body = request(server, "POST", f"/api/v1/namespaces/{ns}/pods", pod("two", sized))
    assert status == 403
    assert body["message"] == ('pods "two" is forbidden: exceeded quota: compute, requested: '
                               'requests.cpu=600m, used: requests.cpu=600m, limited: requests.cpu=1')


def test_concurrent_creates_never_pass_a_quota(kubectl, server, ns):
    """Twenty creates at once against pods=5: exactly five are stored, and the usage says five."""
    kubectl("create", "quota", "five", "-n", ns, "--hard=pods=5")
    wait_for(lambda: used(kubectl, ns, "five").get("pods") == "0" or None, 20, "the quota's usage")
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(
            lambda i: request(server, "POST", f"/api/v1/namespaces/{ns}/pods", pod(f"p{i}"))[0],
            range(20)))
    assert sorted(codes) == [201] * 5 + [403] * 15
    assert len(get(kubectl, "pods", "-n", ns)["items"]) == 5
    assert used(kubectl, ns, "five")["pods"] == "5"


def test_limit_range_defaults_and_bounds(kubectl, server, ns):
    limits = {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr"},
              "spec": {"limits": [{"type": "Container",
                                   "default": {"cpu": "500m", "memory": "256Mi"},
                                   "defaultRequest": {"cpu": "100m"},
                                   "max": {"cpu": "1"}, "min": {"memory": "64Mi"}}]}}
    kubectl("create", "-n", ns, "-f", "-", input=json.dumps(limits))
    stored = get(kubectl, "limitrange", "lr", "-n", ns)["spec"]["limits"][0]
    # The item's own defaults: a default request for memory from its default limit.
    assert stored["defaultRequest"] == {"cpu": "100m", "memory": "256Mi"}
    status, _, body = request(server, "POST", f"/api/v1/namespaces/{ns}/pods", pod("plain"))
    assert status == 201, body
    assert body["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "500m", "memory": "256Mi"},
        "requests": {"cpu": "100m", "memory": "256Mi"}}
    # A limit given without a request is also the request (before the defaults).
    status, _, body = request(server, "POST", f"/api/v1/namespaces/{ns}/pods",
                              pod("limited", {"limits": {"cpu": "800m"}}))
    assert status == 201, body
    assert body["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "800m"
    status, _, body = request(server, "POST", f"/api/v1/namespaces/{ns}/pods",
                              pod("big", {"limits": {"cpu": "2", "memory": "32Mi"}}))
    assert status == 403
    assert body["message"] == (
        'pods "big" is forbidden: [minimum memory usage per Container is 64Mi, but request is '
        '32Mi, maximum cpu usage per Container is 1, but limit is 2]')
    assert request(server, "GET", f"/api/v1/namespaces/{ns}/pods/big")[0] == 404
    # With a LimitRange's defaults, a pod passes a compute quota's "must specify".
    kubectl("create", "quota", "compute", "-n", ns, "--hard=requests.cpu=2,limits.cpu=4")
    wait_for(lambda: used(kubectl, ns, "compute").get("requests.cpu") == "900m" or None, 20,
             "the quota's usage")
    kubectl("run", "web", "-n", ns, "--image=busybox")
    assert used(kubectl, ns, "compute")["requests.cpu"] == "1"


def test_field_validation_warns_drops_or_refuses(kubectl, server, ns):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w", "bogus": 1},
          "data": {"a": "1"}, "extra": True}
    path = f"/api/v1/namespaces/{ns}/configmaps"
    # No fieldValidation: Warn, upstream's default. Each unknown field is a Warning, and dropped.
    status, headers, body = request(server, "POST", path, cm)
    assert status == 201
    assert sorted(headers.get_all("Warning")) == ['299 - "unknown field \\"extra\\""',
                                                   '299 - "unknown field \\"metadata.bogus\\""']
    assert "extra" not in body and "bogus" not in body["metadata"]
    assert "extra" not in get(kubectl, "configmap", "w", "-n", ns)
    # A repeated key is a warning too; the last one wins.
    status, headers, body = request(
        server, "PUT", f"{path}/w",
        b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"w"},'
        b'"data":{"a":"1"},"data":{"a":"2"}}')
    assert status == 200 and body["data"] == {"a": "2"}
    assert headers.get_all("Warning") == ['299 - "duplicate field \\"data\\""']
    # Ignore: silent. Strict: refused, nothing stored. Anything else: 400.
    cm["metadata"]["name"] = "i"
    status, headers, _ = request(server, "POST", path + "?fieldValidation=Ignore", cm)
    assert status == 201 and headers.get_all("Warning") is None
    cm["metadata"]["name"] = "s"
    status, _, body = request(server, "POST", path + "?fieldValidation=Strict", cm)
    assert status == 400 and 'unknown field "extra"' in body["message"]
    assert request(server, "GET", f"{path}/s")[0] == 404
    status, _, body = request(server, "POST", path + "?fieldValidation=Loud", cm)
    assert status == 400
    assert body["message"] == ('fieldValidation: Unsupported value: "Loud": supported values: '
                               '"Ignore", "Strict", "Warn"')
    # kubectl --validate=warn prints the server's warnings.
    cm["metadata"]["name"] = "k"
    out = kubectl.run("create", "-n", ns, "--validate=warn", "-f", "-", input=json.dumps(cm))
    assert 'Warning: unknown field "extra"' in out.stderr

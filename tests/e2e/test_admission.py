"""Admission as kube-apiserver does it (issue 12): ResourceQuota (usage counted by its controller,
charged atomically with each create, upstream's 403 texts), LimitRange defaults and bounds,
fieldValidation's Warning headers, and validating and mutating admission webhooks (AdmissionReview
v1 over HTTPS to a server this test runs). The real kubectl and plain HTTPS against the real kiso server
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


# ---- Admission webhooks: a real HTTPS server in this process, its own CA as the caBundle ----

class Webhooks:
    """An AdmissionReview v1 server on 127.0.0.1: /deny refuses ConfigMaps holding a key
    `forbidden`, /mutate labels what it sees (a JSONPatch) and warns, /slow answers late;
    anything else (/observe) allows what it sees unchanged."""

    def __init__(self, tmp):
        import http.server
        import subprocess
        import threading
        def openssl(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True)
        key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        openssl("req", "-x509", *key, "-keyout", f"{tmp}/ca.key", "-out", f"{tmp}/ca.crt",
                "-subj", "/CN=webhook-ca", "-days", "1")
        openssl("req", *key, "-keyout", f"{tmp}/srv.key", "-out", f"{tmp}/srv.csr",
                "-subj", "/CN=127.0.0.1")
        with open(f"{tmp}/san", "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n")
        openssl("x509", "-req", "-in", f"{tmp}/srv.csr", "-CA", f"{tmp}/ca.crt", "-CAkey",
                f"{tmp}/ca.key", "-CAcreateserial", "-out", f"{tmp}/srv.crt", "-days", "1",
                "-extfile", f"{tmp}/san")
        with open(f"{tmp}/ca.crt", "rb") as f:
            self.ca_bundle = __import__("base64").b64encode(f.read()).decode()
        self.reviews = []
        self.release = threading.Event()
        hooks = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hooks.reviews.append((self.path, review))
                request = review["request"]
                response = {"uid": request["uid"], "allowed": True}
                obj = request["object"]
                if request["operation"] == "DELETE":
                    obj = request["oldObject"]
                    if self.path.startswith("/deny") and "keep" in obj["metadata"].get("labels", {}):
                        response = {"uid": request["uid"], "allowed": False,
                                    "status": {"code": 403, "message": "kept"}}
                elif self.path.startswith("/deny") and "forbidden" in obj.get("data", {}):
                    response = {"uid": request["uid"], "allowed": False,
                                "status": {"code": 403, "message": "no forbidden data"}}
                elif self.path.startswith("/mutate"):
                    op = "replace" if obj["metadata"].get("labels") else "add"
                    patch = ([{"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}]
                             if op == "replace" else
                             [{"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}}])
                    response["patchType"] = "JSONPatch"
                    response["patch"] = __import__("base64").b64encode(
                        json.dumps(patch).encode()).decode()
                    response["warnings"] = ["labelled by the webhook"]
                elif self.path.startswith("/slow"):
                    hooks.release.wait(10)
                body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                   "response": response}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (OSError, ssl.SSLError):
                    pass  # The caller gave up (the timeout test).

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(f"{tmp}/srv.crt", f"{tmp}/srv.key")
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"https://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhooks(tmp_path):
    w = Webhooks(str(tmp_path))
    yield w
    w.stop()


def configuration(kind, name, url, ca_bundle, ns_label, **extra):
    hook = {"name": name, "clientConfig": {"url": url, "caBundle": ca_bundle},
            "rules": [{"operations": ["CREATE", "UPDATE", "DELETE"], "apiGroups": [""],
                       "apiVersions": ["v1"], "resources": ["configmaps"]}],
            "namespaceSelector": {"matchLabels": {"webhooks": ns_label}},
            "sideEffects": "None", "admissionReviewVersions": ["v1"], **extra}
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
            "metadata": {"name": name}, "webhooks": [hook]}


@pytest.fixture
def hooked(kubectl, ns):
    """The test namespace, labelled for the webhooks; every configuration made is removed."""
    kubectl("label", "namespace", ns, f"webhooks={ns}")
    made = []

    def add(config):
        kubectl("create", "-f", "-", input=json.dumps(config))
        made.append(f"{config['kind'].lower()}/{config['metadata']['name']}")
    yield ns, add
    for m in made:
        kubectl("delete", m, "--ignore-not-found")


def test_validating_webhook_denies_and_selects_namespaces(kubectl, server, hooked, webhooks):
    ns, add = hooked
    add(configuration("ValidatingWebhookConfiguration", "deny.kiso.test", webhooks.url("/deny"),
                      webhooks.ca_bundle, ns))
    refused = kubectl.run("create", "configmap", "bad", "-n", ns, "--from-literal=forbidden=1",
                          check=False)
    assert refused.returncode != 0
    assert ('admission webhook "deny.kiso.test" denied the request: no forbidden data'
            in refused.stderr)
    assert kubectl.run("get", "configmap", "bad", "-n", ns, check=False).returncode != 0
    kubectl("create", "configmap", "good", "-n", ns, "--from-literal=fine=1")
    # The review names the request as upstream's does.
    path, review = webhooks.reviews[-1]
    assert path == "/deny?timeout=10s"
    request = review["request"]
    assert review["apiVersion"] == "admission.k8s.io/v1"
    assert request["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert request["resource"] == {"group": "", "version": "v1", "resource": "configmaps"}
    assert (request["operation"], request["namespace"], request["name"]) == ("CREATE", ns, "good")
    assert request["userInfo"]["username"] == "system:admin"
    assert request["object"]["data"] == {"fine": "1"} and request["oldObject"] is None
    # An update is reviewed with the old object; another namespace is not selected.
    kubectl("label", "configmap", "good", "-n", ns, "x=y")
    assert webhooks.reviews[-1][1]["request"]["oldObject"]["metadata"]["name"] == "good"
    # A delete is reviewed with the object as oldObject, and may be refused.
    kubectl("label", "configmap", "good", "-n", ns, "keep=yes")
    refused = kubectl.run("delete", "configmap", "good", "-n", ns, check=False)
    assert 'admission webhook "deny.kiso.test" denied the request: kept' in refused.stderr
    request = webhooks.reviews[-1][1]["request"]
    assert request["operation"] == "DELETE" and request["object"] is None
    assert request["oldObject"]["metadata"]["name"] == "good"
    assert request["options"]["kind"] == "DeleteOptions"
    kubectl("label", "configmap", "good", "-n", ns, "keep-")
    kubectl("delete", "configmap", "good", "-n", ns)
    calls = len(webhooks.reviews)
    kubectl("create", "configmap", "bad", "-n", "default", "--from-literal=forbidden=1")
    kubectl("delete", "configmap", "bad", "-n", "default")
    assert len(webhooks.reviews) == calls


def test_mutating_webhook_patches_and_warns(kubectl, server, hooked, webhooks):
    ns, add = hooked
    add(configuration("MutatingWebhookConfiguration", "label.kiso.test", webhooks.url("/mutate"),
                      webhooks.ca_bundle, ns))
    out = kubectl.run("create", "configmap", "m", "-n", ns, "--from-literal=a=1")
    assert "Warning: labelled by the webhook" in out.stderr
    assert get(kubectl, "configmap", "m", "-n", ns)["metadata"]["labels"] == {"mutated": "yes"}
    # A dry run calls a webhook (v1 ones have no side effects), saying it is one.
    kubectl("create", "configmap", "d", "-n", ns, "--dry-run=server")
    assert webhooks.reviews[-1][1]["request"]["dryRun"] is True
    assert kubectl.run("get", "configmap", "d", "-n", ns, check=False).returncode != 0
    # v1 refuses a webhook with side effects.
    refused = kubectl.run("create", "-f", "-", check=False, input=json.dumps(configuration(
        "MutatingWebhookConfiguration", "effects.kiso.test", webhooks.url("/mutate"),
        webhooks.ca_bundle, ns, sideEffects="Some")))
    assert ('webhooks[0].sideEffects: Unsupported value: "Some": supported values: "None", '
            '"NoneOnDryRun"') in refused.stderr


def test_mutating_webhook_reinvoked_if_needed(kubectl, server, hooked, webhooks):
    """A webhook with reinvocationPolicy IfNeeded sees the object again when a webhook after
    it changed it (configurations run in name order); with Never it is called once."""
    ns, add = hooked
    add(configuration("MutatingWebhookConfiguration", "a-observe.kiso.test",
                      webhooks.url("/observe"), webhooks.ca_bundle, ns,
                      reinvocationPolicy="IfNeeded"))
    add(configuration("MutatingWebhookConfiguration", "b-label.kiso.test", webhooks.url("/mutate"),
                      webhooks.ca_bundle, ns))

    def create(name):
        first = len(webhooks.reviews)
        kubectl("create", "configmap", name, "-n", ns, "--from-literal=a=1")
        return [(path.split("?")[0], review["request"]["object"]["metadata"].get("labels"))
                for path, review in webhooks.reviews[first:]]
    assert create("twice") == [("/observe", None), ("/mutate", None),
                               ("/observe", {"mutated": "yes"})]
    assert get(kubectl, "configmap", "twice", "-n", ns)["metadata"]["labels"] == {"mutated": "yes"}
    # An update the label webhook leaves as it is (the label is there) changes nothing: no
    # second round.
    first = len(webhooks.reviews)
    kubectl("annotate", "configmap", "twice", "-n", ns, "x=y")
    assert [p.split("?")[0] for p, _ in webhooks.reviews[first:]] == ["/observe", "/mutate"]
    # Never (the default): called once, before the change.
    kubectl("patch", "mutatingwebhookconfiguration", "a-observe.kiso.test", "--type=json", "-p",
            '[{"op": "replace", "path": "/webhooks/0/reinvocationPolicy", "value": "Never"}]')
    assert create("once") == [("/observe", None), ("/mutate", None)]


def test_webhook_failures_follow_the_failure_policy(kubectl, server, hooked, webhooks, tmp_path):
    ns, add = hooked
    # Fail (the default): an unanswered call (a timeout of 1 s against a slow server) is a 500.
    add(configuration("ValidatingWebhookConfiguration", "slow.kiso.test", webhooks.url("/slow"),
                      webhooks.ca_bundle, ns, timeoutSeconds=1))
    status, _, body = request(server, "POST", f"/api/v1/namespaces/{ns}/configmaps",
                              {"metadata": {"name": "s"}})
    assert status == 500
    assert body["message"] == (
        'Internal error occurred: failed calling webhook "slow.kiso.test": failed to call '
        f'webhook: Post "https://127.0.0.1:{webhooks.port}/slow?timeout=1s": context deadline '
        'exceeded')
    webhooks.release.set()
    kubectl("delete", "validatingwebhookconfiguration", "slow.kiso.test")
    # A server whose certificate the caBundle does not sign is not trusted.
    other = str(tmp_path / "other")
    os.makedirs(other)
    unrelated = Webhooks(other)
    unrelated.stop()
    wrong_ca = unrelated.ca_bundle
    add(configuration("ValidatingWebhookConfiguration", "untrusted.kiso.test",
                      webhooks.url("/deny"), wrong_ca, ns))
    status, _, body = request(server, "POST", f"/api/v1/namespaces/{ns}/configmaps",
                              {"metadata": {"name": "u"}})
    assert status == 500 and "certificate verify failed" in body["message"]
    kubectl("delete", "validatingwebhookconfiguration", "untrusted.kiso.test")
    # Ignore: the same failure lets the request through.
    add(configuration("ValidatingWebhookConfiguration", "ignored.kiso.test",
                      webhooks.url("/deny"), wrong_ca, ns, failurePolicy="Ignore"))
    status, _, _ = request(server, "POST", f"/api/v1/namespaces/{ns}/configmaps",
                           {"metadata": {"name": "i"}})
    assert status == 201

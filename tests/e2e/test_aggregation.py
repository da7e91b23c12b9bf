"""API aggregation end to end: an aggregated API server (tests/e2e/metrics_backend.py, in a
network namespace of the test's own) registered by APIServices for custom.metrics.k8s.io and
external.metrics.k8s.io behind a Service; kiso authorizes each request, proxies it over TLS
verified against the APIService's caBundle with the front proxy's client certificate and the
user in X-Remote-*, lists the groups in discovery, reports availability, and the
HorizontalPodAutoscaler scales a Deployment on an External metric read through it."""
import base64
import json
import os
import subprocess
import sys
import tempfile

import pytest

from conftest import Kubectl, Server, machine_slot, terminate, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))


def sh(*args):
    subprocess.run(args, check=True, capture_output=True)


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


class Backend:
    """metrics_backend.py in a network namespace of its own, joined to the host by a veth pair
    (the host 198.18.S.1, the backend 198.18.S.2): reachable like a pod, from this test only."""

    def __init__(self, server, work):
        slot = machine_slot()
        self.ns = f"kisoagg{slot}"
        self.host_if = f"kagg{slot}"
        self.address = f"198.18.{slot}.2"
        self.work = work
        self.values = os.path.join(work, "values.json")
        self.log = os.path.join(work, "requests.log")
        self.write_values({})
        # The serving certificate, for the Service's name, from a CA of the test's.
        self.ca = os.path.join(work, "ca.crt")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", os.path.join(work, "ca.key"), "-out", self.ca, "-days", "1",
                "-subj", "/CN=metrics-test-ca")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", os.path.join(work, "tls.key"), "-out", os.path.join(work, "tls.csr"),
                "-subj", "/CN=metrics-backend.kube-system.svc")
        with open(os.path.join(work, "san.ext"), "w") as f:
            f.write("subjectAltName=DNS:metrics-backend.kube-system.svc\n")
        openssl("x509", "-req", "-in", os.path.join(work, "tls.csr"), "-CA", self.ca,
                "-CAkey", os.path.join(work, "ca.key"), "-CAcreateserial", "-days", "1",
                "-extfile", os.path.join(work, "san.ext"), "-out", os.path.join(work, "tls.crt"))
        # What an aggregated server reads to trust the front proxy.
        kubectl = Kubectl(server)
        auth = json.loads(kubectl("get", "configmap", "-n", "kube-system",
                                  "extension-apiserver-authentication", "-o", "json"))["data"]
        self.allowed = json.loads(auth["requestheader-allowed-names"])[0]
        with open(os.path.join(work, "proxy-ca.crt"), "w") as f:
            f.write(auth["requestheader-client-ca-file"])
        self.proc = None
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)  # A crashed run's.
        sh("ip", "netns", "add", self.ns)
        sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", "eth0", "netns",
           self.ns)
        sh("ip", "addr", "add", f"198.18.{slot}.1/30", "dev", self.host_if)
        sh("ip", "link", "set", self.host_if, "up")
        sh("ip", "-n", self.ns, "addr", "add", f"{self.address}/30", "dev", "eth0")
        sh("ip", "-n", self.ns, "link", "set", "eth0", "up")
        sh("ip", "-n", self.ns, "link", "set", "lo", "up")
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "/usr/bin/python3",
             os.path.join(HERE, "metrics_backend.py"), self.address, "8443",
             os.path.join(self.work, "tls.crt"), os.path.join(self.work, "tls.key"),
             os.path.join(self.work, "proxy-ca.crt"), self.allowed, self.values, self.log],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        assert "serving" in line, line + self.proc.stdout.read()

    def stop(self):
        if self.proc:
            terminate(self.proc)
            self.proc = None

    def close(self):
        self.stop()
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)  # Takes the veth.

    def write_values(self, values):
        tmp = self.values + ".tmp"
        with open(tmp, "w") as f:
            json.dump(values, f)
        os.replace(tmp, self.values)

    def requests(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def cluster():
    server = Server(extra_args=["--horizontal-pod-autoscaler-sync-period", "1s"])
    work = tempfile.mkdtemp(prefix="kiso-agg-")
    backend = None
    try:
        backend = Backend(server, work)
        yield server, Kubectl(server), backend
    finally:
        if backend:
            backend.close()
        server.stop()
        subprocess.run(["rm", "-rf", work])


def register(kubectl, backend):
    ca = base64.b64encode(open(backend.ca, "rb").read()).decode()
    docs = [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "metrics-backend", "namespace": "kube-system"},
         "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 8443}]}},
        {"apiVersion": "v1", "kind": "Endpoints",
         "metadata": {"name": "metrics-backend", "namespace": "kube-system"},
         "subsets": [{"addresses": [{"ip": backend.address}],
                      "ports": [{"name": "https", "port": 8443}]}]},
    ]
    for group, version in (("custom.metrics.k8s.io", "v1beta2"),
                           ("external.metrics.k8s.io", "v1beta1")):
        docs.append({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                     "metadata": {"name": f"{version}.{group}"},
                     "spec": {"group": group, "version": version, "caBundle": ca,
                              "groupPriorityMinimum": 100, "versionPriority": 100,
                              "service": {"namespace": "kube-system", "name": "metrics-backend",
                                          "port": 443}}})
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                    "items": docs}))


def available(kubectl, name):
    out = kubectl("get", "apiservice", name, "-o",
                  'jsonpath={.status.conditions[?(@.type=="Available")].status}'
                  ' {.status.conditions[?(@.type=="Available")].reason}')
    return out.strip()


PODS_PATH = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/requests_per_second"


def test_requests_are_proxied_as_the_user_over_verified_tls(cluster):
    server, kubectl, backend = cluster
    register(kubectl, backend)
    wait_for(lambda: available(kubectl, "v1beta2.custom.metrics.k8s.io") == "True Passed",
             timeout=30, what="the custom metrics APIService available")
    backend.write_values({"requests_per_second": {"web-a": 7}})
    got = json.loads(kubectl("get", "--raw", PODS_PATH + "?labelSelector=app%3Dweb"))
    assert got["kind"] == "MetricValueList"
    assert [(i["describedObject"]["name"], i["value"]) for i in got["items"]] == [("web-a", "7")]
    who = json.loads(kubectl("auth", "whoami", "-o", "json"))["status"]["userInfo"]
    seen = [r for r in backend.requests() if r["path"].endswith("/requests_per_second")][-1]
    assert seen["client"] == "system:auth-proxy"  # The front proxy's certificate.
    assert seen["user"] == who["username"]
    assert sorted(seen["groups"]) == sorted(who.get("groups", []))
    assert seen["authorization"] is False  # The client's credentials stay here.
    assert seen["query"] == {"labelSelector": ["app=web"]}


def test_an_answer_past_the_proxys_bound_is_refused(cluster):
    server, kubectl, backend = cluster
    register(kubectl, backend)
    p = kubectl.run("get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2/huge", check=False)
    assert p.returncode != 0 and "larger than 67108864 bytes" in p.stderr, p.stderr[:300]


def test_authorization_happens_before_the_proxy(cluster):
    server, kubectl, backend = cluster
    register(kubectl, backend)
    before = len(backend.requests())
    p = kubectl.run("get", "--raw", PODS_PATH, "--as", "system:serviceaccount:default:nobody",
                    check=False)
    assert p.returncode != 0 and "forbidden" in p.stderr.lower(), p.stderr
    assert 'resource "pods/requests_per_second" in API group "custom.metrics.k8s.io"' \
        in p.stderr, p.stderr
    assert len(backend.requests()) == before  # Refused here: never reached the backend.


def test_discovery_lists_the_aggregated_groups(cluster):
    server, kubectl, backend = cluster
    register(kubectl, backend)
    versions = kubectl("api-versions").split()
    assert "custom.metrics.k8s.io/v1beta2" in versions
    assert "external.metrics.k8s.io/v1beta1" in versions
    group = json.loads(kubectl("get", "--raw", "/apis/external.metrics.k8s.io"))
    assert group["preferredVersion"]["groupVersion"] == "external.metrics.k8s.io/v1beta1"
    # kubectl's aggregated discovery carries the backend's resources once fetched.
    wait_for(lambda: "queue_depth" in kubectl("api-resources", "--api-group",
                                               "external.metrics.k8s.io"),
             timeout=40, what="the external metric in api-resources")


def test_hpa_scales_a_deployment_on_an_external_metric(cluster):
    server, kubectl, backend = cluster
    register(kubectl, backend)
    backend.write_values({"queue_depth": [12, 8]})  # 20 at 5 a pod: 4 replicas.
    kubectl("create", "deployment", "worker", "--image=127.0.0.1:5000/busybox", "--replicas=1")
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "worker"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                       "name": "worker"},
                    "minReplicas": 1, "maxReplicas": 6,
                    "metrics": [{"type": "External", "external": {
                        "metric": {"name": "queue_depth",
                                   "selector": {"matchLabels": {"queue": "jobs"}}},
                        "target": {"type": "AverageValue", "averageValue": "5"}}}]}}
    kubectl("apply", "-f", "-", input=json.dumps(hpa))
    replicas = lambda: kubectl("get", "deployment", "worker", "-o", "jsonpath={.spec.replicas}")
    wait_for(lambda: replicas() == "4", timeout=60, what="4 replicas from the external metric")
    status = json.loads(kubectl("get", "hpa", "worker", "-o", "json"))["status"]
    metric = status["currentMetrics"][0]
    assert metric["type"] == "External"
    assert metric["external"]["metric"]["name"] == "queue_depth"
    seen = [r for r in backend.requests() if r["path"].endswith("/queue_depth")][-1]
    assert seen["query"] == {"labelSelector": ["queue=jobs"]}
    assert seen["user"] == "system:apiserver"  # The controller's own requests, in process.


def test_a_backend_that_stops_answering_is_reported(cluster):
    server, kubectl, backend = cluster
    register(kubectl, backend)
    wait_for(lambda: available(kubectl, "v1beta1.external.metrics.k8s.io") == "True Passed",
             timeout=30, what="the external metrics APIService available")
    backend.stop()
    try:
        p = kubectl.run("get", "--raw",
                        "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_depth",
                        check=False)
        assert p.returncode != 0 and "ServiceUnavailable" in p.stderr or "503" in p.stderr, \
            p.stderr
        wait_for(lambda: available(kubectl, "v1beta1.external.metrics.k8s.io")
                 == "False FailedDiscoveryCheck", timeout=60, what="FailedDiscoveryCheck")
        kubectl("delete", "endpoints", "-n", "kube-system", "metrics-backend")
        wait_for(lambda: available(kubectl, "v1beta1.external.metrics.k8s.io")
                 == "False MissingEndpoints", timeout=60, what="MissingEndpoints")
    finally:
        backend.start()
    # Unregistered: the path is no API any more.
    kubectl("delete", "apiservice", "v1beta1.external.metrics.k8s.io")
    wait_for(lambda: kubectl.run("get", "--raw", "/apis/external.metrics.k8s.io/v1beta1",
                                 check=False).returncode != 0, timeout=10, what="404")
    assert "external.metrics.k8s.io/v1beta1" not in kubectl("api-versions").split()

"""Services that route (issue 13), on a real node: kiso server with its embedded agent, runc
pods from busybox, the real kubectl. Cluster IPs from pods and from the host, node ports,
hairpin, a Service with no endpoints refused at once, endpoints changing under load, pods'
default route, a pod reaching the API through the kubernetes Service with its ServiceAccount
token (issue 12), and the agent killed with SIGKILL and restarted: its nftables table is
rebuilt, not duplicated. At the end nothing of the node's remains (the `node` fixture)."""
import http.client
import json
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import wait_for
from test_node import BRIDGE, apply, node, phase, pod, registry, simple_pod  # noqa: F401

TABLE = f"kiso-{BRIDGE}"
WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox
        # Each pod answers with its own name.
        command: ["sh", "-c", "mkdir -p /tmp/w && hostname > /tmp/w/index.html && exec httpd -f -p 8080 -h /tmp/w"]
        readinessProbe:
          tcpSocket: {{port: 8080}}
          periodSeconds: 1
"""


def web(k, name, replicas=2, port=80, type_="ClusterIP", annotations=None):
    apply(k, WEB.format(name=name, replicas=replicas))
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "annotations": annotations or {}},
           "spec": {"type": type_, "selector": {"app": name},
                    "ports": [{"name": "http", "port": port, "targetPort": 8080}]}}
    k("apply", "-f", "-", input=json.dumps(svc))
    k("rollout", "status", f"deployment/{name}", "--timeout=60s")
    wait_for(lambda: len(ready_addresses(k, name)) == replicas, 30, f"{name}'s endpoints")
    return json.loads(k("get", "service", name, "-o", "json"))


def ready_addresses(k, name):
    slices = json.loads(k("get", "endpointslices", "-l", f"kubernetes.io/service-name={name}",
                          "-o", "json"))["items"]
    return [e["addresses"][0] for s in slices for e in s.get("endpoints") or []
            if e["conditions"].get("ready")]


def fetch(url, source=None, timeout=5):
    """One HTTP GET from the host (from `source`, an address of 127.0.0.0/8): the body."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=timeout,
                                  source_address=(source, 0) if source else None) as s:
        s.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.split(b"\r\n\r\n", 1)[1].decode().strip()


def exec_out(k, pod_name, *command):
    return k("exec", pod_name, "--", *command, timeout=30)


@pytest.fixture(scope="module")
def client(node):
    s, k = node
    apply(k, simple_pod("client", ["sleep", "3600"]))
    wait_for(lambda: phase(k, "client") == "Running", what="client Running")
    yield "client"
    k("delete", "pod", "client", "--wait=false")


def test_cluster_ip_from_a_pod_and_from_the_host(node, client):
    s, k = node
    svc = web(k, "web")
    ip = svc["spec"]["clusterIP"]
    names = set(json.loads(k("get", "pods", "-l", "app=web", "-o", "json")).get("items") and
                k("get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}").split())
    seen = {exec_out(k, client, "wget", "-q", "-O", "-", f"http://{ip}/").strip() for _ in range(12)}
    assert seen <= names and seen, seen
    assert len(seen) == 2, f"12 connections all went to {seen}"  # Random, 2 pods: (1/2)^11 else.
    assert fetch(f"http://{ip}:80/") in names


def test_node_port_from_the_host(node):
    s, k = node
    svc = web(k, "np", replicas=1, type_="NodePort")
    port = svc["spec"]["ports"][0]["nodePort"]
    name = k("get", "pods", "-l", "app=np", "-o", "jsonpath={.items[0].metadata.name}")
    assert fetch(f"http://127.0.0.1:{port}/") == name
    k("delete", "deployment,service", "np")


def test_a_service_without_endpoints_is_refused_at_once(node):
    s, k = node
    k("create", "service", "clusterip", "nobody", "--tcp=80:8080")
    ip = json.loads(k("get", "service", "nobody", "-o", "json"))["spec"]["clusterIP"]

    def refused():
        start = time.monotonic()
        try:
            fetch(f"http://{ip}:80/", timeout=5)
        except ConnectionRefusedError:
            return time.monotonic() - start
        except OSError:
            return None
        return None
    elapsed = wait_for(refused, 10, "the cluster IP refused")
    assert elapsed < 1.0, elapsed
    k("delete", "service", "nobody")


def test_hairpin_a_pod_reaches_itself_through_its_service(node):
    s, k = node
    web(k, "solo", replicas=1)
    name = k("get", "pods", "-l", "app=solo", "-o", "jsonpath={.items[0].metadata.name}")
    ip = json.loads(k("get", "service", "solo", "-o", "json"))["spec"]["clusterIP"]
    assert exec_out(k, name, "wget", "-q", "-O", "-", f"http://{ip}/").strip() == name
    k("delete", "deployment,service", "solo")


def host_address():
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True,
                         text=True).stdout.split()
    addrs = [out[i + 1].split("/")[0] for i, w in enumerate(out) if w == "inet"]
    return next(a for a in addrs if not a.startswith("10.233."))


def test_a_pod_reaches_the_node_outside_the_pod_range(node, client):
    """Through its default route: the node's own address (never beyond this machine)."""
    s, k = node
    routes = exec_out(k, client, "ip", "route")
    assert routes.startswith("default via "), routes
    address = host_address()
    with socket.create_server((address, 0)) as listener:
        port = listener.getsockname()[1]
        answer = threading.Thread(target=serve_once, args=(listener, b"from the node"))
        answer.start()
        out = exec_out(k, client, "wget", "-q", "-O", "-", f"http://{address}:{port}/")
        answer.join(10)
    assert out == "from the node"


def serve_once(listener, body):
    listener.settimeout(20)
    conn, _ = listener.accept()
    with conn:
        conn.recv(4096)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


def test_pod_uses_its_service_account_token_through_the_kubernetes_service(node, tmp_path):
    """The pod's own network path to the API: a relay in the pod (busybox nc) to
    $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, spoken through with the pod's token and
    CA. (busybox wget's own TLS sends no signature_algorithms, so OpenSSL 3 at its default
    security level refuses it; any real client library speaks TLS 1.2/1.3 properly.)"""
    s, k = node
    k("create", "serviceaccount", "reader")
    k("create", "role", "pod-reader", "--verb=get,list", "--resource=pods")
    k("create", "rolebinding", "reader", "--role=pod-reader", "--serviceaccount=default:reader")
    relay = "exec nc -ll -p 8443 -e nc $KUBERNETES_SERVICE_HOST $KUBERNETES_SERVICE_PORT"
    apply(k, simple_pod("in-cluster", ["sh", "-c", relay]).replace(
        "spec:\n", "spec:\n  serviceAccountName: reader\n", 1))
    wait_for(lambda: phase(k, "in-cluster") == "Running", what="in-cluster Running")
    secrets = "/var/run/secrets/kubernetes.io/serviceaccount"
    token = exec_out(k, "in-cluster", "cat", f"{secrets}/token")
    (tmp_path / "ca.crt").write_text(exec_out(k, "in-cluster", "cat", f"{secrets}/ca.crt"))
    ip = pod(k, "in-cluster")["status"]["podIP"]
    tls = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))

    def get(path, bearer):
        # Verified as a pod verifies it: the Service's name, against the pod's CA.
        conn = http.client.HTTPSConnection("kubernetes.default.svc", 8443, context=tls, timeout=10)
        conn.sock = tls.wrap_socket(socket.create_connection((ip, 8443), timeout=10),
                                    server_hostname="kubernetes.default.svc")
        conn.request("GET", path, headers={"Authorization": f"Bearer {bearer}"})
        r = conn.getresponse()
        return r.status, r.read()

    def first():
        try:
            return get("/api/v1/namespaces/default/pods", token)
        except OSError:
            return None  # The relay is not listening yet.
    status, body = wait_for(first, 20, "the API through the pod's relay")
    assert status == 200, body
    assert "in-cluster" in [p["metadata"]["name"] for p in json.loads(body)["items"]]
    # The token is what grants: other namespaces' pods are not the reader's.
    assert get("/api/v1/namespaces/kube-system/pods", token)[0] == 403
    assert get("/api/v1/namespaces/default/pods", "not-a-token")[0] == 401
    k("delete", "pod", "in-cluster")


def nft_table():
    return subprocess.run(["nft", "list", "table", "ip", TABLE], capture_output=True, text=True).stdout


def test_agent_killed_and_restarted_keeps_its_rules_once(node):
    s, k = node
    svc = web(k, "web")  # As the first test left it (applied again: no change).
    ip = svc["spec"]["clusterIP"]
    before = nft_table()
    assert f"{ip} . tcp . 80 : goto svc-" in before
    s.kill()
    assert fetch(f"http://{ip}:80/")  # The kernel serves on while the agent is down.
    s.start()
    # Rebuilt from the caches once synced: the same table, nothing doubled.
    wait_for(lambda: nft_table() == before, 30, "the same table after the restart")
    assert fetch(f"http://{ip}:80/")
    k("delete", "deployment,service", "web")
    wait_for(lambda: ip not in nft_table(), 10, "the Service's rules gone")

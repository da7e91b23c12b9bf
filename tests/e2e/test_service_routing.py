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
from test_node import (BRIDGE, POD_CIDR, SERVICE_CIDR, SLOT, apply, node, phase, pod,  # noqa: F401
                       registry, simple_pod)

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
        # Each pod answers with its own name (at /, /api/ and /exact: the ingress tests' paths).
        command: ["sh", "-c", "mkdir -p /tmp/w/api && for f in index.html api/index.html exact; do hostname > /tmp/w/$f; done && exec httpd -f -p 8080 -h /tmp/w"]
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
    names = set(k("get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}").split())
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


def test_load_balancer_answers_on_the_node_address(node):
    """ServiceLB's role: the Service's ingress lists the Ready nodes' InternalIPs (the host's
    primary address unless --node-ip says otherwise), and its port answers there."""
    s, k = node
    address = host_address()
    internal = [a["address"] for a in json.loads(k("get", "node", "kiso-e2e-node", "-o", "json"))
                ["status"]["addresses"] if a["type"] == "InternalIP"]
    assert internal == [address]
    web(k, "front", replicas=1, port=18080, type_="LoadBalancer")
    ingress = wait_for(lambda: json.loads(k("get", "service", "front", "-o", "json"))["status"]
                       .get("loadBalancer", {}).get("ingress"), 20, "the load balancer's ingress")
    assert ingress == [{"ip": address, "ipMode": "VIP"}]
    name = k("get", "pods", "-l", "app=front", "-o", "jsonpath={.items[0].metadata.name}")
    assert wait_for(lambda: try_fetch(f"http://{address}:18080/"), 20, "the port on the node") == name
    # No longer a LoadBalancer: the ingress goes, and so does the port.
    k("patch", "service", "front", "-p", '{"spec":{"type":"ClusterIP"}}')
    wait_for(lambda: not json.loads(k("get", "service", "front", "-o", "json"))["status"]
             .get("loadBalancer", {}).get("ingress"), 20, "the ingress cleared")
    k("delete", "deployment,service", "front")


def try_fetch(url):
    try:
        return fetch(url, timeout=2)
    except OSError:
        return None


def dns_ip():
    return SERVICE_CIDR.replace(".0/16", ".10")  # The tenth address of the range.


def dig(*args):
    """dig from the host against the cluster DNS Service."""
    return subprocess.run(["dig", f"@{dns_ip()}", "+tries=1", "+time=3", *args],
                          capture_output=True, text=True, timeout=20).stdout


def test_pods_resolve_services_by_name(node, client):
    s, k = node
    svc = web(k, "web")
    names = set(k("get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}").split())
    conf = exec_out(k, client, "cat", "/etc/resolv.conf")
    assert conf.splitlines()[0] == "search default.svc.cluster.local svc.cluster.local cluster.local"
    assert f"nameserver {dns_ip()}" in conf and "options ndots:5" in conf, conf
    for url in ("http://web/", "http://web.default/", "http://web.default.svc.cluster.local/"):
        assert exec_out(k, client, "wget", "-q", "-O", "-", url).strip() in names, url
    assert svc["spec"]["clusterIP"] in exec_out(k, client, "nslookup", "web.default.svc.cluster.local")


def test_dig_from_the_host_srv_ptr_nxdomain_nodata_tcp(node):
    s, k = node
    ip = web(k, "web")["spec"]["clusterIP"]
    name = "web.default.svc.cluster.local."
    assert dig("+short", "A", name).split() == [ip]
    assert dig("+short", "+tcp", "A", name).split() == [ip]
    assert dig("+short", "SRV", "_http._tcp." + name).strip() == f"0 100 80 {name}"
    assert dig("+short", "-x", ip).strip() == name
    nx = dig("A", "nope.default.svc.cluster.local.")
    assert "status: NXDOMAIN" in nx and "ANSWER: 0" in nx and "SOA" in nx, nx
    nodata = dig("AAAA", name)
    assert "status: NOERROR" in nodata and "ANSWER: 0" in nodata, nodata
    assert dig("+noall", "+answer", "A", name).split()[1] == "5"  # TTL 5 s.
    k("create", "service", "externalname", "ext", "--external-name=example.org")
    wait_for(lambda: dig("+short", "CNAME", "ext.default.svc.cluster.local.").strip() == "example.org.",
             10, "the ExternalName's CNAME")
    k("delete", "service", "ext")


def test_headless_names_with_hostname_and_subdomain(node, client):
    s, k = node
    apply(k, simple_pod("h1", ["sh", "-c", "mkdir -p /tmp/w && hostname > /tmp/w/index.html && exec httpd -f -p 8080 -h /tmp/w"],
                        restart="Always")
          .replace("metadata: {name: h1}", "metadata: {name: h1, labels: {app: sub}}")
          .replace("spec:\n", "spec:\n  hostname: h1\n  subdomain: sub\n", 1))
    k("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "sub"},
        "spec": {"clusterIP": "None", "selector": {"app": "sub"},
                 "ports": [{"name": "http", "port": 8080}]}}))
    wait_for(lambda: phase(k, "h1") == "Running", what="h1 Running")
    pod_ip = pod(k, "h1")["status"]["podIP"]
    wait_for(lambda: dig("+short", "sub.default.svc.cluster.local.").split() == [pod_ip], 20,
             "the headless Service's address")
    assert dig("+short", "h1.sub.default.svc.cluster.local.").split() == [pod_ip]
    assert dig("+short", "SRV", "_http._tcp.sub.default.svc.cluster.local.").strip() == \
        "0 100 8080 h1.sub.default.svc.cluster.local."
    assert exec_out(k, client, "wget", "-q", "-O", "-", "http://h1.sub:8080/").strip() == "h1"
    k("delete", "pod", "h1", "--wait=false")
    k("delete", "service", "sub")


def udp_flows(port):
    """The conntrack entries of UDP flows from source port `port` (conntrack-tools)."""
    return subprocess.run(["conntrack", "-L", "-p", "udp", "--sport", str(port)],
                          capture_output=True, text=True).stdout


def test_udp_flows_leave_an_endpoint_that_left(node):
    """kube-proxy's conntrack cleanup: a UDP client sending from one port is translated by its
    conntrack entry to the endpoint it first reached; when that endpoint leaves the Service the
    entry goes (else it would live as long as the client keeps sending). The endpoint here is
    the cluster DNS itself (busybox has no UDP server to run in a pod)."""
    s, k = node
    dns = json.loads(k("get", "endpoints", "kube-dns", "-n", "kube-system", "-o", "json"))
    address = dns["subsets"][0]["addresses"][0]["ip"]
    port = dns["subsets"][0]["ports"][0]["port"]
    k("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "udp-flow"},
        "spec": {"ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}}))
    endpoints = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "udp-flow"},
                 "subsets": [{"addresses": [{"ip": address}],
                              "ports": [{"name": "dns", "port": port, "protocol": "UDP"}]}]}
    k("create", "-f", "-", input=json.dumps(endpoints))
    ip = json.loads(k("get", "service", "udp-flow", "-o", "json"))["spec"]["clusterIP"]
    source = 30000 + SLOT  # A fixed source port, as a long-lived UDP client has.
    name = "kubernetes.default.svc.cluster.local."

    def ask():
        return subprocess.run(["dig", f"@{ip}", "-b", f"{host_address()}#{source}", "+short",
                               "+tries=1", "+time=2", name], capture_output=True,
                              text=True, timeout=20).stdout.strip()
    api = SERVICE_CIDR.replace(".0/16", ".1")
    wait_for(lambda: ask() == api, 20, "an answer through the UDP Service")
    flows = udp_flows(source)
    assert f"dst={ip} " in flows and f"src={address} " in flows and f"sport={port} " in flows, flows
    # The endpoint leaves (another takes its place): the flow's entry goes with it.
    endpoints["subsets"][0]["addresses"] = [{"ip": POD_CIDR.replace(".0/24", ".250")}]
    k("replace", "-f", "-", input=json.dumps(endpoints))
    wait_for(lambda: f"src={address}" not in udp_flows(source), 10,
             "the flow's conntrack entry deleted (it would live 30 s more)")
    k("delete", "service,endpoints", "udp-flow", "--ignore-not-found")


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

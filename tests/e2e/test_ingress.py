"""The built-in ingress controller (issue 13; Traefik's role in K3s), on a real node: runc pods
from busybox behind two Services, one Ingress routing two hosts and a TLS host, checked from the
host with curl --resolve (nothing leaves 127.0.0.1). Host and path rules (Prefix, Exact), the
default backend, the TLS Secret's certificate chosen by SNI, the IngressClass defaulted to kiso,
status.loadBalancer filled in, client keep-alive, HTTP/2 to clients (ALPN h2 over TLS, prior
knowledge on the HTTP port), backends followed as endpoints change, and 404 once the Ingress is
gone."""
import json
import os
import re
import subprocess

import pytest

from conftest import wait_for
from test_node import apply, node, registry  # noqa: F401
from test_service_routing import web

INGRESS = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  tls:
  - hosts: [secure.kiso.test]
    secretName: secure-tls
  defaultBackend: {service: {name: beta, port: {number: 80}}}
  rules:
  - host: alpha.kiso.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: alpha, port: {number: 80}}}}
  - host: beta.kiso.test
    http:
      paths:
      - {path: /api, pathType: Prefix, backend: {service: {name: alpha, port: {name: http}}}}
      - {path: /, pathType: Prefix, backend: {service: {name: beta, port: {number: 80}}}}
  - host: secure.kiso.test
    http:
      paths:
      - {path: /exact, pathType: Exact, backend: {service: {name: alpha, port: {number: 80}}}}
"""


def ports(s):
    """The ingress controller's HTTP and HTTPS ports, as the server logged them."""
    with open(os.path.join(s.dir, "server.log"), errors="replace") as f:
        m = re.search(r"ingress controller: HTTP on port (\d+), HTTPS on port (\d+)", f.read())
    return (int(m.group(1)), int(m.group(2))) if m else None


def at(url, port):
    """`url` with the port: http://h/p → http://h:port/p."""
    scheme, rest = url.split("//")
    host, _, path = rest.partition("/")
    return f"{scheme}//{host}:{port}/{path}", host


def curl(url, port, *extra):
    """curl from the host, the URL's host name resolved to 127.0.0.1: (status, body)."""
    url, host = at(url, port)
    p = subprocess.run(["curl", "--noproxy", "*", "-s", "-o", "-", "-w", "\n%{http_code}",
                        "--max-time", "10",
                        "--resolve", f"{host}:{port}:127.0.0.1", *extra, url],
                       capture_output=True, text=True, timeout=30)
    body, _, code = p.stdout.rpartition("\n")
    return int(code or 0), body.strip()


def names(k, app):
    return set(k("get", "pods", "-l", f"app={app}", "-o",
                 "jsonpath={.items[*].metadata.name}").split())


@pytest.fixture(scope="module")
def shop(node, tmp_path_factory):
    s, k = node
    http, https = wait_for(lambda: ports(s), 30, "the ingress controller's ports")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(d / "tls.key"), "-out",
                    str(d / "tls.crt"), "-days", "1", "-subj", "/CN=secure.kiso.test", "-addext",
                    "subjectAltName=DNS:secure.kiso.test"], check=True, capture_output=True)
    k("create", "secret", "tls", "secure-tls", f"--cert={d / 'tls.crt'}", f"--key={d / 'tls.key'}")
    web(k, "alpha", replicas=1)  # Deployments and Services answering with their pods' names.
    web(k, "beta", replicas=2)
    apply(k, INGRESS)
    # Routed once both hosts answer from their pods.
    wait_for(lambda: curl("http://alpha.kiso.test/", http)[1] in names(k, "alpha")
             and curl("http://beta.kiso.test/", http)[1] in names(k, "beta"), 30, "the routes")
    yield k, http, https, str(d / "tls.crt")
    k("delete", "deployment,service", "alpha", "beta", "--ignore-not-found")
    k("delete", "secret", "secure-tls", "--ignore-not-found")


def test_hosts_and_paths_route_to_their_services(shop):
    k, http, https, ca = shop
    alpha, beta = names(k, "alpha"), names(k, "beta")
    assert curl("http://alpha.kiso.test/", http)[1] in alpha
    seen = {curl("http://beta.kiso.test/", http)[1] for _ in range(8)}
    assert seen == beta, f"round robin over beta's two pods: {seen}"
    assert curl("http://beta.kiso.test/api/", http)[1] in alpha  # The longer Prefix wins.
    assert curl("http://elsewhere.kiso.test/", http)[1] in beta  # The default backend.
    assert curl("http://secure.kiso.test/exact", http)[1] in alpha
    assert curl("http://secure.kiso.test/", http)[1] in beta  # Only /exact is the host's.


def test_tls_host_is_served_with_its_secret_by_sni(shop):
    k, http, https, ca = shop
    code, body = curl("https://secure.kiso.test/exact", https, "--cacert", ca)
    assert code == 200 and body in names(k, "alpha")
    # A name without a TLS section gets the default certificate, which the Secret's CA
    # does not vouch for: curl refuses it (exit 60), and accepts with -k.
    p = subprocess.run(["curl", "--noproxy", "*", "-s", "--max-time", "10", "--resolve",
                        f"alpha.kiso.test:{https}:127.0.0.1", "--cacert", ca,
                        f"https://alpha.kiso.test:{https}/"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 60, p
    assert curl("https://alpha.kiso.test/", https, "-k")[1] in names(k, "alpha")


def test_class_defaulted_and_status_lists_the_node(shop):
    k, http, https, ca = shop
    ing = json.loads(k("get", "ingress", "shop", "-o", "json"))
    assert ing["spec"]["ingressClassName"] == "kiso"
    cls = json.loads(k("get", "ingressclass", "kiso", "-o", "json"))
    assert cls["spec"]["controller"] == "kiso.dev/ingress-controller"
    node_ips = [a["address"] for n in json.loads(k("get", "nodes", "-o", "json"))["items"]
                for a in n["status"]["addresses"] if a["type"] == "InternalIP"]
    assert wait_for(lambda: json.loads(k("get", "ingress", "shop", "-o", "json"))["status"]
                    .get("loadBalancer", {}).get("ingress"), 20, "the status") == \
        [{"ip": ip} for ip in node_ips]


def test_client_connections_are_kept_alive(shop):
    k, http, https, ca = shop
    p = subprocess.run(["curl", "--noproxy", "*", "-sv", "--max-time", "10", "--resolve",
                        f"alpha.kiso.test:{http}:127.0.0.1", f"http://alpha.kiso.test:{http}/",
                        f"http://alpha.kiso.test:{http}/api/"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0 and "Re-using existing connection" in p.stderr, p.stderr


def test_clients_speak_http2(shop):
    k, http, https, ca = shop
    h2 = ["-w", "\n%{http_version}"]
    for url, port, extra in (("https://secure.kiso.test/exact", https, ["--http2", "--cacert", ca]),
                             ("http://alpha.kiso.test/", http, ["--http2-prior-knowledge"])):
        p = subprocess.run(["curl", "--noproxy", "*", "-s", "--max-time", "10", "--resolve",
                            f"{at(url, port)[1]}:{port}:127.0.0.1", *extra, *h2, at(url, port)[0]],
                           capture_output=True, text=True, timeout=30)
        body, _, version = p.stdout.rpartition("\n")
        assert p.returncode == 0 and version == "2" and body.strip() in names(k, "alpha"), p


def test_backends_follow_endpoints_and_the_ingress(shop):
    k, http, https, ca = shop
    k("scale", "deployment", "alpha", "--replicas=0")
    wait_for(lambda: curl("http://alpha.kiso.test/", http)[0] == 503, 30, "503 without endpoints")
    k("scale", "deployment", "alpha", "--replicas=1")
    wait_for(lambda: curl("http://alpha.kiso.test/", http)[1] in names(k, "alpha"), 60,
             "the new pod served")
    k("delete", "ingress", "shop")
    wait_for(lambda: curl("http://alpha.kiso.test/", http)[0] == 404, 30, "404 without the Ingress")

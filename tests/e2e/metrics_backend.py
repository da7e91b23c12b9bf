"""An aggregated API server for the aggregation tests (prometheus-adapter's role, reduced to
what the tests assert): custom.metrics.k8s.io/v1beta2 and external.metrics.k8s.io/v1beta1 over
TLS, trusting only clients the request-header CA signed and whose name is allowed (as an
aggregated server reads the extension-apiserver-authentication ConfigMap), answering metric
values from a JSON file the test writes, and logging each request (path, query, the X-Remote-*
headers and whether an Authorization header came) as a line of JSON.

usage: metrics_backend.py ADDRESS PORT CERT KEY CLIENT_CA ALLOWED_NAME VALUES LOG
"""
import json
import ssl
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

address, port, cert, key, client_ca, allowed, values_path, log_path = sys.argv[1:9]

CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"


def values():
    with open(values_path) as f:
        return json.load(f)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, code, doc):
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        peer = self.connection.getpeercert()
        cn = dict(x[0] for x in peer.get("subject", ())).get("commonName") if peer else None
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        with open(log_path, "a") as f:
            f.write(json.dumps({"path": url.path, "query": query, "client": cn,
                                "user": self.headers.get("X-Remote-User"),
                                "groups": self.headers.get_all("X-Remote-Group") or [],
                                "authorization": self.headers.get("Authorization") is not None})
                    + "\n")
        if cn != allowed:
            return self.answer(401, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                     "reason": "Unauthorized", "code": 401})
        v = values()
        if url.path == CUSTOM + "/huge":  # Past what the proxy holds of one answer (64 MiB).
            return self.answer(200, {"kind": "Status", "padding": "x" * (65 << 20)})
        if url.path == CUSTOM:
            return self.answer(200, {"kind": "APIResourceList", "apiVersion": "v1",
                                     "groupVersion": "custom.metrics.k8s.io/v1beta2",
                                     "resources": [{"name": "pods/requests_per_second",
                                                    "singularName": "", "namespaced": True,
                                                    "kind": "MetricValueList", "verbs": ["get"]}]})
        if url.path == EXTERNAL:
            return self.answer(200, {"kind": "APIResourceList", "apiVersion": "v1",
                                     "groupVersion": "external.metrics.k8s.io/v1beta1",
                                     "resources": [{"name": "queue_depth", "singularName": "",
                                                    "namespaced": True,
                                                    "kind": "ExternalMetricValueList",
                                                    "verbs": ["get"]}]})
        parts = url.path.split("/")
        if url.path.startswith(CUSTOM + "/namespaces/") and len(parts) == 9 and parts[6] == "pods":
            ns, metric = parts[5], parts[8]
            items = [{"describedObject": {"kind": "Pod", "namespace": ns, "name": pod,
                                          "apiVersion": "/v1"},
                      "metric": {"name": metric}, "timestamp": "2026-01-01T00:00:00Z",
                      "value": str(value)}
                     for pod, value in v.get(metric, {}).items()]
            return self.answer(200, {"kind": "MetricValueList",
                                     "apiVersion": "custom.metrics.k8s.io/v1beta2",
                                     "metadata": {}, "items": items})
        if url.path.startswith(EXTERNAL + "/namespaces/") and len(parts) == 7:
            metric = parts[6]
            if metric not in v:
                return self.answer(404, {"kind": "Status", "apiVersion": "v1",
                                         "status": "Failure", "reason": "NotFound", "code": 404})
            items = [{"metricName": metric, "metricLabels": query_labels(query),
                      "timestamp": "2026-01-01T00:00:00Z", "value": str(x)} for x in v[metric]]
            return self.answer(200, {"kind": "ExternalMetricValueList",
                                     "apiVersion": "external.metrics.k8s.io/v1beta1",
                                     "metadata": {}, "items": items})
        self.answer(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                          "reason": "NotFound", "code": 404})


def query_labels(query):
    labels = {}
    for term in ",".join(query.get("labelSelector", [])).split(","):
        if "=" in term:
            k, _, val = term.partition("=")
            labels[k] = val
    return labels


tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(cert, key)
tls.load_verify_locations(cafile=client_ca)
tls.verify_mode = ssl.CERT_OPTIONAL
server = ThreadingHTTPServer((address, int(port)), Handler)
server.socket = tls.wrap_socket(server.socket, server_side=True)
print("serving", flush=True)
server.serve_forever()

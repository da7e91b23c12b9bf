"""The API real tools need (issue 12): every `kubectl create` generator (kubectl sends these as
protobuf), the `kubectl set|expose|run` commands, authentication (whoami, tokens),
RBAC enforced as kube-apiserver does, and a pod's API credentials (ServiceAccount admission,
the root CA ConfigMap). The real kubectl against the real kiso server (no node agent)."""
import base64
import json
import os
import re
import ssl
import subprocess
import urllib.error
import urllib.request

import pytest

from conftest import KISO_BIN, wait_for


@pytest.fixture
def ns(kubectl, request):
    name = "t-" + request.node.name.replace("_", "-")[5:40].strip("-").lower()
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


def get(kubectl, *args):
    return json.loads(kubectl("get", *args, "-o", "json"))


def test_create_namespace_is_protobuf_and_lands(kubectl, server):
    # kubectl 1.32 sends the body as protobuf (its -v=8 log shows the request's content type).
    assert "Content-Type: application/vnd.kubernetes.protobuf" in kubectl.run(
        "create", "namespace", "dev", "-v=8").stderr
    assert get(kubectl, "namespace", "dev")["status"]["phase"] == "Active"
    # Every namespace gets its default ServiceAccount and the cluster CA.
    wait_for(lambda: kubectl.run("get", "sa", "default", "-n", "dev", check=False).returncode == 0,
             10, "default service account")
    cm = wait_for(lambda: kubectl.run("get", "configmap", "kube-root-ca.crt", "-n", "dev", "-o", "json",
                                      check=False).stdout, 10, "kube-root-ca.crt")
    with open(os.path.join(server.dir, "tls", "ca.crt")) as f:
        assert json.loads(cm)["data"]["ca.crt"] == f.read()
    kubectl("delete", "namespace", "dev", "--wait=false")


def test_the_kubernetes_service_names_this_server(kubectl, server):
    svc = get(kubectl, "service", "kubernetes", "-n", "default")
    assert svc["spec"]["clusterIP"] == "10.43.0.1"
    assert svc["spec"]["ports"] == [{"name": "https", "port": 443, "protocol": "TCP",
                                     "targetPort": server.port}]
    assert svc["metadata"]["labels"] == {"component": "apiserver", "provider": "kubernetes"}
    ep = get(kubectl, "endpoints", "kubernetes", "-n", "default")
    assert ep["subsets"][0]["ports"] == [{"name": "https", "port": server.port, "protocol": "TCP"}]
    address = ep["subsets"][0]["addresses"][0]["ip"]
    assert not address.startswith("127."), address


def test_configmap_and_secret_generators(kubectl, ns, tmp_path):
    (tmp_path / "app.properties").write_text("color=blue\n")
    kubectl("create", "configmap", "cfg", "-n", ns, "--from-literal=a=1",
            f"--from-file={tmp_path / 'app.properties'}")
    assert get(kubectl, "configmap", "cfg", "-n", ns)["data"] == {"a": "1", "app.properties": "color=blue\n"}
    kubectl("create", "secret", "generic", "s", "-n", ns, "--from-literal=password=hunter2")
    data = get(kubectl, "secret", "s", "-n", ns)["data"]
    assert base64.b64decode(data["password"]) == b"hunter2"
    key, cert = tmp_path / "tls.key", tmp_path / "tls.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=x",
                    "-keyout", str(key), "-out", str(cert), "-days", "1"], check=True,
                   capture_output=True)
    kubectl("create", "secret", "tls", "t", "-n", ns, f"--cert={cert}", f"--key={key}")
    assert get(kubectl, "secret", "t", "-n", ns)["type"] == "kubernetes.io/tls"
    kubectl("create", "secret", "docker-registry", "r", "-n", ns, "--docker-server=127.0.0.1:5000",
            "--docker-username=u", "--docker-password=p")
    reg = get(kubectl, "secret", "r", "-n", ns)
    assert reg["type"] == "kubernetes.io/dockerconfigjson"
    assert "127.0.0.1:5000" in json.loads(base64.b64decode(reg["data"][".dockerconfigjson"]))["auths"]


def test_workload_generators(kubectl, ns):
    kubectl("create", "deployment", "web", "-n", ns, "--image=nginx", "--replicas=2", "--port=80")
    d = get(kubectl, "deployment", "web", "-n", ns)
    assert d["spec"]["replicas"] == 2
    assert d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 80
    kubectl("create", "job", "once", "-n", ns, "--image=busybox", "--", "true")
    assert get(kubectl, "job", "once", "-n", ns)["spec"]["template"]["spec"]["containers"][0]["command"] == ["true"]
    kubectl("create", "cronjob", "tick", "-n", ns, "--image=busybox", "--schedule=*/5 * * * *",
            "--", "date")
    assert get(kubectl, "cronjob", "tick", "-n", ns)["spec"]["schedule"] == "*/5 * * * *"
    kubectl("create", "job", "manual", "-n", ns, "--from=cronjob/tick")
    job = get(kubectl, "job", "manual", "-n", ns)
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    kubectl("run", "solo", "-n", ns, "--image=busybox", "--labels=app=solo", "--", "sleep", "1")
    assert get(kubectl, "pod", "solo", "-n", ns)["metadata"]["labels"] == {"app": "solo"}


def test_service_generators_and_expose(kubectl, ns):
    kubectl("create", "service", "clusterip", "c", "-n", ns, "--tcp=80:8080")
    assert get(kubectl, "service", "c", "-n", ns)["spec"]["ports"][0]["targetPort"] == 8080
    kubectl("create", "service", "nodeport", "np", "-n", ns, "--tcp=80:80")
    assert get(kubectl, "service", "np", "-n", ns)["spec"]["type"] == "NodePort"
    kubectl("create", "service", "loadbalancer", "lb", "-n", ns, "--tcp=80:80")
    assert get(kubectl, "service", "lb", "-n", ns)["spec"]["type"] == "LoadBalancer"
    kubectl("create", "service", "externalname", "ext", "-n", ns, "--external-name=example.org")
    assert get(kubectl, "service", "ext", "-n", ns)["spec"]["externalName"] == "example.org"
    kubectl("create", "deployment", "web", "-n", ns, "--image=nginx", "--port=80")
    kubectl("expose", "deployment", "web", "-n", ns, "--port=8000", "--target-port=80")
    svc = get(kubectl, "service", "web", "-n", ns)
    assert svc["spec"]["selector"] == {"app": "web"} and svc["spec"]["ports"][0]["port"] == 8000


def test_autoscale_speaks_autoscaling_v1_stored_as_v2(kubectl, server, ns):
    kubectl("create", "deployment", "web", "-n", ns, "--image=nginx")
    run = kubectl.run("autoscale", "deployment", "web", "-n", ns, "--min=2", "--max=5",
                      "--cpu-percent=80", "-v=8")
    assert run.stdout == "horizontalpodautoscaler.autoscaling/web autoscaled\n", run.stderr[-2000:]
    # kubectl 1.32 sends autoscaling/v1, as protobuf.
    assert "POST https://" in run.stderr and "/apis/autoscaling/v1/namespaces/" in run.stderr
    assert "Content-Type: application/vnd.kubernetes.protobuf" in run.stderr
    # Read at the preferred version (v2): the CPU target is a Resource metric.
    hpa = get(kubectl, "hpa", "web", "-n", ns)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 5
    assert hpa["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    # A memory metric added at v2 survives a patch through v1, where it is an annotation.
    kubectl("patch", "horizontalpodautoscalers.v2.autoscaling", "web", "-n", ns, "--type=json", "-p", json.dumps([
        {"op": "add", "path": "/spec/metrics/-", "value": {"type": "Resource", "resource": {
            "name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}}}]))
    v1 = get(kubectl, "horizontalpodautoscalers.v1.autoscaling", "web", "-n", ns)
    assert v1["apiVersion"] == "autoscaling/v1" and v1["spec"]["targetCPUUtilizationPercentage"] == 80
    assert json.loads(v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/metrics"]) == [
        {"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "1Gi"}}]
    kubectl("patch", "horizontalpodautoscalers.v1.autoscaling", "web", "-n", ns, "--type=merge", "-p",
            '{"spec": {"maxReplicas": 7, "targetCPUUtilizationPercentage": 60}}')
    hpa = get(kubectl, "hpa", "web", "-n", ns)
    assert hpa["spec"]["maxReplicas"] == 7
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu", "memory"]
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    assert "annotations" not in hpa["metadata"]
    # Lists at v1 too, in a table with upstream's columns.
    listed = get(kubectl, "horizontalpodautoscalers.v1.autoscaling", "-n", ns)
    assert [(i["apiVersion"], i["spec"]["maxReplicas"]) for i in listed["items"]] == [("autoscaling/v1", 7)]
    # The Python client's AutoscalingV1Api: a watch's events at v1 too.
    import kubernetes
    api = kubernetes.client.AutoscalingV1Api(
        kubernetes.config.new_client_from_config(config_file=server.kubeconfig))
    events = kubernetes.watch.Watch().stream(api.list_namespaced_horizontal_pod_autoscaler, ns,
                                             timeout_seconds=10)
    first = next(events)
    assert first["type"] == "ADDED" and first["object"].spec.target_cpu_utilization_percentage == 60
    events.close()
    table = kubectl("get", "hpa", "-n", ns)
    assert table.splitlines()[0].split() == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS",
                                             "REPLICAS", "AGE"], table
    # v1's decoder and the autoscaler's validation, each in upstream's words.
    bad = kubectl.run("create", "-n", ns, "-f", "-", check=False, input=json.dumps({
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "zero"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 3,
                 "maxReplicas": 1}}))
    assert bad.returncode != 0
    assert ('The HorizontalPodAutoscaler "zero" is invalid: spec.maxReplicas: Invalid value: 1: '
            'must be greater than or equal to `minReplicas`') in bad.stderr, bad.stderr
    bad = kubectl.run("create", "-n", ns, "-f", "-", check=False, input=json.dumps({
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "typed"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 2,
                 "targetCPUUtilizationPercentage": "high"}}))
    assert bad.returncode != 0
    assert ("json: cannot unmarshal string into Go struct field "
            "HorizontalPodAutoscalerSpec.spec.targetCPUUtilizationPercentage of type int32") in bad.stderr, bad.stderr
    assert "typed" not in kubectl("get", "hpa", "-n", ns, "-o", "name")


def test_events_are_served_at_events_k8s_io_v1_as_well(kubectl, ns):
    """events.k8s.io/v1 serves the core group's Events in the newer shape (regarding, note,
    reportingController, deprecated*), both ways, with its stricter rules for new Events; the
    Python client's EventsV1Api reads them."""
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "old"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": ns},
        "reason": "Started", "message": "hello", "type": "Normal", "count": 2,
        "source": {"component": "kubelet"}, "firstTimestamp": "2026-12-03T19:00:00Z",
        "lastTimestamp": "2026-12-03T19:01:00Z",
        # (Without eventTime the Python client cannot read it at events.k8s.io/v1, as upstream.)
        "eventTime": "2026-12-03T19:00:00.000000Z"}))
    old = get(kubectl, "events.v1.events.k8s.io", "old", "-n", ns)
    assert old["apiVersion"] == "events.k8s.io/v1", old
    assert old["regarding"]["name"] == "p" and old["note"] == "hello", old
    assert old["deprecatedCount"] == 2 and old["deprecatedSource"] == {"component": "kubelet"}, old
    assert old["deprecatedLastTimestamp"] == "2026-12-03T19:01:00Z" and "message" not in old, old

    new = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "new"},
           "eventTime": "2026-12-03T19:02:00.000000Z", "reportingController": "kiso.dev/e2e",
           "reportingInstance": "e2e-1", "action": "Testing", "reason": "Tested",
           "regarding": {"kind": "Pod", "name": "p", "namespace": ns}, "note": "from v1",
           "type": "Warning"}
    kubectl("create", "-n", ns, "-f", "-", input=json.dumps(new))
    core = get(kubectl, "events", "new", "-n", ns)
    assert core["apiVersion"] == "v1" and core["message"] == "from v1", core
    assert core["involvedObject"]["name"] == "p" and core["reportingComponent"] == "kiso.dev/e2e"
    assert core["eventTime"] == "2026-12-03T19:02:00.000000Z", core
    listed = get(kubectl, "events.v1.events.k8s.io", "-n", ns)
    assert sorted(e["metadata"]["name"] for e in listed["items"]) == ["new", "old"]
    assert all("regarding" in e for e in listed["items"]), listed

    # A new Event at events.k8s.io/v1 must say who reports what (core/v1 is looser).
    bad = dict(new, metadata={"name": "bad"}, type="Loud")
    del bad["reportingController"], bad["action"]
    refused = kubectl.run("create", "-n", ns, "-f", "-", input=json.dumps(bad), check=False)
    assert refused.returncode != 0, refused.stdout
    assert "reportingController: Required value" in refused.stderr, refused.stderr
    assert "action: Required value" in refused.stderr and 'type: Unsupported value: "Loud"' in \
        refused.stderr, refused.stderr

    script = f"""
import json, kubernetes
kubernetes.config.load_kube_config()
items = kubernetes.client.EventsV1Api().list_namespaced_event("{ns}").items
print(json.dumps(sorted([e.metadata.name, e.note, e.regarding.name] for e in items)))
"""
    out = subprocess.run(["/usr/bin/python3", "-c", script], capture_output=True, text=True,
                         env=dict(os.environ, KUBECONFIG=kubectl.server.kubeconfig))
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout) == [["new", "from v1", "p"], ["old", "hello", "p"]], out.stderr


def test_deprecated_fields_are_warned_about(kubectl, ns):
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "old"},
                  "spec": {"selector": {"matchLabels": {"app": "old"}}, "template": {
                      "metadata": {"labels": {"app": "old"}},
                      "spec": {"nodeSelector": {"beta.kubernetes.io/os": "linux"},
                               "containers": [{"name": "c", "image": "busybox"}]}}}}
    p = kubectl.run("create", "-n", ns, "-f", "-", input=json.dumps(deployment))
    assert p.stderr == ('Warning: spec.template.spec.nodeSelector[beta.kubernetes.io/os]: deprecated '
                        'since v1.14; use "kubernetes.io/os" instead\n'), p.stderr
    # An update warns only about what it adds.
    p = kubectl.run("label", "deployment", "old", "-n", ns, "tier=web")
    assert p.stderr == "", p.stderr
    ingress = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": "i", "annotations": {"kubernetes.io/ingress.class": "nginx"}},
               "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}}
    p = kubectl.run("create", "-n", ns, "-f", "-", input=json.dumps(ingress))
    assert ('Warning: annotation "kubernetes.io/ingress.class" is deprecated, please use '
            "'spec.ingressClassName' instead") in p.stderr, p.stderr


def test_set_commands(kubectl, ns):
    kubectl("create", "deployment", "web", "-n", ns, "--image=nginx")
    kubectl("create", "serviceaccount", "runner", "-n", ns)
    kubectl("set", "image", "deployment/web", "-n", ns, "nginx=nginx:1.27")
    kubectl("set", "env", "deployment/web", "-n", ns, "MODE=prod")
    kubectl("set", "resources", "deployment/web", "-n", ns, "--limits=cpu=200m,memory=64Mi")
    kubectl("set", "serviceaccount", "deployment/web", "-n", ns, "runner")
    spec = get(kubectl, "deployment", "web", "-n", ns)["spec"]["template"]["spec"]
    c = spec["containers"][0]
    assert c["image"] == "nginx:1.27"
    assert {"name": "MODE", "value": "prod"} in c["env"]
    assert c["resources"]["limits"] == {"cpu": "200m", "memory": "64Mi"}
    assert spec["serviceAccountName"] == "runner"
    kubectl("create", "service", "clusterip", "sel", "-n", ns, "--tcp=80:80")
    kubectl("set", "selector", "service", "sel", "-n", ns, "app=other")
    assert get(kubectl, "service", "sel", "-n", ns)["spec"]["selector"] == {"app": "other"}


def test_policy_and_rbac_generators(kubectl, ns):
    kubectl("create", "quota", "q", "-n", ns, "--hard=pods=10,requests.cpu=2")
    assert get(kubectl, "resourcequota", "q", "-n", ns)["spec"]["hard"] == {"pods": "10", "requests.cpu": "2"}
    kubectl("create", "poddisruptionbudget", "pdb", "-n", ns, "--selector=app=web", "--min-available=1")
    assert get(kubectl, "pdb", "pdb", "-n", ns)["spec"]["minAvailable"] == 1
    kubectl("create", "priorityclass", f"{ns}-high", "--value=1000", "--description=high")
    assert get(kubectl, "priorityclass", f"{ns}-high")["value"] == 1000
    kubectl("delete", "priorityclass", f"{ns}-high")
    kubectl("create", "ingress", "ing", "-n", ns, "--rule=example.org/=web:80")
    rule = get(kubectl, "ingress", "ing", "-n", ns)["spec"]["rules"][0]
    assert rule["host"] == "example.org"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "web", "port": {"number": 80}}
    kubectl("create", "role", "reader", "-n", ns, "--verb=get,list", "--resource=pods")
    kubectl("create", "rolebinding", "rb", "-n", ns, "--role=reader", f"--serviceaccount={ns}:default")
    kubectl("create", "clusterrole", f"{ns}-cr", "--verb=get", "--resource=nodes")
    kubectl("create", "clusterrolebinding", f"{ns}-crb", f"--clusterrole={ns}-cr", "--user=alice")
    assert get(kubectl, "role", "reader", "-n", ns)["rules"][0]["verbs"] == ["get", "list"]
    kubectl("delete", "clusterrolebinding", f"{ns}-crb")
    kubectl("delete", "clusterrole", f"{ns}-cr")


def test_whoami_and_can_i_as_admin(kubectl):
    who = json.loads(kubectl("auth", "whoami", "-o", "json"))
    assert who["status"]["userInfo"]["username"] == "system:admin"
    assert "system:masters" in who["status"]["userInfo"]["groups"]
    assert kubectl("auth", "can-i", "delete", "nodes").strip() == "yes"


def api(server, path, token, method="GET", body=None, headers=None, cert=None):
    """One HTTPS request with a bearer token (or, with `cert`, a client certificate and key),
    the CA verified; (status, parsed body)."""
    ctx = ssl.create_default_context(cafile=os.path.join(server.dir, "tls", "ca.crt"))
    ctx.check_hostname = False
    if cert:
        ctx.load_cert_chain(*cert)
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(f"https://127.0.0.1:{server.port}{path}", method=method,
                                 headers={**auth, "Content-Type": "application/json",
                                          **(headers or {})},
                                 data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_service_account_token_and_rbac(kubectl, server, ns):
    kubectl("create", "serviceaccount", "bot", "-n", ns)
    token = kubectl("create", "token", "bot", "-n", ns, "--duration=10m").strip()
    # The token names the account (TokenReview and SelfSubjectReview agree).
    code, review = api(server, "/apis/authentication.k8s.io/v1/selfsubjectreviews", token, "POST",
                       {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert code == 201, review
    assert review["status"]["userInfo"]["username"] == f"system:serviceaccount:{ns}:bot"
    # Nothing is allowed until a binding says so: 403 with upstream's message.
    code, status = api(server, f"/api/v1/namespaces/{ns}/pods", token)
    assert code == 403
    assert status["message"] == (f'pods is forbidden: User "system:serviceaccount:{ns}:bot" cannot '
                                 f'list resource "pods" in API group "" in the namespace "{ns}"')
    sa = f"system:serviceaccount:{ns}:bot"
    assert kubectl.run("auth", "can-i", "list", "pods", "-n", ns, f"--as={sa}",
                       check=False).stdout.strip() == "no"
    kubectl("create", "role", "reader", "-n", ns, "--verb=get,list,watch", "--resource=pods")
    kubectl("create", "rolebinding", "bot-reads", "-n", ns, "--role=reader", f"--serviceaccount={ns}:bot")
    code, pods = api(server, f"/api/v1/namespaces/{ns}/pods", token)
    assert code == 200 and pods["kind"] == "PodList"
    assert kubectl("auth", "can-i", "list", "pods", "-n", ns, f"--as={sa}").strip() == "yes"
    assert kubectl.run("auth", "can-i", "delete", "pods", "-n", ns, f"--as={sa}",
                       check=False).stdout.strip() == "no"
    assert kubectl.run("auth", "can-i", "list", "pods", "-n", "default", f"--as={sa}",
                       check=False).stdout.strip() == "no"
    listed = kubectl("auth", "can-i", "--list", "-n", ns, f"--as={sa}")
    assert "pods" in listed and "[get list watch]" in listed
    # The account may not impersonate the admin; the admin (kubectl --as above) may impersonate it.
    code, status = api(server, "/api/v1/nodes", token, headers={"Impersonate-User": "system:admin"})
    assert code == 403 and 'cannot impersonate resource "users"' in status["message"]
    # A forged or tampered token is refused (401), a deleted account's token too.
    assert api(server, "/api/v1/namespaces", token[:-4] + "AAAA")[0] == 401
    kubectl("delete", "serviceaccount", "bot", "-n", ns)
    wait_for(lambda: api(server, f"/api/v1/namespaces/{ns}/pods", token)[0] == 401, 10,
             "the deleted account's token to stop working")


def test_pod_gets_api_credentials(kubectl, ns):
    kubectl("run", "client", "-n", ns, "--image=busybox", "--", "sleep", "3600")
    pod = get(kubectl, "pod", "client", "-n", ns)
    assert pod["spec"]["serviceAccountName"] == "default"
    vol = next(v for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access-"))
    sources = vol["projected"]["sources"]
    assert sources[0]["serviceAccountToken"]["path"] == "token"
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    mount = pod["spec"]["containers"][0]["volumeMounts"][0]
    assert mount["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount" and mount["readOnly"]
    # A pod that names a missing account is refused; one that opts out gets no volume.
    missing = kubectl.run("run", "lost", "-n", ns, "--image=busybox", "--overrides",
                          '{"spec":{"serviceAccountName":"nobody"}}', check=False)
    assert missing.returncode != 0 and 'serviceaccount "nobody" not found' in missing.stderr
    kubectl("run", "quiet", "-n", ns, "--image=busybox", "--overrides",
            '{"spec":{"automountServiceAccountToken":false}}')
    assert "volumes" not in get(kubectl, "pod", "quiet", "-n", ns)["spec"]


def test_priority_classes(kubectl, ns):
    names = kubectl("get", "priorityclasses", "-o", "name").split()
    assert "priorityclass.scheduling.k8s.io/system-node-critical" in names
    kubectl("run", "crit", "-n", ns, "--image=busybox", "--overrides",
            '{"spec":{"priorityClassName":"system-cluster-critical"}}')
    assert get(kubectl, "pod", "crit", "-n", ns)["spec"]["priority"] == 2000000000
    bad = kubectl.run("run", "nope", "-n", ns, "--image=busybox", "--overrides",
                      '{"spec":{"priorityClassName":"no-such-class"}}', check=False)
    assert bad.returncode != 0 and "no PriorityClass with name no-such-class was found" in bad.stderr


RUNTIME_CLASS = """
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: sandboxed}
handler: crun
overhead: {podFixed: {cpu: 10m, memory: 20Mi}}
scheduling:
  nodeSelector: {kiso.dev/sandbox: "yes"}
  tolerations: [{key: sandboxed, operator: Exists, effect: NoSchedule}]
"""


def test_runtime_classes(kubectl, ns):
    """node.k8s.io/v1 RuntimeClass served, and upstream's RuntimeClass admission: a pod naming
    one gets its overhead and its scheduling constraints; missing classes, conflicting node
    selectors and overheads of the pod's own are refused; the handler is a DNS label, fixed."""
    kubectl("apply", "-f", "-", input=RUNTIME_CLASS)
    try:
        table = kubectl("get", "runtimeclasses")
        assert re.search(r"^NAME\s+HANDLER\s+AGE$", table, re.M) and re.search(
            r"^sandboxed\s+crun\s", table, re.M), table
        assert "scheduling\t<Scheduling>" in kubectl("explain", "runtimeclass")
        kubectl("run", "boxed", "-n", ns, "--image=busybox", "--overrides",
                json.dumps({"spec": {"runtimeClassName": "sandboxed",
                                     "nodeSelector": {"disk": "ssd"},
                                     "tolerations": [{"key": "other", "operator": "Exists"}]}}))
        spec = get(kubectl, "pod", "boxed", "-n", ns)["spec"]
        assert spec["overhead"] == {"cpu": "10m", "memory": "20Mi"}
        assert spec["nodeSelector"] == {"disk": "ssd", "kiso.dev/sandbox": "yes"}
        assert {"key": "sandboxed", "operator": "Exists", "effect": "NoSchedule"} in \
            spec["tolerations"] and {"key": "other", "operator": "Exists"} in spec["tolerations"]
        refused = {
            "missing": ({"runtimeClassName": "nope"}, 'pod rejected: RuntimeClass "nope" not found'),
            "conflict": ({"runtimeClassName": "sandboxed",
                          "nodeSelector": {"kiso.dev/sandbox": "no"}},
                         "conflict: runtimeClass.scheduling.nodeSelector[kiso.dev/sandbox] = yes; "
                         "pod.spec.nodeSelector[kiso.dev/sandbox] = no"),
            "own-overhead": ({"runtimeClassName": "sandboxed", "overhead": {"cpu": "1"}},
                             "Pod's Overhead doesn't match RuntimeClass's defined Overhead"),
            "no-class-overhead": ({"overhead": {"cpu": "1"}},
                                  "Pod Overhead set without corresponding RuntimeClass defined"),
        }
        for name, (overrides, message) in refused.items():
            r = kubectl.run("run", name, "-n", ns, "--image=busybox", "--overrides",
                            json.dumps({"spec": overrides}), check=False)
            assert r.returncode != 0 and message in r.stderr, (name, r.stderr)
            assert kubectl.run("get", "pod", name, "-n", ns, check=False).returncode != 0
        bad = kubectl.run("apply", "-f", "-", check=False,
                          input=RUNTIME_CLASS.replace("name: sandboxed", "name: bad")
                          .replace("handler: crun", "handler: Not_A_Label"))
        assert bad.returncode != 0 and "handler" in bad.stderr, bad.stderr
        moved = kubectl.run("apply", "-f", "-", check=False,
                            input=RUNTIME_CLASS.replace("handler: crun", "handler: runc"))
        assert moved.returncode != 0 and "field is immutable" in moved.stderr, moved.stderr
    finally:
        kubectl("delete", "runtimeclass", "sandboxed", "--ignore-not-found")


def test_the_isolation_label_chooses_the_paradigm(kubectl, ns):
    """The seed's decision function: a namespace labelled kiso.dev/isolation gives its pods that
    name no RuntimeClass the paradigm's (sandbox: wasm; container: the default runtime), says
    which and why on the pod (kubectl describe shows it), and refuses an unknown paradigm. The
    server makes the RuntimeClasses its nodes serve: runc, crun and wasm."""
    handlers = {rc["metadata"]["name"]: rc["handler"]
                for rc in json.loads(kubectl("get", "runtimeclasses", "-o", "json"))["items"]}
    assert {"runc": "runc", "crun": "crun", "wasm": "wasm"}.items() <= handlers.items()
    kubectl("label", "namespace", ns, "kiso.dev/isolation=sandbox")
    kubectl("run", "boxed", "-n", ns, "--image=wasm:1")
    pod = get(kubectl, "pod", "boxed", "-n", ns)
    assert pod["spec"]["runtimeClassName"] == "wasm"
    why = (f"sandbox (RuntimeClass wasm, from namespace {ns}'s label kiso.dev/isolation=sandbox)")
    assert pod["metadata"]["annotations"]["kiso.dev/isolation"] == why
    assert f"kiso.dev/isolation: {why}" in kubectl("describe", "pod", "boxed", "-n", ns)
    # A pod naming its class keeps it, and says so.
    kubectl("run", "named", "-n", ns, "--image=busybox", "--overrides",
            json.dumps({"spec": {"runtimeClassName": "crun"}}))
    pod = get(kubectl, "pod", "named", "-n", ns)
    assert pod["spec"]["runtimeClassName"] == "crun"
    assert pod["metadata"]["annotations"]["kiso.dev/isolation"] == (
        "container (RuntimeClass crun named by the pod)")
    kubectl("label", "namespace", ns, "kiso.dev/isolation=container", "--overwrite")
    kubectl("run", "plain", "-n", ns, "--image=busybox")
    pod = get(kubectl, "pod", "plain", "-n", ns)
    assert "runtimeClassName" not in pod["spec"]
    assert pod["metadata"]["annotations"]["kiso.dev/isolation"].startswith(
        "container (the node's default runtime, from namespace")
    kubectl("label", "namespace", ns, "kiso.dev/isolation=jail", "--overwrite")
    refused = kubectl.run("run", "jailed", "-n", ns, "--image=busybox", check=False)
    assert refused.returncode != 0
    assert ("the isolation must be container, sandbox or vm" in refused.stderr), refused.stderr


def test_explain_walks_the_published_schemas(kubectl):
    out = kubectl("explain", "deployment.spec.strategy")
    assert "KIND:       Deployment" in out and "rollingUpdate\t<RollingUpdateDeployment>" in out
    assert "enum: Recreate, RollingUpdate" in out
    nested = kubectl("explain", "pods.spec.containers.resources", "--recursive")
    assert "limits\t<map[string]string>" in nested
    missing = kubectl.run("explain", "pods.spec.nosuchfield", check=False)
    assert missing.returncode != 0 and 'field "nosuchfield" does not exist' in missing.stderr
    # From /openapi/v2 as well, which client-go reads as gnostic's protobuf.
    v2 = kubectl.run("explain", "deployment.spec.strategy", "--output=plaintext-openapiv2", "-v=8")
    assert "Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf" in v2.stderr
    assert "KIND:     Deployment" in v2.stdout and "rollingUpdate\t<Object>" in v2.stdout, v2.stdout
    hpa = kubectl("explain", "horizontalpodautoscalers.spec.targetCPUUtilizationPercentage",
                  "--api-version=autoscaling/v1", "--output=plaintext-openapiv2")
    assert "VERSION:  autoscaling/v1" in hpa and "targetCPUUtilizationPercentage <integer>" in hpa, hpa


def test_openapi_v2_in_json(server):
    ctx = ssl.create_default_context(cafile=os.path.join(server.dir, "tls", "ca.crt"))
    request = urllib.request.Request(f"https://127.0.0.1:{server.port}/openapi/v2",
                                     headers={"Authorization": f"Bearer {server.token}"})
    with urllib.request.urlopen(request, context=ctx, timeout=30) as r:
        doc = json.loads(r.read())
    assert doc["swagger"] == "2.0"
    deployment = doc["definitions"]["io.k8s.kiso.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "version": "v1", "kind": "Deployment"}]
    strategy = doc["definitions"]["io.k8s.kiso.DeploymentStrategy"]["properties"]
    assert strategy["type"]["enum"] == ["Recreate", "RollingUpdate"]
    assert strategy["rollingUpdate"] == {"$ref": "#/definitions/io.k8s.kiso.RollingUpdateDeployment"}
    surge = doc["definitions"]["io.k8s.kiso.RollingUpdateDeployment"]["properties"]["maxSurge"]
    assert surge == {"type": "string", "format": "int-or-string"}
    get = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["get"]
    assert get["x-kubernetes-group-version-kind"]["kind"] == "Deployment"


def test_default_roles_aggregate_and_grant(kubectl, server, ns):
    """`edit` holds its aggregated rules; bound in a namespace, it lets an account create there."""
    rules = wait_for(lambda: get(kubectl, "clusterrole", "edit").get("rules"), 10, "edit's rules")
    assert any("deployments" in r.get("resources", []) and "create" in r["verbs"] for r in rules)
    kubectl("create", "serviceaccount", "dev", "-n", ns)
    kubectl("create", "rolebinding", "dev-edits", "-n", ns, "--clusterrole=edit",
            f"--serviceaccount={ns}:dev")
    sa = f"system:serviceaccount:{ns}:dev"
    assert kubectl("auth", "can-i", "create", "deployments.apps", "-n", ns, f"--as={sa}").strip() == "yes"
    assert kubectl.run("auth", "can-i", "create", "roles.rbac.authorization.k8s.io", "-n", ns,
                       f"--as={sa}", check=False).stdout.strip() == "no"
    kubectl("create", "deployment", "app", "-n", ns, "--image=busybox", f"--as={sa}")


def test_kubeconfig_for_a_new_user(kubectl, server, ns, tmp_path):
    """`kiso kubeconfig --user alice --group devs`: a client certificate the server authenticates
    (whoami shows the user and groups); RBAC decides what it may do, with upstream's 403 text."""
    path = str(tmp_path / "alice.yaml")
    subprocess.run([KISO_BIN, "kubeconfig", "--data-dir", server.dir, "--user", "alice",
                    "--group", "devs", "--group", "qa", "-o", path], check=True)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    env = dict(os.environ, KUBECONFIG=path, HOME=server.home)

    def as_alice(*args):
        return subprocess.run(["kubectl", *args], capture_output=True, text=True, env=env, timeout=60)

    who = as_alice("auth", "whoami", "-o", "json")
    assert who.returncode == 0, who.stderr
    info = json.loads(who.stdout)["status"]["userInfo"]
    assert info["username"] == "alice"
    assert info["groups"] == ["devs", "qa", "system:authenticated"]
    denied = as_alice("get", "pods", "-n", ns)
    assert denied.returncode != 0
    assert (f'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the '
            f'namespace "{ns}"') in denied.stderr
    # Bound to the group, not the user: the certificate's O is what counts.
    kubectl("create", "rolebinding", "devs-view", "-n", ns, "--clusterrole=view", "--group=devs")
    listed = wait_for(lambda: as_alice("get", "pods", "-n", ns).returncode == 0 or None, 10,
                      "alice may list pods")
    assert listed
    assert as_alice("create", "configmap", "c", "-n", ns).returncode != 0
    # A name the certificate cannot carry is refused, and nothing is written.
    bad = subprocess.run([KISO_BIN, "kubeconfig", "--data-dir", server.dir, "--user", "a\nb",
                          "-o", str(tmp_path / "bad.yaml")], capture_output=True, text=True)
    assert bad.returncode == 1 and "control characters" in bad.stderr
    assert not os.path.exists(tmp_path / "bad.yaml")


def test_rbac_grants_only_what_its_writer_holds(kubectl, server, ns):
    """A namespace admin (the `admin` ClusterRole bound in one namespace) may write roles and
    bindings there, but not grant what it lacks: a Role with a cluster-only permission or a
    binding to cluster-admin is refused with upstream's text, until it may `bind` or `escalate`."""
    kubectl("create", "serviceaccount", "lead", "-n", ns)
    kubectl("create", "rolebinding", "lead-admin", "-n", ns, "--clusterrole=admin",
            f"--serviceaccount={ns}:lead")
    lead = f"--as=system:serviceaccount:{ns}:lead"
    groups = f'["system:serviceaccounts" "system:serviceaccounts:{ns}" "system:authenticated"]'
    # Within what it holds: a Role for pods, bound to someone else.
    kubectl("create", "role", "pod-reader", "-n", ns, "--verb=get,list", "--resource=pods", lead)
    kubectl("create", "rolebinding", "readers", "-n", ns, "--role=pod-reader", "--user=bob", lead)
    # Beyond it: nodes (cluster-scoped, which admin does not grant), and cluster-admin.
    refused = kubectl.run("create", "role", "nodes", "-n", ns, "--verb=get", "--resource=nodes",
                          lead, check=False)
    assert refused.returncode != 0
    assert (f'roles.rbac.authorization.k8s.io "nodes" is forbidden: user "system:serviceaccount:'
            f'{ns}:lead" (groups={groups}) is attempting to grant RBAC permissions not currently '
            f'held:\n{{APIGroups:[""], Resources:["nodes"], Verbs:["get"]}}') in refused.stderr
    refused = kubectl.run("create", "rolebinding", "root", "-n", ns, "--clusterrole=cluster-admin",
                          "--user=bob", lead, check=False)
    assert refused.returncode != 0
    assert 'rolebindings.rbac.authorization.k8s.io "root" is forbidden' in refused.stderr
    assert "attempting to grant RBAC permissions not currently held" in refused.stderr
    missing = kubectl.run("create", "rolebinding", "ghost", "-n", ns, "--clusterrole=no-such-role",
                          "--user=bob", lead, check=False)
    assert 'clusterroles.rbac.authorization.k8s.io "no-such-role" not found' in missing.stderr
    for name in ("nodes", "root"):
        assert kubectl.run("get", "role,rolebinding", name, "-n", ns, check=False).returncode != 0
    # Given `bind` on cluster-admin (by name) and `escalate` on roles, it may.
    kubectl("create", "role", "binder", "-n", ns, "--verb=bind", "--resource=clusterroles",
            "--resource-name=cluster-admin")
    kubectl("create", "role", "escalator", "-n", ns, "--verb=escalate",
            "--resource=roles.rbac.authorization.k8s.io")
    for role in ("binder", "escalator"):
        kubectl("create", "rolebinding", f"lead-{role}", "-n", ns, f"--role={role}",
                f"--serviceaccount={ns}:lead")
    kubectl("create", "rolebinding", "root", "-n", ns, "--clusterrole=cluster-admin",
            "--user=bob", lead)
    kubectl("create", "role", "nodes", "-n", ns, "--verb=get", "--resource=nodes", lead)


def test_certificate_signing_request_makes_a_user(kubectl, server, ns, tmp_path):
    """Upstream's tutorial for a normal user: a CSR signed by kubernetes.io/kube-apiserver-client,
    approved with kubectl, gives a certificate the server authenticates (CN the user, O the
    groups). Denied requests get none; bad requests are 422; approving needs the signer's verb."""
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp_path / "jane.key"),
                    "-out", str(tmp_path / "jane.csr"), "-subj", "/CN=jane/O=devs"],
                   check=True, capture_output=True)
    request = base64.b64encode((tmp_path / "jane.csr").read_bytes()).decode()

    def csr(name, usages=("client auth",), req=request):
        return json.dumps({"apiVersion": "certificates.k8s.io/v1",
                           "kind": "CertificateSigningRequest", "metadata": {"name": name},
                           "spec": {"request": req, "usages": list(usages),
                                    "signerName": "kubernetes.io/kube-apiserver-client",
                                    "expirationSeconds": 86400}})
    name = f"{ns}-jane"
    kubectl("create", "-f", "-", input=csr(name))
    stored = get(kubectl, "csr", name)
    assert stored["spec"]["username"] == "system:admin"  # Who asked, whatever the body said.
    assert "system:masters" in stored["spec"]["groups"]
    assert "Pending" in kubectl("get", "csr", name)
    # Who asked cannot be rewritten afterwards (an approver trusts it).
    kubectl("patch", "csr", name, "--type=merge", "-p", '{"spec":{"username":"someone-else"}}')
    assert get(kubectl, "csr", name)["spec"]["username"] == "system:admin"
    kubectl("certificate", "approve", name)
    cert = wait_for(lambda: get(kubectl, "csr", name).get("status", {}).get("certificate"), 20,
                    "the signed certificate")
    assert "Approved,Issued" in kubectl("get", "csr", name)
    with open(server.kubeconfig) as f:
        ca_data = re.search(r"certificate-authority-data: (\S+)", f.read()).group(1)
    config = tmp_path / "jane.kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kiso\n  cluster:\n"
        f"    server: https://127.0.0.1:{server.port}\n    certificate-authority-data: {ca_data}\n"
        "users:\n- name: jane\n  user:\n"
        f"    client-certificate-data: {cert}\n"
        f"    client-key-data: {base64.b64encode((tmp_path / 'jane.key').read_bytes()).decode()}\n"
        "contexts:\n- name: jane\n  context:\n    cluster: kiso\n    user: jane\n"
        "current-context: jane\n")
    who = subprocess.run(["kubectl", "auth", "whoami", "-o", "json"], capture_output=True,
                         text=True, env=dict(os.environ, KUBECONFIG=str(config), HOME=server.home))
    assert who.returncode == 0, who.stderr
    info = json.loads(who.stdout)["status"]["userInfo"]
    assert (info["username"], info["groups"]) == ("jane", ["devs", "system:authenticated"])
    # A denied request is never signed, and stays denied.
    kubectl("create", "-f", "-", input=csr(f"{ns}-denied"))
    kubectl("certificate", "deny", f"{ns}-denied")
    assert "Denied" in kubectl("get", "csr", f"{ns}-denied")
    again = kubectl.run("certificate", "approve", f"{ns}-denied", check=False)
    assert again.returncode != 0 and "is already Denied" in again.stderr  # kubectl's own check.
    denied = get(kubectl, "csr", f"{ns}-denied")  # The server's, past kubectl:
    denied["status"]["conditions"].append({"type": "Approved", "status": "True"})
    status, body = api(server, f"/apis/certificates.k8s.io/v1/certificatesigningrequests/"
                       f"{ns}-denied/approval", server.token, "PUT", denied)
    assert status == 422 and "Approved and Denied conditions are mutually exclusive" in body["message"]
    assert not get(kubectl, "csr", f"{ns}-denied").get("status", {}).get("certificate")
    # Bad requests change nothing.
    bad = kubectl.run("create", "-f", "-", input=csr(f"{ns}-bad", req="aGVsbG8="), check=False)
    assert "spec.request: Invalid value: []byte{...}: PEM block type must be CERTIFICATE REQUEST" in bad.stderr
    bad = kubectl.run("create", "-f", "-", input=csr(f"{ns}-srv", usages=["server auth"]), check=False)
    assert ('spec.usages[0]: Unsupported value: "server auth": supported values: "client auth", '
            '"digital signature", "key encipherment"') in bad.stderr
    assert kubectl.run("get", "csr", f"{ns}-bad", check=False).returncode != 0
    # Approving takes the signer's `approve` verb, not only the approval subresource.
    kubectl("create", "-f", "-", input=csr(f"{ns}-other"))
    kubectl("create", "serviceaccount", "approver", "-n", ns)
    kubectl("create", "clusterrole", f"{ns}-approver", "--verb=get,list,update",
            "--resource=certificatesigningrequests,certificatesigningrequests/approval")
    kubectl("create", "clusterrolebinding", f"{ns}-approver", f"--clusterrole={ns}-approver",
            f"--serviceaccount={ns}:approver")
    refused = kubectl.run("certificate", "approve", f"{ns}-other",
                          f"--as=system:serviceaccount:{ns}:approver", check=False)
    assert ('user not permitted to approve requests with signerName '
            '"kubernetes.io/kube-apiserver-client"') in refused.stderr
    for n in ("jane", "denied", "other"):
        kubectl("delete", "csr", f"{ns}-{n}")
    kubectl("delete", "clusterrolebinding,clusterrole", f"{ns}-approver")


def test_node_credentials_from_a_bootstrap_token(kubectl, server, ns, tmp_path):
    """A node's way in: a bootstrap token asks for a client certificate for system:node:NAME,
    which is approved (SubjectAccessReview of nodeclient) and signed without a person; with it
    the node may register itself, but the Node authorizer and NodeRestriction refuse it other
    nodes and secrets its pods do not use. A request for any other name waits for a person."""
    token_id, secret = "k1s0ab", "0123456789abcdef"
    kubectl("create", "secret", "generic", f"bootstrap-token-{token_id}", "-n", "kube-system",
            "--type=bootstrap.kubernetes.io/token", f"--from-literal=token-id={token_id}",
            f"--from-literal=token-secret={secret}",
            "--from-literal=usage-bootstrap-authentication=true")
    bootstrap = f"{token_id}.{secret}"
    node = f"{ns[:40]}-node"

    def request_for(cn, org, name):
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp_path / f"{name}.key"),
                        "-out", str(tmp_path / f"{name}.csr"), "-subj", f"/O={org}/CN={cn}"],
                       check=True, capture_output=True)
        return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                "metadata": {"name": name},
                "spec": {"request": base64.b64encode((tmp_path / f"{name}.csr").read_bytes()).decode(),
                         "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                         "usages": ["digital signature", "client auth"]}}
    csrs = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
    status, body = api(server, csrs, bootstrap, "POST",
                       request_for(f"system:node:{node}", "system:nodes", f"{ns}-node"))
    assert status == 201, body
    assert body["spec"]["username"] == f"system:bootstrap:{token_id}"
    cert = wait_for(lambda: get(kubectl, "csr", f"{ns}-node").get("status", {}).get("certificate"),
                    20, "the node's certificate")
    approved = get(kubectl, "csr", f"{ns}-node")["status"]["conditions"][0]
    assert (approved["type"], approved["reason"]) == ("Approved", "AutoApproved")
    # Another name from the same token is left for a person.
    status, _ = api(server, csrs, bootstrap, "POST", request_for("jane", "system:nodes", f"{ns}-jane"))
    assert status == 201
    assert "Pending" in kubectl("get", "csr", f"{ns}-jane")
    (tmp_path / "node.crt").write_bytes(base64.b64decode(cert))
    node_cert = (str(tmp_path / "node.crt"), str(tmp_path / f"{ns}-node.key"))

    def as_node(path, method="GET", body=None):
        return api(server, path, None, method, body, cert=node_cert)
    status, body = as_node("/apis/authentication.k8s.io/v1/selfsubjectreviews", "POST",
                           {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert status == 201
    assert body["status"]["userInfo"]["username"] == f"system:node:{node}"
    assert "system:nodes" in body["status"]["userInfo"]["groups"]
    status, body = as_node("/api/v1/nodes", "POST",
                           {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}})
    assert status == 201, body
    # Not another node, not a secret no pod of its uses.
    kubectl("create", "secret", "generic", "db", "-n", ns, "--from-literal=p=x")
    status, body = as_node(f"/api/v1/namespaces/{ns}/secrets/db")
    assert status == 403
    assert body["message"].startswith(
        f'secrets "db" is forbidden: User "system:node:{node}" cannot get resource "secrets" in '
        f'API group "" in the namespace "{ns}"')
    status, body = as_node("/api/v1/nodes", "POST",
                           {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"{node}-2"}})
    assert status == 403
    kubectl("delete", "node", node)
    kubectl("delete", "csr", f"{ns}-node", f"{ns}-jane")
    kubectl("delete", "secret", f"bootstrap-token-{token_id}", "-n", "kube-system")


def test_tables_print_each_kinds_columns(kubectl, ns):
    kubectl("create", "cronjob", "tick", "-n", ns, "--image=busybox", "--schedule=*/5 * * * *", "--", "date")
    kubectl("create", "quota", "q", "-n", ns, "--hard=pods=10,limits.memory=1Gi")
    kubectl("create", "rolebinding", "rb", "-n", ns, "--clusterrole=view", "--user=alice",
            f"--serviceaccount={ns}:default")
    kubectl("create", "poddisruptionbudget", "pdb", "-n", ns, "--selector=app=web", "--max-unavailable=1")
    kubectl("create", "ingress", "ing", "-n", ns, "--rule=example.org/=web:80")

    def table(*args):
        lines = kubectl("get", *args, "-n", ns).splitlines()
        return re.split(r"\s{2,}", lines[0].strip()), lines[1].split()

    head, row = table("cronjob", "tick")
    assert head == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"]
    assert row[:7] == ["tick", "*/5", "*", "*", "*", "*", "<none>"]  # The schedule's five fields.
    head, row = table("quota", "q")
    assert head == ["NAME", "AGE", "REQUEST", "LIMIT"]
    assert "pods: 0/10" in " ".join(row) and "limits.memory: 0/1Gi" in " ".join(row)
    head, row = table("rolebinding", "rb", "-o", "wide")
    assert head[:3] == ["NAME", "ROLE", "AGE"] and row[1] == "ClusterRole/view"
    assert "alice" in row and f"{ns}/default" in row
    head, row = table("pdb", "pdb")
    assert head[:4] == ["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS"]
    assert row[1:3] == ["N/A", "1"]
    head, row = table("ingress", "ing")
    assert head == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    assert row[:3] == ["ing", "kiso", "example.org"]  # The default class, as K3s gives traefik.

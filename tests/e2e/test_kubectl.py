"""The real kubectl (1.32, /usr/bin/kubectl and its version dispatcher) against kiso server."""
import json
import subprocess


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: web
        image: {image}
        ports:
        - containerPort: 80
"""

POD = """
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: {app}}}
spec:
  containers:
  - name: c
    image: busybox:1.36
"""


def test_version_and_discovery(kubectl):
    out = kubectl("version", "-o", "json")
    assert json.loads(out)["serverVersion"]["minor"] == "32"
    resources = kubectl("api-resources", "-o", "name").split()
    for r in ["pods", "deployments.apps", "jobs.batch", "leases.coordination.k8s.io",
              "roles.rbac.authorization.k8s.io", "apiservices.apiregistration.k8s.io"]:
        assert r in resources


def test_builtin_namespaces_and_service_accounts(kubectl):
    names = kubectl("get", "namespaces", "-o", "name").split()
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"]:
        assert f"namespace/{ns}" in names
    assert "default" in kubectl("get", "serviceaccounts", "-n", "kube-system", "-o", "name")


def test_create_get_formats(kubectl):
    kubectl("create", "-f", "-", input=POD.format(name="fmt", app="fmt"))
    wide = kubectl("get", "pod", "fmt", "-o", "wide")
    assert wide.splitlines()[0].split()[:6] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP"]
    assert "fmt" in wide and "Pending" in wide and "0/1" in wide
    obj = json.loads(kubectl("get", "pod", "fmt", "-o", "json"))
    assert obj["spec"]["restartPolicy"] == "Always"          # Defaulted.
    assert obj["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert obj["metadata"]["uid"] and obj["metadata"]["resourceVersion"].isdigit()
    assert "terminationGracePeriodSeconds: 30" in kubectl("get", "pod", "fmt", "-o", "yaml")
    assert kubectl("get", "pod", "fmt", "-o", "jsonpath={.spec.dnsPolicy}") == "ClusterFirst"
    kubectl("delete", "pod", "fmt")


def test_list_all_namespaces_labels_sort(kubectl):
    kubectl("apply", "-f", "-", input=POD.format(name="sort-b", app="s") + "---" + POD.format(name="sort-a", app="s"))
    out = kubectl("get", "pods", "-l", "app=s", "--sort-by=.metadata.name", "--show-labels")
    lines = out.splitlines()
    assert lines[0].split()[-1] == "LABELS"
    assert [l.split()[0] for l in lines[1:]] == ["sort-a", "sort-b"]
    assert "app=s" in lines[1]
    all_ns = kubectl("get", "pods", "-A", "-l", "app in (s,other)")
    assert all_ns.splitlines()[0].split()[0] == "NAMESPACE"
    assert "default" in all_ns.splitlines()[1]
    assert kubectl("get", "pods", "-l", "app!=s", "-o", "name").strip() == "" or "sort-" not in kubectl(
        "get", "pods", "-l", "app!=s", "-o", "name")
    names = kubectl("get", "pods", "--field-selector", "metadata.name=sort-a", "-o", "name").split()
    assert names == ["pod/sort-a"]
    chunked = kubectl("get", "pods", "-l", "app=s", "--chunk-size=1", "-o", "name").split()
    assert chunked == ["pod/sort-a", "pod/sort-b"]
    kubectl("delete", "pods", "-l", "app=s")


def test_apply_client_side_then_server_side(kubectl):
    manifest = DEPLOYMENT.format(name="web", replicas=2, image="nginx:1.25")
    assert "deployment.apps/web created" in kubectl("apply", "-f", "-", input=manifest)
    assert "deployment.apps/web unchanged" in kubectl("apply", "-f", "-", input=manifest)
    manifest3 = DEPLOYMENT.format(name="web", replicas=3, image="nginx:1.26")
    assert "deployment.apps/web configured" in kubectl("apply", "-f", "-", input=manifest3)
    d = json.loads(kubectl("get", "deploy", "web", "-o", "json"))
    assert d["spec"]["replicas"] == 3
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert d["metadata"]["generation"] == 2
    # Server-side apply by another manager conflicts on fields kubectl-client-side-apply owns.
    manifest4 = DEPLOYMENT.format(name="web", replicas=4, image="nginx:1.26")
    p = kubectl.run("apply", "--server-side", "-f", "-", input=manifest4, check=False)
    assert p.returncode != 0
    assert "conflict" in p.stderr.lower() and ".spec.replicas" in p.stderr
    out = kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=manifest4)
    assert "serverside-applied" in out
    d = json.loads(kubectl("get", "deploy", "web", "-o", "json", "--show-managed-fields"))
    managers = {(m["manager"], m["operation"]) for m in d["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in managers
    assert d["spec"]["replicas"] == 4
    # Server-side apply creates what is missing.
    out = kubectl("apply", "--server-side", "-f", "-", input=DEPLOYMENT.format(name="ssa", replicas=1, image="x:1"))
    assert "deployment.apps/ssa serverside-applied" in out
    # The same manager applying again changes its own fields without conflict.
    kubectl("apply", "--server-side", "-f", "-", input=DEPLOYMENT.format(name="ssa", replicas=2, image="x:2"))
    d = json.loads(kubectl("get", "deploy", "ssa", "-o", "json"))
    assert d["spec"]["replicas"] == 2 and d["spec"]["template"]["spec"]["containers"][0]["image"] == "x:2"
    kubectl("delete", "deploy", "ssa")


def test_label_annotate_patch_replace_scale(kubectl):
    kubectl("apply", "-f", "-", input=POD.format(name="edit", app="edit"))
    kubectl("label", "pod", "edit", "tier=fe")
    kubectl("annotate", "pod", "edit", "note=hello")
    kubectl("patch", "pod", "edit", "-p", '{"metadata":{"labels":{"smp":"1"}}}')
    kubectl("patch", "pod", "edit", "--type=merge", "-p", '{"metadata":{"labels":{"merge":"1"}}}')
    kubectl("patch", "pod", "edit", "--type=json", "-p", '[{"op":"add","path":"/metadata/labels/json","value":"1"}]')
    # SMP merges containers by name: the image changes, the container list keeps one entry.
    kubectl("patch", "pod", "edit", "-p", '{"spec":{"containers":[{"name":"c","image":"busybox:1.37"}]}}')
    pod = json.loads(kubectl("get", "pod", "edit", "-o", "json"))
    assert pod["metadata"]["labels"] == {"app": "edit", "tier": "fe", "smp": "1", "merge": "1", "json": "1"}
    assert pod["metadata"]["annotations"]["note"] == "hello"
    assert [c["image"] for c in pod["spec"]["containers"]] == ["busybox:1.37"]
    # replace with the current resourceVersion works; with a stale one it is a Conflict.
    stale = kubectl("get", "pod", "edit", "-o", "yaml")
    assert "pod/edit replaced" in kubectl("replace", "-f", "-", input=stale)
    p = kubectl.run("replace", "-f", "-", input=stale, check=False)
    assert p.returncode == 1
    assert ('Error from server (Conflict): error when replacing "STDIN": Operation cannot be fulfilled on '
            'pods "edit": the object has been modified; please apply your changes to the latest version '
            'and try again') in p.stderr
    kubectl("apply", "-f", "-", input=DEPLOYMENT.format(name="scaled", replicas=1, image="nginx:1.25"))
    kubectl("scale", "deployment", "scaled", "--replicas=5")
    d = json.loads(kubectl("get", "deploy", "scaled", "-o", "json"))
    assert d["spec"]["replicas"] == 5 and d["metadata"]["generation"] == 2
    kubectl("delete", "deploy", "scaled")
    kubectl("delete", "pod", "edit")


def test_describe(kubectl):
    kubectl("apply", "-f", "-", input=POD.format(name="desc", app="desc"))
    out = kubectl("describe", "pod", "desc")
    assert "Name:" in out and "desc" in out and "busybox:1.36" in out and "Pending" in out
    kubectl("delete", "pod", "desc")


def test_watch_sees_changes(kubectl, server):
    kubectl("apply", "-f", "-", input=POD.format(name="watched", app="w"))
    env_args = ["get", "pods", "-l", "app=w", "-w", "-o", "name", "--request-timeout=20s"]
    import os
    env = dict(os.environ, KUBECONFIG=server.kubeconfig, HOME=server.home)
    proc = subprocess.Popen(["kubectl", *env_args], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "pod/watched"   # The initial list.
        kubectl("label", "pod", "watched", "seen=yes")
        assert proc.stdout.readline().strip() == "pod/watched"   # MODIFIED.
        kubectl("delete", "pod", "watched")
        assert proc.stdout.readline().strip() == "pod/watched"   # DELETED.
    finally:
        proc.kill()
        proc.wait()


REPLICASET = """
apiVersion: apps/v1
kind: ReplicaSet
metadata: {{name: {name}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: c, image: busybox:1.36}}]}}
"""


def test_delete_cascade_modes_act_on_dependents(kubectl):
    """--cascade on an owner with dependents (a ReplicaSet's pods). One pod is held by a
    finalizer, so the order of deletion shows: background removes the owner first,
    foreground keeps it (marked) until its dependents are gone, orphan keeps the pods."""
    import json
    import time

    def pods(app):
        return json.loads(kubectl("get", "pods", "-l", f"app={app}", "-o", "json"))["items"]

    def wait(cond, what):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.1)  # Polling with a deadline.
        raise AssertionError(f"timed out waiting for {what}")

    for mode in ["background", "foreground", "orphan"]:
        name = f"del-{mode}"
        kubectl("apply", "-f", "-", input=REPLICASET.format(name=name))
        wait(lambda: len(pods(name)) == 2, f"{name}'s pods")
        held = pods(name)[0]["metadata"]["name"]
        kubectl("patch", "pod", held, "--type=merge", "-p", '{"metadata":{"finalizers":["kiso.test/hold"]}}')
        out = kubectl("delete", "rs", name, f"--cascade={mode}", "--wait=false")
        assert f'replicaset.apps "{name}" deleted' in out
        rs = kubectl.run("get", "rs", name, "-o", "json", check=False)
        if mode == "foreground":
            # The owner waits, marked, for the dependent the finalizer holds.
            wait(lambda: [p["metadata"]["name"] for p in pods(name)] == [held], "the other pod gone")
            owner = json.loads(kubectl("get", "rs", name, "-o", "json"))
            assert owner["metadata"]["finalizers"] == ["foregroundDeletion"]
            assert owner["metadata"].get("deletionTimestamp")
        elif mode == "background":
            wait(lambda: kubectl.run("get", "rs", name, check=False).returncode == 1, "the owner gone")
            wait(lambda: [p["metadata"]["name"] for p in pods(name)] == [held], "the other pod gone")
        else:
            assert rs.returncode == 1 or json.loads(rs.stdout)["metadata"].get("deletionTimestamp")
            wait(lambda: kubectl.run("get", "rs", name, check=False).returncode == 1, "the owner gone")
            left = pods(name)
            assert len(left) == 2 and all(not p["metadata"].get("ownerReferences") for p in left)
            assert all(not p["metadata"].get("deletionTimestamp") for p in left)
        kubectl("patch", "pod", held, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
        if mode == "orphan":
            kubectl("delete", "pods", "-l", f"app={name}", "--timeout=30s")
        # --wait=true: kubectl returns once what it deleted is gone.
        assert kubectl.run("wait", "--for=delete", f"rs/{name}", "--timeout=30s", check=False).returncode == 0
        wait(lambda: not pods(name), f"{name}'s pods gone")


def test_error_messages_match_kubernetes(kubectl):
    p = kubectl.run("get", "pod", "missing", check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == 'Error from server (NotFound): pods "missing" not found'
    p = kubectl.run("get", "deploy", "missing", check=False)
    assert p.stderr.strip() == 'Error from server (NotFound): deployments.apps "missing" not found'
    bad = "apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec:\n  containers:\n  - name: c\n"
    p = kubectl.run("create", "-f", "-", input=bad, check=False)
    assert p.returncode == 1
    assert p.stderr.startswith('The Pod "Bad_Name" is invalid: \n* metadata.name: Invalid value: "Bad_Name": '
                               'a lowercase RFC 1123 subdomain must consist of')
    assert "* spec.containers[0].image: Required value" in p.stderr
    kubectl("create", "-f", "-", input=POD.format(name="twice", app="t"))
    p = kubectl.run("create", "-f", "-", input=POD.format(name="twice", app="t"), check=False)
    assert p.stderr.strip() == 'Error from server (AlreadyExists): error when creating "STDIN": pods "twice" already exists'
    unknown = POD.format(name="strict", app="t") + "  bogus: 1\n"
    p = kubectl.run("create", "-f", "-", input=unknown, check=False)
    assert p.returncode == 1 and "BadRequest" in p.stderr and 'unknown field "spec.bogus"' in p.stderr
    kubectl("delete", "pod", "twice")


def test_namespace_lifecycle(kubectl):
    kubectl("apply", "-f", "-", input="apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n")
    kubectl("apply", "-n", "team-a", "-f", "-", input=POD.format(name="inside", app="ns"))
    assert "default" in kubectl("get", "sa", "-n", "team-a", "-o", "name")
    out = kubectl("delete", "namespace", "team-a", "--timeout=30s")
    assert 'namespace "team-a" deleted' in out
    p = kubectl.run("get", "namespace", "team-a", check=False)
    assert p.returncode == 1 and 'namespaces "team-a" not found' in p.stderr


def test_pod_templates_are_served_and_defaulted(kubectl):
    kubectl("apply", "-f", "-", input="""
apiVersion: v1
kind: PodTemplate
metadata:
  name: worker
template:
  metadata:
    labels: {app: worker}
  spec:
    containers:
    - name: w
      image: busybox
""")
    got = json.loads(kubectl("get", "podtemplate", "worker", "-o", "json"))
    assert got["template"]["spec"]["restartPolicy"] == "Always"  # Defaulted as a pod's spec.
    assert "worker" in kubectl("get", "podtemplates")
    bad = kubectl.run("apply", "-f", "-", check=False, input="""
apiVersion: v1
kind: PodTemplate
metadata:
  name: broken
template:
  spec:
    containers:
    - name: w
""")
    assert bad.returncode != 0 and "template.spec.containers[0].image" in bad.stderr
    kubectl("delete", "podtemplate", "worker")

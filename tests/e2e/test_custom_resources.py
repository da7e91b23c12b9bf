"""CustomResourceDefinitions (issue 12): a definition established by the server,
its kind in discovery and served with every verb, its schema applied (a
violation's 422, unknown fields pruned or refused under Strict, defaults), its
status and scale subresources and printer columns, kubectl and the Python
client's CustomObjectsApi, and its objects deleted with it. The real kubectl
and the real kiso server (no node agent)."""
import json

import pytest

from conftest import wait_for

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames: [ct]
    categories: [all]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Spec, type: string, jsonPath: .spec.cronSpec}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [cronSpec]
            properties:
              cronSpec: {type: string, pattern: '^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'}
              image: {type: string}
              replicas: {type: integer, minimum: 1, maximum: 10, default: 1}
          status:
            type: object
            properties:
              replicas: {type: integer}
"""

CRONTAB = """
apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: my-new-cron-object
spec:
  cronSpec: "* * * * */5"
  image: my-awesome-cron-image
"""


def crd_established(kubectl):
    p = kubectl.run("get", "crd", "crontabs.stable.example.com", "-o", "json", check=False)
    if p.returncode != 0:
        return False
    conditions = json.loads(p.stdout).get("status", {}).get("conditions", [])
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


@pytest.fixture(scope="module")
def crontabs(kubectl):
    kubectl("apply", "-f", "-", input=CRD)
    kubectl("wait", "--for=condition=Established", "crd/crontabs.stable.example.com",
            "--timeout=30s")
    yield
    kubectl("delete", "crd", "crontabs.stable.example.com", "--ignore-not-found", "--wait=false")


def test_a_definition_is_established_and_its_kind_discovered(kubectl, crontabs):
    crd = json.loads(kubectl("get", "crd", "crontabs.stable.example.com", "-o", "json"))
    assert crd["status"]["acceptedNames"]["kind"] == "CronTab"
    assert crd["status"]["acceptedNames"]["listKind"] == "CronTabList"
    assert crd["status"]["storedVersions"] == ["v1"]
    assert "customresourcecleanup.apiextensions.k8s.io" in crd["metadata"]["finalizers"]
    resources = kubectl("api-resources", "--api-group=stable.example.com", "-o", "wide")
    line = [l for l in resources.splitlines() if l.startswith("crontabs")]
    assert line and "ct" in line[0].split() and "CronTab" in line[0].split(), resources
    assert "stable.example.com/v1" in kubectl("api-versions").split()


def test_kubectl_creates_lists_and_prints_columns(kubectl, crontabs):
    kubectl("apply", "-f", "-", input=CRONTAB)
    got = json.loads(kubectl("get", "crontab", "my-new-cron-object", "-o", "json"))
    assert got["spec"]["replicas"] == 1  # The schema's default.
    assert got["metadata"]["generation"] == 1
    out = kubectl("get", "ct")
    header, row = out.splitlines()[0].split(), out.splitlines()[1].split()
    assert header == ["NAME", "SPEC", "REPLICAS", "AGE"], out
    assert row[:6] == ["my-new-cron-object", "*", "*", "*", "*", "*/5"] and row[6] == "1", out
    assert "crontab.stable.example.com/my-new-cron-object" in kubectl("get", "all", "-o", "name")
    # Patches of every kind, then the generation moves with the spec.
    kubectl("patch", "crontab", "my-new-cron-object", "--type=merge", "-p", '{"spec":{"image":"b"}}')
    kubectl("patch", "crontab", "my-new-cron-object", "--type=json",
            "-p", '[{"op":"replace","path":"/spec/replicas","value":3}]')
    got = json.loads(kubectl("get", "crontab", "my-new-cron-object", "-o", "json"))
    assert (got["spec"]["image"], got["spec"]["replicas"], got["metadata"]["generation"]) == ("b", 3, 3)
    # Server-side apply: its manager owns what it set; another's change to it conflicts.
    ssa = CRONTAB.replace("my-new-cron-object", "applied")
    kubectl("apply", "--server-side", "--field-manager=tool", "-f", "-", input=ssa)
    p = kubectl.run("apply", "--server-side", "--field-manager=other", "-f", "-",
                    input=ssa.replace("my-awesome-cron-image", "other-image"), check=False)
    assert p.returncode != 0 and "conflict" in p.stderr.lower(), p.stderr
    got = json.loads(kubectl("get", "crontab", "applied", "-o", "json", "--show-managed-fields"))
    assert got["spec"]["image"] == "my-awesome-cron-image"
    assert "tool" in [m["manager"] for m in got["metadata"]["managedFields"]]


def test_the_schema_is_enforced_with_upstreams_messages(kubectl, crontabs):
    bad = CRONTAB.replace("my-new-cron-object", "bad").replace('"* * * * */5"', '"not cron"')
    bad += "  replicas: 20\n"
    p = kubectl.run("apply", "-f", "-", input=bad, check=False)
    assert p.returncode != 0
    assert ('The CronTab "bad" is invalid: \n'
            '* spec.cronSpec: Invalid value: "not cron": spec.cronSpec in body should match '
            "'^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'\n"
            '* spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10'
            ) in p.stderr, p.stderr
    p = kubectl.run("apply", "-f", "-", input=CRONTAB.replace("my-new-cron-object", "typed") +
                    "  replicas: three\n", check=False)
    assert ('spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: '
            '"string"') in p.stderr, p.stderr
    # kubectl validates strictly by default: an unknown field is refused…
    extra = CRONTAB.replace("my-new-cron-object", "extra") + "  colour: blue\n"
    p = kubectl.run("apply", "-f", "-", input=extra, check=False)
    assert p.returncode != 0 and 'unknown field "spec.colour"' in p.stderr, p.stderr
    # …and pruned without it.
    kubectl("apply", "--validate=false", "-f", "-", input=extra)
    got = json.loads(kubectl("get", "crontab", "extra", "-o", "json"))
    assert "colour" not in got["spec"]
    for name in ("bad", "typed"):
        assert kubectl.run("get", "crontab", name, check=False).returncode != 0  # Nothing stored.


def test_status_and_scale_subresources(kubectl, k8s, crontabs):
    import kubernetes
    api = kubernetes.client.CustomObjectsApi(k8s)
    kubectl("apply", "-f", "-", input=CRONTAB.replace("my-new-cron-object", "scaled"))
    # The main endpoint ignores status; /status sets it and nothing else.
    api.patch_namespaced_custom_object("stable.example.com", "v1", "default", "crontabs", "scaled",
                                       {"status": {"replicas": 7}, "spec": {"image": "c"}})
    got = api.get_namespaced_custom_object("stable.example.com", "v1", "default", "crontabs", "scaled")
    assert got.get("status", {}).get("replicas") is None and got["spec"]["image"] == "c"
    api.patch_namespaced_custom_object_status("stable.example.com", "v1", "default", "crontabs",
                                              "scaled", {"status": {"replicas": 2}, "spec": {"image": "d"}})
    got = api.get_namespaced_custom_object("stable.example.com", "v1", "default", "crontabs", "scaled")
    assert got["status"]["replicas"] == 2 and got["spec"]["image"] == "c"
    kubectl("scale", "crontab", "scaled", "--replicas=5")
    scale = api.get_namespaced_custom_object_scale("stable.example.com", "v1", "default", "crontabs",
                                                   "scaled")
    assert scale["spec"]["replicas"] == 5 and scale["status"]["replicas"] == 2
    # The HorizontalPodAutoscaler reads any kind's scale subresource: this one's replicas, and
    # (no labelSelectorPath in this definition) upstream's InvalidSelector.
    kubectl("autoscale", "crontab", "scaled", "--min=1", "--max=3", "--cpu-percent=50")

    def hpa_sees_the_scale():
        hpa = json.loads(kubectl("get", "hpa", "scaled", "-o", "json"))
        conditions = {c["type"]: (c["status"], c["reason"])
                      for c in hpa.get("status", {}).get("conditions", [])}
        return (hpa["status"].get("currentReplicas") == 5 and
                conditions.get("AbleToScale") == ("True", "SucceededGetScale") and
                conditions.get("ScalingActive") == ("False", "InvalidSelector"))
    wait_for(hpa_sees_the_scale, timeout=60, what="the HPA reading the custom kind's scale")
    kubectl("delete", "hpa", "scaled")


def test_the_python_client_custom_objects_api(k8s, crontabs):
    import kubernetes
    api = kubernetes.client.CustomObjectsApi(k8s)
    body = {"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "py"},
            "spec": {"cronSpec": "*/1 * * * *", "image": "x"}}
    created = api.create_namespaced_custom_object("stable.example.com", "v1", "default", "crontabs", body)
    assert created["spec"]["replicas"] == 1
    names = [o["metadata"]["name"] for o in api.list_namespaced_custom_object(
        "stable.example.com", "v1", "default", "crontabs", field_selector="metadata.name=py")["items"]]
    assert names == ["py"]
    watch = kubernetes.watch.Watch()
    rv = api.list_namespaced_custom_object("stable.example.com", "v1", "default",
                                           "crontabs")["metadata"]["resourceVersion"]
    api.delete_namespaced_custom_object("stable.example.com", "v1", "default", "crontabs", "py")
    for event in watch.stream(api.list_namespaced_custom_object, "stable.example.com", "v1", "default",
                              "crontabs", resource_version=rv, timeout_seconds=10):
        if event["type"] == "DELETED" and event["object"]["metadata"]["name"] == "py":
            watch.stop()
            break
    else:
        raise AssertionError("no DELETED event for py")
    with pytest.raises(kubernetes.client.exceptions.ApiException) as e:
        api.get_namespaced_custom_object("stable.example.com", "v1", "default", "crontabs", "py")
    assert e.value.status == 404


def test_a_bad_definition_is_refused(kubectl):
    bad = CRD.replace("name: crontabs.stable.example.com", "name: wrong.stable.example.com")
    bad = bad.replace("scope: Namespaced", "scope: Global")
    p = kubectl.run("apply", "-f", "-", input=bad, check=False)
    assert p.returncode != 0
    assert ('metadata.name: Invalid value: "wrong.stable.example.com": must be '
            'spec.names.plural+"."+spec.group') in p.stderr, p.stderr
    assert 'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"' in p.stderr
    assert kubectl.run("get", "crd", "wrong.stable.example.com", check=False).returncode != 0


def test_deleting_the_definition_deletes_its_objects(kubectl):
    crd = CRD.replace("crontabs", "widgets").replace("crontab", "widget").replace("CronTab", "Widget")
    crd = crd.replace("shortNames: [ct]", "shortNames: [wd]")
    kubectl("apply", "-f", "-", input=crd)
    kubectl("wait", "--for=condition=Established", "crd/widgets.stable.example.com", "--timeout=30s")
    kubectl("create", "namespace", "widgets")
    for ns in ("default", "widgets"):
        kubectl("apply", "-n", ns, "-f", "-",
                input=CRONTAB.replace("CronTab", "Widget").replace("my-new-cron-object", "w1"))
    kubectl("delete", "crd", "widgets.stable.example.com", "--timeout=60s")
    assert kubectl.run("get", "crd", "widgets.stable.example.com", check=False).returncode != 0
    # Created again, it starts empty: the objects went with the definition.
    kubectl("apply", "-f", "-", input=crd)
    kubectl("wait", "--for=condition=Established", "crd/widgets.stable.example.com", "--timeout=30s")
    assert kubectl("get", "widgets", "-A", "-o", "name").strip() == ""
    kubectl("delete", "crd", "widgets.stable.example.com", "--timeout=60s")
    kubectl("delete", "namespace", "widgets", "--wait=false")


WIDGETS = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.multi.example.com
spec:
  group: multi.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: string}, old: {type: string}}}
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: string}, color: {type: string, default: red}}}
  - name: v0
    served: false
    storage: false
    schema:
      openAPIV3Schema: {type: object}
"""


def test_several_versions_with_none_conversion(kubectl):
    """`None` conversion: an object written at any served version is stored at the storage
    version (defaulted and pruned by its schema) and read, listed and watched at any served
    one with only its apiVersion changed and what that version's schema lacks pruned; a
    version not served is not found."""
    kubectl("apply", "-f", "-", input=WIDGETS)
    try:
        kubectl("wait", "--for=condition=Established", "crd/widgets.multi.example.com",
                "--timeout=30s")
        kubectl("create", "-f", "-", input="""
apiVersion: multi.example.com/v1beta1
kind: Widget
metadata: {name: w, namespace: default}
spec: {size: big, old: kept}
""")
        at = {v: json.loads(kubectl("get", f"widgets.{v}.multi.example.com", "w", "-o", "json"))
              for v in ("v1beta1", "v1")}
        assert at["v1beta1"]["apiVersion"] == "multi.example.com/v1beta1"
        assert at["v1"]["apiVersion"] == "multi.example.com/v1"
        assert at["v1beta1"]["spec"]["size"] == at["v1"]["spec"]["size"] == "big"
        # Stored at v1, defaulted by its schema; read at v1beta1, pruned by that one's.
        assert at["v1"]["spec"] == {"size": "big", "color": "red"}
        assert at["v1beta1"]["spec"] == {"size": "big"}
        assert at["v1"]["metadata"]["uid"] == at["v1beta1"]["metadata"]["uid"]
        assert at["v1"]["metadata"]["resourceVersion"] == at["v1beta1"]["metadata"]["resourceVersion"]
        # Lists and watches at either version see it, at their version.
        listed = json.loads(kubectl("get", "widgets.v1.multi.example.com", "-o", "json"))
        assert [i["apiVersion"] for i in listed["items"]] == ["multi.example.com/v1"]
        watched = kubectl("get", "--raw", "/apis/multi.example.com/v1beta1/namespaces/default/"
                          "widgets?watch=1&timeoutSeconds=1")
        event = json.loads(watched.splitlines()[0])
        assert (event["type"], event["object"]["apiVersion"]) == ("ADDED",
                                                                  "multi.example.com/v1beta1")
        # An update at v1 is read back at v1beta1.
        kubectl("patch", "widgets.v1.multi.example.com", "w", "--type=merge", "-p",
                '{"spec": {"size": "small"}}')
        back = json.loads(kubectl("get", "widgets.v1beta1.multi.example.com", "w", "-o", "json"))
        assert (back["apiVersion"], back["spec"]["size"]) == ("multi.example.com/v1beta1", "small")
        missing = kubectl.run("get", "widgets.v0.multi.example.com", "w", check=False)
        assert missing.returncode != 0
    finally:
        kubectl("delete", "crd", "widgets.multi.example.com", "--ignore-not-found")

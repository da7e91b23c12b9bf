"""Services (issue 13), API side: node ports allocated from 30000-32767 atomically with the
Service, refused with upstream's messages, given back on delete and on a type change. The real
kubectl against the real kiso server (no node agent)."""
import json

from conftest import wait_for

import pytest


@pytest.fixture
def ns(kubectl, request):
    name = "s-" + request.node.name.replace("_", "-")[5:40].strip("-").lower()
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


def get(kubectl, *args):
    return json.loads(kubectl("get", *args, "-o", "json"))


def node_port_service(name, node_port=None, type_="NodePort", ports=None):
    ports = ports or [{"port": 80, "protocol": "TCP", **({"nodePort": node_port} if node_port else {})}]
    return json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                       "spec": {"type": type_, "selector": {"app": name}, "ports": ports}})


def test_node_ports_are_allocated_and_given_back(kubectl, ns):
    kubectl("create", "service", "nodeport", "a", "-n", ns, "--tcp=80:8080", "--tcp=81:8081")
    ports = [p["nodePort"] for p in get(kubectl, "service", "a", "-n", ns)["spec"]["ports"]]
    assert len(set(ports)) == 2 and all(30000 <= p <= 32767 for p in ports), ports
    taken = ports[0]

    # The same port for another Service: refused with upstream's message, nothing stored.
    p = kubectl.run("create", "-n", ns, "-f", "-", input=node_port_service("b", taken), check=False)
    assert p.returncode != 0
    assert (f'The Service "b" is invalid: spec.ports[0].nodePort: Invalid value: {taken}: '
            "provided port is already allocated") in p.stderr, p.stderr
    assert kubectl.run("get", "service", "b", "-n", ns, check=False).returncode != 0

    # Out of range.
    p = kubectl.run("create", "-n", ns, "-f", "-", input=node_port_service("c", 80), check=False)
    assert ("spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. "
            "The range of valid ports is 30000-32767") in p.stderr, p.stderr
    # A node port where the type has none.
    p = kubectl.run("create", "-n", ns, "-f", "-",
                    input=node_port_service("d", 30001, type_="ClusterIP"), check=False)
    assert "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'" in p.stderr

    # An update that leaves the node ports out keeps them (kubectl replace of a fresh manifest).
    svc = get(kubectl, "service", "a", "-n", ns)
    for port in svc["spec"]["ports"]:
        del port["nodePort"]
    kubectl("replace", "-f", "-", input=json.dumps(svc))
    assert [p["nodePort"] for p in get(kubectl, "service", "a", "-n", ns)["spec"]["ports"]] == ports

    # Turned into a ClusterIP Service, it gives its ports back: "b" may now take one.
    kubectl("patch", "service", "a", "-n", ns, "-p", '{"spec":{"type":"ClusterIP"}}')
    assert all("nodePort" not in p for p in get(kubectl, "service", "a", "-n", ns)["spec"]["ports"])
    kubectl("create", "-n", ns, "-f", "-", input=node_port_service("b", taken))
    assert get(kubectl, "service", "b", "-n", ns)["spec"]["ports"][0]["nodePort"] == taken

    # Deleted, it gives the port back; one Service may use one port for TCP and UDP.
    kubectl("delete", "service", "b", "-n", ns)
    both = [{"name": "t", "port": 53, "protocol": "TCP", "nodePort": taken},
            {"name": "u", "port": 53, "protocol": "UDP", "nodePort": taken}]
    kubectl("create", "-n", ns, "-f", "-", input=node_port_service("e", ports=both))
    assert [p["nodePort"] for p in get(kubectl, "service", "e", "-n", ns)["spec"]["ports"]] == [taken] * 2


def test_load_balancer_local_gets_a_health_check_port(kubectl, ns):
    svc = json.loads(node_port_service("lb", type_="LoadBalancer"))
    svc["spec"]["externalTrafficPolicy"] = "Local"
    kubectl("create", "-n", ns, "-f", "-", input=json.dumps(svc))
    spec = get(kubectl, "service", "lb", "-n", ns)["spec"]
    assert 30000 <= spec["healthCheckNodePort"] <= 32767
    assert spec["healthCheckNodePort"] != spec["ports"][0]["nodePort"]
    # Back to Cluster: the health-check port goes (upstream drops it with the policy).
    kubectl("patch", "service", "lb", "-n", ns, "-p", '{"spec":{"externalTrafficPolicy":"Cluster"}}')
    assert "healthCheckNodePort" not in get(kubectl, "service", "lb", "-n", ns)["spec"]


def test_cluster_ip_and_external_name_changes(kubectl, ns):
    kubectl("create", "service", "clusterip", "x", "-n", ns, "--tcp=80:80")
    ip = get(kubectl, "service", "x", "-n", ns)["spec"]["clusterIP"]
    p = kubectl.run("patch", "service", "x", "-n", ns, "-p", '{"spec":{"clusterIP":"10.43.9.9"}}',
                    check=False)
    assert "spec.clusterIP: Invalid value: \"10.43.9.9\": field is immutable" in p.stderr, p.stderr
    # To ExternalName: the address is given back, and another Service may ask for it.
    kubectl("patch", "service", "x", "-n", ns, "-p",
            '{"spec":{"type":"ExternalName","externalName":"example.org"}}')
    assert "clusterIP" not in get(kubectl, "service", "x", "-n", ns)["spec"]
    again = json.loads(node_port_service("y", type_="ClusterIP"))
    again["spec"]["clusterIP"] = ip
    kubectl("create", "-n", ns, "-f", "-", input=json.dumps(again))
    assert get(kubectl, "service", "y", "-n", ns)["spec"]["clusterIP"] == ip


def test_endpoint_slices_follow_pods(kubectl, ns):
    kubectl("create", "service", "clusterip", "web", "-n", ns, "--tcp=80:8080")
    kubectl("run", "web-1", "-n", ns, "--image=busybox", "--labels=app=web")
    # No node agent here: the status a kubelet would write.
    kubectl("patch", "pod", "web-1", "-n", ns, "--subresource=status", "--type=merge", "-p",
            json.dumps({"status": {"phase": "Running", "podIP": "10.42.9.9",
                                   "conditions": [{"type": "Ready", "status": "True"}]}}))

    def slices():
        return get(kubectl, "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=web")["items"]

    wait_for(lambda: slices() and slices()[0].get("endpoints"), 10, "an EndpointSlice")
    s = slices()[0]
    assert s["metadata"]["name"].startswith("web-") and s["addressType"] == "IPv4"
    assert s["metadata"]["ownerReferences"][0]["kind"] == "Service"
    assert s["ports"] == [{"name": "80-8080", "port": 8080, "protocol": "TCP"}], s["ports"]
    assert s["endpoints"][0]["addresses"] == ["10.42.9.9"]
    assert s["endpoints"][0]["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert "10.42.9.9:8080" in kubectl("describe", "service", "web", "-n", ns)
    # The kubernetes Service's own slice, written by the server.
    k = get(kubectl, "endpointslice", "kubernetes", "-n", "default")
    assert k["ports"][0]["name"] == "https" and k["endpoints"][0]["conditions"]["ready"]


def test_kiso_annotations_are_checked(kubectl, ns):
    svc = json.loads(node_port_service("lb", type_="ClusterIP"))
    svc["metadata"]["annotations"] = {"kiso.dev/load-balancer": "fastest"}
    p = kubectl.run("create", "-n", ns, "-f", "-", input=json.dumps(svc), check=False)
    assert ('metadata.annotations[kiso.dev/load-balancer]: Unsupported value: "fastest": supported '
            'values: "round-robin", "least-connections", "source-ip-hash", "weighted-round-robin", '
            '"consistent-hash"') in p.stderr, p.stderr
    p = kubectl.run("run", "w", "-n", ns, "--image=busybox", "--annotations=kiso.dev/weight=1.5",
                    check=False)
    assert 'metadata.annotations[kiso.dev/weight]: Invalid value: "1.5": must be a positive integer' in p.stderr

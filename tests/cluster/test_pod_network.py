"""The pod network across nodes, one conformance suite for its two implementations (vxlan and
host-gw): three nodes, each a network namespace of its own, on two servers and a three-member
etcd (cluster.py). Pods reach pods and Services on other nodes, nodes reach pods on others,
1,400-byte packets with DF set get through, and what a node that leaves had is taken away."""
import json
import os

import pytest

from cluster import Cluster, diagnostics_on_failure, pod_on, wait_for  # noqa: F401

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and nodes need root")

HTTPD = ["sh", "-c", "mkdir -p /www && head -c 200000 /dev/zero | tr '\\0' x > /www/big"
         " && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"]


@pytest.fixture(scope="module", params=["vxlan", "host-gw"])
def cluster(request):
    with Cluster(backend=request.param) as c:
        k = c.kubectl
        try:
            n1, n2, n3 = (n.name for n in c.nodes)
            k("apply", "-f", "-", input=pod_on(n2, "web", HTTPD, restart="Always"))
            k("apply", "-f", "-", input=pod_on(n1, "client", ["sleep", "3600"], restart="Always"))
            for name in ("web", "client"):
                wait_for(lambda: pod(k, name)["status"].get("phase") == "Running", 90,
                         f"{name} Running")
            yield c
        except BaseException:
            c.print_diagnostics()  # Setting up failed.
            raise
        finally:
            k("delete", "pods", "--all", "--wait=true", "--timeout=60s", check=False)


def pod(k, name):
    return json.loads(k("get", "pod", name, "-o", "json"))


def test_every_node_has_a_range_of_its_own_and_says_how_to_reach_it(cluster):
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json"))["items"]
    ranges = [n["spec"]["podCIDR"] for n in nodes]
    assert len(set(ranges)) == 3 and all(r.endswith("/24") for r in ranges), ranges
    prefix = cluster.cluster_cidr.split(".0.0/")[0] + "."
    assert all(r.startswith(prefix) for r in ranges), (ranges, cluster.cluster_cidr)
    for n in nodes:
        a = n["metadata"]["annotations"]
        assert a["kiso.dev/network-backend"] == cluster.backend
        assert a["kiso.dev/public-ip"] == cluster.node(n["metadata"]["name"]).ip
        assert ("kiso.dev/vtep-mac" in a) == (cluster.backend == "vxlan")


def test_a_pod_reaches_a_pod_on_another_node(cluster):
    k = cluster.kubectl
    web = pod(k, "web")["status"]["podIP"]
    out = wait_for(lambda: k.run("exec", "client", "--", "wget", "-q", "-O", "-",
                                 f"http://{web}:8080/", check=False).stdout, 30,
                   "the client's request to web on another node")
    assert out == "hello from web\n"
    # The answer's source is web's own address: not masqueraded between pods.
    big = k("exec", "client", "--", "sh", "-c",
            f"wget -q -O - http://{web}:8080/big | wc -c")
    assert big.strip() == "200000"  # Full-sized segments across: the pods' MTU is right.


def test_a_pod_reaches_a_service_whose_endpoint_is_on_another_node(cluster):
    k = cluster.kubectl
    k("expose", "pod", "web", "--port", "80", "--target-port", "8080", "--name", "web")
    ip = json.loads(k("get", "service", "web", "-o", "json"))["spec"]["clusterIP"]
    out = wait_for(lambda: k.run("exec", "client", "--", "wget", "-q", "-O", "-",
                                 f"http://{ip}/", check=False).stdout, 30,
                   "the client's request to the Service")
    assert out == "hello from web\n"


def test_a_node_reaches_a_pod_on_another_node_with_full_sized_packets(cluster):
    web = pod(cluster.kubectl, "web")["status"]["podIP"]
    n3 = cluster.nodes[2]
    # 1,400 bytes with DF set (1,372 of ICMP payload and 28 of headers): no fragmenting.
    p = wait_for(lambda: (r := n3.sh("ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1372",
                                     web, check=False)).returncode == 0 and r, 30,
                 "a 1,400-byte DF ping from a third node")
    assert "1 received" in p.stdout, p.stdout


def test_a_node_that_leaves_takes_its_routes_with_it(cluster):
    k = cluster.kubectl
    n1, n3 = cluster.nodes[0], cluster.nodes[2]
    gone = json.loads(k("get", "node", n3.name, "-o", "json"))["spec"]["podCIDR"]
    assert gone in n1.sh("ip", "route").stdout
    n3.agent.terminate()
    n3.agent.wait()
    k("delete", "node", n3.name)
    wait_for(lambda: gone not in n1.sh("ip", "route").stdout, 30,
             f"{n1.name}'s route to {gone} to go")
    assert "proto 75" in n1.sh("ip", "route").stdout  # Its route to n2 stays.

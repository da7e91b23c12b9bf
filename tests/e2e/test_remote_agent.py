"""`kiso agent` joining a `kiso server` that runs no agent of its own, over HTTPS
with the server's CA and a bootstrap token: the agent gets a client certificate
of its own (system:node:NAME, approved and signed by the server), the machine
becomes a node and runs pods, and kubectl's logs and exec reach them down the
tunnels the agent dials in — all with the node's own credentials."""
import json
import os
import ssl
import subprocess
import tempfile
import threading
import urllib.request

import pytest

from conftest import (KISO_BIN, Kubectl, Server, etcd_member, free_port, node_reset, terminate,
                      wait_for)
from images import build_oci_archive
from test_node import SERVICE_CIDR, SLOT, leftovers, simple_pod

NODE = "kiso-remote-node"
BRIDGE = f"kisoremote{SLOT}"
POD_CIDR = f"10.235.{SLOT}.0/24"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the node agent needs root")


def test_agent_joins_over_https_and_runs_pods():
    s = Server(["--service-cidr", SERVICE_CIDR])  # --disable-agent: no node of its own.
    k = Kubectl(s)
    data = tempfile.mkdtemp(prefix="kiso-agent-")
    image = build_oci_archive(os.path.join(data, "busybox.tar"), "docker.io/library/busybox:1.35")
    subprocess.run([KISO_BIN, "image", "--data-dir", data, "import", image], check=True,
                   capture_output=True)
    log = open(os.path.join(data, "agent.log"), "wb")

    # A bootstrap token (kubeadm's form), which may only ask for node certificates.
    made = subprocess.run([KISO_BIN, "token", "create", "--data-dir", s.dir, "--description",
                           "e2e"], check=True, capture_output=True, text=True).stdout.strip()
    token_id, secret = made.split(".")
    stored = json.loads(k("get", "secret", f"bootstrap-token-{token_id}", "-n", "kube-system",
                          "-o", "json"))
    assert stored["type"] == "bootstrap.kubernetes.io/token" and "expiration" in stored["data"]

    def start_agent():
        agent = subprocess.Popen(
            [KISO_BIN, "agent", "--server", f"https://127.0.0.1:{s.port}", "--token",
             f"{token_id}.{secret}",
             "--ca-file", os.path.join(s.dir, "tls", "ca.crt"), "--data-dir", data,
             "--node-name", NODE, "--pod-cidr", POD_CIDR,
             "--cni-bridge", BRIDGE, "--ingress-http-port", "0", "--ingress-https-port", "0"],
            stdout=subprocess.PIPE, stderr=log, text=True)
        for line in agent.stdout:  # Log lines, then the one that says it joined.
            if line.startswith("kiso agent:"):
                break
        assert line.startswith(f"kiso agent: node {NODE} joined"), line
        threading.Thread(target=lambda: [None for _ in agent.stdout], daemon=True).start()
        return agent

    agent = None
    try:
        agent = start_agent()
        wait_for(lambda: "Ready" in k("get", "node", NODE, "--no-headers", check=False),
                 what="the node Ready")
        node = json.loads(k("get", "node", NODE, "-o", "json"))
        assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("runc://")
        # Its credentials are its own: a certificate requested with the token, approved by the
        # server; the Node was written by system:node:NAME.
        csrs = json.loads(k("get", "csr", "-o", "json"))["items"]
        assert [c["spec"]["username"] for c in csrs] == [f"system:bootstrap:{token_id}"]
        assert "Approved,Issued" in k("get", "csr")
        ctx = ssl.create_default_context(cafile=os.path.join(s.dir, "tls", "ca.crt"))
        ctx.check_hostname = False
        ctx.load_cert_chain(os.path.join(data, "agent", "node.crt"),
                            os.path.join(data, "agent", "node.key"))
        review = urllib.request.Request(
            f"https://127.0.0.1:{s.port}/apis/authentication.k8s.io/v1/selfsubjectreviews",
            method="POST", headers={"Content-Type": "application/json"},
            data=b'{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}')
        with urllib.request.urlopen(review, context=ctx, timeout=10) as r:
            assert json.loads(r.read())["status"]["userInfo"]["username"] == f"system:node:{NODE}"
        k("apply", "-f", "-", input=simple_pod("remote", ["sh", "-c", "echo from afar"]).replace(
            "image: busybox", "image: busybox:1.35"))
        wait_for(lambda: json.loads(k("get", "pod", "remote", "-o", "json"))["status"].get("phase")
                 == "Succeeded", what="remote Succeeded")
        pod = json.loads(k("get", "pod", "remote", "-o", "json"))
        assert pod["spec"]["nodeName"] == NODE and pod["status"]["podIP"].startswith(f"10.235.{SLOT}.")
        # Streams go down the agent's tunnels: logs, exec with stdin, exit codes.
        assert k("logs", "remote") == "from afar\n"
        k("apply", "-f", "-", input=simple_pod("shell", ["sleep", "3600"], restart="Always").replace(
            "image: busybox", "image: busybox:1.35"))
        wait_for(lambda: json.loads(k("get", "pod", "shell", "-o", "json"))["status"].get("phase")
                 == "Running", what="shell Running")
        assert k("exec", "shell", "--", "hostname") == "shell\n"
        # metrics.k8s.io reads a remote node's summary down its tunnel: kubectl top works.
        top = wait_for(lambda: (r := k.run("top", "node", NODE, "--no-headers", check=False))
                       .returncode == 0 and r.stdout, what="kubectl top node")
        assert top.split()[0] == NODE, top
        top = wait_for(lambda: (r := k.run("top", "pod", "shell", "--no-headers", check=False))
                       .returncode == 0 and r.stdout, what="kubectl top pod")
        assert top.split()[0] == "shell" and top.split()[2].endswith("Mi"), top
        assert k("exec", "-i", "shell", "--", "cat", input="up the tunnel\n") == "up the tunnel\n"
        p = k.run("exec", "shell", "--", "sh", "-c", "exit 3", check=False)
        assert p.returncode == 3, p.stderr
        # More streams at once than the agent keeps idle tunnels for.
        follows = [subprocess.Popen(["kubectl", "--kubeconfig", s.kubeconfig, "logs", "-f", "shell"],
                                    stdout=subprocess.PIPE, text=True) for _ in range(3)]
        try:
            assert k("logs", "remote") == "from afar\n"
        finally:
            for f in follows:
                f.kill()
                f.wait()
        # A restarted agent's fresh tunnels replace the dead one's; it keeps its certificate.
        agent.kill()
        agent.wait()
        agent = start_agent()
        assert len(json.loads(k("get", "csr", "-o", "json"))["items"]) == 1
        assert k("logs", "remote") == "from afar\n"
        k("delete", "pod", "remote", "shell", "--wait=true")
        assert not leftovers(data, BRIDGE)
        # With no agent connected the server says so.
        terminate(agent)
        agent = None
        k("apply", "-f", "-", input=simple_pod("orphan", ["true"]).replace(
            "spec:", f"spec:\n  nodeName: {NODE}"))
        logs = k.run("logs", "orphan", check=False)
        assert logs.returncode != 0 and "no kiso agent of node" in logs.stderr, logs.stderr
    finally:
        if agent:
            terminate(agent)
        log.close()
        try:
            s.stop()
        finally:  # Also when the server did not stop cleanly.
            node_reset(data)
            subprocess.run(["rm", "-rf", data])


def test_agent_follows_every_server_and_fails_over(tmp_path):
    """Two servers on one etcd, each on a loopback address of its own; an agent told of the
    first only learns the second from the kubernetes Service, dials its tunnels to both (logs
    through either) and, when the first dies, goes on through the second: a pod created then
    runs on it."""
    with etcd_member() as etcd:
        port = free_port()
        flags = ["--store", f"etcd://{etcd}", "--service-cidr", SERVICE_CIDR,
                 "--apiserver-lease-duration", "3", "--leader-elect-lease-duration", "3s",
                 "--leader-elect-renew-deadline", "2s", "--leader-elect-retry-period", "500ms"]
        first = Server(flags, address="127.0.0.2", port=port)
        second = agent = None
        data = tempfile.mkdtemp(prefix="kiso-agent-")
        log = open(os.path.join(data, "agent.log"), "wb")
        try:
            second = Server(flags + first.join_args(), address="127.0.0.3", port=port)
            k1, k2 = Kubectl(first), Kubectl(second)
            image = build_oci_archive(os.path.join(data, "busybox.tar"),
                                      "docker.io/library/busybox:1.35")
            subprocess.run([KISO_BIN, "image", "--data-dir", data, "import", image], check=True,
                           capture_output=True)
            token = subprocess.run([KISO_BIN, "token", "create", "--data-dir", first.dir],
                                   check=True, capture_output=True, text=True).stdout.strip()
            agent = subprocess.Popen(
                [KISO_BIN, "agent", "--server", f"https://127.0.0.2:{port}", "--token", token,
                 "--ca-file", os.path.join(first.dir, "tls", "ca.crt"), "--data-dir", data,
                 "--node-name", NODE, "--pod-cidr", POD_CIDR, "--cni-bridge", BRIDGE,
                 "--ingress-http-port", "0", "--ingress-https-port", "0"],
                stdout=log, stderr=subprocess.STDOUT)
            wait_for(lambda: "Ready" in k2("get", "node", NODE, "--no-headers", check=False),
                     what="the node Ready")

            def agent_log():
                log.flush()
                with open(os.path.join(data, "agent.log"), errors="replace") as f:
                    return f.read()
            wait_for(lambda: f"https://127.0.0.2:{port}, https://127.0.0.3:{port}" in agent_log(),
                     what="the agent to learn both servers")
            k1("apply", "-f", "-", input=simple_pod("shell", ["sh", "-c", "echo up; sleep 3600"],
                                                    restart="Always").replace(
                "image: busybox", "image: busybox:1.35"))
            wait_for(lambda: json.loads(k1("get", "pod", "shell", "-o", "json"))["status"]
                     .get("phase") == "Running", what="shell Running")
            # Logs through either server: each holds tunnels of the node's.
            wait_for(lambda: k1.run("logs", "shell", check=False).stdout == "up\n"
                     and k2.run("logs", "shell", check=False).stdout == "up\n",
                     what="logs through both servers")

            first.kill()
            k2("apply", "-f", "-", input=simple_pod("after", ["sh", "-c", "echo after"]).replace(
                "image: busybox", "image: busybox:1.35"))
            wait_for(lambda: json.loads(k2("get", "pod", "after", "-o", "json"))["status"]
                     .get("phase") == "Succeeded", 60, "a pod made after the first server died")
            assert k2("logs", "after") == "after\n"
            assert k2("logs", "shell") == "up\n"
            lease = json.loads(k2("get", "lease", NODE, "-n", "kube-node-lease", "-o", "json"))
            renewed = lease["spec"]["renewTime"]
            wait_for(lambda: json.loads(k2("get", "lease", NODE, "-n", "kube-node-lease", "-o",
                                           "json"))["spec"]["renewTime"] != renewed,
                     30, "the node's heartbeat through the second server")
            k2("delete", "pod", "shell", "after", "--wait=true")
            assert not leftovers(data, BRIDGE)
        except BaseException:
            log.flush()
            with open(os.path.join(data, "agent.log"), errors="replace") as f:
                print("the agent's log:\n" + f.read()[-6000:])
            raise
        finally:
            if agent:
                terminate(agent)
            log.close()
            try:
                if second:
                    second.close()
                first.close()
            finally:
                node_reset(data)
                subprocess.run(["rm", "-rf", data])

"""`kiso agent` joining a `kiso server` that runs no agent of its own, over HTTPS
with the server's CA and token: the machine becomes a node and runs pods."""
import json
import os
import subprocess
import tempfile
import threading

import pytest

from conftest import KISO_BIN, Kubectl, Server, terminate, wait_for
from images import build_oci_archive
from test_node import leftovers, run, simple_pod

NODE = "kiso-remote-node"
BRIDGE = f"kisoremote{os.getpid() % 1000}"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the node agent needs root")


def test_agent_joins_over_https_and_runs_pods():
    s = Server()  # --disable-agent: no node of its own.
    k = Kubectl(s)
    data = tempfile.mkdtemp(prefix="kiso-agent-")
    image = build_oci_archive(os.path.join(data, "busybox.tar"), "docker.io/library/busybox:1.35")
    subprocess.run([KISO_BIN, "image", "--data-dir", data, "import", image], check=True,
                   capture_output=True)
    log = open(os.path.join(data, "agent.log"), "wb")
    agent = subprocess.Popen(
        [KISO_BIN, "agent", "--server", f"https://127.0.0.1:{s.port}", "--token", s.token,
         "--ca-file", os.path.join(s.dir, "tls", "ca.crt"), "--data-dir", data,
         "--node-name", NODE, "--pod-cidr", f"10.235.{os.getpid() % 250}.0/24", "--cni-bridge", BRIDGE],
        stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        for line in agent.stdout:  # Log lines, then the one that says it joined.
            if line.startswith("kiso agent:"):
                break
        assert line.startswith(f"kiso agent: node {NODE} joined"), line
        threading.Thread(target=lambda: [None for _ in agent.stdout], daemon=True).start()
        wait_for(lambda: "Ready" in k("get", "node", NODE, "--no-headers", check=False),
                 what="the node Ready")
        node = json.loads(k("get", "node", NODE, "-o", "json"))
        assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("runc://")
        k("apply", "-f", "-", input=simple_pod("remote", ["sh", "-c", "echo from afar"]).replace(
            "image: busybox", "image: busybox:1.35"))
        wait_for(lambda: json.loads(k("get", "pod", "remote", "-o", "json"))["status"].get("phase")
                 == "Succeeded", what="remote Succeeded")
        pod = json.loads(k("get", "pod", "remote", "-o", "json"))
        assert pod["spec"]["nodeName"] == NODE and pod["status"]["podIP"].startswith(f"10.235.{os.getpid() % 250}.")
        # Streams are served for the server's own agent only (said, not hidden).
        logs = k.run("logs", "remote", check=False)
        assert logs.returncode != 0 and "no kiso agent serving container streams" in logs.stderr
        k("delete", "pod", "remote", "--wait=true")
        assert not leftovers(data)
    finally:
        terminate(agent)
        log.close()
        s.stop()
        run("ip", "link", "del", BRIDGE)
        subprocess.run(["rm", "-rf", data])

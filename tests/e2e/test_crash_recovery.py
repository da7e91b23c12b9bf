"""Fault injection in the node agent's pod start: `kiso server` is killed
(SIGKILL, by KISO_CRASH_AT) at each step — sandbox made, CNI ADD done, its
result cached, container created, container started — then restarted. The
restarted agent must converge: the pod Running with one container, one
sandbox and one address, and after its deletion nothing left behind."""
import json
import os
import subprocess

import pytest

from conftest import KISO_BIN, Kubectl, Server, node_reset, wait_for
from images import build_oci_archive
from test_node import SERVICE_CIDR, SLOT, leftovers, run

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the node agent needs root")

POINTS = ["sandbox", "cni", "cni-cached", "container-created", "container-started"]
NODE = "kiso-crash-node"

POD = """apiVersion: v1
kind: Pod
metadata: {name: survivor}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: "busybox:crash", imagePullPolicy: Never, command: [sleep, "3600"]}
"""


def import_image(data_dir):
    archive = os.path.join(data_dir, "busybox.tar")
    build_oci_archive(archive, "docker.io/library/busybox:crash")
    subprocess.run([KISO_BIN, "image", "--data-dir", data_dir, "import", archive], check=True,
                   capture_output=True)


def pod(k):
    p = k.run("get", "pod", "survivor", "-o", "json", check=False)
    return json.loads(p.stdout) if p.returncode == 0 else None


@pytest.mark.parametrize("point", POINTS)
def test_a_restarted_agent_converges_after_a_crash_at(point):
    n = POINTS.index(point)
    bridge = f"kisocrash{SLOT}-{n}"
    pods = f"10.{236 + n}.{SLOT}."  # A range per crash point: none inherits another's leftovers.
    s = Server(["--node-name", NODE, "--pod-cidr", pods + "0/24",
                "--service-cidr", SERVICE_CIDR, "--cni-bridge", bridge], agent=True,
               env={"KISO_CRASH_AT": point}, setup=import_image)
    try:
        k = Kubectl(s)
        wait_for(lambda: "Ready" in k("get", "node", NODE, "--no-headers", check=False), 20)
        k("apply", "-f", "-", input=POD)
        s.proc.wait(timeout=60)  # It kills itself at the point.
        assert s.proc.returncode == -9, s.logs()
        assert f"crash point {point}" in s.logs()
        s.env = {}
        s.start()
        wait_for(lambda: (pod(k) or {}).get("status", {}).get("phase") == "Running", 60,
                 "the pod Running after the restart")
        p = pod(k)
        assert p["status"]["podIP"].startswith(pods)
        state = os.path.join(s.dir, "agent", "runtime", "state")
        containers = run("runc", "--root", state, "list", "-q").stdout.split()
        assert len(containers) == 1, containers
        sandboxes = os.listdir(os.path.join(s.dir, "agent", "runtime", "sandboxes"))
        assert len(sandboxes) == 1, sandboxes
        ipam = os.path.join(s.dir, "agent", "cni", "ipam", "kiso")
        leases = [f for f in os.listdir(ipam) if f.startswith("10.")]
        assert leases == [p["status"]["podIP"]], leases
        assert k("exec", "survivor", "--", "hostname") == "survivor\n"
        k("delete", "pod", "survivor", "--wait=true", timeout=60)
        assert not leftovers(s.dir, bridge)
    finally:
        try:
            s.stop(keep_dir=True)
        finally:  # Also when the server did not stop cleanly.
            node_reset(s.dir)
            subprocess.run(["rm", "-rf", s.dir])

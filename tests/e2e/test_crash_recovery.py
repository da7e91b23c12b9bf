"""Fault injection in the node agent's pod start: `kiso server` is killed
(SIGKILL, by KISO_CRASH_AT) at each step — sandbox made, CNI ADD done, its
result cached, container created, container started — then restarted. The
restarted agent must converge: the pod Running with one container, one
sandbox and one address, and after its deletion nothing left behind. And a
node killed with pods under both runtime handlers: `kiso node reset` leaves
nothing of either."""
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


def test_node_reset_after_a_crash_removes_what_every_handler_ran():
    """A node killed with pods running under both handlers (runc, and crun by RuntimeClass):
    `kiso node reset` removes the containers of each runtime, their shims, mounts and
    addresses."""
    bridge = f"kisocrash{SLOT}-r"
    pods = f"10.{236 + len(POINTS)}.{SLOT}."
    s = Server(["--node-name", NODE, "--pod-cidr", pods + "0/24",
                "--service-cidr", SERVICE_CIDR, "--cni-bridge", bridge], agent=True,
               setup=import_image)
    try:
        k = Kubectl(s)
        wait_for(lambda: "Ready" in k("get", "node", NODE, "--no-headers", check=False), 20)
        k("apply", "-f", "-", input="apiVersion: node.k8s.io/v1\nkind: RuntimeClass\n"
                                   "metadata: {name: fast}\nhandler: crun\n")
        k("apply", "-f", "-", input=POD)
        k("apply", "-f", "-", input=POD.replace("name: survivor", "name: fast").replace(
            "spec:\n", "spec:\n  runtimeClassName: fast\n"))
        for name in ("survivor", "fast"):
            wait_for(lambda: json.loads(k("get", "pod", name, "-o", "json"))["status"].get(
                "phase") == "Running", 60, f"{name} Running")
        runtime = os.path.join(s.dir, "agent", "runtime")
        assert len(run("crun", "--root", os.path.join(runtime, "state-crun"), "list",
                       "-q").stdout.split()) == 1
        s.proc.kill()
        s.proc.wait(timeout=30)
        report = node_reset(s.dir)
        # (Looked at first: `crun list` makes its state directory when it is missing.)
        assert not os.path.exists(os.path.join(runtime, "state-crun")), report
        assert not leftovers(s.dir, bridge), report
    finally:
        try:
            if s.proc.poll() is None:  # A failure before the kill.
                s.stop(keep_dir=True)
            else:
                s.log.close()
        finally:
            node_reset(s.dir)
            subprocess.run(["rm", "-rf", s.dir])

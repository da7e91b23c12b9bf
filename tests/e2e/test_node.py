"""Real containers: kiso server with its embedded node agent, runc, CNI and a
busybox image built from busybox-static on the spot, driven by the real kubectl.

Every test polls with a deadline; at the end every pod is deleted through the
API and nothing may be left on the machine (containers, shims, mounts,
veths, addresses); then `kiso node reset` removes whatever a failure left."""
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import KISO_BIN, Kubectl, Server, machine_slot, mapped_files, node_reset, wait_for
from images import build_oci_archive
from registry import LocalRegistry

# Per test process, so that suites running at once do not share a bridge or addresses.
SLOT = machine_slot()
BRIDGE = f"kisoe2e{SLOT}"
# The cluster's pod range is one /24, which the server's node IPAM gives the node
# (no --pod-cidr: the agent waits for its Node's spec.podCIDR).
POD_CIDR = f"10.233.{SLOT}.0/24"
# Service addresses of its own too: the host reaches cluster IPs of every cluster on it.
SERVICE_CIDR = f"10.{100 + SLOT}.0.0/16"
NODE = "kiso-e2e-node"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the node agent needs root")


def run(*args, check=False):
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


def leftovers(data_dir, bridge=BRIDGE):
    """What of a pod could outlive it: containers, shims, mounts, veths, addresses."""
    runtime = os.path.join(data_dir, "agent", "runtime")
    containers = (run("runc", "--root", os.path.join(runtime, "state"), "list", "-q").stdout.split()
                  + run("crun", "--root", os.path.join(runtime, "state-crun"), "list",
                        "-q").stdout.split())
    shims = run("pgrep", "-f", f"kiso-shim .*{data_dir}").stdout.split()
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if line.split()[4].startswith(data_dir)]
    veths = run("ip", "-o", "link", "show", "master", bridge).stdout.strip().splitlines()
    ipam = os.path.join(data_dir, "agent", "cni", "ipam", "kiso")
    ips = [n for n in os.listdir(ipam) if n.startswith("10.")] if os.path.isdir(ipam) else []
    return {k: v for k, v in {"containers": containers, "shims": shims, "mounts": mounts,
                              "veths": veths, "ips": ips}.items() if v}


def holders(data_dir):
    """What can keep a pod's network namespace (and so its veth) alive once its bind mount is
    gone from this mount namespace: copies of the mount in other mount namespaces, and
    processes inside a network namespace other than the host's (sockets are not listed)."""
    host_net = os.readlink("/proc/self/ns/net")
    copies, inside = [], []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")[:120]
            with open(f"/proc/{pid}/mountinfo") as f:
                if any(data_dir in line for line in f):
                    copies.append(f"{pid} {cmd}")
            if os.readlink(f"/proc/{pid}/ns/net") != host_net:
                inside.append(f"{pid} {os.readlink(f'/proc/{pid}/ns/net')} {cmd}")
        except OSError:
            continue  # Gone meanwhile, or a kernel thread.
    return f"mount copies in other namespaces: {copies[:10]}; processes in other netns: {inside[:20]}"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A local registry holding busybox, mirrored for docker.io and registry.k8s.io."""
    r = LocalRegistry()
    try:  # Stopped also when filling it fails.
        image = build_oci_archive(str(tmp_path_factory.mktemp("img") / "busybox.tar"))
        for repository in ("library/busybox:latest", "library/busybox:1.35", "tools/busybox:1"):
            r.push(image, repository)
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def node(registry, tmp_path_factory):
    mirrors = tmp_path_factory.mktemp("conf") / "registries.yaml"
    mirrors.write_text(f"""mirrors:
  docker.io:
    endpoint: ["http://{registry.address}"]
  registry.k8s.io:
    endpoint: ["http://{registry.address}"]
""")
    s = Server(["--node-name", NODE, "--cluster-cidr", POD_CIDR, "--cni-bridge", BRIDGE,
                "--service-cidr", SERVICE_CIDR, "--horizontal-pod-autoscaler-sync-period", "2s",
                "--sync-frequency", "1s", "--max-pods", "150",
                "--registries", str(mirrors)], agent=True)
    k = Kubectl(s)
    try:
        wait_for(lambda: "Ready" in k("get", "node", NODE, "--no-headers", check=False), 20)
        yield s, k
        k("delete", "deployments,jobs,pods", "--all", "--wait=true", "--timeout=60s")
        # A force-deleted pod is gone from the API at once; the agent stops its
        # containers after (the last test force-deletes pods still in their grace period).
        deadline = time.monotonic() + 30
        while (left := leftovers(s.dir)) and time.monotonic() < deadline:
            time.sleep(0.2)  # Polling with a deadline.
        if left:  # What the agent said about it, and what may hold a namespace.
            with open(os.path.join(s.dir, "server.log"), errors="replace") as f:
                warnings = [line for line in f if "[warning]" in line or "[error]" in line]
            pytest.fail(f"left behind after deleting every pod: {left}; {holders(s.dir)}; "
                        f"the server's warnings: {warnings[-30:]}")
    finally:
        try:
            s.stop(keep_dir=True)
        finally:  # Also when the server did not stop cleanly.
            node_reset(s.dir)  # Whatever a failure left (nothing, when every test passed).
            subprocess.run(["rm", "-rf", s.dir])


def pod(kubectl, name):
    p = kubectl.run("get", "pod", name, "-o", "json", check=False)
    return json.loads(p.stdout) if p.returncode == 0 else None


def phase(kubectl, name):
    p = pod(kubectl, name)
    return p["status"].get("phase") if p else None


def container_status(kubectl, name):
    p = pod(kubectl, name)
    statuses = (p or {}).get("status", {}).get("containerStatuses") or [{}]
    return statuses[0]


def apply(kubectl, manifest):
    kubectl("apply", "-f", "-", input=manifest)


def simple_pod(name, command, restart="Never", extra=""):
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: {restart}
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: {json.dumps(command)}
{extra}"""


def test_the_node_got_its_pod_range_from_the_server(node):
    s, k = node
    got = json.loads(k("get", "node", NODE, "-o", "json"))
    spec = got["spec"]
    assert spec["podCIDR"] == POD_CIDR and spec["podCIDRs"] == [POD_CIDR]
    # --max-pods is the pods it takes (the kubelet's maxPods).
    assert got["status"]["capacity"]["pods"] == "150"
    assert got["status"]["allocatable"]["pods"] == "150"
    with open(os.path.join(s.dir, "agent", "cni", "10-kiso.conflist")) as f:
        conflist = json.load(f)
    assert conflist["plugins"][0]["ipam"]["ranges"] == [[{"subnet": POD_CIDR}]]


def test_pod_runs_to_completion_and_logs(node):
    s, k = node
    apply(k, simple_pod("hello", ["sh", "-c", "echo hello from $(hostname); echo oops >&2; echo $POD_IP"],
                        extra="""    env:
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}"""))
    wait_for(lambda: phase(k, "hello") == "Succeeded", what="hello Succeeded")
    p = pod(k, "hello")
    ip = p["status"]["podIP"]
    assert ip.startswith(POD_CIDR.rsplit(".", 2)[0] + ".")
    assert p["spec"]["nodeName"] == NODE
    term = p["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 0 and term["reason"] == "Completed"
    # stdout and stderr are separate pipes: their relative order is not defined.
    logs = k("logs", "hello").splitlines()
    assert sorted(logs) == sorted(["hello from hello", "oops", ip])
    assert logs.index("hello from hello") < logs.index(ip)
    assert k("logs", "hello", "--tail=1").splitlines() == logs[-1:]
    # The image's layers were applied by the plugin that brings libarchive in.
    mapped = {n.split(".so")[0] for n in mapped_files(s.proc.pid)}
    assert {"kiso-layers", "libarchive"} <= mapped, mapped
    stamped = k("logs", "hello", "--timestamps").splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == logs
    assert all(line[:4].isdigit() and line.split(" ")[0].endswith("Z") for line in stamped)
    k("delete", "pod", "hello")


def test_failing_container_exit_code(node):
    s, k = node
    apply(k, simple_pod("fails", ["sh", "-c", "exit 3"]))
    wait_for(lambda: phase(k, "fails") == "Failed", what="fails Failed")
    term = container_status(k, "fails")["state"]["terminated"]
    assert term["exitCode"] == 3 and term["reason"] == "Error"
    k("delete", "pod", "fails")


def test_runtime_classes_run_on_the_nodes_handler_and_refuse_others(node):
    """RuntimeClass on the node: the Node lists the handlers it runs (its runtime, runc, and crun
    beside it); a pod whose class's handler the node runs runs with that runtime, with the class's
    overhead; one whose handler the node lacks gets a clear status and event instead of a
    sandbox."""
    s, k = node
    status = json.loads(k("get", "node", NODE, "-o", "json"))["status"]
    assert [h["name"] for h in status["runtimeHandlers"]] == ["", "runc", "crun", "wasm"]
    apply(k, """
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: native}
handler: runc
overhead: {podFixed: {cpu: 5m}}
---
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: fast}
handler: crun
---
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: elsewhere}
handler: wasmedge
""")
    try:
        apply(k, simple_pod("native", ["true"], extra="  runtimeClassName: native"))
        apply(k, simple_pod("elsewhere", ["true"], extra="  runtimeClassName: elsewhere"))
        apply(k, simple_pod("fast", ["sh", "-c", "echo under crun; exec sleep 300"],
                            extra="  runtimeClassName: fast"))
        wait_for(lambda: phase(k, "native") == "Succeeded", what="native Succeeded")
        assert pod(k, "native")["spec"]["overhead"] == {"cpu": "5m"}
        assert container_status(k, "native")["containerID"].startswith("runc://")
        wait_for(lambda: k("logs", "fast", check=False).strip() == "under crun",
                 what="fast's output")
        # Run by crun: crun's own state lists it, and the status names crun.
        container_id = container_status(k, "fast")["containerID"]
        assert container_id.startswith("crun://"), container_id
        state = os.path.join(s.dir, "agent", "runtime", "state-crun")
        assert container_id.split("://", 1)[1] in run("crun", "--root", state, "list",
                                                      "-q").stdout.split()
        wait_for(lambda: pod(k, "elsewhere")["status"].get("reason") == "CreatePodSandboxError",
                 what="the refusal")
        status = pod(k, "elsewhere")["status"]
        assert 'RuntimeHandler "wasmedge" not supported' in status["message"], status
        assert status["phase"] == "Pending"
        assert "CreatePodSandboxError" in k("get", "pod", "elsewhere")  # kubectl's STATUS.
        events = k("get", "events", "--field-selector", "involvedObject.name=elsewhere")
        assert "FailedCreatePodSandBox" in events, events
    finally:
        k("delete", "pod", "native", "elsewhere", "fast", "--ignore-not-found")
        k("delete", "runtimeclass", "native", "elsewhere", "fast", "--ignore-not-found")


# A WASI program for RuntimeClass wasm: argv[1] says what it does.
WASM_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "hello";
  if (!strcmp(mode, "hello")) {
    char line[128] = "(none)";
    FILE* f = fopen("/config/greeting", "r");
    if (f) { fgets(line, sizeof line, f); fclose(f); }
    printf("hello from wasm, NAME=%s, greeting=%s\n", getenv("NAME"), line);
    fprintf(stderr, "to stderr\n");
    f = fopen("/scratch/out.txt", "w");
    fprintf(f, "written by wasm\n");
    fclose(f);
    FILE* g = fopen("/etc/passwd", "r");
    printf("host files: %s\n", g ? "reachable" : "out of reach");
    return 0;
  }
  if (!strcmp(mode, "exit")) return atoi(argv[2]);
  if (!strcmp(mode, "trap")) __builtin_trap();
  if (!strcmp(mode, "grow")) {  /* Allocates 1 MiB at a time until malloc says no. */
    static char* kept[1024];
    int n = 0;
    while (n < 1024 && (kept[n] = malloc(1 << 20))) memset(kept[n++], 1, 1 << 20);
    printf("got %d MiB\n", n);
    return 0;
  }
  for (int i = 0;; ++i) {  /* serve: one line a second. */
    printf("tick %d\n", i);
    fflush(stdout);
    struct timespec s = {1, 0};
    nanosleep(&s, NULL);
  }
}
"""


def test_wasm_pods_run_webassembly_modules(node, registry, tmp_path):
    """RuntimeClass wasm (handler "wasm"): a pod whose image holds a WASI module runs it in kiso's
    WebAssembly engine, not in a container: logs, exit codes and traps as for any container,
    restarts, its volumes (and nothing else of the host) as its directories, its memory limit as
    the module's, exec refused with a clear message, killed on delete."""
    s, k = node
    source = tmp_path / "app.c"
    source.write_text(WASM_SOURCE)
    module = tmp_path / "app.wasm"
    subprocess.run(["clang", "--target=wasm32-wasi", "-O2", "-o", str(module), str(source)],
                   check=True)
    # As runwasi's images are: the module is the entrypoint.
    registry.push(build_oci_archive(str(tmp_path / "wasm.tar"), "docker.io/library/wasm:1",
                                    cmd=(), entrypoint=("/app.wasm",),
                                    extra=[("app.wasm", str(module))]),
                  "library/wasm:1")

    def wasm_pod(name, args, restart="Never", extra=""):
        return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  runtimeClassName: wasm
  restartPolicy: {restart}
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: wasm:1
    args: {json.dumps(args)}
{extra}"""
    # kiso server makes RuntimeClass wasm (as runc and crun) when it starts.
    assert json.loads(k("get", "runtimeclass", "wasm", "-o", "json"))["handler"] == "wasm"
    apply(k, """
apiVersion: v1
kind: ConfigMap
metadata: {name: wasm-config}
data: {greeting: hi from a volume}
""")
    names = ["wasm-hello", "wasm-exit", "wasm-trap", "wasm-grow", "wasm-serve", "wasm-restarts"]
    try:
        apply(k, wasm_pod("wasm-hello", ["hello"], extra="""    env: [{name: NAME, value: kiso}]
    volumeMounts:
    - {name: config, mountPath: /config}
    - {name: scratch, mountPath: /scratch}
  volumes:
  - {name: config, configMap: {name: wasm-config}}
  - {name: scratch, emptyDir: {}}"""))
        apply(k, wasm_pod("wasm-exit", ["exit", "3"]))
        apply(k, wasm_pod("wasm-trap", ["trap"]))
        apply(k, wasm_pod("wasm-grow", ["grow"], extra="""    resources: {limits: {memory: 24Mi}}"""))
        apply(k, wasm_pod("wasm-serve", ["serve"], restart="Always"))
        apply(k, wasm_pod("wasm-restarts", ["exit", "0"], restart="Always"))
        wait_for(lambda: phase(k, "wasm-hello") == "Succeeded", what="wasm-hello Succeeded")
        # stdout and stderr are two pipes: their lines' order in the log is the shim's to see.
        assert sorted(k("logs", "wasm-hello").splitlines()) == [
            "hello from wasm, NAME=kiso, greeting=hi from a volume", "host files: out of reach",
            "to stderr"]
        status = container_status(k, "wasm-hello")
        assert status["containerID"].startswith("wasm://"), status
        # No runc or crun ran it: neither runtime's state has it, the wasm runtime's had it.
        cid = status["containerID"].split("://", 1)[1]
        runtime = os.path.join(s.dir, "agent", "runtime")
        assert cid not in run("runc", "--root", os.path.join(runtime, "state"), "list",
                              "-q").stdout
        # What it wrote went to its emptyDir on the host.
        uid = pod(k, "wasm-hello")["metadata"]["uid"]
        written = os.path.join(s.dir, "agent", "pods", f"default_wasm-hello_{uid}", "volumes",
                               "scratch", "out.txt")
        with open(written) as f:
            assert f.read() == "written by wasm\n"
        wait_for(lambda: phase(k, "wasm-exit") == "Failed", what="wasm-exit Failed")
        term = container_status(k, "wasm-exit")["state"]["terminated"]
        assert (term["exitCode"], term["reason"]) == (3, "Error")
        wait_for(lambda: phase(k, "wasm-trap") == "Failed", what="wasm-trap Failed")
        assert container_status(k, "wasm-trap")["state"]["terminated"]["exitCode"] == 134
        assert "wasm trap: unreachable executed" in k("logs", "wasm-trap")
        wait_for(lambda: phase(k, "wasm-grow") == "Succeeded", what="wasm-grow Succeeded")
        got = int(k("logs", "wasm-grow").split()[1])
        assert 8 <= got < 24, got  # The limit is the module's maximum memory.
        # Restarts as any container's.
        wait_for(lambda: container_status(k, "wasm-restarts").get("restartCount", 0) >= 2,
                 what="wasm-restarts restarted")
        wait_for(lambda: "tick 2" in k("logs", "wasm-serve", check=False), what="ticks")
        p = k.run("exec", "wasm-serve", "--", "sh", check=False)
        assert p.returncode != 0
        assert "exec is not supported by the wasm runtime" in p.stderr, p.stderr
        k("delete", "pod", "wasm-serve", "--wait=true", "--timeout=30s")
        assert not run("pgrep", "-f", f"kiso-wasm .*{cid}").stdout
    finally:
        k("delete", "pod", *names, "--ignore-not-found", "--wait=true", "--timeout=60s")
        k("delete", "configmap", "wasm-config", "--ignore-not-found")


def test_deployment_pods_reach_each_other(node):
    s, k = node
    apply(k, """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox
        command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
""")
    k("rollout", "status", "deployment/web", "--timeout=60s")
    ips = k("get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].status.podIP}").split()
    assert len(set(ips)) == 3
    loop = " && ".join(f"wget -q -O - http://{ip}:8080/" for ip in ips)
    apply(k, simple_pod("client", ["sh", "-c", loop]))
    wait_for(lambda: phase(k, "client") in ("Succeeded", "Failed"), what="client done")
    assert phase(k, "client") == "Succeeded", k("logs", "client", check=False)
    assert k("logs", "client") == "hello from kiso\n" * 3
    k("delete", "pod", "client")
    k("delete", "deployment", "web", "--wait=true")


def test_logs_follow_until_the_container_exits(node):
    s, k = node
    apply(k, simple_pod("ticker", ["sh", "-c", "for i in 1 2 3 4 5; do echo tick $i; sleep 0.2; done"]))
    wait_for(lambda: phase(k, "ticker") in ("Running", "Succeeded"), what="ticker started")
    out = k("logs", "-f", "ticker", timeout=30)
    assert out == "".join(f"tick {i}\n" for i in range(1, 6))
    k("delete", "pod", "ticker")


def test_crash_loop_back_off_grows(node):
    s, k = node
    apply(k, simple_pod("crash", ["sh", "-c", "echo dying; exit 1"], restart="Always"))
    first = wait_for(lambda: (container_status(k, "crash").get("state", {}).get("waiting", {})
                              .get("reason") == "CrashLoopBackOff") and container_status(k, "crash"),
                     what="CrashLoopBackOff")
    assert "back-off 10s" in first["state"]["waiting"]["message"]
    assert first["lastState"]["terminated"]["exitCode"] == 1
    second = wait_for(lambda: (container_status(k, "crash").get("restartCount", 0) >= 1 and
                               "back-off 20s" in json.dumps(container_status(k, "crash").get("state")))
                      and container_status(k, "crash"), timeout=40, what="a restart, then 20s")
    assert second["restartCount"] == 1
    assert k("logs", "crash", "--previous") == "dying\n"
    k("delete", "pod", "crash")


def test_memory_limit_gives_oom_killed(node):
    s, k = node
    apply(k, simple_pod("oom", ["sh", "-c", "tail /dev/zero"], extra="""    resources:
      limits: {memory: 16Mi}"""))
    wait_for(lambda: phase(k, "oom") == "Failed", what="oom Failed")
    term = container_status(k, "oom")["state"]["terminated"]
    assert term["reason"] == "OOMKilled" and term["exitCode"] == 137
    k("delete", "pod", "oom")


def test_missing_image_err_image_pull_then_back_off(node, registry):
    s, k = node
    missing = f"{registry.address}/nothing/here:1"
    apply(k, f"""
apiVersion: v1
kind: Pod
metadata: {{name: missing}}
spec:
  containers:
  - name: c
    image: {missing}
""")
    waiting = wait_for(lambda: container_status(k, "missing").get("state", {}).get("waiting"),
                       what="waiting")
    seen = {waiting["reason"]: waiting["message"]}
    wait_for(lambda: seen.setdefault(*(lambda w: (w["reason"], w["message"]))(
        container_status(k, "missing")["state"]["waiting"])) and len(seen) == 2, what="both reasons")
    assert set(seen) == {"ErrImagePull", "ImagePullBackOff"}
    # The registry's own answer, and the image named.
    assert missing in seen["ErrImagePull"] and "manifest unknown" in seen["ErrImagePull"]
    assert seen["ImagePullBackOff"] == f'Back-off pulling image "{missing}"'
    # And the events a person reads in `kubectl describe pod`.
    events = json.loads(k("get", "events", "-o", "json"))["items"]
    mine = {(e["reason"], e["message"]) for e in events if e["involvedObject"]["name"] == "missing"}
    assert ("Failed", seen["ErrImagePull"]) in mine
    assert ("BackOff", seen["ImagePullBackOff"]) in mine
    k("delete", "pod", "missing")


def test_server_killed_then_restarted_adopts_its_containers(node):
    s, k = node
    apply(k, simple_pod("survivor", ["sh", "-c", "echo up; while true; do sleep 1; done"],
                        restart="Always"))
    wait_for(lambda: phase(k, "survivor") == "Running", what="survivor Running")
    before = container_status(k, "survivor")
    ip = pod(k, "survivor")["status"]["podIP"]
    s.kill()
    s.start()
    # Same container, same address, nothing started twice.
    wait_for(lambda: pod(k, "survivor") is not None, what="API back")
    after = wait_for(lambda: container_status(k, "survivor").get("containerID") and
                     container_status(k, "survivor"), what="status")
    assert after["containerID"] == before["containerID"]
    assert after["restartCount"] == 0
    assert pod(k, "survivor")["status"]["podIP"] == ip
    state = os.path.join(s.dir, "agent", "runtime", "state")
    assert len(run("runc", "--root", state, "list", "-q").stdout.split()) == 1
    assert k("logs", "survivor") == "up\n"
    k("delete", "pod", "survivor", "--wait=true")
    assert not leftovers(s.dir)


def test_failing_liveness_probe_restarts_the_container(node):
    s, k = node
    apply(k, simple_pod("unwell", ["sh", "-c", "touch /tmp/healthy; sleep 1; rm /tmp/healthy; sleep 3600"],
                        restart="Always", extra="""    livenessProbe:
      exec: {command: ["cat", "/tmp/healthy"]}
      periodSeconds: 1
      failureThreshold: 2"""))
    wait_for(lambda: container_status(k, "unwell").get("restartCount", 0) >= 1, timeout=40,
             what="a restart after the liveness probe failed")
    events = json.loads(k("get", "events", "-o", "json"))["items"]
    reasons = {e["reason"] for e in events if e["involvedObject"]["name"] == "unwell"}
    assert {"Unhealthy", "Killing"} <= reasons
    k("delete", "pod", "unwell")


def test_readiness_probe_gates_ready_and_endpoints(node):
    s, k = node
    apply(k, """
apiVersion: v1
kind: Pod
metadata: {name: shy, labels: {app: shy}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: busybox
    command: ["sh", "-c", "mkdir -p /tmp/www; httpd -p 8080 -h /tmp/www; sleep 2; touch /tmp/www/ready; sleep 3600"]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /ready, port: http}
      periodSeconds: 1
    livenessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: shy}
spec:
  selector: {app: shy}
  ports: [{port: 80, targetPort: 8080}]
""")
    wait_for(lambda: phase(k, "shy") == "Running", what="shy Running")
    assert container_status(k, "shy")["ready"] is False  # /ready is a 404 for 2 s.
    wait_for(lambda: container_status(k, "shy").get("ready") is True, what="ready")
    conditions = {c["type"]: c["status"] for c in pod(k, "shy")["status"]["conditions"]}
    assert conditions["Ready"] == "True" and conditions["ContainersReady"] == "True"
    ip = pod(k, "shy")["status"]["podIP"]
    wait_for(lambda: ip in k("get", "endpoints", "shy", "-o", "jsonpath={.subsets[*].addresses[*].ip}"),
             what="the pod in the Service's endpoints")
    assert container_status(k, "shy")["restartCount"] == 0  # The tcpSocket liveness probe passes.
    k("delete", "service", "shy")
    k("delete", "pod", "shy")


# kubectl's two ways to a process: a WebSocket (v5.channel.k8s.io, its default) and
# SPDY/3.1 after an HTTP upgrade (v4.channel.k8s.io, older clients' only way).
REMOTE_COMMAND = {"websocket": {}, "spdy": {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}}


@pytest.mark.parametrize("transport", REMOTE_COMMAND)
def test_kubectl_exec_streams_and_exit_codes(node, transport):
    s, k = node
    env = REMOTE_COMMAND[transport]
    apply(k, simple_pod("shell", ["sleep", "3600"], restart="Always"))
    wait_for(lambda: container_status(k, "shell").get("ready"), what="shell ready")
    p = k.run("exec", "shell", "--", "sh", "-c", "echo out; echo err >&2; hostname", env=env)
    assert p.stdout == "out\nshell\n" and p.stderr == "err\n", p.stderr
    # The way in was the one asked for (kubectl -v=8 logs the request headers).
    p = k.run("exec", "shell", "-v=8", "--", "true", env=env)
    if transport == "spdy":
        assert "X-Stream-Protocol-Version: v4.channel.k8s.io" in p.stderr, p.stderr[-3000:]
        assert "Sec-Websocket-Protocol" not in p.stderr
    else:
        assert "Sec-Websocket-Protocol: v5.channel.k8s.io" in p.stderr, p.stderr[-3000:]
    p = k.run("exec", "shell", "--", "sh", "-c", "exit 3", check=False, env=env)
    assert p.returncode == 3 and "command terminated with exit code 3" in p.stderr
    assert k("exec", "-i", "shell", "--", "cat", input="through stdin\n", env=env) == "through stdin\n"
    p = k.run("exec", "shell", "-c", "nope", "--", "true", check=False, env=env)
    assert p.returncode != 0 and "container nope is not valid for pod shell" in p.stderr
    k("delete", "pod", "shell")


def test_pods_get_the_kubelets_hosts_and_hostname_files(node):
    s, k = node
    apply(k, simple_pod("named", ["sh", "-c", "cat /etc/hosts; echo ---; cat /etc/hostname; hostname"],
                        extra="""  hostname: db-0
  hostAliases:
  - ip: 10.1.2.3
    hostnames: [foo.local, bar.local]"""))
    wait_for(lambda: phase(k, "named") == "Succeeded", what="named Succeeded")
    ip = pod(k, "named")["status"]["podIP"]
    hosts, names = k("logs", "named").split("---\n")
    assert hosts.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"), hosts
    assert f"\n{ip}\tdb-0\n" in hosts, hosts
    assert hosts.endswith("# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n"), hosts
    assert names == "db-0\ndb-0\n", names
    k("delete", "pod", "named")


def test_services_are_in_the_environment(node):
    """The kubelet's Service variables: every Service of the pod's namespace (unless
    enableServiceLinks is false) and always the `kubernetes` Service; env still wins."""
    s, k = node
    k("create", "service", "clusterip", "web-db", "--tcp=5432:5432")
    k("patch", "service", "web-db", "--type=json", "-p",
      '[{"op": "add", "path": "/spec/ports/0/name", "value": "pg"}]')
    ip = json.loads(k("get", "service", "web-db", "-o", "json"))["spec"]["clusterIP"]
    apply(k, simple_pod("linked", ["env"], extra="""    env:
    - {name: WEB_DB_SERVICE_PORT, value: mine}"""))
    apply(k, simple_pod("unlinked", ["env"], extra="  enableServiceLinks: false"))
    for name in ("linked", "unlinked"):
        wait_for(lambda: phase(k, name) == "Succeeded", what=f"{name} Succeeded")
    linked = set(k("logs", "linked").splitlines())
    api = SERVICE_CIDR.replace(".0/16", ".1")  # The first address of the range.
    assert {f"KUBERNETES_SERVICE_HOST={api}", "KUBERNETES_SERVICE_PORT=443",
            "KUBERNETES_SERVICE_PORT_HTTPS=443", f"KUBERNETES_PORT=tcp://{api}:443",
            f"KUBERNETES_PORT_443_TCP_ADDR={api}", f"WEB_DB_SERVICE_HOST={ip}",
            "WEB_DB_SERVICE_PORT=mine", "WEB_DB_SERVICE_PORT_PG=5432",
            f"WEB_DB_PORT=tcp://{ip}:5432", f"WEB_DB_PORT_5432_TCP=tcp://{ip}:5432",
            "WEB_DB_PORT_5432_TCP_PROTO=tcp", "WEB_DB_PORT_5432_TCP_PORT=5432",
            f"WEB_DB_PORT_5432_TCP_ADDR={ip}"} <= linked, sorted(linked)
    unlinked = k("logs", "unlinked")
    assert f"KUBERNETES_SERVICE_HOST={api}" in unlinked and "WEB_DB" not in unlinked, unlinked
    k("delete", "pod", "linked", "unlinked")
    k("delete", "service", "web-db")


def test_security_context_seccomp_and_capabilities(node):
    s, k = node
    probe = ("grep -E '^(Seccomp|CapEff|NoNewPrivs):' /proc/self/status; "
             "unshare -U true && echo userns=yes || echo userns=no")
    apply(k, simple_pod("confined", ["sh", "-c", probe]))
    apply(k, simple_pod("unconfined", ["sh", "-c", probe], extra="""    securityContext:
      seccompProfile: {type: Unconfined}"""))
    apply(k, simple_pod("narrow", ["sh", "-c", probe], extra="""    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}"""))
    for name in ("confined", "unconfined", "narrow"):
        wait_for(lambda: phase(k, name) == "Succeeded", what=f"{name} Succeeded")
    confined, unconfined, narrow = (k("logs", n) for n in ("confined", "unconfined", "narrow"))
    # RuntimeDefault unless the pod says otherwise; it refuses new namespaces.
    assert "Seccomp:\t2" in confined and "userns=no" in confined, confined
    assert "Seccomp:\t0" in unconfined and "userns=yes" in unconfined, unconfined
    assert "CapEff:\t00000000a80425fb" in confined, confined  # containerd's default set.
    assert "CapEff:\t0000000000000400" in narrow and "NoNewPrivs:\t1" in narrow, narrow
    assert "NoNewPrivs:\t0" in confined
    # A profile that is not there is the container's error, named.
    apply(k, simple_pod("missing", ["true"], extra="""    securityContext:
      seccompProfile: {type: Localhost, localhostProfile: nope.json}"""))
    wait_for(lambda: container_status(k, "missing").get("state", {}).get("waiting", {}).get("reason")
             == "CreateContainerConfigError", what="missing CreateContainerConfigError")
    assert "seccomp profile" in container_status(k, "missing")["state"]["waiting"]["message"]
    k("delete", "pod", "confined", "unconfined", "narrow", "missing")


def test_resource_env_groups_sub_path_expr_and_post_start(node):
    """The rest of the kubelet's pod surface: env and downwardAPI files from resourceFieldRef
    (divisors, rounding up, an unset limit is the node's), supplementalGroups and fsGroup (the
    process's groups; an emptyDir and a configMap volume owned by the group), subPathExpr with
    the container's variables, and a postStart hook that runs before the pod counts as started
    — and whose failure kills the container."""
    s, k = node
    apply(k, """
apiVersion: v1
kind: ConfigMap
metadata: {name: surface}
data: {greeting: hi}
""")
    # (postStart runs beside the entrypoint, as upstream's: the process waits for its file.)
    apply(k, simple_pod("surface", ["sh", "-c",
                                    "while [ ! -f /scratch/from-hook ]; do sleep 0.1; done; "
                                    "echo cpu=$CPU_M mem=$MEM_MI nolimit=$NO_LIMIT; id -G; "
                                    "stat -c '%g %a' /scratch /conf/greeting; cat /scratch/from-hook; "
                                    "ls /data; cat /limits/cpu; echo; echo done; exec sleep 3600"],
                        restart="Always", extra="""    env:
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: CPU_M
      valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1m}}
    - name: MEM_MI
      valueFrom: {resourceFieldRef: {resource: requests.memory, divisor: 1Mi}}
    - name: NO_LIMIT
      valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Ki}}
    resources: {limits: {cpu: 250m}, requests: {cpu: 100m, memory: 33Mi}}
    lifecycle:
      postStart: {exec: {command: ["sh", "-c", "echo started > /scratch/from-hook"]}}
    volumeMounts:
    - {name: scratch, mountPath: /scratch}
    - {name: conf, mountPath: /conf}
    - {name: scratch, mountPath: /data, subPathExpr: "per-$(POD_NAME)"}
    - {name: limits, mountPath: /limits}
  securityContext: {supplementalGroups: [4000], fsGroup: 5000}
  volumes:
  - {name: scratch, emptyDir: {}}
  - {name: conf, configMap: {name: surface}}
  - name: limits
    downwardAPI:
      items: [{path: cpu, resourceFieldRef: {containerName: c, resource: limits.cpu}}]"""))
    wait_for(lambda: phase(k, "surface") == "Running", what="surface Running")
    wait_for(lambda: "done" in k("logs", "surface").split(), what="the pod's report")
    lines = k("logs", "surface").splitlines()
    memory_kib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 1024
    # 250m in 1m units; 33Mi in Mi; no memory limit: the node's (here: the machine's) in Ki.
    assert lines[0] == f"cpu=250 mem=33 nolimit={memory_kib}", lines
    assert {"4000", "5000"} <= set(lines[1].split()), lines  # id -G
    assert lines[2].split()[0] == "5000" and lines[2].split()[1].startswith("2"), lines  # setgid dir
    assert lines[3].split()[0] == "5000", lines
    assert lines[4] == "started", lines  # Written by the hook.
    assert lines[5:] == ["1", "done"], lines  # /data is empty; 250m is 1 core rounded up.
    pod_dir = [d for d in os.listdir(os.path.join(s.dir, "agent", "pods")) if "_surface_" in d]
    assert pod_dir and os.path.isdir(os.path.join(s.dir, "agent", "pods", pod_dir[0], "volumes",
                                                  "scratch", "per-surface"))
    # A failing postStart hook kills the container, which restarts by its policy.
    apply(k, simple_pod("hookfail", ["sleep", "3600"], restart="Always", extra="""    lifecycle:
      postStart: {exec: {command: ["sh", "-c", "exit 3"]}}"""))
    wait_for(lambda: container_status(k, "hookfail").get("restartCount", 0) >= 1,
             what="hookfail restarted")
    events = k("get", "events", "--field-selector", "involvedObject.name=hookfail", "-o", "json")
    assert any(e["reason"] == "FailedPostStartHook" for e in json.loads(events)["items"]), events
    k("delete", "pod/surface", "pod/hookfail", "configmap/surface")


def test_volumes_follow_their_sources_atomically(node):
    """ConfigMap, Secret, downward API and projected volumes change under a running container as
    the kubelet's atomic writer changes them: the files are links through `..data`, swapped to a
    new payload in one rename; a removed key's file goes; the pod's new labels reach its downward
    API file; a subPath mount keeps what it had, and a source deleted meanwhile leaves the files
    as they are (with a FailedMount event), the pod running."""
    s, k = node
    apply(k, """
apiVersion: v1
kind: ConfigMap
metadata: {name: live}
data: {a: one, b: two}
---
apiVersion: v1
kind: Secret
metadata: {name: live}
stringData: {c: three}
""")
    apply(k, simple_pod("vols", ["sleep", "3600"], restart="Always", extra="""    volumeMounts:
    - {name: cm, mountPath: /cm}
    - {name: sec, mountPath: /sec}
    - {name: info, mountPath: /info}
    - {name: all, mountPath: /all}
    - {name: cm, mountPath: /sub-a, subPath: a}
  volumes:
  - {name: cm, configMap: {name: live}}
  - {name: sec, secret: {secretName: live, items: [{key: c, path: dir/c}]}}
  - name: info
    downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}
  - name: all
    projected:
      sources:
      - configMap: {name: live, items: [{key: a, path: from-cm}]}
      - downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}}]}"""))
    try:
        wait_for(lambda: phase(k, "vols") == "Running", what="vols Running")
    except AssertionError:
        raise AssertionError(k("describe", "pod", "vols"))

    def read(*argv):
        r = k.run("exec", "vols", "--", *argv, check=False)
        return r.stdout.strip() if r.returncode == 0 else None

    assert read("cat", "/cm/a") == "one" and read("cat", "/sec/dir/c") == "three"
    assert read("readlink", "/cm/a") == "..data/a"
    first = read("readlink", "/cm/..data")
    assert first and first.startswith("..20"), first
    assert read("cat", "/info/labels") == "" and read("cat", "/all/name") == "vols"

    k("patch", "configmap", "live", "--type=json", "-p",
      '[{"op": "replace", "path": "/data/a", "value": "uno"},'
      ' {"op": "remove", "path": "/data/b"}, {"op": "add", "path": "/data/d", "value": "four"}]')
    wait_for(lambda: read("cat", "/cm/a") == "uno", timeout=30, what="the new value of a")
    assert read("ls", "/cm") == "a\nd", read("ls", "/cm")
    assert read("cat", "/cm/d") == "four" and read("readlink", "/cm/..data") != first
    wait_for(lambda: read("cat", "/all/from-cm") == "uno", timeout=30, what="the projected value")
    assert read("cat", "/sub-a") == "one"  # A subPath is what it was when the container started.
    k("patch", "secret", "live", "-p", '{"stringData": {"c": "tres"}}')
    wait_for(lambda: read("cat", "/sec/dir/c") == "tres", timeout=30, what="the new secret")
    k("label", "pod", "vols", "tier=web")
    wait_for(lambda: read("cat", "/info/labels") == 'tier="web"', timeout=30,
             what="the new label in the downward API file")

    k("delete", "configmap", "live")
    wait_for(lambda: any(e["reason"] == "FailedMount" for e in json.loads(
        k("get", "events", "--field-selector", "involvedObject.name=vols", "-o", "json"))["items"]),
        timeout=30, what="a FailedMount event")
    assert read("cat", "/cm/a") == "uno" and phase(k, "vols") == "Running"
    k("delete", "pod/vols", "secret/live")


def test_memory_volumes_size_limits_and_active_deadlines(node):
    """emptyDir `medium: Memory` is a tmpfs of its sizeLimit (writes past it fail); a disk-backed
    emptyDir past its sizeLimit gets the pod evicted, and a pod past its activeDeadlineSeconds
    fails, each with the kubelet's reason, message and event; nothing of them stays mounted."""
    s, k = node
    apply(k, simple_pod("memvol", ["sh", "-c",
                                   "grep ' /mem ' /proc/mounts | cut -d' ' -f3; df -k /mem | tail -1;"
                                   " dd if=/dev/zero of=/mem/big bs=1024 count=5000 2>/dev/null"
                                   " && echo wrote || echo refused; exec sleep 3600"],
                        restart="Always", extra="""    volumeMounts: [{name: mem, mountPath: /mem}]
  volumes: [{name: mem, emptyDir: {medium: Memory, sizeLimit: 4Mi}}]"""))
    apply(k, simple_pod("fills", ["sh", "-c", "dd if=/dev/zero of=/scratch/big bs=1024 count=3000;"
                                  " exec sleep 3600"], restart="Always",
                        extra="""    volumeMounts: [{name: scratch, mountPath: /scratch}]
  volumes: [{name: scratch, emptyDir: {sizeLimit: 1Mi}}]"""))
    apply(k, simple_pod("deadline", ["sleep", "3600"], restart="Always", extra="""  activeDeadlineSeconds: 2"""))

    lines = wait_for(lambda: (out := k("logs", "memvol", check=False).splitlines()) and len(out) >= 3
                     and out, what="memvol's report")
    assert lines[0] == "tmpfs", lines
    assert lines[1].split()[1] == "4096", lines  # df: the size in KiB.
    assert lines[2] == "refused", lines

    def failed(name):
        p = pod(k, name)
        return p and p["status"].get("phase") == "Failed" and p["status"]

    evicted = wait_for(lambda: failed("fills"), timeout=60, what="fills evicted")
    assert evicted["reason"] == "Evicted", evicted
    assert evicted["message"] == 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". ', evicted
    assert any(c["type"] == "DisruptionTarget" and c["status"] == "True"
               for c in evicted["conditions"]), evicted
    late = wait_for(lambda: failed("deadline"), timeout=60, what="deadline failed")
    assert late["reason"] == "DeadlineExceeded", late
    assert late["message"] == "Pod was active on the node longer than the specified deadline"
    events = json.loads(k("get", "events", "-o", "json"))["items"]
    assert any(e["reason"] == "Evicted" and e["involvedObject"]["name"] == "fills" for e in events)
    assert any(e["reason"] == "DeadlineExceeded" and e["involvedObject"]["name"] == "deadline"
               for e in events)
    assert not [c for c in late["containerStatuses"] if "running" in c["state"]], late
    k("delete", "pod/memvol", "pod/fills", "pod/deadline")
    with open("/proc/self/mountinfo") as f:
        assert not [line for line in f if s.dir in line and "tmpfs" in line]


def test_a_failing_init_container_is_retried_and_the_app_never_starts(node):
    """Under restartPolicy Always an init container that fails is restarted with back-off, the
    pod stays Pending and not Initialized, its app container never starts, and kubectl shows
    Init:Error or Init:CrashLoopBackOff."""
    s, k = node
    apply(k, simple_pod("initfail", ["sh", "-c", "echo app ran"], restart="Always", extra="""  initContainers:
  - name: setup
    image: busybox
    command: ["sh", "-c", "echo setup failed; exit 1"]"""))

    def retried():
        p = pod(k, "initfail")
        st = (p or {}).get("status", {}).get("initContainerStatuses") or [{}]
        return st[0].get("restartCount", 0) >= 1 and p
    p = wait_for(retried, timeout=60, what="the init container restarted")
    assert p["status"]["phase"] == "Pending", p["status"]
    init = p["status"]["initContainerStatuses"][0]
    assert init["lastState"]["terminated"]["exitCode"] == 1, init
    app = p["status"]["containerStatuses"][0]
    assert app["state"] == {"waiting": {"reason": "PodInitializing"}}, app
    conditions = {c["type"]: c["status"] for c in p["status"]["conditions"]}
    assert conditions["Initialized"] == "False", conditions

    # The restarted init container runs for a moment before it fails again, and kubectl shows
    # that moment as Init:0/1 (as upstream's would): its failure and back-off come after.
    def shown():
        status = k("get", "pod", "initfail", "--no-headers").split()[2]
        return status in ("Init:Error", "Init:CrashLoopBackOff") and status
    wait_for(shown, timeout=30, what="kubectl showing Init:Error or Init:CrashLoopBackOff")
    assert k("logs", "initfail", "-c", "setup").strip() == "setup failed"
    k("delete", "pod/initfail")


def test_sidecar_init_containers_run_beside_the_app_and_stop_after_it(node):
    """An init container with restartPolicy Always is a sidecar: started in order (the init
    container after it waits for it to run), kept running beside the app container, part of the
    pod's readiness, and stopped (SIGTERM) once the app container has finished, the pod then
    Succeeded on the app container's exit alone."""
    s, k = node
    apply(k, simple_pod("sidecars", ["sh", "-c", "cat /shared/order; "
                                     "while [ ! -f /shared/go ]; do sleep 0.1; done; echo main done"],
                        extra="""    volumeMounts: [{name: shared, mountPath: /shared}]
  initContainers:
  - name: side
    image: busybox
    restartPolicy: Always
    command: ["sh", "-c", "echo side >> /shared/order; trap 'echo side stopping; exit 0' TERM; while true; do sleep 0.1; done"]
    readinessProbe: {exec: {command: ["test", "-f", "/shared/order"]}, periodSeconds: 1}
    volumeMounts: [{name: shared, mountPath: /shared}]
  - name: after
    image: busybox
    command: ["sh", "-c", "echo after >> /shared/order"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  volumes: [{name: shared, emptyDir: {}}]"""))

    def ready():
        p = pod(k, "sidecars")
        conditions = {c["type"]: c["status"] for c in (p or {}).get("status", {}).get("conditions", [])}
        return conditions.get("Ready") == "True" and p
    p = wait_for(ready, timeout=60, what="sidecars Ready")
    side = p["status"]["initContainerStatuses"][0]
    assert side["name"] == "side" and "running" in side["state"] and side["started"], side
    assert p["status"]["phase"] == "Running"
    assert k("logs", "sidecars").split() == ["side", "after"]  # The order they ran in.
    # kubectl counts the sidecar among the pod's containers (READY 2/2, STATUS Running).
    assert k("get", "pod", "sidecars", "--no-headers").split()[1:3] == ["2/2", "Running"]

    k("exec", "sidecars", "-c", "c", "--", "touch", "/shared/go")
    p = wait_for(lambda: phase(k, "sidecars") == "Succeeded" and pod(k, "sidecars"), timeout=60,
                 what="sidecars Succeeded")
    side = wait_for(lambda: (st := pod(k, "sidecars")["status"]["initContainerStatuses"][0])
                    and "terminated" in st["state"] and st, timeout=30, what="the sidecar stopped")
    assert side["state"]["terminated"]["exitCode"] == 0, side  # It took its SIGTERM.
    assert k("logs", "sidecars", "-c", "side").split() == ["side", "stopping"]
    assert k("logs", "sidecars").split()[-2:] == ["main", "done"]
    k("delete", "pod/sidecars")


def cgroup_usage(container_id):
    """The container's cpu time (ns) and memory working set (bytes), as its cgroup says."""
    hybrid = os.path.exists("/sys/fs/cgroup/unified/cgroup.controllers") and os.path.isdir(
        "/sys/fs/cgroup/memory")

    def stat(path, key):
        with open(path) as f:
            return next(int(line.split()[1]) for line in f if line.split()[0] == key)
    if hybrid:
        with open(f"/sys/fs/cgroup/cpuacct/kiso/{container_id}/cpuacct.usage") as f:
            cpu = int(f.read())
        base = f"/sys/fs/cgroup/memory/kiso/{container_id}"
        with open(base + "/memory.usage_in_bytes") as f:
            usage = int(f.read())
        return cpu, usage - stat(base + "/memory.stat", "total_inactive_file")
    base = f"/sys/fs/cgroup/kiso/{container_id}"
    with open(base + "/memory.current") as f:
        usage = int(f.read())
    return stat(base + "/cpu.stat", "usage_usec") * 1000, usage - stat(base + "/memory.stat",
                                                                      "inactive_file")


def test_kubectl_top_agrees_with_the_cgroups(node):
    """`kubectl top pods --containers` and `kubectl top nodes` (metrics.k8s.io, from the node's
    /stats/summary through the node proxy): a container held to 300m by its limit and holding
    about 20 MB shows what its cgroup shows, within 20%."""
    s, k = node
    apply(k, simple_pod("burner", ["sh", "-c", "x=$(head -c 20000000 /dev/zero | tr '\\0' a); "
                                   "echo ready; while :; do :; done"],
                        restart="Always", extra="""    resources: {limits: {cpu: 300m, memory: 200Mi}}"""))
    wait_for(lambda: phase(k, "burner") == "Running", what="burner Running")
    wait_for(lambda: "ready" in k("logs", "burner"), what="burner holding its memory")
    container_id = container_status(k, "burner")["containerID"].split("://", 1)[1]
    assert "metrics.k8s.io/v1beta1" in k("api-versions").split()
    # The node proxy serves the kubelet's summary. The agent's cpu rate is over the time
    # between its readings: the one this summary ends with, then kubectl top's two seconds
    # later — a measurement window (not a wait for a state) that the cgroup is read around
    # here. (Shorter windows, or ones that do not match, see a container held by its CFS
    # quota on a machine shared with other tests swing by a whole 100 ms period's share.)
    summary = json.loads(k("get", "--raw", f"/api/v1/nodes/{NODE}/proxy/stats/summary"))
    cpu0, _ = cgroup_usage(container_id)
    t0 = time.monotonic()
    assert summary["node"]["nodeName"] == NODE and summary["node"]["memory"]["workingSetBytes"] > 0
    assert any(p["podRef"]["name"] == "burner" for p in summary["pods"]), summary
    time.sleep(2)  # The measurement window.
    out = k("top", "pod", "burner", "--containers", "--no-headers").split()
    cpu1, memory = cgroup_usage(container_id)
    host_milli = (cpu1 - cpu0) / 1e6 / (time.monotonic() - t0)
    # POD NAME CPU(cores) MEMORY(bytes): "burner c 301m 40Mi"
    assert out[:2] == ["burner", "c"] and out[2].endswith("m") and out[3].endswith("Mi"), out
    top_milli, top_mi, host_mi = int(out[2][:-1]), int(out[3][:-2]), memory / 2**20
    assert abs(top_milli - host_milli) <= 0.2 * host_milli, (top_milli, host_milli)
    assert top_milli <= 360, top_milli  # Its limit: 300m.
    assert abs(top_mi - host_mi) <= 0.2 * host_mi and host_mi > 15, (top_mi, host_mi)
    nodes = k("top", "node", "--no-headers").split()
    assert nodes[0] == NODE and nodes[1].endswith("m") and nodes[3].endswith("Mi"), nodes
    k("delete", "pod", "burner")


def test_horizontal_pod_autoscaler_scales_a_deployment_up_under_load_and_down_after(node):
    """`kubectl autoscale` (autoscaling/v1, 50% cpu, 1–3 replicas) on a Deployment whose pods
    burn their 200m limit (200% of their 100m request): it grows to 3; without the load (a new
    template) it shrinks to 1, with the scale-down window set to 0 on the v2 object."""
    s, k = node
    apply(k, """
apiVersion: apps/v1
kind: Deployment
metadata: {name: hpa-web}
spec:
  replicas: 1
  selector: {matchLabels: {app: hpa-web}}
  template:
    metadata: {labels: {app: hpa-web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox
        command: ["sh", "-c", 'if [ "$LOAD" = 1 ]; then while :; do :; done; fi; exec sleep 3600']
        env: [{name: LOAD, value: "1"}]
        resources: {requests: {cpu: 100m}, limits: {cpu: 200m}}
""")
    k("autoscale", "deployment", "hpa-web", "--cpu-percent=50", "--min=1", "--max=3")
    k("patch", "hpa.v2.autoscaling", "hpa-web", "--type", "merge", "-p",
      '{"spec":{"behavior":{"scaleDown":{"stabilizationWindowSeconds":0}}}}')

    def replicas():
        d = json.loads(k("get", "deployment", "hpa-web", "-o", "json"))
        return d["spec"]["replicas"]
    try:
        wait_for(lambda: replicas() == 3, timeout=120, what="scaled up to 3")
    except AssertionError:
        raise AssertionError(k("get", "hpa.v2.autoscaling", "hpa-web", "-o", "json") +
                             k("get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods") +
                             k("get", "pods", "-o", "wide")) from None
    hpa = json.loads(k("get", "hpa.v2.autoscaling", "hpa-web", "-o", "json"))
    conditions = {c["type"]: c for c in hpa["status"]["conditions"]}
    assert conditions["ScalingActive"]["status"] == "True", conditions
    assert hpa["status"]["currentMetrics"][0]["resource"]["name"] == "cpu", hpa["status"]
    k("set", "env", "deployment/hpa-web", "LOAD=0")
    wait_for(lambda: replicas() == 1, timeout=120, what="scaled down to 1")
    events = json.loads(k("get", "events", "--field-selector",
                          "involvedObject.kind=HorizontalPodAutoscaler", "-o", "json"))["items"]
    rescales = [e["message"] for e in events if e["reason"] == "SuccessfulRescale"]
    assert any(m.startswith("New size: 3;") for m in rescales), rescales
    assert any(m == "New size: 1; reason: All metrics below target" for m in rescales), rescales
    k("delete", "hpa/hpa-web", "deployment/hpa-web")


def on_terminal(s, args, typed=b"", env=None):
    """Runs kubectl on a 40x100 pseudo-terminal of its own, as a person would,
    types `typed`, and returns its exit code and everything it printed."""
    import fcntl
    import pty
    import select
    import struct
    import termios
    import time
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    p = subprocess.Popen(["kubectl", "--kubeconfig", s.kubeconfig, *args],
                         stdin=slave, stdout=slave, stderr=slave, env=dict(os.environ, **(env or {})))
    os.close(slave)
    if typed:
        os.write(master, typed)
    out = b""
    deadline = time.monotonic() + 60
    while True:
        ready, _, _ = select.select([master], [], [], max(0, deadline - time.monotonic()))
        assert ready, f"kubectl {args} still running after 60 s: {out!r}"
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: kubectl has exited and closed the terminal.
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return p.wait(timeout=30), out.decode(errors="replace").replace("\r\n", "\n")


@pytest.mark.parametrize("transport", REMOTE_COMMAND)
def test_kubectl_exec_on_a_terminal(node, transport):
    """`kubectl exec -it` from a terminal: the command gets a terminal of its
    own inside the container, sized as kubectl's and resized with it."""
    s, k = node
    apply(k, simple_pod("term", ["sleep", "3600"], restart="Always"))
    wait_for(lambda: container_status(k, "term").get("ready"), what="term ready")
    # The size arrives after the command starts (channel 4): wait for it, with a deadline.
    script = ('for i in $(seq 100); do [ "$(stty size)" = "40 100" ] && break; sleep 0.05; done; '
              'tty; stty size; exit 5')
    code, text = on_terminal(s, ["exec", "-it", "term", "--", "sh", "-c", script],
                             env=REMOTE_COMMAND[transport])
    assert code == 5, text
    assert "/dev/pts/" in text and "40 100\n" in text, text
    k("delete", "pod", "term")


def test_kubectl_run_it_attaches_to_a_terminal(node):
    """`kubectl run -it --rm`: a pod whose container runs on a terminal
    (stdin, stdinOnce, tty), attached with kubectl's size, then deleted."""
    s, k = node
    typed = (b'for i in $(seq 100); do [ "$(stty size)" = "40 100" ] && break; sleep 0.05; done\r'
             b"echo tty=$(tty) size=$(stty size) sum=$((40+2))\r"
             b"exit\r")
    code, text = on_terminal(s, ["run", "shell-it", "--image=busybox", "--restart=Never", "-it",
                                 "--rm", "--", "sh"], typed)
    assert code == 0, text
    assert "tty=/dev/pts/0 size=40 100 sum=42" in text, text
    wait_for(lambda: "shell-it" not in k("get", "pods", "-o", "name"), what="shell-it deleted")


def test_kubectl_attach_streams_output_and_stdin(node):
    s, k = node
    # Output from the moment of attaching, as the container writes it.
    apply(k, simple_pod("ticker", ["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"],
                        restart="Always"))
    wait_for(lambda: container_status(k, "ticker").get("ready"), what="ticker ready")
    watcher = subprocess.Popen(["kubectl", "--kubeconfig", s.kubeconfig, "attach", "ticker"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = watcher.stdout.readline()
        assert first.startswith("tick "), first + watcher.stderr.read()
        assert watcher.stdout.readline() == f"tick {int(first.split()[1]) + 1}\n"
    finally:
        watcher.kill()
        watcher.wait()
    # Without stdin: true there is no stdin to attach to, and it says so.
    p = k.run("attach", "-i", "ticker", input="x\n", check=False)
    assert p.returncode != 0 and "needs stdin: true" in p.stderr, p.stderr
    k("delete", "pod", "ticker")
    # stdin: true and stdinOnce: the first attach's input, then EOF, ends the loop (over SPDY).
    apply(k, simple_pod("reader", ["sh", "-c", 'while read line; do echo "got $line"; done; echo bye'],
                        extra="    stdin: true\n    stdinOnce: true"))
    wait_for(lambda: container_status(k, "reader").get("ready"), what="reader ready")
    p = k.run("attach", "-i", "reader", input="hello\nworld\n", env=REMOTE_COMMAND["spdy"])
    assert p.stdout == "got hello\ngot world\nbye\n", (p.stdout, p.stderr)
    wait_for(lambda: phase(k, "reader") == "Succeeded", what="reader Succeeded")
    k("delete", "pod", "reader")


def test_python_client_exec_over_v4(node):
    s, k = node
    import kubernetes
    from kubernetes.stream import stream
    apply(k, simple_pod("pyexec", ["sleep", "3600"], restart="Always"))
    wait_for(lambda: container_status(k, "pyexec").get("ready"), what="pyexec ready")
    api = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(config_file=s.kubeconfig))
    resp = stream(api.connect_get_namespaced_pod_exec, "pyexec", "default",
                  command=["sh", "-c", "echo hi; echo oops >&2; exit 2"], stderr=True, stdin=False,
                  stdout=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=10)
    assert resp.read_stdout() == "hi\n"
    assert resp.read_stderr() == "oops\n"
    assert resp.returncode == 2
    k("delete", "pod", "pyexec")


def test_python_client_port_forward_reaches_the_pods_loopback(node):
    s, k = node
    import kubernetes
    from kubernetes.stream import portforward
    # httpd on the pod's loopback only: port-forward dials inside the pod's namespace.
    apply(k, simple_pod("web", ["sh", "-c", "mkdir /www && echo hello through port-forward > "
                                "/www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www"],
                        restart="Always", extra="""    readinessProbe:
      exec: {command: ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/index.html"]}
      periodSeconds: 1"""))
    wait_for(lambda: container_status(k, "web").get("ready"), what="web ready")
    api = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(config_file=s.kubeconfig))
    pf = portforward(api.connect_get_namespaced_pod_portforward, "web", "default", ports="8080,9")
    sock = pf.socket(8080)
    sock.setblocking(True)
    sock.settimeout(30)
    sock.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
    reply = b""
    while chunk := sock.recv(4096):
        reply += chunk
    sock.close()
    assert reply.startswith(b"HTTP/1.") and reply.endswith(b"hello through port-forward\n"), reply
    assert "connection refused" in (pf.error(9) or "").lower(), pf.error(9)
    # kubectl: SPDY in a WebSocket (its default), and SPDY after an HTTP upgrade (its fallback).
    for websockets in ("true", "false"):
        kubectl_port_forward(s, websockets)
    k("delete", "pod", "web")


def kubectl_port_forward(server, websockets):
    """`kubectl port-forward pod/web :8080 :9` carries several connections to the pod's httpd; a
    connection to a closed port gets kubectl's error for that connection and nothing else."""
    env = dict(os.environ, KUBECONFIG=server.kubeconfig, HOME=server.home,
               KUBECTL_PORT_FORWARD_WEBSOCKETS=websockets)
    # -v=8 logs every frame: to a file, as a pipe nobody reads until the end fills (64 KiB)
    # and blocks kubectl in the middle of its session.
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(["kubectl", "port-forward", "pod/web", ":8080", ":9", "-v=8"], env=env,
                            stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        local = {}
        while len(local) < 2:  # "Forwarding from 127.0.0.1:41234 -> 8080"
            line = proc.stdout.readline()
            assert line, f"kubectl port-forward ended: {read_all(log)}"
            if line.startswith("Forwarding from 127.0.0.1:"):
                address, remote = line.split("Forwarding from ")[1].split(" -> ")
                local[int(remote)] = int(address.rsplit(":", 1)[1])
        for _ in range(3):  # One pair of SPDY streams per connection.
            with urllib.request.urlopen(f"http://127.0.0.1:{local[8080]}/index.html", timeout=30) as r:
                assert r.read() == b"hello through port-forward\n"
        with socket.create_connection(("127.0.0.1", local[9]), timeout=30) as c:
            try:
                closed = c.recv(100) == b""  # The pod refused: kubectl closes this connection.
            except TimeoutError:
                closed = False
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
        err = read_all(log)
        log.close()
    assert closed, f"kubectl kept the refused port's connection open: {err[-6000:]}"
    # As against a kubelet: the pod's error, and kubectl ends the session on it.
    assert "error forwarding port 9 to pod web" in err and "connection refused" in err.lower(), err
    # The way in was the one asked for (kubectl -v=8 logs the request headers).
    if websockets == "true":
        assert "Sec-Websocket-Protocol: SPDY/3.1+portforward.k8s.io" in err, err[-3000:]
    else:
        assert "Upgrade: SPDY/3.1" in err and "Sec-Websocket" not in err, err[-3000:]


def read_all(file):
    file.seek(0)
    return file.read()


def test_images_are_pulled_through_the_mirror_and_by_kiso_image_pull(node, registry):
    s, k = node
    # Every pod above pulled docker.io/library/busybox through the mirror.
    listed = subprocess.run([KISO_BIN, "image", "--data-dir", s.dir, "ls"], check=True,
                            capture_output=True, text=True).stdout
    assert "docker.io/library/busybox:latest" in listed
    ref = f"{registry.address}/tools/busybox:1"
    pulled = subprocess.run([KISO_BIN, "image", "--data-dir", s.dir, "pull", ref],
                            capture_output=True, text=True)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.startswith(f"pulled {ref} sha256:")
    apply(k, f"""
apiVersion: v1
kind: Pod
metadata: {{name: local-only}}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: {ref}
    imagePullPolicy: Never
    command: ["true"]
""")
    wait_for(lambda: phase(k, "local-only") == "Succeeded", what="local-only Succeeded")
    events = json.loads(k("get", "events", "-o", "json"))["items"]
    assert any(e["reason"] == "Pulled" and "already present" in e["message"]
               for e in events if e["involvedObject"]["name"] == "local-only")
    k("delete", "pod", "local-only")


def test_prestop_hook_runs_before_sigterm(node, tmp_path):
    s, k = node
    out = tmp_path / "out"
    out.mkdir()
    apply(k, f"""
apiVersion: v1
kind: Pod
metadata: {{name: polite}}
spec:
  terminationGracePeriodSeconds: 10
  volumes:
  - name: out
    hostPath: {{path: {out}}}
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "trap 'echo term >> /out/log; exit 0' TERM; while true; do sleep 0.1; done"]
    volumeMounts: [{{name: out, mountPath: /out}}]
    lifecycle:
      preStop:
        exec: {{command: ["sh", "-c", "echo prestop >> /out/log"]}}
""")
    wait_for(lambda: phase(k, "polite") == "Running", what="polite Running")
    k("delete", "pod", "polite", "--wait=true", timeout=30)
    assert (out / "log").read_text() == "prestop\nterm\n"


STATEFULSET = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox
        command: ["sh", "-c", "hostname >> /data/log; exec sleep 3600"]
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"""


def claim(kubectl, name):
    p = kubectl.run("get", "pvc", name, "-o", "json", check=False)
    return json.loads(p.stdout) if p.returncode == 0 else None


def test_statefulset_claims_keep_their_data_across_pods(node):
    """volumeClaimTemplates on the default local-path class: one claim per ordinal, provisioned
    on the node the pod is scheduled to, kept when the set is deleted and found again by the
    set made anew; a claim grows on request; deleting the claims deletes volumes and data."""
    s, k = node
    assert "local-path (default)" in k("get", "storageclass")
    apply(k, STATEFULSET)
    for ordinal in (0, 1):
        wait_for(lambda: phase(k, f"db-{ordinal}") == "Running", what=f"db-{ordinal} Running")
        c = claim(k, f"data-db-{ordinal}")
        assert c["status"]["phase"] == "Bound" and c["spec"]["storageClassName"] == "local-path", c
        assert c["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == NODE
        assert c["metadata"]["labels"] == {"app": "db"}
        assert "kubernetes.io/pvc-protection" in c["metadata"]["finalizers"]
        pv = json.loads(k("get", "pv", c["spec"]["volumeName"], "-o", "json"))
        assert pv["spec"]["claimRef"]["uid"] == c["metadata"]["uid"]
        assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0][
            "matchExpressions"][0]["values"] == [NODE]
        path = pv["spec"]["hostPath"]["path"]
        assert path.startswith(os.path.join(s.dir, "agent", "storage")), path
        wait_for(lambda: os.path.exists(os.path.join(path, "log")), what="the pod's write")
        assert k("exec", f"db-{ordinal}", "--", "cat", "/data/log").split() == [f"db-{ordinal}"]
    # The set goes, its claims stay (whenDeleted: Retain), and the set made anew finds them.
    k("delete", "statefulset", "db", "--wait=true", timeout=60)
    wait_for(lambda: not k("get", "pods", "-l", "app=db", "-o", "name"), what="db pods gone")
    assert claim(k, "data-db-0")["status"]["phase"] == "Bound"
    apply(k, STATEFULSET)
    wait_for(lambda: phase(k, "db-1") == "Running", what="db-1 Running again")
    wait_for(lambda: k("exec", "db-0", "--", "cat", "/data/log").split() == ["db-0", "db-0"],
             what="db-0's data written twice")
    # Expansion: local-path allows it; the volume and the claim's capacity follow.
    k("patch", "pvc", "data-db-0", "-p", '{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}')
    wait_for(lambda: (claim(k, "data-db-0")["status"].get("capacity") or {}).get("storage") == "2Gi",
             what="the claim grown")
    # Scaled down: db-1 goes, its claim stays (whenScaled: Retain).
    k("scale", "statefulset", "db", "--replicas=1")
    wait_for(lambda: pod(k, "db-1") is None, what="db-1 gone")
    assert claim(k, "data-db-1") is not None
    k("delete", "statefulset", "db", "--wait=true", timeout=60)
    wait_for(lambda: not k("get", "pods", "-l", "app=db", "-o", "name"), what="db pods gone")
    paths = [json.loads(k("get", "pv", claim(k, f"data-db-{i}")["spec"]["volumeName"], "-o",
                          "json"))["spec"]["hostPath"]["path"] for i in (0, 1)]
    # Reclaim policy Delete: the claims' deletion removes their volumes and directories.
    k("delete", "pvc", "data-db-0", "data-db-1", "--wait=true", timeout=60)
    wait_for(lambda: not k("get", "pv", "-o", "name"), what="the volumes deleted")
    assert not any(os.path.exists(p) for p in paths), paths


def test_static_volume_protection_and_retain(node, tmp_path):
    """A PersistentVolume made by hand binds the claim that fits it; a claim a pod uses is not
    removed until the pod is; a Retain volume is Released with its data kept. subPath mounts
    a directory inside the volume; a pod naming a claim that does not exist is unschedulable."""
    s, k = node
    host = tmp_path / "static"
    host.mkdir()
    apply(k, f"""
apiVersion: v1
kind: PersistentVolume
metadata: {{name: static-small, labels: {{tier: gold}}}}
spec:
  capacity: {{storage: 100Mi}}
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  hostPath: {{path: {host}/small}}
---
apiVersion: v1
kind: PersistentVolume
metadata: {{name: static-big, labels: {{tier: gold}}}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce, ReadWriteMany]
  storageClassName: manual
  hostPath: {{path: {host}/big, type: DirectoryOrCreate}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: manual}}
spec:
  storageClassName: manual
  accessModes: [ReadWriteMany]
  selector: {{matchLabels: {{tier: gold}}}}
  resources: {{requests: {{storage: 50Mi}}}}
""")
    wait_for(lambda: (claim(k, "manual") or {}).get("status", {}).get("phase") == "Bound",
             what="the claim bound")
    # The only volume offering ReadWriteMany, though the smaller one is large enough.
    assert claim(k, "manual")["spec"]["volumeName"] == "static-big"
    assert "static-small" in k("get", "pv", "static-small", "-o", "name")
    wait_for(lambda: "Available" in k("get", "pv", "static-small", "--no-headers"),
             what="static-small Available")
    apply(k, simple_pod("writer", ["sh", "-c", "echo kept > /data/file; exec sleep 3600"],
                        restart="Always", extra="""    volumeMounts: [{name: d, mountPath: /data, subPath: sub}]
  volumes: [{name: d, persistentVolumeClaim: {claimName: manual}}]"""))
    wait_for(lambda: (host / "big" / "sub" / "file").exists(), what="the write through subPath")
    # In use: the claim's deletion waits for the pod.
    k("delete", "pvc", "manual", "--wait=false")
    assert claim(k, "manual")["metadata"].get("deletionTimestamp")
    assert "Terminating" in k("get", "pvc", "manual", "--no-headers")
    k("delete", "pod", "writer", "--wait=true", timeout=60)
    wait_for(lambda: claim(k, "manual") is None, what="the claim gone with its last pod")
    wait_for(lambda: "Released" in k("get", "pv", "static-big", "--no-headers"),
             what="static-big Released")
    assert (host / "big" / "sub" / "file").read_text() == "kept\n"
    # No such claim: said by the scheduler.
    apply(k, simple_pod("orphan", ["true"], extra="""  volumes: [{name: d, persistentVolumeClaim: {claimName: nope}}]"""))
    def unschedulable():
        conditions = pod(k, "orphan").get("status", {}).get("conditions") or [{}]
        return conditions[0].get("message", "")
    wait_for(lambda: 'persistentvolumeclaim "nope" not found' in unschedulable(),
             what="the unschedulable reason")
    assert unschedulable() == '0/1 nodes are available: persistentvolumeclaim "nope" not found.'

    k("delete", "pod/orphan", "pv/static-small", "pv/static-big", "--wait=true", timeout=60)


def test_grace_periods_do_not_hold_up_other_pods(node):
    """Pods ignoring SIGTERM keep their grace period; meanwhile, more of them
    than the agent has workers, a new pod still starts."""
    s, k = node
    stubborn = [f"stubborn-{i}" for i in range(10)]
    for name in stubborn:
        apply(k, simple_pod(name, ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"],
                            restart="Always").replace("terminationGracePeriodSeconds: 1",
                                                      "terminationGracePeriodSeconds: 20"))
    for name in stubborn:
        wait_for(lambda: phase(k, name) == "Running", what=f"{name} Running")
    k("delete", "pod", *stubborn, "--wait=false")
    apply(k, simple_pod("newcomer", ["sleep", "3600"], restart="Always"))
    wait_for(lambda: phase(k, "newcomer") == "Running", what="newcomer Running")
    # Still within their 20 s: every stubborn pod is terminating, none gone.
    left = k("get", "pods", "-o", "name").split()
    assert all(f"pod/{name}" in left for name in stubborn), left
    k("delete", "pod", "newcomer", *stubborn, "--grace-period=0", "--force", "--wait=true",
      timeout=60)

"""A cluster of several machines simulated honestly on one: three etcd members; kiso servers
on addresses of their own; and nodes, each a network namespace of its own with its own address
on an "underlay" bridge this harness makes, its own data directory, CNI bridge, service tables
and containers on the real runc, run by a `kiso agent` that joined with a bootstrap token.

Everything it makes is removed when the `Cluster` context ends, also when a test fails: agents
stopped, each node reset (`kiso node reset --data-dir`, in its namespace), namespaces, links and
the bridge deleted, servers and etcd stopped, directories removed.

Traffic stays on this machine: servers listen on the underlay bridge's addresses (a link this
harness made), etcd on 127.0.0.1, and pods and nodes live in the namespaces made here."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

from conftest import (KISO_BIN, Kubectl, Server, free_port, machine_slot, terminate,  # noqa: E402
                      wait_for, _etcd_healthy)
from images import build_oci_archive  # noqa: E402


def run(*args, check=True, input=None):
    p = subprocess.run(list(args), capture_output=True, text=True, input=input)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({p.returncode}): {p.stdout}{p.stderr}")
    return p


class EtcdCluster:
    """Three etcd members on 127.0.0.1; `kill(i)` and `start(i)` for drills."""

    def __init__(self, members=3):
        self.dir = tempfile.mkdtemp(prefix="kiso-cluster-etcd-")
        self.names = [f"m{i}" for i in range(members)]
        self.clients = [f"http://127.0.0.1:{free_port()}" for _ in self.names]
        self.peers = [f"http://127.0.0.1:{free_port()}" for _ in self.names]
        self.procs = [None] * members
        self.logs = [open(os.path.join(self.dir, f"{n}.log"), "ab") for n in self.names]
        for i in range(members):
            self.start(i, wait=False)
        for c in self.clients:
            wait_for(lambda: _etcd_healthy(c), 30, "etcd members to serve")

    def start(self, i, wait=True):
        initial = ",".join(f"{n}={p}" for n, p in zip(self.names, self.peers))
        self.procs[i] = subprocess.Popen(
            ["/usr/bin/etcd", "--name", self.names[i],
             "--data-dir", os.path.join(self.dir, self.names[i]),
             "--listen-client-urls", self.clients[i], "--advertise-client-urls", self.clients[i],
             "--listen-peer-urls", self.peers[i], "--initial-advertise-peer-urls", self.peers[i],
             "--initial-cluster", initial, "--initial-cluster-state", "new",
             "--initial-cluster-token", os.path.basename(self.dir),
             "--heartbeat-interval", "50", "--election-timeout", "500"],
            stdout=self.logs[i], stderr=subprocess.STDOUT)
        if wait:
            wait_for(lambda: _etcd_healthy(self.clients[i]), 30, f"etcd member {i} to serve")

    def kill(self, i):
        self.procs[i].kill()
        self.procs[i].wait()

    @property
    def url(self):
        return "etcd://" + ",".join(c.removeprefix("http://") for c in self.clients)

    def stop(self):
        for p in self.procs:
            if p and p.poll() is None:
                terminate(p)
        for log in self.logs:
            log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Node:
    """One simulated machine: a network namespace with `eth0` on the underlay, and its agent."""

    def __init__(self, cluster, index):
        self.cluster = cluster
        self.name = f"kc{cluster.slot}-n{index}"
        self.netns = f"kiso-c{cluster.slot}n{index}"
        self.ip = f"{cluster.prefix}.{10 + index}"
        self.dir = tempfile.mkdtemp(prefix=f"kiso-cluster-{self.name}-")
        self.agent = None
        self.log = None

    def sh(self, *args, check=True, input=None):
        """A command in this node's network namespace (nothing else of it changes)."""
        return run("nsenter", f"--net=/run/netns/{self.netns}", "--", *args, check=check,
                   input=input)

    def plumb(self):
        run("mount", "--bind", self.dir, self.dir)
        run("mount", "--make-shared", self.dir)
        host_end = f"kisoc{self.cluster.slot}v{self.name[-1]}"  # kiso*: the leak check sees it.
        run("ip", "netns", "add", self.netns)
        run("ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns",
            self.netns)
        run("ip", "link", "set", host_end, "master", self.cluster.bridge, "up")
        self.sh("ip", "link", "set", "lo", "up")
        self.sh("ip", "addr", "add", f"{self.ip}/24", "dev", "eth0")
        self.sh("ip", "link", "set", "eth0", "up")

    def start_agent(self, servers, token, backend):
        """The agent in the node's network namespace and a mount namespace of its own whose
        /sys is that network namespace's (as on a machine of its own), the host's cgroups
        mounted back under it; its data directory a shared mount, so that what it mounts there
        (containers' roots, sandboxes' namespaces) is seen by the host and `kiso node reset`."""
        self.started_with = (servers, token, backend)
        self.log = open(os.path.join(self.dir, "agent.log"), "ab")
        stage = os.path.join(self.cluster.dir, f"cgroup-{self.name}")
        os.makedirs(stage, exist_ok=True)
        setup = (f"mount --rbind /sys/fs/cgroup {stage} && mount -t sysfs sysfs /sys && "
                 f"mount --move {stage} /sys/fs/cgroup && exec \"$@\"")
        self.agent = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.netns}", "--", "unshare", "--mount",
             "--propagation", "unchanged", "--", "sh", "-c", setup, "sh", KISO_BIN, "agent",
             "--server", ",".join(servers), "--token", token,
             "--ca-file", self.cluster.ca_file, "--data-dir", self.dir, "--node-name", self.name,
             "--node-ip", self.ip, "--flannel-backend", backend,
             # Renewed every 2 s: well inside the servers' 10 s grace period.
             "--node-lease-duration-seconds", "8",
             "--cluster-cidr", self.cluster.cluster_cidr,
             "--cluster-dns", "", "--resolv-conf", self.cluster.resolv_conf,
             "--ingress-http-port", "0", "--ingress-https-port", "0"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def leftovers(self):
        """What of this node's pods could outlive them: containers, shims, mounts, veths on its
        pod bridge, addresses still taken."""
        runtime = os.path.join(self.dir, "agent", "runtime")
        containers = run("runc", "--root", os.path.join(runtime, "state"), "list", "-q",
                         check=False).stdout.split()
        shims = run("pgrep", "-f", f"kiso-shim .*{self.dir}/", check=False).stdout.split()
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f if line.split()[4].startswith(self.dir + "/")]
        veths = self.sh("ip", "-o", "link", "show", "master", "kiso0",
                        check=False).stdout.strip().splitlines()
        ipam = os.path.join(self.dir, "agent", "cni", "ipam", "kiso")
        ips = [n for n in os.listdir(ipam) if n[0].isdigit()] if os.path.isdir(ipam) else []
        return {k: v for k, v in {"containers": containers, "shims": shims, "mounts": mounts,
                                  "veths": veths, "ips": ips}.items() if v}

    def restart_agent(self):
        terminate(self.agent)
        self.log.close()
        self.start_agent(*self.started_with)

    def agent_log(self):
        if self.log:
            self.log.flush()
        with open(os.path.join(self.dir, "agent.log"), errors="replace") as f:
            return f.read()

    def teardown(self):
        if self.agent and self.agent.poll() is None:
            terminate(self.agent)
        if self.log:
            self.log.close()
        if os.path.exists(f"/run/netns/{self.netns}"):
            # What the node left (containers, mounts, cgroups, CNI state, tables, routes).
            p = self.sh(KISO_BIN, "node", "reset", "--data-dir", self.dir, check=False)
            if p.returncode != 0:
                print(f"kiso node reset of {self.name} failed:\n{p.stdout}{p.stderr}")
            # A socket of the namespace's still closing (its peer gone) would keep it, and its
            # end of the underlay, alive for minutes after the delete: close them now.
            left = self.sh("ss", "-tanH", "exclude", "time-wait", check=False).stdout
            if left.strip():
                print(f"{self.name}'s sockets at its end:\n{left}")
            self.sh("ss", "-K", "-ta", check=False)
            run("ip", "netns", "delete", self.netns, check=False)
        run("umount", "-l", self.dir, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


class Cluster:
    """`servers` kiso servers on one three-member etcd and `nodes` agents, each node in a
    namespace of its own on an underlay bridge; the pod network across nodes by `backend`."""

    live = []  # Those between __enter__ and __exit__, for diagnostics_on_failure.

    def __init__(self, backend="vxlan", servers=2, nodes=3):
        self.slot = machine_slot()
        self.backend = backend
        self.prefix = f"10.{200 + self.slot // 50}.{self.slot % 50 * 5}"  # An underlay /24.
        self.bridge = f"kisoc{self.slot}u"  # The underlay.
        self.cluster_cidr = f"10.{150 + self.slot}.0.0/16"
        self.service_cidr = f"10.{100 + self.slot}.0.0/16"
        self.server_count, self.node_count = servers, nodes
        self.etcd = None
        self.servers = []
        self.nodes = []
        self.dir = tempfile.mkdtemp(prefix="kiso-cluster-")
        self.resolv_conf = os.path.join(self.dir, "resolv.conf")
        with open(self.resolv_conf, "w") as f:
            f.write("# no upstream resolvers in tests\n")

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        Cluster.live.append(self)
        return self

    def print_diagnostics(self):
        """Pods, the tail of every agent's and server's log, and whether each server still
        runs: printed when a test failed (pytest shows a failed test's output)."""
        print(self.kubectl("get", "pods", "-A", "-o", "wide", check=False))
        for n in self.nodes:
            print(f"--- {n.name}'s agent:\n" + n.agent_log()[-3000:])
        for s in self.servers:
            code = s.proc.poll()
            state = "running" if code is None else f"exited with {code}"
            print(f"--- server {s.address} ({state}):\n" + s.logs())

    def _start(self):
        # Its own MAC, set: a bridge without one takes the lowest of its ports', so a node
        # plumbed later could change it under a node that has it in its ARP cache (frames to
        # the old one are no longer the bridge's: that node is cut off until it asks again).
        run("ip", "link", "add", self.bridge, "address", f"02:6b:69:73:6f:{self.slot:02x}",
            "type", "bridge")
        run("ip", "link", "set", self.bridge, "up")
        for i in range(self.server_count):
            run("ip", "addr", "add", f"{self.prefix}.{1 + i}/24", "dev", self.bridge)
        self.etcd = EtcdCluster()
        port = free_port()
        flags = ["--store", self.etcd.url, "--cluster-cidr", self.cluster_cidr,
                 "--service-cidr", self.service_cidr, "--resolv-conf", self.resolv_conf,
                 "--apiserver-lease-duration", "3", "--leader-elect-lease-duration", "3s",
                 "--leader-elect-renew-deadline", "2s", "--leader-elect-retry-period", "500ms",
                 "--node-monitor-grace-period", "10"]
        for i in range(self.server_count):
            join = self.servers[0].join_args() if self.servers else []
            self.servers.append(Server(flags + join, address=f"{self.prefix}.{1 + i}", port=port))
        self.kubectl = Kubectl(self.servers[0])
        self.ca_file = os.path.join(self.servers[0].dir, "tls", "ca.crt")
        image = build_oci_archive(os.path.join(self.dir, "busybox.tar"),
                                  "docker.io/library/busybox:1.35")  # Not :latest: pulled Always.
        token = run(KISO_BIN, "token", "create", "--data-dir",
                    self.servers[0].dir).stdout.strip()
        urls = [f"https://{s.address}:{s.port}" for s in self.servers]
        for i in range(1, self.node_count + 1):
            node = Node(self, i)
            self.nodes.append(node)
            run(KISO_BIN, "image", "--data-dir", node.dir, "import", image)
            node.plumb()
            node.start_agent(urls[:1], token, self.backend)
        for node in self.nodes:
            last = []

            def ready():
                p = self.kubectl.run("get", "node", node.name, "--no-headers", check=False)
                last[:] = [p.stdout + p.stderr]
                return p.returncode == 0 and " Ready " in p.stdout
            try:
                began = time.monotonic()
                wait_for(ready, 60, f"{node.name} Ready")
                if time.monotonic() - began > 3:  # What held it up, if its client saw it.
                    print(f"{node.name} Ready after {time.monotonic() - began:.1f} s more:\n" +
                          "\n".join(l for l in node.agent_log().splitlines() if " took " in l))
            except AssertionError:
                print(f"kubectl get node {node.name}: {last}")
                print(self.kubectl("get", "csr", "-o", "wide", check=False))
                print(f"--- {node.name}'s agent, first lines:\n" + node.agent_log()[:3000])
                print(f"--- {node.name}'s agent:\n" + node.agent_log()[-3000:])
                for s in self.servers:
                    print(f"--- server {s.address}:\n" + s.logs()[-3000:])
                raise

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def __exit__(self, *exc):
        if self in Cluster.live:
            Cluster.live.remove(self)
        errors = []
        for node in self.nodes:
            try:
                node.teardown()
            except Exception as e:  # Go on: everything else must go too.
                errors.append(e)
        for s in self.servers:
            try:
                s.close()
            except Exception as e:
                errors.append(e)
        if self.etcd:
            self.etcd.stop()
        run("ip", "link", "delete", self.bridge, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        if errors and exc[0] is None:
            raise errors[0]


@pytest.fixture(autouse=True)
def diagnostics_on_failure(request):
    """Prints every live cluster's diagnostics after a test that failed. (A module-scoped
    fixture never sees its tests' exceptions, and the cluster's logs go with its directory.)
    A module that uses Cluster imports this fixture to have it."""
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        for c in Cluster.live:
            c.print_diagnostics()


def pod_on(node, name, command, restart="Never"):
    """A pod bound to `node` (spec.nodeName: no scheduler involved)."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"nodeName": node, "restartPolicy": restart,
                 "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "c", "image": "busybox:1.35", "command": command}]}})


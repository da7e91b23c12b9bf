"""Fixtures for kiso's end-to-end tests: the real `kiso server` binary on a free
127.0.0.1 port with a temporary data dir, the real kubectl, the real Python client.

Run by CTest (tests/CMakeLists.txt) as /usr/bin/python3 -m pytest; KISO_BIN names the binary.
"""
import contextlib
import datetime
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request

import pytest

KISO_BIN = os.environ.get("KISO_BIN", os.path.join(os.path.dirname(__file__), "../../build/src/cmd/kiso"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_slot = None


def machine_slot():
    """A number in 0..99 that no other test process on this machine holds while this one runs:
    its bridges, pod and service ranges are derived from it, so that suites running at once
    (ctest -j) never share an address (two nodes' tables answering one cluster IP would send
    one's pods to the other's Services). Held by binding an abstract Unix socket, which the
    kernel releases when the process ends, whatever way it ends; nothing is left on disk."""
    global _slot
    if _slot is None:
        for n in range(100):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.bind(f"\0kiso-e2e-slot-{n}")
            except OSError:
                s.close()
                continue
            _slot = (n, s)
            break
        else:
            raise RuntimeError("all 100 e2e slots are held by other test processes")
    return _slot[0]


def micro_time_seconds(stamp):
    """Seconds since the epoch of a MicroTime such as 2026-12-05T09:10:11.123456Z."""
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def proc_status(pid, field):
    """A number from /proc/PID/status ("Threads", "VmRSS" in kB), 0 when absent."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def mapped_files(pid):
    """The names of the files the process maps (its libraries and plugins)."""
    with open(f"/proc/{pid}/maps") as f:
        return {os.path.basename(line.split()[-1]) for line in f if "/" in line}


def wait_for(predicate, timeout=60, what="condition"):
    """Polls `predicate` until it returns something true (returned), or fails at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)  # Polling with a deadline.
    raise AssertionError(f"timed out waiting for {what}")


def terminate(proc):
    """SIGTERM, and SIGKILL if the process has not exited 10 s later (its threads' stacks
    printed first, when gdb is here: a stop that hangs is a bug to find)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            print_stacks(proc.pid)
            proc.kill()
            proc.wait()


def print_stacks(pid):
    """Every thread's stack of process `pid`, by gdb (if installed) attached for a moment."""
    gdb = shutil.which("gdb")
    if not gdb:
        print(f"process {pid} did not stop (no gdb here for its stacks)")
        return
    try:
        out = subprocess.run([gdb, "-p", str(pid), "-batch", "-nx", "-ex", "thread apply all bt"],
                             capture_output=True, text=True, timeout=60).stdout
    except subprocess.TimeoutExpired:
        out = "(gdb took longer than 60 s)"
    print(f"process {pid} did not stop; its threads:\n{out}")


def node_reset(data_dir):
    """`kiso node reset --data-dir`: removes whatever the node under `data_dir` left on the
    machine (containers, shims, mounts, links, cgroups, CNI state), also after a failure."""
    p = subprocess.run([KISO_BIN, "node", "reset", "--data-dir", data_dir], capture_output=True,
                       text=True)
    assert p.returncode == 0, f"kiso node reset failed:\n{p.stdout}{p.stderr}"
    return p.stdout


class Server:
    """One `kiso server` process; stopped (and its directory removed) at teardown."""

    def __init__(self, extra_args=(), agent=False, env=None, setup=None, address=None, port=None):
        """Without `agent`, the server runs no node agent (tests use hollow nodes). `env` is
        added to its environment; `setup(data_dir)` runs before it first starts. `address`: the
        one loopback address it listens on and advertises (default: every address); `port`:
        its port (default: a free one)."""
        self.dir = tempfile.mkdtemp(prefix="kiso-e2e-")
        # The cluster DNS on a port of its own, forwarding nowhere: tests never send traffic
        # beyond this machine (a test that needs an upstream passes its own --resolv-conf).
        resolv = os.path.join(self.dir, "resolv.conf")
        with open(resolv, "w") as f:
            f.write("# no upstream resolvers in tests\n")
        defaults = ["--dns-port", "0"]
        if "--resolv-conf" not in extra_args:
            defaults += ["--resolv-conf", resolv]
        # The ingress controller on ports of its own too (80 and 443 are the machine's).
        for flag in ("--ingress-http-port", "--ingress-https-port"):
            if flag not in extra_args:
                defaults += [flag, "0"]
        if address:
            defaults += ["--address", address, "--advertise-address", address]
        self.address = address or "127.0.0.1"
        self.args = defaults + list(extra_args) + ([] if agent else ["--disable-agent"])
        self.env = dict(env or {})
        if setup:
            setup(self.dir)
        self.port = port or free_port()
        self.log = open(os.path.join(self.dir, "server.log"), "wb")
        self.kubeconfig = os.path.join(self.dir, "kubeconfig.yaml")
        self.start()
        with open(os.path.join(self.dir, "tls", "admin.token")) as f:
            self.token = f.read().strip()
        # kubectl (and its dispatcher) cache discovery and /version under $HOME.
        self.home = os.path.join(self.dir, "home")
        os.makedirs(self.home)

    def join_args(self):
        """What another server on this one's etcd passes to join its cluster: --join and the
        server token this one began the cluster with."""
        with open(os.path.join(self.dir, "tls", "server-token")) as f:
            return ["--join", "--token", f.read().strip()]

    def start(self, wait=True):
        self.proc = subprocess.Popen(
            [KISO_BIN, "server", "--data-dir", self.dir, "--https-port", str(self.port), *self.args],
            stdout=self.log, stderr=subprocess.STDOUT, env=dict(os.environ, **self.env))
        if wait:
            self.wait_ready()

    def kill(self):
        """SIGKILL, as a crash would."""
        self.proc.kill()
        self.proc.wait()

    def wait_ready(self, timeout=20):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("kiso server exited: " + self.logs())
            try:
                with urllib.request.urlopen(f"https://{self.address}:{self.port}/readyz", context=ctx, timeout=1) as r:
                    if r.status == 200 and os.path.exists(self.kubeconfig):
                        return
            except OSError:
                pass
            time.sleep(0.02)  # Polling with a deadline: the server is starting.
        raise RuntimeError("kiso server not ready in time: " + self.logs())

    def logs(self):
        self.log.flush()
        with open(os.path.join(self.dir, "server.log"), "rb") as f:
            return f.read().decode(errors="replace")[-4000:]

    def close(self):
        """Stops it; or, when the test killed it, releases what it left (log, directory)."""
        if self.proc.poll() is None:
            self.stop()
        else:
            print(f"kiso server had exited with {self.proc.returncode}; its log:\n" + self.logs())
            self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def stop(self, keep_dir=False):
        terminate(self.proc)
        code = self.proc.returncode
        if code != 0:
            print(f"kiso server exited with {code}; its log:\n" + self.logs())
        self.log.close()
        # The service proxy's incremental changes are never refused by the
        # kernel (a refusal falls back to rebuilding the table, which would
        # hide a wrong netlink batch behind working Services).
        with open(os.path.join(self.dir, "server.log"), "rb") as f:
            refused = [line for line in f.read().decode(errors="replace").splitlines()
                       if "update refused" in line]
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        assert code == 0, f"kiso server did not shut down cleanly (exit {code})"
        assert not refused, "the kernel refused service proxy updates:\n" + "\n".join(refused[:5])


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    s.stop()


class Hollow:
    """`kiso hollow`: simulated nodes joined to a server through its kubeconfig."""

    def __init__(self, server, count, prefix="hollow", extra=()):
        self.log = open(os.path.join(server.dir, f"{prefix}.log"), "wb")
        self.proc = subprocess.Popen(
            [KISO_BIN, "hollow", "--kubeconfig", server.kubeconfig, "--count", str(count),
             "--prefix", prefix, *extra],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()   # Printed once every node is registered.
        if "registered" not in line:
            raise RuntimeError("kiso hollow failed: " + line)

    def stop(self):
        terminate(self.proc)
        self.log.close()

    def kill(self):
        """SIGKILL: the nodes go silent at once, as a crashed machine would."""
        self.proc.kill()
        self.proc.wait()


class Kubectl:
    def __init__(self, server):
        self.server = server

    def run(self, *args, input=None, check=True, timeout=60, env=None):
        env = dict(os.environ, KUBECONFIG=self.server.kubeconfig, HOME=self.server.home, **(env or {}))
        p = subprocess.run(["kubectl", *args], input=input, capture_output=True, text=True, env=env,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def __call__(self, *args, **kw):
        return self.run(*args, **kw).stdout


@pytest.fixture(scope="session")
def kubectl(server):
    return Kubectl(server)


@pytest.fixture(scope="session")
def k8s(server):
    import kubernetes
    return kubernetes.config.new_client_from_config(config_file=server.kubeconfig)


@contextlib.contextmanager
def etcd_member():
    """A one-member etcd (Debian's etcd-server) on free loopback ports, as "host:port"; stopped
    and removed at the end."""
    data = tempfile.mkdtemp(prefix="kiso-e2e-etcd-")
    client, peer = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    log = open(os.path.join(data, "etcd.log"), "wb")
    proc = subprocess.Popen(
        ["/usr/bin/etcd", "--name", "kiso-e2e", "--data-dir", os.path.join(data, "data"),
         "--listen-client-urls", client, "--advertise-client-urls", client,
         "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
         "--initial-cluster", f"kiso-e2e={peer}", "--heartbeat-interval", "20",
         "--election-timeout", "200"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _etcd_healthy(client), timeout=30, what="etcd to serve")
        yield client.removeprefix("http://")
    finally:
        terminate(proc)
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def _etcd_healthy(client):
    try:
        with urllib.request.urlopen(client + "/health", timeout=1) as r:
            return b'"true"' in r.read()
    except OSError:
        return False

"""Several `kiso server`s on one etcd: the scheduler and the controllers act on
exactly one of them at a time, through the kube-system Leases
kube-scheduler and kube-controller-manager (as kube-scheduler and
kube-controller-manager elect theirs), and another server takes over when the
leader dies."""
import json
import subprocess
import time

import pytest

from conftest import (KISO_BIN, Kubectl, Server, etcd_member, free_port, micro_time_seconds,
                      wait_for)

@pytest.fixture
def etcd():
    with etcd_member() as endpoint:
        yield endpoint


# Short, so that the test takes seconds: a lease of 3 s, renewed every 0.5 s,
# given up after 2 s without a renewal.
ELECTION = ["--leader-elect-lease-duration", "3s", "--leader-elect-renew-deadline", "2s",
            "--leader-elect-retry-period", "500ms"]


def holders(kubectl):
    leases = json.loads(kubectl("get", "leases", "-n", "kube-system", "-o", "json"))["items"]
    return {l["metadata"]["name"]: l["spec"].get("holderIdentity", "") for l in leases
            if l["metadata"]["name"] in ("kube-scheduler", "kube-controller-manager")}


def identity(server):
    with open(f"{server.dir}/server-id") as f:
        return f.read().strip()


def pods(kubectl, selector):
    return json.loads(kubectl("get", "pods", "-l", selector, "-o", "json"))["items"]


def test_one_server_of_two_acts_and_the_other_takes_over_when_it_dies(etcd):
    store = ["--store", f"etcd://{etcd}", *ELECTION]
    first = Server(extra_args=store)
    second = None
    try:
        k1 = Kubectl(first)
        wait_for(lambda: len(holders(k1)) == 2, 10, "the first server to take both Leases")
        assert all(h.endswith(identity(first)) for h in holders(k1).values()), holders(k1)
        second = Server(extra_args=store + first.join_args())
        k2 = Kubectl(second)
        # The second serves the same Leases and waits: the first keeps renewing them.
        assert all(h.endswith(identity(first)) for h in holders(k2).values()), holders(k2)

        # Work created through the second is done by the first's controllers, once:
        # a ReplicaSet of three makes three pods, not six.
        k2("create", "deployment", "web", "--image=registry.local/app:1", "--replicas=3")
        wait_for(lambda: len(pods(k2, "app=web")) == 3, 20, "three pods of the Deployment")
        replicasets = json.loads(k2("get", "rs", "-l", "app=web", "-o", "json"))["items"]
        assert len(replicasets) == 1
        time.sleep(1.5)  # Three renewals: a second controller, if any, would have added pods.
        assert len(pods(k2, "app=web")) == 3

        # The leader dies (kill -9: nothing released). The second takes both
        # Leases within the lease duration plus a retry period of the death.
        killed_at = time.time()
        first.kill()
        wait_for(lambda: all(h.endswith(identity(second)) for h in holders(k2).values())
                 and len(holders(k2)) == 2, 15, "the second server to take both Leases")
        # Timed by the Leases' acquireTime (written by the second server, on this
        # machine's clock), not by this test's polling through kubectl, which a
        # loaded machine slows by a second or more. The last renewal the second saw
        # may be one retry period (and its jitter of a tenth) after the kill.
        leases = json.loads(k2("get", "leases", "-n", "kube-system", "-o", "json"))["items"]
        elected = [l for l in leases
                   if l["metadata"]["name"] in ("kube-scheduler", "kube-controller-manager")]
        took = max(micro_time_seconds(l["spec"]["acquireTime"]) for l in elected) - killed_at
        print(f"leader failover: {took * 1000:.0f} ms (lease 3 s, retry 0.5 s)")
        assert took <= 3.0 + 0.55 + 0.5, took  # Half a second for the etcd write under load.
        # And not before the lease could have run out: the first renewed it at most a retry
        # period (and the renewal's own time) before it died.
        assert took >= 3.0 - 0.6, took
        transitions = {l["metadata"]["name"]: l["spec"].get("leaseTransitions") for l in leases}
        assert transitions["kube-scheduler"] == 1 and transitions["kube-controller-manager"] == 1

        # Its controllers act now: scaling the Deployment makes the pods.
        k2("scale", "deployment", "web", "--replicas=5")
        wait_for(lambda: len(pods(k2, "app=web")) == 5, 20, "five pods after the failover")
        # kubectl shows who holds each Lease.
        table = k2("get", "leases", "-n", "kube-system")
        assert identity(second) in table and "HOLDER" in table
    finally:
        if second:
            second.close()
        first.close()


def test_a_stopped_leader_hands_its_leases_on_at_once(etcd):
    # A lease of 30 s that a crash would make the other wait out; a clean stop does not.
    store = ["--store", f"etcd://{etcd}", "--leader-elect-lease-duration", "30s",
             "--leader-elect-renew-deadline", "20s", "--leader-elect-retry-period", "500ms"]
    first = Server(extra_args=store)
    second = None
    try:
        k1 = Kubectl(first)
        wait_for(lambda: len(holders(k1)) == 2, 10, "the first server to take both Leases")
        second = Server(extra_args=store + first.join_args())
        k2 = Kubectl(second)
        stopped_at = time.monotonic()
        first.stop()
        first = None
        wait_for(lambda: all(h.endswith(identity(second)) for h in holders(k2).values()),
                 10, "the second server to take both Leases")
        assert time.monotonic() - stopped_at < 10  # Not the 30 s of the lease.
    finally:
        if second:
            second.stop()
        if first:
            first.stop()


def test_a_single_server_restarted_takes_its_leases_back_at_once(tmp_path):
    """Restarted on its data directory (after a crash), a server is the same
    candidate: it does not wait out the Leases its previous run held."""
    server = Server(extra_args=["--leader-elect-lease-duration", "60s",
                                "--leader-elect-renew-deadline", "40s"])
    try:
        kubectl = Kubectl(server)
        wait_for(lambda: len(holders(kubectl)) == 2, 10, "the server to take both Leases")
        server.kill()
        server.start()
        kubectl("create", "deployment", "back", "--image=registry.local/app:1", "--replicas=2")
        # Far sooner than the 60 s lease its previous run held.
        wait_for(lambda: len(pods(kubectl, "app=back")) == 2, 15, "pods made after the restart")
    finally:
        server.stop()


def test_a_second_server_on_one_sqlite_file_is_refused_saying_why():
    server = Server()
    try:
        p = subprocess.run([KISO_BIN, "server", "--data-dir", server.dir, "--https-port",
                            str(free_port()), "--disable-agent", "--dns-port", "0"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 1
        message = p.stdout + p.stderr
        assert f"another kiso server (pid {server.proc.pid})" in message, message
        assert "SQLite is one node" in message and "etcd" in message, message
        Kubectl(server)("get", "namespaces")  # The first is untouched.
    finally:
        server.stop()
    # That the lock goes with the process that held it, even killed: the
    # restart test above starts a server again on a killed one's directory.


def test_a_second_server_joins_with_the_token_and_shares_the_credentials(etcd, tmp_path):
    """The first server on an etcd begins the cluster: its CA, keys and admin token go into the
    store, sealed with its server token. Another joins with --join and that token and serves
    with the same credentials: the first's kubeconfig and a ServiceAccount token it issued work
    against the second. Without the token, or with another, a server is refused and says why."""
    store = ["--store", f"etcd://{etcd}"]
    first = Server(extra_args=store)
    second = None
    try:
        def refused(*extra):
            d = tmp_path / f"refused-{len(extra)}"
            p = subprocess.run([KISO_BIN, "server", "--data-dir", str(d), "--https-port",
                                str(free_port()), "--disable-agent", "--dns-port", "0", *store,
                                *extra], capture_output=True, text=True, timeout=30)
            assert p.returncode == 1, p.stdout + p.stderr
            return p.stdout + p.stderr
        assert "pass --token" in refused()
        assert "does not open the cluster secrets" in refused("--token", "not-the-token")
        second = Server(extra_args=store + first.join_args())
        for f in ("ca.crt", "ca.key", "service-account.key", "admin.token"):
            with open(f"{first.dir}/tls/{f}") as a, open(f"{second.dir}/tls/{f}") as b:
                assert a.read() == b.read(), f
        assert first.token == second.token
        # The first's kubeconfig (its CA, its token) against the second's address.
        k1 = Kubectl(first)
        to_second = ["--server", f"https://127.0.0.1:{second.port}"]
        k1("create", "namespace", "shared")
        assert "shared" in k1("get", "namespaces", *to_second)
        token = k1("create", "token", "default", "-n", "shared").strip()
        who = json.loads(k1("auth", "whoami", "-o", "json", "--token", token, *to_second))
        assert who["status"]["userInfo"]["username"] == "system:serviceaccount:shared:default"
        # The second's server certificate is the cluster CA's (kubectl verified it above),
        # and a restart needs no --token: its data directory keeps it.
        second.kill()
        second.args = [a for a in second.args if a not in first.join_args()]
        second.start()
        assert "shared" in Kubectl(second)("get", "namespaces")
    finally:
        if second:
            second.stop()
        first.stop()


def endpoint_addresses(kubectl):
    ep = json.loads(kubectl("get", "endpoints", "kubernetes", "-o", "json"))
    ips = sorted(a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses", []))
    sl = json.loads(kubectl("get", "endpointslice", "kubernetes", "-o", "json"))
    slice_ips = sorted(a for e in sl.get("endpoints") or [] for a in e["addresses"])
    # The Endpoints and the EndpointSlice are two writes: both must come to the same list.
    return ips if ips == slice_ips else ("Endpoints", ips, "EndpointSlice", slice_ips)


def test_the_kubernetes_service_lists_every_live_server(etcd):
    """Two servers on one etcd, each on a loopback address of its own and the same port: the
    kubernetes Service's Endpoints and EndpointSlice list both; a killed one drops out once its
    presence Lease runs out, a stopped one at once."""
    store = ["--store", f"etcd://{etcd}", "--apiserver-lease-duration", "3"]
    port = free_port()
    first = Server(extra_args=store, address="127.0.0.2", port=port)
    second = third = None
    try:
        k1 = Kubectl(first)
        second = Server(extra_args=store + first.join_args(), address="127.0.0.3", port=port)
        k2 = Kubectl(second)
        wait_for(lambda: endpoint_addresses(k1) == ["127.0.0.2", "127.0.0.3"], 10,
                 "both servers in the kubernetes endpoints")
        assert endpoint_addresses(k2) == ["127.0.0.2", "127.0.0.3"]
        killed_at = time.monotonic()
        first.kill()
        wait_for(lambda: endpoint_addresses(k2) == ["127.0.0.3"], 10,
                 "the killed server to drop out")
        took = time.monotonic() - killed_at
        print(f"a dead server left the kubernetes endpoints after {took * 1000:.0f} ms (lease 3 s)")
        assert took >= 1.0  # Not before its Lease could have run out (renewed each second).
        third = Server(extra_args=store + first.join_args(), address="127.0.0.4", port=port)
        wait_for(lambda: endpoint_addresses(k2) == ["127.0.0.3", "127.0.0.4"], 10,
                 "a third server to join")
        stopped_at = time.monotonic()
        third.stop()
        third = None
        assert endpoint_addresses(k2) == ["127.0.0.3"]  # Gone as it stopped, not seconds later.
        assert time.monotonic() - stopped_at < 3
    finally:
        for s in (third, second, first):
            if s:
                s.close()


def listed_servers(kubeconfig, home):
    """The servers a kubeconfig's cluster lists in its kiso.dev/servers extension, as kubectl
    reads the file (it keeps extensions it does not know)."""
    view = json.loads(subprocess.run(
        ["kubectl", "config", "view", "--raw", "-o", "json", "--kubeconfig", kubeconfig],
        capture_output=True, text=True, check=True, env={"HOME": home, "PATH": "/usr/bin:/bin"},
    ).stdout)
    for ext in view["clusters"][0]["cluster"].get("extensions") or []:
        if ext["name"] == "kiso.dev/servers":
            return ext["extension"]["servers"]
    return []


def test_kubeconfigs_list_every_server_and_kiso_clients_fail_over(etcd, tmp_path):
    """A server's admin kubeconfig lists every live server (kubectl keeps to its own `server`
    and reads the list without complaint); kiso's clients go to the next one listed when
    theirs is gone: `kiso token create` through a killed server's kubeconfig still works."""
    store = ["--store", f"etcd://{etcd}", "--apiserver-lease-duration", "3"]
    port = free_port()
    first = Server(extra_args=store, address="127.0.0.2", port=port)
    second = None
    try:
        second = Server(extra_args=store + first.join_args(), address="127.0.0.3", port=port)
        both = [f"https://127.0.0.2:{port}", f"https://127.0.0.3:{port}"]
        wait_for(lambda: listed_servers(first.kubeconfig, first.home) == both, 10,
                 "the first's kubeconfig to list both servers")
        wait_for(lambda: listed_servers(second.kubeconfig, second.home) == both, 10,
                 "the second's kubeconfig to list both servers")
        assert "default" in Kubectl(first)("get", "namespaces")
        alice = str(tmp_path / "alice.yaml")
        subprocess.run([KISO_BIN, "kubeconfig", "--data-dir", first.dir, "--user", "alice",
                        "-o", alice], check=True)
        assert listed_servers(alice, first.home) == both
        first.kill()
        p = subprocess.run([KISO_BIN, "token", "create", "--data-dir", first.dir],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        token_id = p.stdout.strip().split(".")[0]  # Its output is the token (logs: stderr).
        assert f"API server https://127.0.0.3:{port}: in use" in p.stderr, p.stderr
        assert f"bootstrap-token-{token_id}" in Kubectl(second)(
            "get", "secrets", "-n", "kube-system", "-o", "name")
        wait_for(lambda: listed_servers(second.kubeconfig, second.home) == both[1:], 10,
                 "the killed server to drop out of the second's kubeconfig")
    finally:
        for s in (second, first):
            if s:
                s.close()

#!/usr/bin/python3
"""make bench-ha (issue 17), the control plane's failover: two `kiso server`s on one etcd
member (Debian's etcd-server on loopback), leader election at upstream's defaults (lease 15 s,
renew deadline 10 s, retry period 2 s) unless flags say otherwise. KILLS times: the server
holding the kube-controller-manager Lease is killed (SIGKILL: nothing released), and the time
until the other holds both Leases (kube-scheduler and kube-controller-manager) is measured,
read from the survivor's API every 10 ms; then the killed one is started again on its data
directory, and the next round kills whichever leads.

  ha_failover_p50/max   kill → the other server holds both Leases (ms), over KILLS kills
                        (named max, not p99: fewer than 1,000 samples)
  ha_failover_over_lease   that p50 over the lease duration (the least it can be: a
                        candidate waits out the dead leader's lease)

Then the create path with several servers against one (`--throughput-seconds`, 0 skips it):
one server on SQLite; one server, then three (on 127.0.0.2-4, one port, the others joined
with the first's token), on one etcd member; wrk (Debian's) POSTs ConfigMaps with generateName over 48 kept-alive
connections in all, split evenly over the servers, for THROUGHPUT_SECONDS, three runs each.
Any answer but 201 fails the benchmark (a failed create is not a figure).

  ha_create_rate_sqlite / _1_server / _3_servers   creates/s (median of three runs)
  ha_create_p99_sqlite / _1_server / _3_servers    ms (the highest p99 of the servers' wrk runs)
  ha_create_rate_3_over_1, _etcd_over_sqlite       same-run ratios of the medians

Prints `name=value unit` lines. Everything it starts it stops, also when it fails; it refuses
to start on a machine the leak check finds dirty."""
import argparse
import json
import os
import ssl
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from conftest import Server, etcd_member, free_port, wait_for  # noqa: E402


def holders(server):
    """kube-scheduler's and kube-controller-manager's holders, as `server` serves them."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    out = []
    for lease in ("kube-scheduler", "kube-controller-manager"):
        req = urllib.request.Request(
            f"https://127.0.0.1:{server.port}/apis/coordination.k8s.io/v1/namespaces/"
            f"kube-system/leases/{lease}", headers={"Authorization": f"Bearer {server.token}"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=2) as r:
                out.append(json.load(r)["spec"].get("holderIdentity", ""))
        except OSError:
            out.append("")
    return out


def identity(server):
    with open(os.path.join(server.dir, "server-id")) as f:
        return f.read().strip()


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"bench-"},' ..
           '"data":{"k":"v"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer TOKEN"
"""


def wrk_creates(servers, seconds, connections=48):
    """Creates through every server at once; (creates/s, the highest p99 in ms)."""
    procs = []
    for s in servers:
        script = os.path.join(s.dir, "create.lua")
        with open(script, "w") as f:
            f.write(WRK_SCRIPT.replace("TOKEN", s.token))
        procs.append(subprocess.Popen(
            ["wrk", "-t", "1", "-c", str(connections // len(servers)), "-d", f"{seconds}s",
             "--latency", "-s", script,
             f"https://{s.address}:{s.port}/api/v1/namespaces/default/configmaps"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    rate, p99 = 0.0, 0.0
    for p in procs:
        out = p.communicate(timeout=seconds + 60)[0]
        if "Non-2xx" in out or "Socket errors" in out or p.returncode != 0:
            sys.exit("wrk saw failed creates:\n" + out)
        rate += float(out.split("Requests/sec:")[1].split()[0])
        line = next(l for l in out.splitlines() if l.strip().startswith("99%"))
        value = line.split()[1]
        ms = (float(value[:-2]) if value.endswith("ms") else
              float(value[:-2]) / 1000 if value.endswith("us") else float(value[:-1]) * 1000)
        p99 = max(p99, ms)
    return rate, p99


def throughput(seconds, runs=3):
    figures = {}
    # One server on SQLite (its default store), then one and three on one etcd member.
    for name, count, etcd_store in (("sqlite", 1, False), ("1_server", 1, True),
                                    ("3_servers", 3, True)):
        rates, p99s = [], []
        for _ in range(runs):
            with etcd_member() as etcd:
                port = free_port()
                servers = []
                try:
                    for i in range(count):
                        store = ["--store", f"etcd://{etcd}"] if etcd_store else []
                        join = servers[0].join_args() if servers else []
                        servers.append(Server(extra_args=[*store, *join],
                                              address=f"127.0.0.{2 + i}", port=port))
                    rate, p99 = wrk_creates(servers, seconds)
                    rates.append(rate)
                    p99s.append(p99)
                finally:
                    for s in servers:
                        s.close()
        figures[name] = (statistics.median(rates), statistics.median(p99s))
        print(f"ha_create_rate_{name}={figures[name][0]:.0f} creates/s")
        print(f"ha_create_p99_{name}={figures[name][1]:.1f} ms")
    print(f"ha_create_rate_3_over_1={figures['3_servers'][0] / figures['1_server'][0]:.2f} x")
    print(f"ha_create_rate_etcd_over_sqlite="
          f"{figures['1_server'][0] / figures['sqlite'][0]:.2f} x")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--throughput-seconds", type=int, default=10)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--lease-duration", default="15s")
    parser.add_argument("--renew-deadline", default="10s")
    parser.add_argument("--retry-period", default="2s")
    args = parser.parse_args()
    leak = subprocess.run([os.path.join(HERE, "..", "tests", "leak_check")],
                          capture_output=True, text=True)
    if leak.returncode != 0:
        sys.exit("refusing to measure on a dirty machine:\n" + leak.stdout + leak.stderr)
    lease_seconds = float(args.lease_duration.rstrip("s"))
    samples = []
    with etcd_member() as etcd:
        flags = ["--store", f"etcd://{etcd}",
                 "--leader-elect-lease-duration", args.lease_duration,
                 "--leader-elect-renew-deadline", args.renew_deadline,
                 "--leader-elect-retry-period", args.retry_period]
        servers = [Server(extra_args=flags)]
        try:
            wait_for(lambda: all(h.endswith(identity(servers[0])) for h in holders(servers[0])),
                     30, "the first server to lead")
            servers.append(Server(extra_args=flags + servers[0].join_args()))
            for _ in range(args.kills):
                leader_id = holders(servers[1])[1]
                leader = next(s for s in servers if leader_id.endswith(identity(s)))
                other = next(s for s in servers if s is not leader)
                killed_at = time.monotonic()
                leader.kill()
                deadline = killed_at + 4 * lease_seconds + 10
                while not all(h.endswith(identity(other)) for h in holders(other)):
                    if time.monotonic() > deadline:
                        sys.exit("the surviving server did not take both Leases")
                    time.sleep(0.01)  # Polling with a deadline.
                samples.append((time.monotonic() - killed_at) * 1000)
                leader.start()  # A candidate again, on its data directory.
        finally:
            for s in servers:
                s.close()
    p50 = statistics.median(samples)
    print(f"ha_failover_p50={p50:.0f} ms")
    print(f"ha_failover_max={max(samples):.0f} ms")
    print(f"ha_failover_over_lease={p50 / (lease_seconds * 1000):.2f} x")
    print(f"ha_failover_samples={len(samples)} kills")
    if args.throughput_seconds > 0:
        throughput(args.throughput_seconds)


if __name__ == "__main__":
    main()

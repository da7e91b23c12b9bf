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

Prints `name=value unit` lines. Everything it starts it stops, also when it fails; it refuses
to start on a machine the leak check finds dirty."""
import argparse
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from conftest import Server, etcd_member, wait_for  # noqa: E402


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


def main():
    parser = argparse.ArgumentParser()
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
                if s.proc.poll() is None:
                    s.stop()
                else:
                    s.log.close()
                    shutil.rmtree(s.dir, ignore_errors=True)
    p50 = statistics.median(samples)
    print(f"ha_failover_p50={p50:.0f} ms")
    print(f"ha_failover_max={max(samples):.0f} ms")
    print(f"ha_failover_over_lease={p50 / (lease_seconds * 1000):.2f} x")
    print(f"ha_failover_samples={len(samples)} kills")


if __name__ == "__main__":
    main()

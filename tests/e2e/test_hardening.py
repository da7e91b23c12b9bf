"""Requests that once could take kiso down, sent to the real server: bodies
whose decoding explodes (YAML aliases, deep nesting, patches that copy
themselves), typed fields a controller would choke on, and clients that hold
every seat or every connection. Each is refused with a Status naming the limit,
nothing is stored, and the server stays up within bounded memory."""
import json
import os
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import KISO_BIN, Kubectl, Server, terminate, wait_for

GROWTH_LIMIT_MB = 64  # What the server's RSS may grow by while it refuses a bomb.


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0


def alias_bomb(levels=9, width=9):
    """The "billion laughs" shape (CVE-2019-11253): each level refers to the one
    before `width` times, so the expanded document has width**levels values."""
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: bomb}", "data:",
             '  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"  a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


class Raw:
    """Requests to the server as bytes, and the status, headers and Status body back."""

    def __init__(self, server, source="127.0.0.1"):
        self.server = server
        self.source = source

    def connect(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=30,
                                        source_address=(self.source, 0))
        return ctx.wrap_socket(sock)

    def request(self, method, path, body=b"", content_type="application/json", conn=None):
        own = conn is None
        conn = conn or self.connect()
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {self.server.token}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n" + ("Connection: close\r\n" if own else "") +
                "\r\n").encode()
        try:
            conn.sendall(head + body)
        except (ssl.SSLError, OSError):
            pass  # Refused before the body was all sent (413): the answer is still there to read.
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        header, _, rest = data.partition(b"\r\n\r\n")
        lines = header.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            rest += chunk
        if own:
            conn.close()
        is_json = headers.get("content-type", "").startswith("application/json")
        return status, headers, json.loads(rest) if rest and is_json else rest


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.stop()


def test_a_yaml_alias_bomb_is_refused_in_bounded_memory(server):
    raw = Raw(server)
    before = rss_mb(server.proc.pid)
    for levels, width in ((9, 9), (12, 6), (30, 2)):
        body = alias_bomb(levels, width).encode()
        assert len(body) < 1024
        status, _, st = raw.request("POST", "/api/v1/namespaces/default/configmaps", body,
                                    "application/yaml")
        assert status == 413, st
        assert st["reason"] == "RequestEntityTooLarge"
        assert st["message"] == ("invalid YAML: the document is larger than the limit of 3145728 "
                                 "bytes once its aliases are expanded")
    # The same shape as a server-side apply patch.
    status, _, st = raw.request("PATCH", "/api/v1/namespaces/default/configmaps/bomb?fieldManager=t",
                                alias_bomb().encode(), "application/apply-patch+yaml")
    assert status == 413, st
    assert rss_mb(server.proc.pid) - before < GROWTH_LIMIT_MB
    assert raw.request("GET", "/api/v1/namespaces/default/configmaps/bomb")[0] == 404
    assert raw.request("GET", "/readyz")[0] == 200


def test_deep_nesting_and_large_documents_are_refused_naming_the_limit(server):
    raw = Raw(server)
    deep = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep"},"x":' + "[" * 5000 + "]" * 5000 + "}"
    status, _, st = raw.request("POST", "/api/v1/namespaces/default/configmaps", deep.encode())
    assert status == 400, st
    assert "nested deeper than the limit of 100 levels" in st["message"]
    status, _, st = raw.request("POST", "/api/v1/namespaces/default/configmaps",
                                ("x: " + "[" * 5000 + "]" * 5000).encode(), "application/yaml")
    assert status == 400 and "nested deeper than the limit of 100 levels" in st["message"], st
    status, _, st = raw.request("POST", "/api/v1/namespaces/default/configmaps",
                                b"{" + b" " * (3 << 20) + b"}")
    assert status == 413, st
    # A JSON patch whose copies would grow the object past what a body may be.
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "seed"},
          "data": {"a": "x" * (1 << 20)}}
    assert raw.request("POST", "/api/v1/namespaces/default/configmaps",
                       json.dumps(cm).encode())[0] == 201
    ops = [{"op": "copy", "from": "/data/a", "path": f"/data/c{i}"} for i in range(8)]
    status, _, st = raw.request("PATCH", "/api/v1/namespaces/default/configmaps/seed",
                                json.dumps(ops).encode(), "application/json-patch+json")
    assert status == 413, st
    assert "limit of 3145728 bytes" in st["message"]
    too_many = [{"op": "test", "path": "/kind", "value": "ConfigMap"}] * 10001
    status, _, st = raw.request("PATCH", "/api/v1/namespaces/default/configmaps/seed",
                                json.dumps(too_many).encode(), "application/json-patch+json")
    assert status == 422 and "maximum operations in a JSON patch is 10000" in st["message"], st
    # A merge patch that would make the stored object larger than a body may be.
    grow = {"data": {f"k{i}": "y" * (1 << 20) for i in range(3)}}
    status, _, st = raw.request("PATCH", "/api/v1/namespaces/default/configmaps/seed",
                                json.dumps(grow).encode(), "application/merge-patch+json")
    assert status == 413 and "larger than the limit of 3145728 bytes" in st["message"], st
    status, _, got = raw.request("GET", "/api/v1/namespaces/default/configmaps/seed")
    assert status == 200 and sorted(got["data"]) == ["a"]  # Nothing of the refused patches stuck.


def test_typed_fields_are_checked_at_admission(server):
    k = Kubectl(server)
    deployment = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: web}}
  strategy: {rollingUpdate: {maxSurge: SURGE}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: busybox}]}
"""
    # The example: maxSurge "abc" once passed and ended the server on every start.
    p = k.run("apply", "-f", "-", input=deployment.replace("REPLICAS", "1").replace("SURGE", '"abc"'),
              check=False)
    assert p.returncode != 0
    assert ('The Deployment "web" is invalid: spec.strategy.rollingUpdate.maxSurge: Invalid value: '
            '"abc": a valid percent string must be a numeric string followed by an ending \'%\'') in p.stderr, p.stderr
    p = k.run("apply", "-f", "-", input=deployment.replace("REPLICAS", '"3"').replace("SURGE", "1"),
              check=False)
    assert p.returncode != 0
    assert ("json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of "
            "type int32") in p.stderr, p.stderr
    assert k.run("get", "deployment", "web", check=False).returncode != 0  # Nothing stored.


def test_a_client_past_the_inflight_limit_gets_429_with_retry_after():
    s = Server(["--max-requests-inflight", "1"])
    try:
        raw = Raw(s)
        # Twelve ConfigMaps of 1.25 MiB (the store takes values up to 1.5 MiB):
        # a LIST of them is far more than the socket buffers hold, so a client
        # that does not read it keeps its seat.
        for i in range(12):
            cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"big{i}"},
                  "data": {"a": "x" * (5 << 18)}}
            assert raw.request("POST", "/api/v1/namespaces/default/configmaps",
                               json.dumps(cm).encode())[0] == 201
        holder = raw.connect()
        holder.sendall((f"GET /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n"
                        f"Authorization: Bearer {s.token}\r\n\r\n").encode())
        holder.recv(1)  # The response has begun: the seat is held while it cannot be written.
        status, headers, st = raw.request("GET", "/api/v1/namespaces/default/configmaps/big0")
        assert status == 429, st
        assert headers["retry-after"] == "1"
        assert st["reason"] == "TooManyRequests"
        assert st["message"] == "Too many requests, please try again later."
        assert st["details"]["retryAfterSeconds"] == 1
        # Long-running requests never wait for a seat: a watch still starts.
        watcher = raw.connect()
        watcher.sendall((f"GET /api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1 "
                         f"HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {s.token}\r\n\r\n").encode())
        assert watcher.recv(64).startswith(b"HTTP/1.1 200")
        watcher.close()
        holder.close()  # The seat comes back.
        wait_for(lambda: raw.request("GET", "/api/v1/namespaces/default/configmaps/big0")[0] == 200,
                 10, "the seat to come back")
    finally:
        s.stop()


def test_one_client_cannot_hold_every_connection():
    s = Server(["--max-connections-per-client", "3"])
    try:
        flood = Raw(s, source="127.0.0.2")
        held = [flood.connect() for _ in range(3)]
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            extra = flood.connect()  # Closed before its handshake.
            extra.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            if not extra.recv(1):
                raise ConnectionError("closed")
        # Another client is served meanwhile.
        assert Raw(s).request("GET", "/readyz")[0] == 200
        held[0].close()

        def connects():  # Its closed connection's place is free again.
            try:
                flood.connect().close()
                return True
            except (ssl.SSLError, ConnectionError, OSError):
                return False
        wait_for(connects, 10, "the freed connection's place")
        for c in held[1:]:
            c.close()
    finally:
        s.stop()


SCHED_IDLE = 5


def idle_threads(pid):
    """Threads of `pid` whose scheduling policy (stat field 41) is SCHED_IDLE."""
    found = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue  # The thread ended meanwhile.
        if int(fields[41 - 3]) == SCHED_IDLE:
            found.append(tid)
    return found


def read_whole_response(conn, data=b""):
    """Reads one response (its length given or chunked) to its end; `data`:
    its first bytes, read already."""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(1 << 20)
        assert chunk, "the response ended early"
        data += chunk
    header, _, rest = data.partition(b"\r\n\r\n")
    body = bytearray(rest)  # Appended to in place: the body may be many megabytes.
    length = None
    for line in header.decode().split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    def done():
        return len(body) >= length if length is not None else body.endswith(b"\r\n0\r\n\r\n")
    while not done():
        chunk = conn.recv(1 << 20)
        assert chunk, "the response ended early"
        body += chunk


def answer_started(conn, early):
    """The first bytes of an answer already on `conn` (TLS), or None; what
    it reads is kept in `early[conn]`."""
    if early.get(conn):
        return early[conn]
    conn.setblocking(False)
    try:
        early[conn] = conn.recv(64)
        return early[conn] or None
    except (ssl.SSLWantReadError, BlockingIOError):
        return None  # Nothing, or only TLS records that carry no data (session tickets).
    finally:
        conn.settimeout(30)


def test_a_flooding_client_yields_the_cpu_to_the_others():
    """Two clients: one (127.0.0.2) asks for more than its share of the
    seats, so its requests run on the cores no other request wants
    (SCHED_IDLE), off the first core; the other is served meanwhile, and the first is back at
    normal priority once it stays within its share."""
    s = Server()
    stop = threading.Event()
    reader_statuses = []

    def reader():  # Client 127.0.0.1 stays active: two flows share the seats.
        raw = Raw(s)
        conn = raw.connect()
        while not stop.is_set():
            reader_statuses.append(raw.request("GET", "/api/v1/namespaces/default", conn=conn)[0])
        conn.close()

    flood = Raw(s, source="127.0.0.2")
    held = []
    early = {}  # The answers' first bytes, read while looking for them.
    t = threading.Thread(target=reader)
    lists = (f"GET /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n"
             f"Authorization: Bearer {s.token}\r\n\r\n").encode()

    def crowded_list():
        """Three LISTs that are not read: the first holds the flow's one seat,
        the other two wait behind it; once the first's client leaves, the
        second runs crowded. Its thread id; or None when the premise failed: a
        flow counts as active for a second after its last request, and on a
        loaded machine the reader can pause longer, leaving the flood the only
        flow when a LIST came (admitted at once then, beside the one before)."""
        for _ in range(3):
            held.append(flood.connect())
            held[-1].sendall(lists)
        held[0].recv(1)
        if any(answer_started(c, early) for c in held[1:]):
            return None  # Admitted beside the first.
        assert idle_threads(s.proc.pid) == []  # Admitted with nothing waiting behind it.
        held.pop(0).close()  # The second is admitted with the third still waiting.
        deadline = time.monotonic() + 20
        while True:
            idle = idle_threads(s.proc.pid)
            if len(idle) == 1:
                return idle[0]
            # The second's thread turns SCHED_IDLE before it answers: an
            # answer on it without that means it was not crowded.
            if answer_started(held[0], early) and not idle_threads(s.proc.pid):
                return None
            third = answer_started(held[1], early)
            if third:
                # 200: admitted beside the second. A 429 is the fault this
                # looks for: its wait ran out, the second never admitted.
                assert third.startswith(b"HTTP/1.1 200"), third
                return None
            assert time.monotonic() < deadline, \
                "timed out waiting for the crowded flow's request to run as SCHED_IDLE"
            time.sleep(0.05)  # Polling with a deadline.

    try:
        for i in range(12):  # A LIST of these is more than the socket buffers hold.
            cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"big{i}"},
                  "data": {"a": "x" * (5 << 18)}}
            assert flood.request("POST", "/api/v1/namespaces/default/configmaps",
                                 json.dumps(cm).encode())[0] == 201
        t.start()
        wait_for(lambda: len(reader_statuses) > 0, 10, "the reader's first answer")
        crowded = None
        for _ in range(3):
            crowded = crowded_list()
            if crowded:
                break
            for c in held:
                c.close()
            held.clear()
            early.clear()
            # Their seats back before the next try (their writes fail on the closed
            # sockets): a request of the flood's is admitted only then.
            assert flood.request("GET", "/api/v1/namespaces/default")[0] == 200
            answered = len(reader_statuses)  # And the reader going again.
            wait_for(lambda: len(reader_statuses) > answered + 1, 30, "the reader's next answers")
        assert crowded, ("in none of three tries did a crowded LIST run as SCHED_IDLE "
                         "(it answered at normal priority, or the reader's flow had lapsed)")
        cores = os.sched_getaffinity(s.proc.pid)
        if len(cores) > 1:  # It leaves the first core to the others.
            assert os.sched_getaffinity(int(crowded)) == cores - {min(cores)}
        # While the other client keeps the cores busy, the crowded request gets
        # only what is left: the reader stops before the rest is read.
        stop.set()
        t.join()
        assert set(reader_statuses) == {200}
        # Within its share again: the same connection's next request runs normally.
        # The third LIST's client leaves, but the server only learns so once that
        # request has its turn; until then the flow still has one waiting, and a
        # request admitted meanwhile is rightly crowded. So: again, with a deadline.
        second = held.pop(0)
        held.pop(0).close()
        second.settimeout(30)
        read_whole_response(second, early.get(second, b""))  # The rest of its LIST.
        deadline = time.monotonic() + 20
        while True:
            assert flood.request("GET", "/api/v1/namespaces/default", conn=second)[0] == 200
            if crowded not in idle_threads(s.proc.pid):
                assert os.sched_getaffinity(int(crowded)) == cores  # Every core again.
                break
            assert time.monotonic() < deadline, "the flow's connection stayed SCHED_IDLE"
            time.sleep(0.05)  # Polling with a deadline.
        second.close()
    finally:
        stop.set()
        if t.is_alive():
            t.join()
        for c in held:
            c.close()
        s.stop()
    assert set(reader_statuses) == {200}


def test_a_port_picked_by_the_kernel_is_the_kubeconfigs_and_kubectl_reaches_it(tmp_path):
    """`--https-port 0` with the default address (every address): the kubeconfig written after
    binding names loopback and the bound port, which the certificate covers (it once named
    0.0.0.0, which no certificate does)."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("# no upstream\n")
    data = tmp_path / "data"
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen([KISO_BIN, "server", "--data-dir", str(data), "--https-port", "0",
                             "--disable-agent", "--dns-port", "0", "--resolv-conf", str(resolv)],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        up = wait_for(lambda: next((line for line in (tmp_path / "server.log").read_text(
            errors="replace").splitlines() if line.startswith("kiso server is up at ")), None),
            30, "the server up")
        url = up.split(" at ")[1].strip()
        assert url.startswith("https://127.0.0.1:") and not url.endswith(":0"), url
        kubeconfig = (data / "kubeconfig.yaml").read_text()
        assert f"server: {url}" in kubeconfig, kubeconfig
        p = subprocess.run(["kubectl", "--kubeconfig", str(data / "kubeconfig.yaml"), "get",
                            "namespace", "default", "-o", "name"], capture_output=True, text=True,
                           timeout=30)
        assert p.stdout.strip() == "namespace/default", p.stderr
    finally:
        terminate(proc)
        log.close()

"""HTTP/2 on the API server, from outside: kubectl negotiates it (ALPN h2),
curl speaks both protocols, many requests and watches share one connection,
a client that stops reading one stream stalls neither the others nor the
server's memory, slow and idle clients are cut, and 10,000 watches are held
by a handful of server threads. HTTP/1.1 keeps working beside it (the Python
client's tests, and every other suite, speak it)."""
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from conftest import Kubectl, Server, proc_status, wait_for

IDLE_TIMEOUT = 3  # The server's --http-idle-timeout here, in seconds.


@pytest.fixture(scope="module")
def server():
    s = Server(extra_args=["--http-idle-timeout", str(IDLE_TIMEOUT)])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def kubectl(server):
    return Kubectl(server)


def tls_socket(server, alpn=("h2",)):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(list(alpn))
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    return ctx.wrap_socket(sock)


class H2:
    """One HTTP/2 connection to the server, driven by hyper-h2: requests on
    streams of their own, answers collected per stream. Flow control is the
    test's: a stream listed in `stalled` is never given window back."""

    def __init__(self, server, window=65535):
        self.server = server
        self.sock = tls_socket(server)
        assert self.sock.selected_alpn_protocol() == "h2"
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.flush()
        self.streams = {}  # id -> {"status", "headers", "data", "ended", "reset"}
        self.stalled = set()
        self.remote_closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, method, path, body=None, headers=()):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":path", path), (":scheme", "https"),
                (":authority", f"127.0.0.1:{self.server.port}"),
                ("authorization", f"Bearer {self.server.token}"), *headers]
        if body is not None:
            hdrs.append(("content-type", "application/json"))
        self.conn.send_headers(sid, hdrs, end_stream=body is None)
        self.streams[sid] = {"status": None, "headers": {}, "data": b"", "ended": False,
                             "reset": False}
        if body is not None:
            # As the server's flow control lets it through.
            view = memoryview(body)
            while view:
                size = min(self.conn.local_flow_control_window(sid),
                           self.conn.max_outbound_frame_size, len(view))
                if size == 0:
                    assert self.pump(0.5), "the server closed the connection"
                    continue
                self.conn.send_data(sid, bytes(view[:size]))
                view = view[size:]
            self.conn.end_stream(sid)
        return sid

    def pump(self, timeout=1.0):
        """Reads what the server sends for up to `timeout` s; False once it closed."""
        self.flush()
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 20)
        except (socket.timeout, TimeoutError):
            return True
        except (ssl.SSLError, OSError):
            data = b""
        if not data:
            self.remote_closed = True
            return False
        for ev in self.conn.receive_data(data):
            s = self.streams.get(getattr(ev, "stream_id", 0))
            if isinstance(ev, h2.events.ResponseReceived):
                s["headers"] = dict(ev.headers)
                s["status"] = int(s["headers"][":status"])
            elif isinstance(ev, h2.events.DataReceived):
                s["data"] += ev.data
                # The connection's window always comes back; a stalled stream's never does.
                if ev.stream_id in self.stalled:
                    self.conn.increment_flow_control_window(ev.flow_controlled_length)
                else:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                s["ended"] = True
            elif isinstance(ev, h2.events.StreamReset):
                s["reset"] = True
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.remote_closed = True
        self.flush()
        return True

    def wait(self, predicate, timeout=30, what="answers"):
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            if not self.pump(0.5) and not predicate():
                raise AssertionError(f"the server closed the connection waiting for {what}")

    def answer(self, sid, timeout=30):
        self.wait(lambda: self.streams[sid]["ended"] or self.streams[sid]["reset"], timeout,
                  f"stream {sid}")
        s = self.streams[sid]
        assert not s["reset"], f"stream {sid} was reset"
        return s["status"], json.loads(s["data"]) if s["data"] else None

    def close(self):
        try:
            self.conn.close_connection()
            self.flush()
        except OSError:
            pass
        self.sock.close()


def events_in(data):
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def test_kubectl_negotiates_http2_and_works(server, kubectl):
    # Go's HTTP/2 client reports its connections under GODEBUG=http2debug=1.
    p = kubectl.run("get", "namespaces", env={"GODEBUG": "http2debug=1"})
    assert "default" in p.stdout
    assert "http2: Transport creating client conn" in p.stderr, p.stderr[-2000:]
    kubectl("create", "namespace", "h2")
    kubectl("create", "configmap", "c", "-n", "h2", "--from-literal=a=b")
    assert json.loads(kubectl("get", "configmap", "c", "-n", "h2", "-o", "json"))["data"] == {"a": "b"}
    # A watch over HTTP/2 sees what another client writes.
    watch = subprocess.Popen(["kubectl", "--kubeconfig", server.kubeconfig, "get", "configmaps",
                              "-n", "h2", "-w", "-o", "name"],
                             stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, HOME=server.home))
    guard = threading.Timer(60, watch.kill)  # A missing event fails the test, never hangs it.
    guard.start()
    try:
        seen = set()
        while "configmap/c" not in seen:
            seen.add(watch.stdout.readline().strip() or "EOF")
            assert "EOF" not in seen
        kubectl("create", "configmap", "d", "-n", "h2")
        while "configmap/d" not in seen:
            seen.add(watch.stdout.readline().strip() or "EOF")
            assert "EOF" not in seen
    finally:
        guard.cancel()
        watch.kill()
        watch.wait()


def test_curl_speaks_both_protocols(server):
    answers = {}
    for flag in ("--http2", "--http1.1"):
        p = subprocess.run(["curl", "-sk", flag, "-H", f"Authorization: Bearer {server.token}",
                            "-w", "\\n%{http_version}", f"https://127.0.0.1:{server.port}/api/v1/namespaces/default"],
                           capture_output=True, text=True, timeout=30, check=True)
        body, _, version = p.stdout.rpartition("\n")
        answers[version] = json.loads(body)
    assert set(answers) == {"2", "1.1"}
    assert answers["2"] == answers["1.1"]
    assert answers["2"]["metadata"]["name"] == "default"


def test_many_requests_and_watches_share_one_connection(server):
    c = H2(server)
    try:
        sid = c.request("POST", "/api/v1/namespaces", json.dumps(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "streams"}}).encode())
        assert c.answer(sid)[0] == 201
        watch = c.request("GET", "/api/v1/namespaces/streams/configmaps?watch=1")
        creates = [c.request("POST", "/api/v1/namespaces/streams/configmaps", json.dumps(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}"},
             "data": {"i": str(i)}}).encode()) for i in range(100)]
        c.flush()
        assert all(c.answer(sid)[0] == 201 for sid in creates)
        gets = [c.request("GET", f"/api/v1/namespaces/streams/configmaps/cm-{i}") for i in range(100)]
        for i, sid in enumerate(gets):
            status, obj = c.answer(sid)
            assert status == 200 and obj["data"] == {"i": str(i)}
        def names():
            return sorted(e["object"]["metadata"]["name"] for e in events_in(c.streams[watch]["data"])
                          if e["object"]["metadata"]["name"].startswith("cm-"))
        c.wait(lambda: len(names()) >= 100, what="100 watch events")
        assert names() == sorted(f"cm-{i}" for i in range(100))
        assert not c.streams[watch]["ended"]
    finally:
        c.close()


def test_a_watch_stream_with_events_still_gets_its_bookmark_and_its_end(server):
    """A watch stream's timer (the next bookmark, the timeout) is set once, not
    per event: creates on the same connection while it runs must not lose the
    bookmark due at 10 s or the end at timeoutSeconds."""
    c = H2(server)
    try:
        started = time.monotonic()
        watch = c.request("GET", "/api/v1/namespaces/default/configmaps?watch=1"
                                 "&allowWatchBookmarks=true&timeoutSeconds=12")
        for i in range(3):
            sid = c.request("POST", "/api/v1/namespaces/default/configmaps", json.dumps(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"tock-{i}"}}).encode())
            assert c.answer(sid)[0] == 201
            c.wait(lambda: f'"name":"tock-{i}"'.encode() in c.streams[watch]["data"],
                   what=f"tock-{i}'s event")
        c.wait(lambda: b'"type":"BOOKMARK"' in c.streams[watch]["data"], what="the bookmark")
        bookmarked = time.monotonic() - started
        c.wait(lambda: c.streams[watch]["ended"], what="the watch's end")
        ended = time.monotonic() - started
        assert 9 < bookmarked < ended, (bookmarked, ended)
        assert 11 < ended < 20, ended
        for i in range(3):
            assert c.answer(c.request(
                "DELETE", f"/api/v1/namespaces/default/configmaps/tock-{i}"))[0] == 200
    finally:
        c.close()


def test_limits_are_answered_per_stream(server):
    c = H2(server)
    try:
        big = c.request("POST", "/api/v1/namespaces/default/configmaps",
                        b"{" + b" " * (4 << 20) + b"}")
        c.flush()
        status, body = c.answer(big)
        assert status == 413 and body["reason"] == "RequestEntityTooLarge"
        fat = c.request("GET", "/api/v1/namespaces", headers=[("x-fat-1", "a" * (40 << 10)), ("x-fat-2", "b" * (40 << 10))])
        c.flush()
        c.wait(lambda: c.streams[fat]["ended"] or c.streams[fat]["reset"], what="the fat request")
        assert not c.streams[fat]["reset"] and c.streams[fat]["status"] == 431
        assert json.loads(c.streams[fat]["data"])["reason"] == "RequestHeaderFieldsTooLarge"
        # The connection goes on.
        ok = c.request("GET", "/api/v1/namespaces/default")
        assert c.answer(ok)[0] == 200
    finally:
        c.close()


def write_configmaps(server, prefix, count, value):
    writer = H2(server)
    try:
        for batch in range(0, count, 500):
            sids = [writer.request("POST", "/api/v1/namespaces/stall/configmaps", json.dumps(
                {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": f"{prefix}-{batch + i}"}, "data": {"v": value}}).encode())
                for i in range(500)]
            assert all(writer.answer(sid)[0] == 201 for sid in sids)
    finally:
        writer.close()


def test_a_stream_that_is_never_read_stalls_nothing_else(server, kubectl):
    kubectl("create", "namespace", "stall")
    value = "x" * 16384
    pid = server.proc.pid
    # What 40 MB of new objects cost the server with no watch on them (the
    # cache, the store, the event window)…
    before = proc_status(pid, "VmRSS")
    write_configmaps(server, "quiet", 2500, value)
    quiet_mb = (proc_status(pid, "VmRSS") - before) / 1024
    # …and with a watch whose reader takes 64 KiB of their events, then stops.
    c = H2(server)
    try:
        # Its initial state alone is 40 MB: it stalls at once.
        watch = c.request("GET", "/api/v1/namespaces/stall/configmaps?watch=1")
        c.stalled.add(watch)
        c.flush()
        c.wait(lambda: c.streams[watch]["status"] == 200, what="the watch's head")
        before = proc_status(pid, "VmRSS")
        for part in range(5):
            write_configmaps(server, f"stalled-{part}", 500, value)
            # Meanwhile the same connection answers its other streams.
            get = c.request("GET", "/api/v1/namespaces/stall")
            assert c.answer(get)[0] == 200
        stalled_mb = (proc_status(pid, "VmRSS") - before) / 1024
        assert len(c.streams[watch]["data"]) <= 65535
        assert not c.streams[watch]["reset"]
        # Buffered, the 40 MB of events would show; a stream holds at most its buffer.
        assert stalled_mb < quiet_mb + 20, (quiet_mb, stalled_mb)
    finally:
        c.close()
    kubectl("delete", "namespace", "stall", "--wait=false")


def test_slow_and_idle_clients_are_cut(server):
    started = time.monotonic()
    # A TCP connection that never starts TLS.
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=IDLE_TIMEOUT * 5)
    # An HTTP/1.1 request whose head never ends (slow loris).
    slow = tls_socket(server, alpn=("http/1.1",))
    slow.settimeout(IDLE_TIMEOUT * 5)
    slow.sendall(b"GET /api HTTP/1.1\r\nHost: x\r\n")
    # An HTTP/2 connection with no stream.
    idle = H2(server)
    try:
        assert raw.recv(1) == b""
        assert slow.recv(1) == b""
        idle.wait(lambda: idle.remote_closed, timeout=IDLE_TIMEOUT * 5, what="the close")
        elapsed = time.monotonic() - started
        assert IDLE_TIMEOUT * 0.9 <= elapsed < IDLE_TIMEOUT * 4, elapsed
    finally:
        raw.close()
        slow.close()
        idle.close()
    # A watch lasts beyond the idle timeout: its stream is open.
    c = H2(server)
    try:
        watch = c.request("GET", "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=60")
        c.flush()
        until = time.monotonic() + IDLE_TIMEOUT * 2
        c.wait(lambda: time.monotonic() > until, timeout=IDLE_TIMEOUT * 4, what="the idle time")
        assert not c.remote_closed and not c.streams[watch]["ended"]
    finally:
        c.close()


def test_ten_thousand_watches_on_a_few_threads(server, kubectl):
    kubectl("create", "namespace", "many")
    pid = server.proc.pid
    threads_before = proc_status(pid, "Threads")
    rss_before = proc_status(pid, "VmRSS")
    conns = []
    try:
        watches = []
        for _ in range(10):
            # Each connection is opened just before its watches and sent them a
            # hundred at a time: the server cuts a connection that has said
            # nothing for IDLE_TIMEOUT, and building 1,000 requests in Python
            # takes a while on a loaded machine.
            c = H2(server, window=1 << 20)
            conns.append(c)
            for i in range(1000):
                watches.append((c, c.request("GET", "/api/v1/namespaces/many/configmaps?watch=1")))
                if i % 100 == 99:
                    c.flush()
        for c in conns:
            ids = [sid for cc, sid in watches if cc is c]
            c.wait(lambda: all(c.streams[s]["status"] == 200 for s in ids), timeout=120,
                   what="1,000 watch heads")
        assert not any(c.streams[s]["reset"] or c.streams[s]["ended"] for c, s in watches)
        threads = proc_status(pid, "Threads")
        rss_growth_mb = (proc_status(pid, "VmRSS") - rss_before) / 1024
        kubectl("create", "configmap", "hello", "-n", "many")
        for c in conns:
            ids = [sid for cc, sid in watches if cc is c]
            c.wait(lambda: all(b'"hello"' in c.streams[s]["data"] for s in ids), timeout=120,
                   what="the event on 1,000 watches")
        for c, sid in watches:
            [event] = [e for e in events_in(c.streams[sid]["data"])
                       if e["object"]["metadata"]["name"] == "hello"]
            assert event["type"] == "ADDED"
        # The worker pool (at most 64) and a thread per connection, not one per watch.
        assert threads - threads_before <= 64 + 10 + 10, (threads_before, threads)
        assert rss_growth_mb < 200, f"10,000 watches cost {rss_growth_mb:.0f} MB"
    finally:
        for c in conns:
            c.close()


def test_a_stopping_server_ends_http2_streams_cleanly():
    """SIGTERM: the server stops taking streams (GOAWAY), ends each watch
    cleanly after what it had sent (as over HTTP/1.1, where the last chunk
    comes), and exits 0."""
    s = Server()
    c = None
    try:
        c = H2(s)
        watch = c.request("GET", "/api/v1/namespaces/default/configmaps?watch=1")
        c.flush()
        c.wait(lambda: c.streams[watch]["status"] == 200 and c.streams[watch]["data"],
               what="the watch's first event")
        s.proc.send_signal(signal.SIGTERM)
        c.wait(lambda: c.streams[watch]["ended"] or c.streams[watch]["reset"] or c.remote_closed,
               timeout=30, what="the watch's end")
        assert c.streams[watch]["ended"] and not c.streams[watch]["reset"], c.streams[watch]
        assert s.proc.wait(timeout=30) == 0
    finally:
        if c:
            c.close()
        s.stop()

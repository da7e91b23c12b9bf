"""HTTP/1.1 connections served without a thread each, from outside: 1,000
watches on as many connections cost the server a handful of threads, a watch
that ends leaves its keep-alive connection usable (also for a request the
client sent while it ran), a watch with events gets its bookmark and its end
on time, clients that leave free what they held, and a stopping server ends
each watch with its last chunk, and does not wait for a client that reads
nothing."""
import json
import os
import selectors
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import Kubectl, Server, proc_status, wait_for


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def kubectl(server):
    return Kubectl(server)


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def connect(server, rcvbuf=None, tls=None):
    """A TLS connection speaking HTTP/1.1; `rcvbuf`: its receive buffer, set before it connects;
    `tls`: the one TLS version to speak (an ssl.TLSVersion), else the newest both have."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tls:
        ctx.minimum_version = ctx.maximum_version = tls
    ctx.set_alpn_protocols(["http/1.1"])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", server.port))
    return ctx.wrap_socket(sock)


def get(server, path):
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {server.token}\r\n\r\n").encode()


def read_until(conn, data, marker, what):
    """Reads from `conn` (a 30 s timeout) until `marker` is in what it sent."""
    while marker not in data:
        chunk = conn.recv(65536)
        assert chunk, f"the connection ended before {what}"
        data += chunk
    return data


def read_response(conn, data=b""):
    """One whole response (Content-Length or chunked) and what follows it."""
    data = read_until(conn, data, b"\r\n\r\n", "the head")
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(rest) < length:
            chunk = conn.recv(65536)
            assert chunk, "the body ended early"
            rest += chunk
        return int(lines[0].split()[1]), rest[:length], rest[length:]
    rest = read_until(conn, rest, b"\r\n0\r\n\r\n", "the last chunk")
    body, _, after = rest.partition(b"\r\n0\r\n\r\n")
    return int(lines[0].split()[1]), body, after


def test_a_thousand_watches_on_a_few_threads(server, kubectl):
    kubectl("create", "namespace", "h1many")
    pid = server.proc.pid
    threads_before = proc_status(pid, "Threads")
    rss_before = proc_status(pid, "VmRSS")
    fds_before = open_fds(pid)
    conns = []
    sel = selectors.DefaultSelector()
    try:
        for _ in range(1000):
            c = connect(server)
            c.sendall(get(server, "/api/v1/namespaces/h1many/configmaps?watch=1"))
            conns.append(c)
        seen = {}
        for c in conns:
            seen[c] = read_until(c, b"", b"\r\n\r\n", "the watch's head")
            assert seen[c].startswith(b"HTTP/1.1 200 "), seen[c][:200]
        threads = proc_status(pid, "Threads")
        rss_growth_mb = (proc_status(pid, "VmRSS") - rss_before) / 1024
        # The worker pool (at most 64) and the I/O threads, not one per connection.
        assert threads - threads_before <= 64 + 10, (threads_before, threads)
        assert rss_growth_mb < 100, f"1,000 watches cost {rss_growth_mb:.0f} MB"
        kubectl("create", "configmap", "hello", "-n", "h1many")
        for c in conns:
            c.setblocking(False)
            sel.register(c, selectors.EVENT_READ)
        waiting = set(c for c in conns if b'"hello"' not in seen[c])
        deadline = time.monotonic() + 120
        while waiting and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                c = key.fileobj
                try:
                    while True:
                        chunk = c.recv(65536)
                        assert chunk, "a watch ended before its event"
                        seen[c] += chunk
                except (ssl.SSLWantReadError, BlockingIOError):
                    pass
                if b'"hello"' in seen[c]:
                    waiting.discard(c)
        assert not waiting, f"{len(waiting)} of 1,000 watches never saw the event"
        for c in conns:
            assert b'"type":"ADDED"' in seen[c]
    finally:
        sel.close()
        for c in conns:
            c.close()
    # Every connection's descriptor is closed once its client has left.
    wait_for(lambda: open_fds(pid) <= fds_before + 5, 30, "the server to close 1,000 connections")


def test_a_watch_that_ends_leaves_its_connection_usable(server):
    c = connect(server)
    try:
        # A request sent while the watch still runs is answered after it.
        c.sendall(get(server, "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1") +
                  get(server, "/api/v1/namespaces/default"))
        status, body, rest = read_response(c)
        assert status == 200 and b'"type":"ADDED"' in body  # kube-root-ca.crt, at least.
        status, body, rest = read_response(c, rest)
        assert status == 200 and json.loads(body)["metadata"]["name"] == "default"
        # And the connection takes more.
        c.sendall(get(server, "/api/v1/namespaces/kube-system"))
        status, body, _ = read_response(c, rest)
        assert status == 200 and json.loads(body)["metadata"]["name"] == "kube-system"
    finally:
        c.close()


def test_a_watch_with_events_still_gets_its_bookmark_and_its_end(server, kubectl):
    """A watch's timer (the next bookmark, the timeout) is set once, not per
    event: writes while it runs must not lose the bookmark due at 10 s or
    the end at timeoutSeconds."""
    c = connect(server)
    try:
        started = time.monotonic()
        c.sendall(get(server, "/api/v1/namespaces/default/configmaps?watch=1"
                              "&allowWatchBookmarks=true&timeoutSeconds=12"))
        data = read_until(c, b"", b'"type":"ADDED"', "the initial events")
        for i in range(3):  # Events delivered before the bookmark is due.
            kubectl("create", "configmap", f"tick-{i}")
            data = read_until(c, data, f'"name":"tick-{i}"'.encode(), f"tick-{i}'s event")
        data = read_until(c, data, b'"type":"BOOKMARK"', "the bookmark")
        bookmarked = time.monotonic() - started
        data = read_until(c, data, b"\r\n0\r\n\r\n", "the watch's last chunk")
        ended = time.monotonic() - started
        assert 9 < bookmarked < ended, (bookmarked, ended)
        assert 11 < ended < 20, ended
    finally:
        c.close()
        kubectl("delete", "configmap", "tick-0", "tick-1", "tick-2")


def test_clients_that_leave_mid_watch_free_what_they_held(server):
    pid = server.proc.pid
    fds_before = open_fds(pid)
    for _ in range(3):
        conns = [connect(server) for _ in range(50)]
        for c in conns:
            c.sendall(get(server, "/api/v1/namespaces/default/configmaps?watch=1"))
        for c in conns:
            assert read_until(c, b"", b"\r\n\r\n", "the head").startswith(b"HTTP/1.1 200 ")
        for c in conns:
            c.close()
    wait_for(lambda: open_fds(pid) <= fds_before + 2, 30,
             "the server to close the connections its clients left")


def test_a_stopping_server_ends_watches_with_their_last_chunk():
    s = Server()
    conns = []
    try:
        for _ in range(20):
            c = connect(s)
            c.sendall(get(s, "/api/v1/namespaces/default/configmaps?watch=1"))
            conns.append(c)
        firsts = [read_until(c, b"", b'"type":"ADDED"', "the first event") for c in conns]
        s.proc.send_signal(signal.SIGTERM)
        for c, data in zip(conns, firsts):
            read_until(c, data, b"\r\n0\r\n\r\n", "the last chunk")
            assert c.recv(1) == b""  # Then the server closes the connection.
        assert s.proc.wait(timeout=30) == 0
    finally:
        for c in conns:
            c.close()
        s.stop()


def send_queue(port, client_port):
    """Bytes the server's socket to the client at `client_port` holds unacknowledged."""
    out = subprocess.run(["ss", "-tnH", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        fields = line.split()  # Recv-Q Send-Q Local Peer
        if len(fields) >= 4 and fields[3].endswith(f":{client_port}"):
            return int(fields[1])
    return 0


def chunked_events(data):
    """The watch events in `data`, the body of a chunked answer as far as it has come."""
    body, rest = b"", data
    while b"\r\n" in rest:
        size_line, _, after = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0 or len(after) < size + 2:
            break
        assert after[size:size + 2] == b"\r\n", "a chunk not followed by CRLF"
        body += after[:size]
        rest = after[size + 2:]
    return [json.loads(line) for line in body.split(b"\n") if line]


@pytest.mark.parametrize("tls", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
def test_a_watch_read_late_gets_every_event_whole(server, kubectl, tls):
    """Events a watcher's socket has no room for wait in the server's send queue, sent as the
    client makes room: all of them arrive, whole and in order, in intact TLS records (on TLS
    1.3 the server seals and sends them itself, on 1.2 through Asio's stream)."""
    c = connect(server, rcvbuf=4096, tls=tls)  # Little room on this side.
    names = [f"late-{i}" for i in range(8)]
    try:
        assert c.version() == {ssl.TLSVersion.TLSv1_3: "TLSv1.3", ssl.TLSVersion.TLSv1_2: "TLSv1.2"}[tls]
        client_port = c.getsockname()[1]
        c.sendall(get(server, "/api/v1/namespaces/default/configmaps?watch=1&labelSelector=late%3Dyes"))
        data = read_until(c, b"", b"\r\n\r\n", "the head")
        assert data.startswith(b"HTTP/1.1 200 ")
        head, _, body = data.partition(b"\r\n\r\n")
        items = [{"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": name, "labels": {"late": "yes"}},
                  "data": {"x": str(i) * 400_000}} for i, name in enumerate(names)]
        kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                        "items": items}))
        # The client has read nothing since: the server's writes wait on the socket.
        wait_for(lambda: send_queue(server.port, client_port) > 1_000_000, 30,
                 "the server's writes to wait for the client")
        while len(chunked_events(body)) < len(names):
            chunk = c.recv(65536)
            assert chunk, "the watch ended early"
            body += chunk
        events = chunked_events(body)
        assert [e["object"]["metadata"]["name"] for e in events] == names
        assert [e["type"] for e in events] == ["ADDED"] * len(names)
        for i, e in enumerate(events):
            assert e["object"]["data"]["x"] == str(i) * 400_000
    finally:
        c.close()
        kubectl("delete", "configmaps", "-l", "late=yes", "--wait=false")


def test_a_stopping_server_does_not_wait_for_a_watcher_that_never_reads():
    """A client that stops reading its watch (hung, or its packets lost) leaves the server's
    write of the events waiting for room the client never makes. Told to stop, the server
    gives such a connection a moment, then cuts it: it exits as promptly as without it."""
    s = Server()
    c = None
    try:
        c = connect(s, rcvbuf=4096)  # Little room on this side.
        client_port = c.getsockname()[1]
        c.sendall(get(s, "/api/v1/namespaces/default/configmaps?watch=1"))
        assert read_until(c, b"", b"\r\n\r\n", "the head").startswith(b"HTTP/1.1 200 ")
        # From here on the client reads nothing. 12 events of 900 KB: more than the kernel
        # buffers on both sides hold, so the server's write waits.
        items = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"big-{i}"},
                  "data": {"x": "x" * 900_000}} for i in range(12)]
        Kubectl(s)("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                            "items": items}))
        wait_for(lambda: send_queue(s.port, client_port) > 1_000_000, 30,
                 "the server's write to the client that never reads to wait")
        s.proc.send_signal(signal.SIGTERM)
        start = time.monotonic()
        code = s.proc.wait(timeout=30)
        took = time.monotonic() - start
        assert code == 0
        assert "connection(s) still waiting on their clients after 3 s, cut" in s.logs()
        # Within what terminate() gives a process before SIGKILL (3 s of it the grace).
        assert took < 10, f"the server took {took:.1f} s to stop"
    finally:
        if c is not None:
            c.close()
        s.stop()

"""kiso's plugins (src/common/plugin.h): a library a process may never need is
mapped only once it is needed. A fresh `kiso server` without its agent maps
none of them: gRPC (kiso-etcd.so, for etcd://), libarchive (kiso-layers.so,
for image layers; test_node.py sees it come with a pod's image), the
netfilter libraries (kiso-netfilter.so, for rule changes) and libprotobuf
(kiso-protobuf.so, for protobuf bodies). kubectl's first create, a protobuf
body, brings in kiso-protobuf.so and libprotobuf, and is served."""
import json
import os
import subprocess

from conftest import KISO_BIN, Kubectl, Server, mapped_files

PLUGGED = ("kiso-", "libgrpc", "libarchive", "libnftables", "libnftnl", "libnetfilter_conntrack",
           "libprotobuf")


def plugged_in(pid):
    """The plugins and their libraries the process maps, without versions."""
    return sorted(n.split(".so")[0] for n in mapped_files(pid) if n.startswith(PLUGGED))


def test_a_server_maps_a_plugin_only_once_it_needs_it():
    server = Server()
    try:
        kubectl = Kubectl(server)
        kubectl("get", "namespaces")  # JSON both ways.
        assert plugged_in(server.proc.pid) == []
        # Not a plugin: the executables allocate with jemalloc (src/common/allocator.cc).
        assert "libjemalloc" in {n.split(".so")[0] for n in mapped_files(server.proc.pid)}
        run = kubectl.run("create", "namespace", "dev", "-v=8")
        assert "Content-Type: application/vnd.kubernetes.protobuf" in run.stderr
        assert plugged_in(server.proc.pid) == ["kiso-protobuf", "libprotobuf"]
        got = json.loads(kubectl("get", "namespace", "dev", "-o", "json"))
        assert got["status"]["phase"] == "Active"
    finally:
        server.stop()


def test_both_executables_give_jemalloc_their_small_thread_caches():
    """src/common/allocator.cc's options reach jemalloc in `kiso` and `kiso-agent` (jemalloc
    lists where each option came from when asked to confirm them)."""
    for binary in (KISO_BIN, os.path.join(os.path.dirname(KISO_BIN), "kiso-agent")):
        run = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "MALLOC_CONF": "confirm_conf:true"})
        assert run.returncode == 0, run.stderr
        compiled_in = [line for line in run.stderr.splitlines()
                       if "(string pointed to by the global variable malloc_conf)" in line]
        assert len(compiled_in) == 1, run.stderr
        for option in ("percpu_arena:percpu", "tcache_nslots_small_max:8"):
            assert option in compiled_in[0]
            assert f"<jemalloc>: -- Set conf value: {option}" in run.stderr

"""`kiso server` on each store backend, as a user runs it: the embedded SQLite
default and a real etcd (Debian's etcd-server, one member on 127.0.0.1). The
etcd backend's gRPC lives in a plugin (kiso-etcd.so) that only a server with an
etcd:// store loads: a SQLite server maps none of gRPC's libraries (the
other plugins: test_plugins.py)."""
import pytest

from conftest import Kubectl, Server, etcd_member, mapped_files as mapped


def grpc_libraries(names):
    return sorted(n for n in names if n.startswith(("libgrpc", "kiso-etcd")))


@pytest.fixture
def etcd():
    """A one-member etcd on free loopback ports; stopped and removed at the end."""
    with etcd_member() as endpoint:
        yield endpoint


def test_a_server_on_etcd_serves_kubectl_and_loads_the_etcd_plugin(etcd):
    server = Server(extra_args=["--store", f"etcd://{etcd}"])
    try:
        kubectl = Kubectl(server)
        kubectl("create", "namespace", "dev")
        kubectl("create", "configmap", "settings", "-n", "dev", "--from-literal=mode=etcd")
        out = kubectl("get", "configmap", "settings", "-n", "dev", "-o",
                      "jsonpath={.data.mode}")
        assert out.strip() == "etcd"
        libraries = grpc_libraries(mapped(server.proc.pid))
        assert "kiso-etcd.so" in libraries, libraries
        assert any(n.startswith("libgrpc") for n in libraries), libraries
    finally:
        server.stop()


def test_a_server_on_sqlite_maps_no_grpc(server):
    assert grpc_libraries(mapped(server.proc.pid)) == []

"""The tests' private Redis on TCP: the port found free may be taken before Redis binds it (the other
test process's servers bind ports the kernel picks, ``-n 2``); it is picked again, not a failed test."""

import socket

import pytest

from hil import redisproc


def test_a_tcp_port_taken_before_redis_binds_it_is_picked_again(tmp_path, monkeypatch):
    if redisproc.shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (make setup installs it)")
    import redis
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()                                    # another process's server, there first
    first = taken.getsockname()[1]
    picks = [first]
    real = redisproc.free_port
    monkeypatch.setattr(redisproc, "free_port", lambda: picks.pop(0) if picks else real())
    try:
        r = redisproc.start_redis(tmp_path / "r", password="pw", tcp=True)
    finally:
        taken.close()
    try:
        assert not picks and r.port > 0 and r.port != first        # the taken port was tried, then another
        client = redis.Redis(host="127.0.0.1", port=r.port, password="pw")
        assert client.ping() and client.config_get("port")["port"] == str(r.port)
        client.close()
    finally:
        r.stop()

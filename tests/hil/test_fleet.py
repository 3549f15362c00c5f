"""The fleet load generator (``hil/fleet.py``, ``python -m bench fleet``) against the real
``capture-agent server`` process with its store in a private ``redis-server``: its terminals
really complete probes over mutual TLS, each as itself, and what fails is counted as failed.
Correctness only; the bench measures the times."""

from __future__ import annotations

import pytest

from agent.security.keys import generate_file_key
from hil import pki
from hil.devproc import served_port
from hil.fleet import (
    FleetProcesses,
    FleetServer,
    FleetTerminal,
    TerminalKeys,
    provision_fleet,
    recovery,
    run_load,
    run_until_each_succeeds,
)
from hil.redisproc import start_redis

pytestmark = pytest.mark.slow


@pytest.fixture
def fleet(tmp_path):
    rp = start_redis(tmp_path / "redis")
    files = provision_fleet(tmp_path / "fleet", 3, store_url=rp.url)
    server = FleetServer(files)
    server.start()
    terminals = [FleetTerminal(k, files, deadline_s=1.0, retries=1) for k in files.terminals]
    yield files, server, terminals, rp
    for t in terminals:
        t.close()
    server.stop()
    rp.stop()


def test_each_terminal_gets_its_probes_accepted_as_itself_and_failures_are_counted(fleet, tmp_path):
    import redis

    files, server, terminals, rp = fleet
    ids = [t.keys.terminal_id for t in terminals]
    assert len(set(ids)) == 3 and len({t.keys.cert.cert_pem for t in terminals}) == 3

    first = run_until_each_succeeds(terminals, 60.0)
    assert {r.terminal_id for r in first if r.ok} == set(ids)
    load = run_load(terminals, 1.0)
    assert load and all(r.ok for r in load), {r.outcome for r in load}
    # The server used each probe's nonce and stored each terminal's counter: its last probe's.
    r = redis.Redis(unix_socket_path=str(rp.socket))
    try:
        for t in terminals:
            assert int(r.get(f"fleet:c:{t.keys.terminal_id}")) == t.counter
    finally:
        r.close()

    # A certificate from the fleet's CA for a terminal the server does not know is refused.
    stranger = pki.issue(files.ca, "kiosk-fleet-stranger", server=False)
    odd = FleetTerminal(TerminalKeys("kiosk-fleet-stranger", stranger, generate_file_key(tmp_path / "s.key")),
                        files, retries=0)
    try:
        assert odd.probe().outcome == "UPL_REFUSED"
    finally:
        odd.close()

    server.stop()
    down = [t.probe() for t in terminals]
    assert [d.outcome for d in down] == ["UPL_UNAVAILABLE"] * 3 and not any(d.ok for d in down)

    ready = server.start()
    rec = recovery(run_until_each_succeeds(terminals, 60.0), ids, ready)
    assert rec.recovered == 3 and rec.seconds_all is not None


def test_load_processes_split_the_fleet_and_their_results_are_merged(tmp_path):
    """``FleetProcesses``: the terminals are played by separate processes (each terminal still as
    itself), and the parent gets every terminal's results: each terminal's probes as counted by the
    server (its counter in Redis, one per probe it sent) are all there."""
    import os

    import redis

    rp = start_redis(tmp_path / "redis")
    files = provision_fleet(tmp_path / "fleet", 4, store_url=rp.url)
    server = FleetServer(files)
    server.start()
    fleet = FleetProcesses(files, 2)
    try:
        assert len(set(fleet.pids)) == 2 and os.getpid() not in fleet.pids
        ids = fleet.terminal_ids
        first = fleet.run_until_each_succeeds(60.0)
        assert {r.terminal_id for r in first if r.ok} == set(ids)
        load = fleet.run_load(1.0)
        assert {r.terminal_id for r in load} == set(ids) and all(r.ok for r in load), {r.outcome for r in load}
        r = redis.Redis(unix_socket_path=str(rp.socket))
        try:
            for tid in ids:
                sent = sum(1 for x in first + load if x.terminal_id == tid)
                assert int(r.get(f"fleet:c:{tid}")) == sent
        finally:
            r.close()
        with pytest.raises(ValueError):
            FleetProcesses(files, 5)                         # more processes than terminals
    finally:
        fleet.close()
        server.stop()
        rp.stop()
    assert not any(p.is_alive() for p in fleet._procs)


def test_the_server_binds_a_port_the_kernel_picks_and_binds_it_again_on_a_restart(tmp_path):
    """No port is looked for before the server binds one (a port found free could be taken in
    between): the config says port 0, the server's first start binds what the kernel picks, and the
    files then name that port, for the terminals and for a restart."""
    rp = start_redis(tmp_path / "redis")
    files = provision_fleet(tmp_path / "fleet", 1, store_url=rp.url)
    server = FleetServer(files)
    try:
        assert files.port == 0 and 'listen = "127.0.0.1:0"' in files.server_toml.read_text()
        with pytest.raises(ValueError):
            _ = files.endpoint                           # no terminal is pointed at a port not yet bound
        server.start()
        assert server.child is not None
        port = served_port(server.child)
        assert files.port == port > 0 and f'listen = "127.0.0.1:{port}"' in files.server_toml.read_text()
        t = FleetTerminal(files.terminals[0], files, deadline_s=1.0, retries=1)
        try:
            assert any(r.ok for r in run_until_each_succeeds([t], 60.0))
            server.stop()
            server.start()
            assert server.child is not None and served_port(server.child) == port == files.port
            assert any(r.ok for r in run_until_each_succeeds([t], 60.0))
        finally:
            t.close()
    finally:
        server.stop()
        rp.stop()

"""Settings and identifiers that must be refused with a clear message and a stable code, never
accepted and never a traceback: non-finite numbers, a negative or malformed socket mode, control
and bidirectional-override characters in ids, ``workers = 0``, a terminal id that walks out of
dev-provision's directory, and references with a trailing newline (a ``$`` pattern accepts one)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import typing

import pytest

from agent import config
from agent.errors import ConfigError
from agent.session.errors import BadRequest, ConsentRequired
from agent.session.request import validate
from hil.ingest.config import load_server_config
from tests.helpers.requests import request


def load_text(tmp_path, text: str):
    p = tmp_path / "agent.toml"
    p.write_text(text, encoding="utf-8")
    return config.load(p)


@pytest.mark.parametrize("toml, where", [
    ("[uplink]\ndeadline_s = nan\n", "uplink.deadline_s"),
    ("[uplink]\nbackoff_max_s = inf\n", "uplink.backoff_max_s"),
    ("[camera]\nread_timeout_s = -inf\n", "camera.read_timeout_s"),
    ("[session]\nlockout_s = nan\n", "session.lockout_s"),
    ("[session]\nfailure_window_s = inf\n", "session.failure_window_s"),
    ("[audit]\ncheckpoint_interval_s = inf\n", "audit.checkpoint_interval_s"),
])
def test_non_finite_numbers_are_refused(tmp_path, toml, where):
    with pytest.raises(ConfigError, match="finite") as exc:
        load_text(tmp_path, toml)
    assert exc.value.code == "AGT_CONFIG_INVALID" and where in exc.value.message


@pytest.mark.parametrize("toml", ["claim_lease_s = 0", "claim_lease_s = -1", "claim_lease_s = 3601",
                                  "in_progress_margin_s = -0.5", "in_progress_margin_s = 61"])
def test_the_claim_lease_wait_is_bounded(tmp_path, toml):
    # [uplink] claim_lease_s and in_progress_margin_s bound how long a submit answered
    # PROBE_IN_PROGRESS is resent: never zero or negative, never unbounded. (Main: unknown settings.)
    with pytest.raises(ConfigError, match="claim_lease_s must be in") as exc:
        load_text(tmp_path, f"[uplink]\n{toml}\n")
    assert exc.value.code == "AGT_CONFIG_INVALID"


@pytest.mark.parametrize("mode", ["-0660", "0o660", "660 ", "+660", "0x1b0", "", "07770", "0666"])
def test_a_socket_mode_must_be_a_plain_octal_mode_without_access_for_others(tmp_path, mode):
    with pytest.raises(ConfigError, match="socket_mode") as exc:
        load_text(tmp_path, f'[local_api]\nsocket_mode = "{mode}"\n')
    assert exc.value.code == "AGT_CONFIG_INVALID"


@pytest.mark.parametrize("tid, shown", [
    ("kiosk-1\\nforged line", "U+000A"), ("kiosk-1\\u202eexe.sys", "U+202E"), ("kiosk\\u200d1", "U+200D"),
    ("kiosk\\u0085", "U+0085"), ("../../etc", "not a terminal id"), ("kiosk 1", "not a terminal id"),
    ("", "not a terminal id"), ("x" * 65, "not a terminal id"), ("-kiosk", "not a terminal id"),
])
def test_terminal_ids_are_plain(tmp_path, tid, shown):
    with pytest.raises(ConfigError, match=re.escape(shown)) as exc:
        load_text(tmp_path, f'terminal_id = "{tid}"\n')
    assert exc.value.code == "AGT_CONFIG_INVALID"


def test_no_setting_holds_control_or_bidi_characters(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("U+202E")):
        load_text(tmp_path, '[uplink]\nserver_name = "ingest\\u202e.example"\n')
    with pytest.raises(ConfigError, match=re.escape("U+0000")):
        load_text(tmp_path, '[audit]\npath = "/var/lib/x\\u0000y"\n')
    assert load_text(tmp_path, 'terminal_id = "kiosk-7.branch_3"\n').terminal_id == "kiosk-7.branch_3"


@pytest.mark.parametrize("line, shown", [
    ("nonce_ttl_s = nan", "finite"), ("retry_window_s = inf", "finite"), ("workers = 0", "workers"),
    ("workers = -3", "workers"), ('listen = "127.0.0.1:8443\\u202e"', "U+202E"),
    ("claim_lease_s = 0.5", "claim_lease_s must be a number from 1"),
    ("claim_lease_s = 61", "claim_lease_s must be at most nonce_ttl_s"),
])
def test_server_config_refuses_the_same(tmp_path, line, shown):
    p = tmp_path / "server.toml"
    p.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(shown)) as exc:
        load_server_config(p)
    assert exc.value.code == "AGT_CONFIG_INVALID"


def test_workers_zero_is_an_error_code_not_a_traceback(tmp_path):
    p = tmp_path / "server.toml"
    p.write_text("workers = 0\n")
    out = subprocess.run([sys.executable, "-m", "agent.cli", "server", "--config", str(p)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "error[AGT_CONFIG_INVALID]" in out.stderr and "Traceback" not in out.stderr


def test_dev_provision_refuses_a_terminal_id_that_leaves_its_directory(tmp_path):
    target = tmp_path / "a" / "b" / "dev"
    out = subprocess.run([sys.executable, "-m", "agent.cli", "dev-provision", str(target), "--terminal-id",
                          "../../X"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "error[AGT_CONFIG_INVALID]" in out.stderr and "Traceback" not in out.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == []          # nothing written anywhere


@pytest.mark.parametrize("field", ["consent", "subject_ref", "business_ref"])
def test_references_with_a_trailing_newline_are_refused(field):
    if field == "consent":
        req, err = request("verify", "CONSENT-T-0001\n"), ConsentRequired
    else:
        req, err = request("verify", "CONSENT-T-0001", **{field: "cust-42\n"}), BadRequest
    with pytest.raises(err):
        validate(req)
    validate(request("verify", "CONSENT-T-0001", subject_ref="cust-42", business_ref="TXN:2026/11-7"))


@pytest.mark.parametrize("value", ["0", "1.9", "-10", "120.5", "1e9", "nan", "inf", '"10"'])
def test_the_liveness_workers_verdict_deadline_is_bounded(tmp_path, value):
    # [session] worker_timeout_s (perf33): the worker's verdict deadline after the window's last frameset, 2..120 s:
    # under 2 s a healthy worker on a loaded terminal could be killed, over 120 s a hung one holds the kiosk.
    with pytest.raises(ConfigError) as exc:
        load_text(tmp_path, f"[session]\nworker_timeout_s = {value}\n")
    assert exc.value.code == "AGT_CONFIG_INVALID" and "worker_timeout_s" in exc.value.message


class _Shrunk:
    """The daemon's end of a real channel whose every wait is driven: the deadline the supervisor sets is noted,
    and the wait itself lasts 1 ms (no test waits for the deadline)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.timeouts = sock, list[float]()

    def settimeout(self, t: float) -> None:
        self.timeouts.append(t)
        self.sock.settimeout(0.001)

    def __getattr__(self, name: str):
        return getattr(self.sock, name)


def test_the_liveness_workers_verdict_deadline_is_the_configured_one(tmp_path):
    from agent.daemon import supervisor_settings
    from agent.liveness.fusion import VerdictThresholds
    from agent.liveness.supervisor import LivenessSupervisor, LivenessWorkerTimeout, RemoteJudge, SupervisorSettings
    from agent.liveness.wire import recv
    default = supervisor_settings(load_text(tmp_path, ""))
    assert default.judge_timeout_s == SupervisorSettings().judge_timeout_s == 10.0     # unchanged by default
    settings = supervisor_settings(load_text(tmp_path, "[session]\nworker_timeout_s = 37.5\n"), b"dots")
    assert (settings.judge_timeout_s, settings.start_stall_s, settings.dot_reference) == (37.5, 60.0, b"dots")
    sup = LivenessSupervisor(settings)
    mine, worker = socket.socketpair()
    with worker:
        sup._sock = channel = _Shrunk(mine)
        judge = RemoteJudge(sup, 32, bytes(32), VerdictThresholds(), [], "kiosk")
        judge.sent = judge.acked = 32                   # the window's 32 framesets sent and acknowledged
        with pytest.raises(LivenessWorkerTimeout, match=r"within 53\.5 s") as exc:
            judge.finish()
        assert recv(worker) == {"op": "judge"}
    # 37.5 s plus 0.5 s per frameset sent; the worker is torn down (the next session starts a fresh one).
    assert channel.timeouts == [53.5] and exc.value.code == "LIV_WORKER_TIMEOUT" and sup._sock is None


def test_the_verdict_is_not_waited_for_past_the_nonce(monkeypatch):
    # perf34: the worker's own deadline (10 s + 0.5 s a frameset: 26 s for 32) could outlive the nonce, and a
    # verdict after it can only be refused at the submit. ``finish(not_after=...)`` (the session passes the nonce's
    # deadline less one submit attempt's deadline) bounds the wait: on a driven clock and channel, 4 s left of the
    # nonce is the wait (not 26 s) and LIV_VERDICT_PAST_NONCE its end; none left, the worker is still asked and given
    # VERDICT_FLOOR_S (review34c: an injector holding camera calls before the judge must not turn a window going badly
    # into a failure without a strike); a nonce that outlives the worker's deadline leaves it as it was
    # (LIV_WORKER_TIMEOUT at 26 s).
    import types

    from agent.liveness import supervisor as supervisor_module
    from agent.liveness.fusion import VerdictThresholds
    from agent.liveness.supervisor import LivenessSupervisor, LivenessWorkerTimeout, RemoteJudge, SupervisorSettings
    from agent.liveness.wire import recv
    now = [1000.0]
    monkeypatch.setattr(supervisor_module, "time", types.SimpleNamespace(monotonic=lambda: now[0],
                                                                         perf_counter=lambda: now[0]))

    def finish(not_after: float) -> tuple[list[float], LivenessWorkerTimeout, bool]:
        sup = LivenessSupervisor(SupervisorSettings())
        mine, worker = socket.socketpair()
        with worker:
            channel = _Shrunk(mine)
            sup._sock = typing.cast(socket.socket, channel)
            judge = RemoteJudge(sup, 32, bytes(32), VerdictThresholds(), [], "kiosk")
            judge.sent = judge.acked = 32
            with pytest.raises(LivenessWorkerTimeout) as exc:
                judge.finish(not_after=not_after)
            try:
                asked = recv(worker) == {"op": "judge"}
            except EOFError:                              # the daemon's end closed with nothing sent
                asked = False
        assert sup._sock is None                          # killed either way: the next session starts a fresh one
        return channel.timeouts, exc.value, asked

    timeouts, exc, asked = finish(now[0] + 4.0)
    assert timeouts == [4.0] and asked and exc.code == "LIV_VERDICT_PAST_NONCE" and "4.00 s" in exc.message
    timeouts, exc, asked = finish(now[0] - 0.5)
    assert timeouts == [supervisor_module.VERDICT_FLOOR_S] and asked and exc.code == "LIV_VERDICT_PAST_NONCE"
    assert "-0.50 s" in exc.message
    timeouts, exc, asked = finish(now[0] + 60.0)
    assert timeouts == [26.0] and asked and exc.code == "LIV_WORKER_TIMEOUT"

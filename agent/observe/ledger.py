"""The last sessions' outcomes and timings, read back from the audit log for the diagnostics page.

The audit log already holds what an installer needs to see (``session_start``, ``result``, ``error``
and ``session_end`` with its stage timings); this reads its tail and keeps only fields that say how
a session went. A record the audit log refused (``audit_refused``, written in its place: a caller's
defect, ``agent/security/audit.py``) is shown too: in its session's row (``unrecorded``: the events
refused; a refused ``result`` or ``error`` leaves the outcome ``unrecorded``, reason ``AUD_REFUSED``),
and counted over the whole tail, the daemon's own records included (:func:`audit_refusals`).
References (their keyed pseudonyms too), session and probe ids and scores never
leave this module in a summary: a summary cannot be tied to a person. The lockout entries (sec27) are
read back whole only for the lockout's own restore at start (:func:`lockout_entries`); what diagnose
shows of them is their kind and times (:func:`lockout_summary`). The log is read, not verified
(``capture-agent audit-verify`` does that).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TAIL_BYTES = 512 * 1024           # enough for hundreds of sessions; the log itself may be large
REFUSED_EVENT = "audit_refused"   # security.audit.REFUSED_EVENT (not imported: this module reads files only)
MAX_UNRECORDED = 8                # refused events named per session row
LAST_REFUSALS = 5                 # refusals described in audit_refusals
_CODE = re.compile(r"[A-Z][A-Z_]{0,31}(\+[A-Z][A-Z_]{0,31}){0,3}")


@dataclass
class SessionSummary:
    started: str = ""                 # the session_start entry's time (UTC, ISO 8601)
    purpose: str = ""
    channel: str = ""
    outcome: str = "running"          # accepted | rejected | error | cancelled | abandoned | unrecorded | running
    reason: str = ""                  # the receipt's reason or the error's code
    verdict: str = ""
    challenge: str = ""               # why the challenge failed: its stable code (challenge.DETAIL_CODES)
    prompt: str = ""                  # what a refused person was told after the verdict (its code)
    ended_in: str = ""                # the stage it ended in
    unrecorded: list[str] = field(default_factory=list)   # its events the audit log refused (audit_refused)
    within_budget: bool | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _tail_lines(path: Path, max_bytes: int) -> list[str]:
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - max_bytes))
        data = f.read()
    lines = data.split(b"\n")
    if size > max_bytes:
        lines = lines[1:]             # the first one is cut
    return [line.decode("utf-8", "replace") for line in lines if line.strip()]


def _text(v: Any, limit: int = 64) -> str:
    return v[:limit] if isinstance(v, str) else ""


def _code(v: Any) -> str:
    """A challenge detail or prompt code (``PROJECTOR_DROWNED+SCREEN_WEAK``) as written, or "" for anything else:
    the log is read, not verified, and this field never carries free text onward."""
    return v if isinstance(v, str) and _CODE.fullmatch(v) else ""


def _entries(path: str | os.PathLike[str], max_bytes: int) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(entry, its data) of each readable entry in the tail of the audit log at ``path``: a line that is
    not JSON, or an entry without a data table, is skipped (the log is read here, not verified)."""
    return _parsed(_tail_lines(Path(path), max_bytes))


def _parsed(lines: Iterable[str | bytes]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(entry, its data) of each of ``lines`` that is a JSON entry with a data table; the rest skipped."""
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("data"), dict):
            yield entry, entry["data"]


def last_sessions(path: str | os.PathLike[str], n: int = 10, *, max_bytes: int = TAIL_BYTES) -> list[SessionSummary]:
    """The last ``n`` sessions in the audit log at ``path``, newest first. ``OSError`` if unreadable."""
    by_id: dict[str, SessionSummary] = {}
    order: list[str] = []
    for entry, data in _entries(path, max_bytes):
        if not isinstance(data.get("session_id"), str):
            continue
        sid, event = data["session_id"], entry.get("event")
        if event == "session_start":
            by_id[sid] = SessionSummary(started=_text(entry.get("ts")), purpose=_text(data.get("purpose")),
                                        channel=_text(data.get("channel")))
            order.append(sid)
            continue
        s = by_id.get(sid)
        if s is None:
            continue                  # started before the tail we read
        if event == "result":
            s.outcome = "accepted" if data.get("accepted") is True else "rejected"
            s.reason, s.verdict = _text(data.get("reason")), _text(data.get("verdict"))
            s.challenge = _code(data.get("challenge_detail"))
            s.prompt = _code(data.get("prompt"))
            if isinstance(data.get("within_budget"), bool):
                s.within_budget = data["within_budget"]
        elif event == "error":
            code = _text(data.get("code"))
            s.outcome = "cancelled" if code == "SES_CANCELLED" else "error"
            s.reason = code
        elif event == REFUSED_EVENT:
            what = _text(data.get("refused_event")) or "?"
            if len(s.unrecorded) < MAX_UNRECORDED:
                s.unrecorded.append(what)
            if what in ("result", "error") and s.outcome == "running":
                s.outcome, s.reason = "unrecorded", "AUD_REFUSED"
        elif event == "session_end":
            s.ended_in = _text(data.get("stage"))
            if s.outcome == "running":
                s.outcome = "abandoned"
            for k, v in data.items():
                if k.endswith("_ms") and isinstance(v, (int, float)) and not isinstance(v, bool):
                    s.timings_ms[k[:-3]] = float(v)
    return [by_id[sid] for sid in reversed(order)][:n]


def audit_refusals(path: str | os.PathLike[str], *, max_bytes: int = TAIL_BYTES) -> dict[str, Any]:
    """The ``audit_refused`` entries in the tail of the audit log at ``path``: how many, and the last
    ``LAST_REFUSALS`` (time, the refused event, the offending field's name, the problem; names and
    codes only, as the entry holds them). ``OSError`` if unreadable."""
    found: list[dict[str, str]] = []
    for entry, d in _entries(path, max_bytes):
        if entry.get("event") != REFUSED_EVENT:
            continue
        found.append({"ts": _text(entry.get("ts")), "refused_event": _text(d.get("refused_event")),
                      "field": _text(d.get("field")), "problem": _code(d.get("problem"))})
    return {"count": len(found), "last": found[-LAST_REFUSALS:]}


# Lockouts in the audit log (sec27): their start, their end, and a restore of one the state file had lost
# (agent/session/lockout.py writes them); since sec28 each strike short of one too (``until``: when it leaves its
# window), the strikes a success cleared (``until``: the clear's time), a restore of strikes the state file had
# lost, and a challenge window's charge in advance and its settling (``session_id``). The restore reads them back by
# key; the diagnostics see only the kind.
LOCKOUT_RUNS = ("lockout_start", "lockout_restored")           # entries whose ``until`` is a lockout's end
LOCKOUT_EVENTS = ("lockout_start", "lockout_end", "lockout_restored", "lockout_strike", "lockout_cleared",
                  "strikes_restored", "lockout_charge", "lockout_settled", "lockout_graced")
LOCKOUT_CHUNK = 64 * 1024
BOOT_STAMPED = ("lockout_strike", "lockout_charge")             # entries stamped with CLOCK_BOOTTIME since strikes32


@dataclass(frozen=True)
class LockoutEntry:
    seq: int
    ts: float                         # the entry's time (Unix s)
    event: str                        # one of LOCKOUT_EVENTS
    key: str                          # "terminal:<id>" or "subject:<keyed pseudonym>": never shown by diagnose
    until: float                      # the lockout's end (Unix s)
    why: str = ""                     # lockout_end's reason, lockout_restored's code
    session: str = ""                 # lockout_charge's and lockout_settled's session id (sec28)
    tpm: TpmStamp | None = None       # the TPM's clock when it was written, where a TPM is configured (sec29)
    boot: str = ""                    # lockout_graced's boot id and host CLOCK_BOOTTIME (ms), TPM or not (sec32)
    boot_ms: int = 0
    window_s: float = 0.0             # lockout_strike's and lockout_charge's failure window when written (0: none)


BOOT_UNREAD = "unreadable"          # the boot id of a process that could not read it: equal to none (boot32)


def same_boot(boot: str, boot_ms: int, now_boot: str, now_ms: int) -> bool:
    """Whether a stamp's CLOCK_BOOTTIME (``boot`` id, ``boot_ms``) and now's are of one kernel boot, so that
    ``now_ms - boot_ms`` is time that passed (boot32, review32 D1). The same id: yes. Another id is a reboot only
    when CLOCK_BOOTTIME now is below the stamp's (it starts again at 0 at a boot, nothing sets it back): root who
    mounts a new uuid over ``/proc/sys/kernel/random/boot_id`` before a restart no longer frees the stamp from it.
    Fail closed, with a cost: after a real reboot, once the new uptime passes the stamp's ``boot_ms`` the stamp reads
    as this boot's and ``now_ms - boot_ms`` as its age however long ago it really was, so a strike the state file
    still holds can count again for up to one failure window (review32c; a false strike, never a missed one). A
    stamp without an id (late31's bare grace times) is not compared."""
    if not boot:
        return False
    return (boot == now_boot and boot != BOOT_UNREAD) or now_ms >= boot_ms


@dataclass(frozen=True)
class TpmStamp:
    """An entry's reading of the TPM's clock (``agent.security.tpm.TpmTime``, sec29): ``epoch``
    (``resetCount.restartCount``), ``time_ms`` (since the TPM's last start; nothing sets it, but the owner can
    speed it up, TPM2_ClockRateAdjust) and ``clock_ms`` (its powered life; survives reboots, the owner can move
    it forward); with the kernel's ``boot`` id and ``boot_ms`` (CLOCK_BOOTTIME: nothing sets it either)."""

    epoch: str
    time_ms: int
    clock_ms: int
    boot: str = ""
    boot_ms: int = 0

    def age_ms(self, now: TpmStamp) -> int:
        """How long before ``now`` this was read: by ``time_ms`` within one TPM epoch, else by ``clock_ms``; and
        within one boot of the kernel, no longer than CLOCK_BOOTTIME says (the TPM's rate sped up by its owner:
        swtpm's time ran 16 times too fast under a stream of TPM2_ClockRateAdjust)."""
        age = now.time_ms - self.time_ms if now.epoch == self.epoch else now.clock_ms - self.clock_ms
        if same_boot(self.boot, self.boot_ms, now.boot, now.boot_ms):
            age = min(age, now.boot_ms - self.boot_ms)
        return age

    def fields(self) -> dict[str, str | int]:
        return {"tpm_epoch": self.epoch, "tpm_ms": self.time_ms, "tpm_clock": self.clock_ms, "tpm_boot": self.boot,
                "tpm_boot_ms": self.boot_ms}

    @classmethod
    def of(cls, d: dict[str, Any]) -> TpmStamp | None:
        e, t, c, b, bm = (d.get(k) for k in ("tpm_epoch", "tpm_ms", "tpm_clock", "tpm_boot", "tpm_boot_ms"))
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (t, c, bm))
        if isinstance(e, str) and len(e) <= 32 and isinstance(b, str) and len(b) <= 64 and ints:
            return cls(e, int(t), int(c), b, int(bm))   # type: ignore[arg-type]
        return None


def lines_back(path: Path) -> Iterator[bytes]:
    """The lines of the file at ``path``, last first, read in chunks from its end."""
    with open(path, "rb") as f:
        pos = f.seek(0, os.SEEK_END)
        rest = b""
        while pos > 0:
            step = min(LOCKOUT_CHUNK, pos)
            pos -= step
            f.seek(pos)
            lines = (f.read(step) + rest).split(b"\n")
            rest = lines.pop(0)
            yield from reversed(lines)
        yield rest


def _unix(ts: Any) -> float | None:
    try:
        return dt.datetime.fromisoformat(ts).timestamp() if isinstance(ts, str) else None
    except ValueError:
        return None


def _old_by_boot(d: dict[str, Any], stamp: TpmStamp | None, elapsed: tuple[str, int], window_ms: int) -> bool:
    """Whether an entry's CLOCK_BOOTTIME stamp (its own ``boot``/``boot_ms`` or its TPM stamp's) says it is of
    another boot or at least ``window_ms`` old; False for an entry without one (it cannot say). Another boot as
    :func:`same_boot` says (boot32): a boot id forged before a restart does not make the log's entries a past boot's."""
    boot, boot_ms = d.get("boot"), d.get("boot_ms")
    if not (isinstance(boot, str) and boot and isinstance(boot_ms, int) and not isinstance(boot_ms, bool)):
        if stamp is None or not stamp.boot:
            return False
        boot, boot_ms = stamp.boot, stamp.boot_ms
    return not same_boot(boot, boot_ms, *elapsed) or elapsed[1] - boot_ms >= window_ms


# How long a strike's own failure window (its entry's ``window_s``) is honoured at most, and so how far back the
# lockout's restore reads the log whatever today's config says (sec33: root lowering the windows in the config must not
# shorten the reading past strikes and lockouts written under longer ones).
LOGGED_WINDOW_MAX_S = 86_400.0


def _window(w: Any) -> float:
    """An entry's ``window_s``: a positive number of seconds, else 0.0 (none: today's window rules). One past a float's
    range (an integer, or infinity) is ``LOGGED_WINDOW_MAX_S`` (sec34: fix33 read it as none, so a larger number lasted
    shorter than 1e12, read as the bound; the daemon writes neither: the reading that fails closed stands)."""
    if isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0:
        return float(w) if _finite(w) else LOGGED_WINDOW_MAX_S
    return 0.0


def _finite(v: int | float) -> bool:
    """Whether ``v`` is a finite float's worth (fix33: ``math.isfinite`` of a huge integer raises ``OverflowError``)."""
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def lockout_entries(path: str | os.PathLike[str], since: float, tpm_now: TpmStamp | None = None,
                    window_ms: int = 0, elapsed: tuple[str, int] | None = None) -> list[LockoutEntry]:
    """The lockout entries of the audit log at ``path`` written at or after ``since`` (Unix s), oldest
    first: read back from the end until an entry older than ``since`` (a log of any length, not a byte
    tail: entries pushed past a tail by a flood of others are still found). With ``tpm_now`` (sec29) only
    an entry stamped by the TPM that is also older than ``window_ms`` by the TPM's clock stops the reading
    (the lockout entries are stamped, others are not): a system clock set forward does not hide entries.
    With ``elapsed`` (this boot's id and the host's CLOCK_BOOTTIME in ms, ``agent.session.lockout.host_elapsed``;
    strikes32) likewise only an entry stamped with CLOCK_BOOTTIME (``boot``, ``boot_ms``: strikes, charges and
    graces; or the TPM's stamp's) that is of another boot or older than ``window_ms`` by it stops the reading, so
    that without a TPM too a clock set forward within one boot hides none. Past a strike or charge without those
    stamps (written before strikes32, when the system clock alone aged them) the system clock's rule stands again
    (``BOOT_STAMPED``): a log of years before the upgrade is not read whole at each start. Read, not
    verified: an entry that does not parse is skipped. ``OSError`` if unreadable. The keys are the lockout's own,
    for its restore (``agent.session.lockout``); :func:`lockout_summary` is what may be shown."""
    found: list[LockoutEntry] = []
    for entry, d in _parsed(lines_back(Path(path))):
        ts = _unix(entry.get("ts"))
        stamp = TpmStamp.of(d)
        old_by_tpm = tpm_now is None or stamp is not None and stamp.age_ms(tpm_now) >= window_ms
        if elapsed is not None and entry.get("event") in BOOT_STAMPED and not isinstance(d.get("boot"), str):
            elapsed = None                      # before strikes32: the system clock alone aged the strikes
        if ts is not None and ts < since and old_by_tpm and (elapsed is None or _old_by_boot(d, stamp, elapsed,
                                                                                             window_ms)):
            break
        if (entry.get("event") in LOCKOUT_EVENTS and ts is not None and isinstance(d.get("key"), str)
                and isinstance(d.get("until"), (int, float)) and not isinstance(d.get("until"), bool)
                and _finite(d["until"]) and isinstance(entry.get("seq"), int)):
            boot, boot_ms = d.get("boot"), d.get("boot_ms")
            if not (isinstance(boot, str) and isinstance(boot_ms, int) and not isinstance(boot_ms, bool)):
                boot, boot_ms = "", 0
            found.append(LockoutEntry(entry["seq"], ts, entry["event"], d["key"], float(d["until"]),
                                      _text(d.get("why")), _text(d.get("session_id"), 128), stamp,
                                      boot[:64], boot_ms, _window(d.get("window_s"))))
    return found[::-1]


_KEY_KINDS = {"terminal": "terminal", "subject": "person"}      # a lockout key's kind, as the diagnostics show it


def lockout_summary(path: str | os.PathLike[str], now: float, since: float, last: int = 5) -> dict[str, Any]:
    """The lockout entries since ``since`` for the diagnostics: how many of each event (strikes included,
    sec28), the lockouts still running at ``now``, and the last ``last`` entries as (time, event, kind:
    ``terminal`` or ``person`` for a subject's key, until, why). Never the key itself: no terminal's id, no
    subject's pseudonym; the page names a subject's key ``person`` so that no word of the subject's reference
    reaches it (the diagnostics page's test looks for "subject" on the page).
    ``OSError`` if unreadable."""
    entries = lockout_entries(path, since)

    def iso(t: float) -> str:
        return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    ends: dict[str, float] = {}
    for e in entries:
        if e.event in LOCKOUT_RUNS:
            ends[e.key] = max(ends.get(e.key, 0.0), e.until)
    counts = {ev: sum(e.event == ev for e in entries) for ev in LOCKOUT_EVENTS}
    return {"counts": counts, "running": sum(u > now for u in ends.values()),
            "last": [{"ts": iso(e.ts), "event": e.event, "kind": _KEY_KINDS.get(e.key.split(":", 1)[0], "other"),
                      "until": iso(e.until), "why": _code(e.why)} for e in entries[-last:]]}

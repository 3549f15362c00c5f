"""Failed presentations per terminal and per subject; too many within the window lock both out
(T/IIFAA 3001.1 §8.2.5 d).

Only presentation failures count: a capture judged not live (including a failed challenge) on the
terminal, a receipt whose reason is one of ``PRESENTATION_FAILURES``, and a challenge window that
lost frames (``SES_FRAMES_LOST``: not judged, but counted, so that gaps an injector fakes buy no
free tries), but for one the terminal itself made late (``FramesLost.host_late``, no burst on the camera link):
:meth:`Lockout.grace` settles its charge without a strike ``host_late_grace_per_hour`` times an hour per key
(late31; ``lockout_graced`` in the audit log, restored from it at start like the strikes). A server outage, a worker
fault, a camera error or a timeout says nothing about the person and counts for nothing (five
``UPL_UNAVAILABLE`` used to lock the next, different subject out).

A challenge window is charged in advance (:meth:`Lockout.begin`, when the nonce has arrived and the
window opens): a session that ends without a verdict after that (the frames stop, the camera is
lost, a cancel, the kiosk client closing the stream, the daemon killed) keeps its strike, since an
injector on the camera link that sees the window going badly could otherwise end it and try again
with a new nonce for free; only a verdict (which then counts as above) or a liveness worker fault
(the terminal's, not the person's) settles the charge without one. A charge still open when the
state is loaded (the daemon died in a window) counts as a failure then.

The counts persist across restarts in ``<state_dir>/lockout.json`` (written to a temporary file,
fsynced and renamed over the old one, mode 0600), keyed by ``terminal:<id>`` and by the subject's
keyed pseudonym (``agent/security/pseudonym.py``): nothing biometric, no subject reference in the
clear. Times are wall-clock seconds so that they mean something after a restart. A state file that
cannot be read is an error at start (``SES_LOCKOUT_STATE``), not a silent reset.

Each lockout's start and end are also entries of the audit log (sec27, review 26: before, only
``lockout.json`` held a lockout, and a rooted terminal that deleted it escaped the lockout and left no
trace): ``lockout_start`` (the key, its end ``until``, the failures that made it), ``lockout_end``
(``why`` ``EXPIRED``, written when the lockout is next looked at after its end), hash-chained and
anchored like every entry. At start the daemon reads the log's lockout entries back (as far as one
lockout lasts, ``lockout_s``, from its end, however many entries came after), and a lockout still
running there that the state file is missing, or holds ending earlier, is restored from the log (fail
closed) and logged as ``lockout_restored`` (``why`` ``SES_LOCKOUT_RESTORED``): the state file deleted,
or put back from before the lockout, buys nothing, and the log says it happened. A log that cannot be
read then is ``SES_LOCKOUT_STATE`` too. Since sec28 each strike short of a lockout is an entry too
(``lockout_strike``: the key, ``until`` when it leaves the failure window), and so is a success that
clears a key's strikes (``lockout_cleared``); at start the strikes still in their window after the key's
last lockout start or clear that the state file is missing are added back (``strikes_restored``, ``why``
``SES_STRIKES_RESTORED``), so deleting ``lockout.json`` no longer resets a count of failures either.
A window's charge in advance is an entry too (``lockout_charge``, with the session id, and
``lockout_settled`` when a verdict, a fault of the terminal's or a strike settles it): one the log holds
open at start (the daemon killed in the window, the state file that held it deleted) counts as a strike
then (``strikes_restored``, ``charged``), as the state file's own.

Where a TPM is configured (``[audit] tpm_counter``, sec29) two more holes close. Each lockout entry advances
the TPM's NV counter and carries its value (``agent/security/audit.py``), so root cutting the log back past
entries no probe's anchor covered (a terminal locked out sends none) leaves the log's counts short of the
counter: found at start, and the terminal's key is locked out for the longer of a lockout and the failure
window (fail closed: which subjects the cut entries held cannot be known), logged as ``lockout_restored``
(``why`` ``SES_AUDIT_CUT``). And each lockout entry carries the TPM's clock (TPM2_ReadClock) and the kernel's
CLOCK_BOOTTIME: a lockout runs while the system clock *or* its age on those says it does (within one TPM epoch
the TPM's ``time``, which nothing sets, bounded by CLOCK_BOOTTIME within one boot; across a reboot the TPM's
``clock``), so a system clock set forward ends nothing, and the restore from the log reads back past entries a
clock set forward makes look old. A host-late grace's hour does not run on the system clock alone since sec32
(:class:`Stamp`), nor does a strike's failure window since strikes32 (main: a clock set forward by the window after
each forfeited window aged every strike at once, 24 windows and no lockout): each is stamped with the
system clock, the host's CLOCK_BOOTTIME (the daemon's time namespace offset taken off, :func:`host_elapsed`) and,
where configured, the TPM's clock, and stays in its hour or window while any of them says so (sec32: a system clock
set an hour forward bought a new grace each time, 24 a day, no strike); its ``lockout_graced``, ``lockout_strike``
or ``lockout_charge`` entry carries the same stamps (the TPM's, ``boot`` and ``boot_ms``), so the restore from the
log ages it alike, reads the log back past entries only the system clock calls old, and gives back the stamps a
state file was stripped of (:func:`merged`). A state file written before strikes32 (bare strike times) is read as
before: those strikes age on the system clock alone. Since sec33 each strike keeps the failure window it was struck
under (``Stamp.window_s``, the entries' ``window_s``) and the restore reads the log back ``LOGGED_WINDOW_MAX_S`` (a
day) whatever the config says: root lowering ``failure_window_s`` (or ``lockout_s``) and restarting forgets none.
Without a TPM a reboot starts CLOCK_BOOTTIME again, and the
last boot's strikes and graces then age on the system clock alone.
Without a TPM neither of sec29's two holes closes: a cut of the unanchored tail is not detected, and a clock set forward
ends a lockout; the server's own counts stand then (``docs/keys.md``, *The audit counter and the TPM's clock*).

Since sec30 the counter binds the entries' content too: each counted entry's hash is extended into a TPM NV extend
index, so lockout entries rewritten into harmless ones of the same counts no longer hash to it: found at start
(``FORGED``) and failed closed the same way. A counter that was in use removed from the config refuses the start
(``AUD_COUNTER_GONE``, ``agent/security/audit.py``). What root with the daemon's owner authorisation can still do
is append entries of his own (extending and advancing the TPM as the daemon would), and rewrite them by undefining
the chain index, defining it again and re-extending it with his entries' hashes (the counter unmoved, the counts
matching): ``docs/keys.md``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config import SessionSettings
from agent.observe.ledger import (
    BOOT_UNREAD,
    LOCKOUT_RUNS,
    LOGGED_WINDOW_MAX_S,
    LockoutEntry,
    TpmStamp,
    lockout_entries,
    same_boot,
)
from agent.security.audit import CUT_CODE
from agent.session.errors import LockedOut, SessionError

if TYPE_CHECKING:
    from agent.security.audit import AuditLog

log = logging.getLogger(__name__)

PRESENTATION_FAILURES = frozenset({"NOT_LIVE", "EVIDENCE_FAILED"})   # the server judged the presentation
MAX_KEYS = 10_000                                   # subjects remembered at once; the oldest go first
RESTORED = "SES_LOCKOUT_RESTORED"                   # a lockout the state file had lost, taken from the audit log
EXPIRED = "EXPIRED"                                 # lockout_end's reason: its time ran out
STRIKES_RESTORED = "SES_STRIKES_RESTORED"           # strikes short of a lockout the state file had lost (sec28)
GRACES_RESTORED = "SES_GRACES_RESTORED"             # host-late graces of the last hour the state file had lost (mend31)
STRIKE_MATCH_S = 1e-3                               # a logged strike and the state's are one within this
AUDIT_CUT = CUT_CODE                                # "SES_AUDIT_CUT": counted entries cut from the log (sec29)
RESTORE_SLACK_S = 1.0                               # a logged lockout outlasting the state's by more is restored
GRACE_S = 3600.0                                    # ``host_late_grace_per_hour``'s hour (late31)


def boot_id() -> str:
    """The kernel's id of this boot (``BOOT_UNREAD`` where it cannot be read: equal to no other id, so stamps are
    then one boot's while CLOCK_BOOTTIME has not gone below theirs, :func:`same_boot`)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:64] or BOOT_UNREAD
    except OSError:
        return BOOT_UNREAD


def boottime_offset_ns(offsets_file: Path = Path("/proc/self/timens_offsets")) -> int:
    """The boottime offset of the time namespace the daemon runs in (``unshare --time --boottime N``: root who
    starts the daemon in one moves its CLOCK_BOOTTIME by N s), in ns; 0 outside one, or where the kernel has no
    time namespaces (sec32)."""
    try:
        lines = offsets_file.read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0] in ("boottime", "7") and all(re.fullmatch(r"-?\d{1,20}", p) for p in parts[1:]):
            return int(parts[1]) * 1_000_000_000 + int(parts[2])
    return 0


class HostElapsed:
    """This boot's id and the host's CLOCK_BOOTTIME in ms, the time namespace's offset taken off (sec32: a daemon
    started in a namespace whose boottime runs an hour ahead would otherwise see every stamp of this boot an hour
    older). Nothing sets CLOCK_BOOTTIME; only a reboot starts it again (with another id).

    The id and the offset are read from procfs once per process (boot32, review32 D1: read on every call, root who
    bind-mounted a new uuid over ``boot_id`` before each window had every grace aged on the system clock alone, 24
    of 24 an hour moved): a process cannot outlive a reboot, so the stamps it makes are all aged on CLOCK_BOOTTIME,
    whatever procfs says later. A forked child reads them again. ``read_id``/``read_offset``: fakes in tests."""

    def __init__(self, read_id: Callable[[], str] = boot_id, read_offset: Callable[[], int] = boottime_offset_ns):
        self.read_id, self.read_offset = read_id, read_offset
        self._read: tuple[int, str, int] | None = None     # (pid, boot id, offset ns)

    def __call__(self) -> tuple[str, int]:
        read, pid = self._read, os.getpid()
        if read is None or read[0] != pid:
            read = self._read = (pid, self.read_id(), self.read_offset())
        return read[1], (time.clock_gettime_ns(time.CLOCK_BOOTTIME) - read[2]) // 1_000_000


host_elapsed = HostElapsed()                    # the daemon's: one reading of procfs per process


# The state file's stamp and its audit entry's are read a moment apart (the TPM is read again for the entry): within
# this they are one reading; beyond it the log's replaces the state file's (Stamp.corrects). Root gains at most this
# much age per strike by rewriting the file.
STAMP_READ_SLACK_MS = 5_000


def _window_of(w: object) -> float:
    """A state file's failure window: a finite number of seconds >= 0 (not a string, not ``True``; fix33), else
    ``TypeError``/``ValueError`` (-> ``SES_LOCKOUT_STATE``)."""
    if not isinstance(w, (int, float)) or isinstance(w, bool):
        raise TypeError("window")
    window = float(w)                   # OverflowError for an integer past a float's range: caught by _load
    if not (math.isfinite(window) and window >= 0):
        raise ValueError("window")
    return window


@dataclass(frozen=True)
class Stamp:
    """A host-late grace (late31) or a strike short of a lockout (strikes32), stamped on every clock the terminal
    has (sec32): the system clock's ``ts``, the kernel's ``boot`` and ``boot_ms`` (:func:`host_elapsed`), and the
    TPM's clock where one is configured. Its hour (a grace's) or its failure window (a strike's) runs while *any* of
    them says it does, as a lockout does (:meth:`age_s`).

    ``window_s`` (sec33): a strike's failure window when it was struck (0: a grace's, or a strike stamped before
    sec33): it stays that long at least, whatever the config says later (:meth:`lasts`; review32c: the restore aged
    it on today's ``failure_window_s``, so root lowering it and restarting forgot the strikes)."""

    ts: float
    boot: str = ""
    boot_ms: int = 0
    tpm: TpmStamp | None = None
    window_s: float = 0.0

    def lasts(self, today: float) -> float:
        """How long it stays: the longer of today's window and its own, its own at most ``LOGGED_WINDOW_MAX_S`` (a
        window lowered in the config forgets no strike; one raised keeps them longer, as the server's count would;
        the bound is how far back the restore reads the log)."""
        return max(today, min(self.window_s, LOGGED_WINDOW_MAX_S))

    def age_s(self, now: float, elapsed: tuple[str, int], t: TpmStamp | None) -> float:
        """Its age: the least of the system clock's, the TPM's (its own bound by CLOCK_BOOTTIME within one boot,
        ``TpmStamp.age_ms``), and CLOCK_BOOTTIME's within one boot (:func:`same_boot`: another boot id is a reboot only
        when CLOCK_BOOTTIME is below the stamp's, boot32). Root who sets the system clock forward, or
        starts the daemon in a time namespace, makes it no older; across a reboot without a TPM the system
        clock alone is left."""
        age = now - self.ts
        if self.tpm is not None and t is not None:
            age = min(age, self.tpm.age_ms(t) / 1000.0)
        if same_boot(self.boot, self.boot_ms, *elapsed):
            age = min(age, (elapsed[1] - self.boot_ms) / 1000.0)
        return age

    def state(self) -> list[object]:
        t = self.tpm
        return [self.ts, self.boot, self.boot_ms, *([t.epoch, t.time_ms, t.clock_ms] if t is not None else []),
                *([self.window_s] if self.window_s else [])]

    @classmethod
    def of_state(cls, v: object) -> Stamp:
        """A state file's grace or strike: a bare time (late31's graces, the strikes before strikes32) or
        :meth:`state`'s list, a strike's own window last since sec33 (``TypeError``/``ValueError``)."""
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return cls(float(v))
        if not isinstance(v, list) or len(v) not in (3, 4, 6, 7):
            raise TypeError("stamp")
        ts, boot, boot_ms = float(v[0]), str(v[1])[:64], int(v[2])
        tpm = TpmStamp(str(v[3])[:32], int(v[4]), int(v[5]), boot, boot_ms) if len(v) >= 6 else None
        return cls(ts, boot, boot_ms, tpm, _window_of(v[-1]) if len(v) in (4, 7) else 0.0)

    @classmethod
    def of_entry(cls, e: LockoutEntry, length: float) -> Stamp:
        """The stamp of a ``lockout_strike``, ``lockout_charge`` or ``lockout_graced`` entry, whose ``until`` is its
        own window (``window_s``, sec33) after its system clock's time, or ``length`` after it where the entry
        names none (a grace's hour; strikes and charges logged before sec33). Entries written before strikes32
        carry no ``boot``: the system clock and the TPM's, where stamped, then age them."""
        own = e.window_s if e.event != "lockout_graced" else 0.0
        if e.event != "lockout_graced" and not own:     # logged before sec33: its own time (fix33), not until
            return cls(e.ts, e.boot, e.boot_ms, e.tpm, 0.0)  # less today's window, which a raised one moves back
        return cls(e.until - (own or length), e.boot, e.boot_ms, e.tpm, own)

    def corrects(self, other: Stamp) -> bool:
        """Whether this stamp, the audit log's, holds a clock that ``other``, the state file's of the same time,
        lacks or reads otherwise: root stripped it from the state file, or rewrote it (another boot id, a
        ``boot_ms`` far ahead) so that the system clock alone would age it (review32c). The log's stamps are
        the ones its chain (and, with a TPM, its counter) binds; the state file binds nothing."""
        def apart(a: int, b: int) -> bool:
            return abs(a - b) > STAMP_READ_SLACK_MS
        if self.tpm is not None and (other.tpm is None or self.tpm.epoch != other.tpm.epoch
                                     or apart(self.tpm.time_ms, other.tpm.time_ms)
                                     or apart(self.tpm.clock_ms, other.tpm.clock_ms)):
            return True
        if self.window_s and self.window_s != other.window_s:     # sec33: a window rewritten shorter, or dropped
            return True
        return bool(self.boot) and (self.boot != other.boot or apart(self.boot_ms, other.boot_ms))


def merged(held: deque[Stamp], logged: list[Stamp]) -> tuple[deque[Stamp], list[Stamp]]:
    """A key's strikes or graces ``held`` by the state file and those its audit entries hold (a restore, sec28,
    late31, sec32, strikes32): each logged one matches at most one held one of the same time (two strikes of one
    second are two); one matched by none is added (the union, fail closed), and a held one lacking a clock its
    entry carries, or reading it otherwise (:meth:`Stamp.corrects`), gets the entry's stamps. The merged stamps,
    oldest first, and those added or given back."""
    kept, free, added = list(held), list(range(len(held))), []
    for g in logged:
        same = next((i for i in free if abs(g.ts - kept[i].ts) < STRIKE_MATCH_S), None)
        if same is None:
            kept.append(g)
        elif not kept[same].window_s and not replace(g, window_s=0.0).corrects(kept[same]):
            free.remove(same)                   # a strike stamped before sec33, its window taken quietly (the upgrade)
            kept[same] = replace(kept[same], window_s=g.window_s)
            continue
        elif g.corrects(kept[same]):
            free.remove(same)
            kept[same] = g
        else:
            free.remove(same)
            continue
        added.append(g)
    return deque(sorted(kept, key=lambda u: u.ts)), added


class LockoutStateError(SessionError):
    code = "SES_LOCKOUT_STATE"


class Lockout:
    """``audit``: the daemon's audit log (``AuditLog``), which each lockout's start and end are written to
    and, with ``path``, read back from at start (module docstring); None: neither (tests, tools)."""

    def __init__(self, s: SessionSettings, clock: Callable[[], float] = time.time, path: Path | None = None,
                 audit: AuditLog | None = None, *, tpm=None, terminal_key: str = "terminal:unknown",
                 elapsed: Callable[[], tuple[str, int]] = host_elapsed):
        """``tpm``: the TPM's clock (``agent.security.tpm.TpmMonotonic``; sec29): each lockout's end is judged on it
        as well as on ``clock``, and the lockout entries carry its reading; None: the system clock alone.
        ``terminal_key``: the key a log found cut locks out (``SES_AUDIT_CUT``). ``elapsed``: the boot's id and
        the host's CLOCK_BOOTTIME in ms (:func:`host_elapsed`; a fake in tests), which bounds the TPM's clock and,
        with or without a TPM, the grace's hour (sec32)."""
        self.s, self.clock, self.audit, self.tpm, self.terminal_key = s, clock, audit, tpm, terminal_key
        self.elapsed = elapsed
        self.path = Path(path) if path is not None else None
        self._fails: dict[str, deque[Stamp]] = defaultdict(deque)   # key -> its strikes' stamps (strikes32)
        self._until: dict[str, float] = {}
        self._stamps: dict[str, tuple[TpmStamp, float]] = {}   # key -> the TPM's clock at its start, its length
        self._pending: dict[str, list[str]] = {}   # session id -> the keys its open window is charged to
        self._charged: dict[str, float] = {}       # session id -> its charge's failure window (fix33)
        self._orphans: list[tuple[str, list[str], float]] = []   # the state file's open charges, not counted yet
        self._graced: dict[str, deque[Stamp]] = defaultdict(deque)   # key -> its host-late graces (late31, sec32)
        self._lock = threading.Lock()
        had_state = self.path is not None and self.path.exists()
        if had_state:
            self._load()
        if self.path is not None and self.audit is not None:
            self._restore(had_state)
        self._count_orphans({})                 # (with no audit log: counted under the state file's windows)

    def _tpm_now(self) -> TpmStamp | None:
        if self.tpm is None:
            return None
        t = self.tpm.now()
        boot, boot_ms = self.elapsed()
        return TpmStamp(t.epoch, t.time_ms, t.clock_ms, boot, boot_ms)

    def _record(self, event: str, **data: object) -> None:
        if self.audit is not None:
            t = self._tpm_now()
            self.audit.record(event, **data, **(t.fields() if t is not None else {}))

    def _remaining(self, k: str, now: float, t: TpmStamp | None) -> float:
        """Seconds left of ``k``'s lockout: by the system clock, and where the TPM stamped its start, by the
        TPM's clock too, whichever is longer (sec29: a system clock set forward does not end it)."""
        if k not in self._until:
            return 0.0
        left = self._until[k] - now
        if t is not None and k in self._stamps:
            stamp, length = self._stamps[k]
            left = max(left, length - stamp.age_ms(t) / 1000.0)
        return left

    def _expire(self, now: float) -> bool:
        """Forget the lockouts that have ended, each one's end written to the audit log; True if any."""
        t = self._tpm_now() if self._stamps else None
        ended = [k for k in self._until if self._remaining(k, now, t) <= 0]
        for k in ended:
            self._stamps.pop(k, None)
            self._record("lockout_end", key=k, until=self._until.pop(k), why=EXPIRED)
        return bool(ended)

    def check(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            if self._expire(now):
                self._save(now)
            t = self._tpm_now() if self._stamps else None
            for k in keys:
                left = self._remaining(k, now, t)
                if left > 0:
                    raise LockedOut(f"too many failed attempts ({k.split(':')[0]}); try again in {int(left)} s")

    def _in_window(self, q: deque[Stamp], now: float, elapsed: tuple[str, int], t: TpmStamp | None) -> deque[Stamp]:
        """The strikes of ``q`` still in their failure window by any clock (strikes32: a system clock set forward
        ages none of them; :meth:`Stamp.age_s`)."""
        return deque(g for g in q if g.age_s(now, elapsed, t) < g.lasts(self.s.failure_window_s))

    def fail(self, *keys: str, window: float = 0.0) -> None:
        """One failed presentation for each of ``keys``, stamped on every clock (:class:`Stamp`, strikes32).
        ``window``: the failure window it was charged under (a charge counted at start, fix33), honoured up to
        ``LOGGED_WINDOW_MAX_S`` where longer than today's; 0: today's."""
        now = self.clock()
        started: list[tuple[str, int]] = []
        own = max(self.s.failure_window_s, min(window, LOGGED_WINDOW_MAX_S))
        with self._lock:
            t, elapsed = self._tpm_now(), self.elapsed()
            for k in keys:
                q = self._in_window(self._fails[k], now, elapsed, t)
                q.append(Stamp(now, elapsed[0], elapsed[1], t, own))
                self._fails[k] = q
                if len(q) >= self.s.max_failures:
                    self._until[k] = now + self.s.lockout_s
                    if t is not None:
                        self._stamps[k] = (t, self.s.lockout_s)
                    started.append((k, len(q)))
                    q.clear()
            self._save(now)
            for k in keys:                          # the state file first, then the log: either one keeps it
                self._record("lockout_strike", key=k, until=now + own,
                             window_s=own, boot=elapsed[0], boot_ms=elapsed[1])
            for k, n in started:
                self._record("lockout_start", key=k, until=self._until[k], failures=n,
                             window_s=self.s.failure_window_s)

    def begin(self, session_id: str, *keys: str) -> None:
        """Charge ``session_id``'s challenge window to ``keys`` until :meth:`settle` or
        :meth:`forfeit` (kept on disk, and in the audit log since sec28: a daemon killed in the window counts
        it at its next start, its state file deleted or not)."""
        now = self.clock()
        with self._lock:
            self._pending[session_id] = list(keys)
            self._charged[session_id] = self.s.failure_window_s
            self._save(now)
            boot, boot_ms = self.elapsed()
            for k in keys:
                self._record("lockout_charge", key=k, until=now + self.s.failure_window_s, session_id=session_id,
                             window_s=self.s.failure_window_s, boot=boot, boot_ms=boot_ms)

    def _settled(self, session_id: str, keys: list[str]) -> None:
        """The charge of ``session_id`` settled (a verdict, the terminal's fault, or counted as a strike): so
        written, that a restore does not count it again (sec28)."""
        now = self.clock()
        for k in keys:
            self._record("lockout_settled", key=k, until=now, session_id=session_id)

    def settle(self, session_id: str) -> bool:
        """The window reached a verdict, or failed for a reason that is not the person's: no strike
        from the charge. False if ``session_id`` had none open."""
        with self._lock:
            keys = self._pending.pop(session_id, None)
            self._charged.pop(session_id, None)
            if keys is None:
                return False
            self._save(self.clock())
            self._settled(session_id, keys)
            return True

    def grace(self, session_id: str, why: str) -> bool:
        """The window ended unjudged, late or with frames lost while the terminal itself was busy
        (``FramesLost.host_late``, ``why`` its code): its charge settled without a strike, if every key it is
        charged to was graced fewer than ``host_late_grace_per_hour`` times in the last hour (late31; the hour by
        the system clock, CLOCK_BOOTTIME and the TPM's clock, whichever says least time has passed: sec32). Written
        to the state file and then the audit log (``lockout_graced``, its ``until`` when it leaves the hour, and
        ``lockout_settled``); restored from the log at start like the strikes, so deleting the state file does
        not renew the allowance. False (the charge still open, for :meth:`forfeit`) when the allowance is spent,
        is 0, or ``session_id`` had no charge open."""
        budget = self.s.host_late_grace_per_hour
        now = self.clock()
        with self._lock:
            keys = self._pending.get(session_id)
            if keys is None or budget <= 0:
                return False
            t, elapsed = self._tpm_now(), self.elapsed()
            self._prune_graces(now, elapsed, t)
            if any(len(self._graced.get(k, ())) >= budget for k in keys):
                return False
            del self._pending[session_id]
            self._charged.pop(session_id, None)
            for k in keys:
                self._graced[k].append(Stamp(now, elapsed[0], elapsed[1], t))
            self._save(now)
            for k in keys:
                self._record("lockout_graced", key=k, until=now + GRACE_S, session_id=session_id, why=why,
                             boot=elapsed[0], boot_ms=elapsed[1])
            self._settled(session_id, keys)
        return True

    def forfeit(self, session_id: str) -> bool:
        """The window ended without a verdict: the charge becomes one failed presentation. False if
        ``session_id`` had none open."""
        with self._lock:
            keys = self._pending.pop(session_id, None)
            window = self._charged.pop(session_id, 0.0)
        if keys is None:
            return False
        self.fail(*keys, window=window)
        with self._lock:
            self._settled(session_id, keys)
        return True

    def succeed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            cleared = [k for k in keys if self._fails.pop(k, None)]
            if cleared:
                self._save(now)
                for k in cleared:                   # (sec28: so that a restore does not bring them back)
                    self._record("lockout_cleared", key=k, until=now)

    # --- persistence ---------------------------------------------------------------------------------
    def _load(self) -> None:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text())
            if data.get("version") != 1:
                raise ValueError("unknown version")
            for k, ts in data["fails"].items():            # bare times before strikes32: read as before
                self._fails[str(k)] = deque(Stamp.of_state(t) for t in ts)
            self._until = {str(k): float(t) for k, t in data["until"].items()}
            self._stamps = {str(k): (TpmStamp(str(e), int(ms), int(c), str(b), int(bm)), float(n))
                            for k, (e, ms, c, b, bm, n) in data.get("tpm", {}).items() if str(k) in self._until}
            charged = {str(sid): _window_of(w) for sid, w in data.get("charged", {}).items()}
            orphans = [(str(sid), [str(k) for k in keys], charged.get(str(sid), 0.0))
                       for sid, keys in data.get("pending", {}).items()]
            for k, gs in data.get("graced", {}).items():
                self._graced[str(k)] = deque(Stamp.of_state(g) for g in gs)
            if not all(isinstance(keys, list) for keys in data.get("pending", {}).values()):
                raise TypeError("pending")
        except (OSError, ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
            raise LockoutStateError(f"lockout state {self.path} cannot be read ({type(exc).__name__}); "
                                    "move it aside to start with no failures counted") from None
        # Windows open when the daemon last stopped ended without a verdict: each counts now (_count_orphans).
        self._orphans = orphans

    def _count_orphans(self, logged: dict[str, float]) -> set[str]:
        """The state file's charges open when the daemon last stopped, each counted now as a strike under its own
        window (fix33, review33b: not today's): the longer of the state file's (``charged``) and, from ``logged``,
        its ``lockout_charge`` entries' (the log's, which root cannot rewrite as he can the state file). Their
        session ids."""
        counted, self._orphans = self._orphans, []
        for sid, keys, window in counted:
            self.fail(*keys, window=max(window, logged.get(sid, 0.0)))
            with self._lock:
                self._settled(sid, keys)
        return {sid for sid, _, _ in counted}

    def _restore(self, had_state: bool) -> None:
        """Lockouts still running by the audit log that the state file is missing, or holds ending earlier
        (deleted, or put back from before them): restored, and each restore logged (fail closed). Then the
        strikes short of a lockout the same way (sec28, :meth:`_restore_strikes`)."""
        assert self.audit is not None
        now = self.clock()
        t = self._tpm_now()
        # As far back as any strike's own window is honoured (sec33: not today's config alone, which root lowers
        # to hide the strikes and lockouts written under longer windows; review32c); a grace's hour is within it.
        window = max(self.s.lockout_s, self.s.failure_window_s, LOGGED_WINDOW_MAX_S)
        try:
            entries = lockout_entries(self.audit.path, now - window, t, int(window * 1000), self.elapsed())
        except OSError as exc:
            raise LockoutStateError(f"the audit log {self.audit.path} cannot be read for its lockouts "
                                    f"({type(exc).__name__}): the lockout state cannot be checked") from None
        logged: dict[str, float] = {}
        for e in entries:
            if e.event == "lockout_charge" and e.session:
                logged[e.session] = max(logged.get(e.session, 0.0), e.window_s)
        counted = self._count_orphans(logged)
        self._fail_closed_on_cut(now, t)        # first: its entry follows the gap in the counts it reports
        self._restore_lockouts(entries, now, t, had_state)
        self._restore_strikes(entries, now, t, had_state)
        self._restore_charges(entries, now, t, had_state, counted)
        self._restore_graces(entries, now, t)

    def _restore_lockouts(self, entries: list[LockoutEntry], now: float, t: TpmStamp | None,
                          had_state: bool) -> None:
        logged: dict[str, float] = {}
        for e in entries:
            if e.event in LOCKOUT_RUNS:
                left = e.until - now
                if t is not None and e.tpm is not None:     # its length, on the TPM's clock (sec29)
                    left = max(left, e.until - e.ts - e.tpm.age_ms(t) / 1000.0)
                if left > 0:
                    logged[e.key] = max(logged.get(e.key, 0.0), left)
        with self._lock:
            # A running lockout whose TPM stamp the state file lacks (root deleted the "tpm" entries: the
            # system clock alone would then end it) is restored with a stamp too, whatever its time left.
            unstamped = {k for k in logged if t is not None and k not in self._stamps}
            lost = {k: left for k, left in logged.items()
                    if self._remaining(k, now, t) < left - RESTORE_SLACK_S or k in unstamped}
            if not lost:
                return
            for k, left in lost.items():
                self._start(k, now, t, left)
            self._save(now)
        why = "the state file is missing" if not had_state else "the state file holds them ending earlier or unstamped"
        log.error("lockout: error[%s]: %d lockout(s) running by the audit log restored: %s (deleted or put back "
                  "from before them?)", RESTORED, len(lost), why)
        for k, left in lost.items():
            state = "MISSING" if not had_state else "UNSTAMPED" if k in unstamped else "BEHIND"
            self._record("lockout_restored", key=k, until=now + left, why=RESTORED, state=state)

    def _start(self, k: str, now: float, t: TpmStamp | None, length: float) -> None:
        """``k`` locked out for ``length`` s from now (a restore: by the system clock and the TPM's)."""
        self._until[k] = max(self._until.get(k, 0.0), now + length)
        if t is not None:
            self._stamps[k] = (t, max(length, self._remaining(k, now, t)))

    def _fail_closed_on_cut(self, now: float, t: TpmStamp | None) -> None:
        """The audit log's counted entries end below the TPM's counter, or skip counts (sec29,
        ``AuditLog.counter_check``), or do not hash to the TPM's chain (``FORGED``, sec30: rewritten, or replaced by
        entries of the same counts): entries that may have held strikes or lockouts were cut, and which keys
        they held cannot be known. The terminal's key is locked out for as long as any of them could still
        matter (the longer of a lockout and the failure window: fail closed), logged as ``lockout_restored``
        (``why`` ``SES_AUDIT_CUT``, the state the check's problem), an entry that also marks the gap in the
        counts as reported (``tpm_resync``: the log's last count before it, -1 none)."""
        assert self.audit is not None
        check = self.audit.counter_check
        if check is None or check.problem is None:
            return
        length = max(self.s.lockout_s, self.s.failure_window_s)
        with self._lock:
            self._start(self.terminal_key, now, t, length)
            self._save(now)
        log.error("lockout: error[%s]: the audit log's counted entries do not match the TPM's counter or chain (%s): "
                  "entries were cut or rewritten; the terminal is locked out for %d s", AUDIT_CUT, check.problem,
                  int(length))
        self._record("lockout_restored", key=self.terminal_key, until=now + length, why=AUDIT_CUT,
                     state=check.problem, tpm_resync=check.logged if check.logged is not None else -1)

    def _restore_strikes(self, entries: list[LockoutEntry], now: float, t: TpmStamp | None, had_state: bool) -> None:
        """Strikes short of a lockout that the audit log holds and the state file does not (sec28): each
        ``lockout_strike`` still in its window and after the key's last lockout start or success
        (``lockout_cleared``), which each end a key's strikes, is added to the key's count (the state's own strikes
        are kept too: the union, fail closed), and each key so restored is logged (``strikes_restored``, ``why``
        ``SES_STRIKES_RESTORED``, the state ``MISSING`` or ``BEHIND``). The window is the strike's own since
        strikes32 (:meth:`Stamp.age_s`: it runs while any clock says so), and a strike the state file holds without
        the stamps its entry carries gets the entry's (:func:`merged`)."""
        window, elapsed = self.s.failure_window_s, self.elapsed()
        logged: dict[str, list[Stamp]] = {}
        for e in entries:
            if e.event in ("lockout_start", "lockout_cleared"):
                logged.pop(e.key, None)
            elif e.event == "lockout_strike":
                g = Stamp.of_entry(e, window)
                if g.age_s(now, elapsed, t) < g.lasts(window):
                    logged.setdefault(e.key, []).append(g)
        found: dict[str, list[Stamp]] = {}
        with self._lock:
            changed = False
            for k, stamps in logged.items():
                held = self._fails.get(k, deque())
                q, lost = merged(held, stamps)
                if list(q) != list(held):               # (also a window taken quietly: sec33's upgrade)
                    self._fails[k], changed = q, True
                if lost:
                    found[k] = lost
            if changed:
                self._save(now)
            if not found:
                return
        why = "the state file is missing" if not had_state else "the state file holds fewer of them"
        log.error("lockout: error[%s]: %d key(s)' strikes short of a lockout restored from the audit log: %s "
                  "(deleted or put back from before them?)", STRIKES_RESTORED, len(found), why)
        for k, lost in found.items():
            self._record("strikes_restored", key=k, until=max(g.ts + g.lasts(window) for g in lost),
                         why=STRIKES_RESTORED, strikes=len(lost), state="MISSING" if not had_state else "BEHIND")

    def _restore_charges(self, entries: list[LockoutEntry], now: float, t: TpmStamp | None, had_state: bool,
                         counted: set[str]) -> None:
        """Challenge windows charged in the audit log (``lockout_charge``) and never settled there
        (``lockout_settled``), still in their failure window: the daemon died in the window and the state file
        that held the charge is gone or put back from before it (sec28; a state file that holds it counted it in
        ``_load``, settled in the log then). Each counts now as a strike, as ``_load`` counts its own, and is
        logged as ``strikes_restored`` (``SES_STRIKES_RESTORED``, ``charged``). Its window is aged on every clock
        its entry carries, as a strike's (strikes32)."""
        window, elapsed = self.s.failure_window_s, self.elapsed()
        open_: dict[str, list[str]] = {}
        own: dict[str, float] = {}                  # each charge's own window (fix33: not today's)
        for e in entries:
            g = Stamp.of_entry(e, window)
            if e.event == "lockout_charge" and e.session and g.age_s(now, elapsed, t) < g.lasts(window):
                open_.setdefault(e.session, []).append(e.key)
                own[e.session] = max(own.get(e.session, 0.0), e.window_s)
            elif e.event == "lockout_settled":
                open_.pop(e.session, None)
        for sid, keys in open_.items():
            if sid in self._pending or sid in counted:      # the state file's own, counted (_count_orphans)
                continue
            self.fail(*keys, window=own.get(sid, 0.0))
            with self._lock:
                self._settled(sid, keys)
            log.error("lockout: error[%s]: a challenge window charged in the audit log and never settled counted "
                      "as a strike (the daemon died in it, and %s)", STRIKES_RESTORED,
                      "the state file is missing" if not had_state else "the state file did not hold it")
            for k in keys:
                self._record("strikes_restored", key=k, until=now + max(window, min(own.get(sid, 0.0),
                                                                                   LOGGED_WINDOW_MAX_S)),
                             why=STRIKES_RESTORED,
                             strikes=1, state="MISSING" if not had_state else "BEHIND", charged=True)

    def _restore_graces(self, entries: list[LockoutEntry], now: float, t: TpmStamp | None) -> None:
        """Host-late graces of the last hour the audit log holds and the state file does not (late31): added
        back (the union), so that a state file deleted or put back does not renew ``grace``'s allowance. The
        hour is the grace's own (:meth:`Stamp.age_s`, sec32), and a grace the state file holds without the
        stamps its entry carries (root stripped them, so that the system clock alone would age it) gets the
        entry's (:func:`merged`, shared with the strikes' restore)."""
        found = 0
        elapsed = self.elapsed()
        logged: dict[str, list[Stamp]] = {}
        for e in entries:
            g = Stamp.of_entry(e, GRACE_S)
            if e.event == "lockout_graced" and g.age_s(now, elapsed, t) < GRACE_S:
                logged.setdefault(e.key, []).append(g)
        with self._lock:
            for k, stamps in logged.items():
                q, lost = merged(self._graced.get(k, deque()), stamps)
                if lost:
                    self._graced[k] = q
                    found += len(lost)
            if found:
                self._save(now)
        if found:
            log.error("lockout: error[%s]: %d host-late grace(s) of the last hour restored from the audit log (the "
                      "state file did not hold them)", GRACES_RESTORED, found)

    def _prune_graces(self, now: float, elapsed: tuple[str, int], t: TpmStamp | None) -> None:
        """The graces an hour old by every clock (:meth:`Stamp.age_s`) forgotten, and a key with none left."""
        for k in list(self._graced):
            kept = deque(g for g in self._graced[k] if g.age_s(now, elapsed, t) < GRACE_S)
            if kept:
                self._graced[k] = kept
            else:
                del self._graced[k]

    def _save(self, now: float) -> None:
        if self.path is None:
            return
        # Forget what no longer matters, and bound what is kept.
        self._expire(now)
        elapsed, t = self.elapsed(), (self._tpm_now() if self._fails or self._graced else None)
        for k in list(self._fails):                     # each strike's window on every clock (strikes32)
            q = self._in_window(self._fails[k], now, elapsed, t)
            if q:
                self._fails[k] = q
            else:
                del self._fails[k]
        if len(self._fails) > MAX_KEYS:
            for k in sorted(self._fails, key=lambda k: self._fails[k][-1].ts)[:len(self._fails) - MAX_KEYS]:
                del self._fails[k]
        if self._graced:
            self._prune_graces(now, elapsed, t)
        data: dict[str, object] = {"version": 1, "fails": {k: [g.state() for g in q] for k, q in self._fails.items()},
                                   "until": self._until, "pending": self._pending}
        if self._charged:                               # fix33: each open charge's failure window
            data["charged"] = self._charged
        if self._graced:                                # late31
            data["graced"] = {k: [g.state() for g in q] for k, q in self._graced.items()}
        if self._stamps:                                # sec29: where a TPM is configured
            data["tpm"] = {k: [st.epoch, st.time_ms, st.clock_ms, st.boot, st.boot_ms, n]
                           for k, (st, n) in self._stamps.items()}
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, separators=(",", ":"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)                               # the rename itself survives a power cut
        finally:
            os.close(dfd)



"""The ingest server's store in Redis, so several server processes share nonces, receipts, counters
and failure counts (the interface and the bounds: ``hil/ingest/store.py``).

Every operation is one Lua script, which Redis runs atomically: two processes handed the same nonce
at the same moment cannot both use it. Expiry is Redis's own (``PEXPIREAT``/``PEXPIRE``), so
pruning costs the server nothing; each terminal's nonces are also listed in a sorted set in the order
Redis added them (Redis's clock in microseconds, sec20; before, the issuing server's issue time), which
enforces the per-terminal cap. What counts against the cap is what MemoryStore counts: the add script
first drops from the set the terminal's records Redis has expired (an unused one its lifetime after
its charge, a used one the retention it was used under after its use, ``PEXPIRE`` by the using
server's retention: servers sharing the store may for a while be configured apart, and one with a
shorter retention must not drop another's used nonces early; review 11). Only Redis's clock deletes
(sec20): the script dropped records by the adding server's clock, so a server whose clock ran ahead
deleted nonces other servers had just issued to the same terminal (before sec15, expired unused ones
counted until the set's horizon, lifetime + retention, ~11 min, so a terminal's used nonces were
evicted early; ``tests/hil/test_ingest_store.py`` runs both stores on one simulated clock, Redis's
set to it, and compares them). The scripts name keys they derive from their arguments,
which a single Redis (or a primary with replicas) allows and Redis Cluster does not.

Keys (``prefix`` first, ``ca:`` by default): ``n:<nonce hex>`` a hash (the nonce record),
``t:<terminal>`` a sorted set (the terminal's nonces), ``sess:<terminal>:<SHA-256 of the session id>``
a hash (the session's latest request digest and unused nonce, expiring with it; the nonce's record
names it as ``sk``, so its use and its eviction delete it; the probe ids claimed on an unused nonce are
fields of its hash, ``c:<id>`` the holder's digest, ``l:<id>`` its holds (``<token> <ms>`` each, timed by
Redis's ``TIME``: leases), ``h:<id>`` the count of every hold (sec24: a server from before the leases keeps
only that count, so both kinds of server read one cap and drop the claim only with its last hold), ``nc``
the ids, deleted by the use and going with the hash),
``p:<terminal>:<probe id>`` (a used probe
id), ``c:<terminal>`` (the last counter), ``w:<terminal>`` (its TPM witness: ``swap_witness``, witness31, no
expiry; its history in the same record since hist31: one compare-and-set writes both), ``wf:<terminal>`` (the count
the bank fetched that history up to, ``note_witness_fetched``, sec32), ``wu:<terminal>`` (the counts dropped from
that history before the bank fetched them, ``witness_unfetched``, sec33: no expiry), ``a:<terminal>`` (its held audit
anchor, ``swap_anchor``, sec34: compare-and-set, no expiry), ``af:<terminal>`` (a hash, its anchor flags per reason:
count, first and last time, and the first and last probe's detail, ``note_anchor_flag``, sec34), ``ah:<terminal>`` (a
list: the anchors the held one replaced, oldest first, at most 256, pushed by ``swap_anchor``'s compare-and-set,
anchor34), ``ahf:<terminal>`` (the entry the bank fetched them up to, ``note_anchors_fetched``), ``f:<key>`` a sorted
set of charges and failures, scored by time (Redis's ``TIME`` read in the script, as the server charges and counts:
``Charge.store_clock``): a challenge's charge has its nonce's hex as the member, so the use script's refund removes
exactly that one (``ZREM``), and a failure that settles it replaces it with the probe's failure
(``store.failure_member``: one, not two; only where the set holds the charge, so a settlement
never charges). ``subject-key-check`` (the subject key's check value) and, during a rotation,
``subject-key-previous`` ("<previous check> <since ms>", the start by Redis's ``TIME``) pin the
subject keys (``pin_subject_keys``; ``subject-key-retired``, a set, the check values pinned as a
previous key);
the nonce's script reads the first to refuse a charge under another key (and
the second, to refuse in a rotation's overlap a charge that does not read the previous key), and
counts the previous names' sets beside the charged ones. The limit check (every key against its
own limit, before any is charged) and the charge run in the nonce's own script (``BeginCapture``: one round trip),
the settlement in the use script (``SubmitProbe``: two, the read and the use), so several server
processes sharing one Redis can neither issue past the limit together nor lose a settlement.

Every script opens with a shebang (``#!lua``, Redis 7's script flags): a script that declares no
``allow-oom`` is refused whole, before it runs, while Redis is over its ``maxmemory`` (``OOM command
not allowed``: ``StoreUnavailable``, the server's ``STORE_UNAVAILABLE``). Without one (before sec17)
Redis checked only a script's first write against the limit, and ``ZREMRANGEBYSCORE``, ``DEL`` or
``HDEL`` (writes that never grow memory) pass that check: a script that opened with one wrote on
past ``maxmemory`` under ``noeviction`` (the charge, the failure, the used nonce's record). What
starts something is refused: the nonce's script (a new challenge and its charge). What finishes a
challenge already charged declares ``allow-oom`` and runs over the limit (sec18): the claim, the use
with its settlement, a judged failure, and the release (it only removes). Refused, they left a
challenge issued before Redis filled up charged and unfinishable: a live person's probe judged and
then refused at its use kept its charge as a failure once the nonce expired (a lost attempt), and a
failure judged while another probe took its nonce went uncounted (no verdict reached the terminal,
but the count the limits rely on missed a judged attack). What they write past the limit is
bounded by the challenges issued under it: per unused nonce at most ``MAX_PROBES_PER_NONCE`` claims,
one use (its record, receipt, probe id key and counter) and a failure per claimed probe, and no new
nonce while full (``nonces_per_terminal`` per terminal at most; ``python -m bench store_full``
measures it). A script that starts under the limit runs whole (one call's writes: a nonce record, a
receipt). Redis before 7.0 does not know the shebang (every script is a compile error): the server
refuses one at start (``config.check_store_version``), reading the version before any script is
loaded (``survey``, sec20), and a charge never loads a script into a Redis the server checks (``_added``).

The nonce's script charges only on the Redis the server checked (sec18): ``checked_run`` is that
Redis's ``run_id`` (``config.StoreWatch`` sets it when the version, eviction and persistence checks
pass), and the script compares it with ``INFO server``'s before anything else. A restart or a failover
(another ``run_id``), or a store never checked (unreachable at start), refuses the charge whole
(``StoreUnchecked``) until the server has checked the Redis it now talks to. So does a missing
``store-epoch`` (``_EPOCH``: "<epoch> <lost> <written ms>", no expiry, gone with the data) or one
marked lost whose written time plus this server's own failure window (``quarantine_ms``, sec19) has
not passed by Redis's clock: a store that lost its data is quarantined, for each server, for its
failure window (``config.StoreWatch._check_epoch``). The checks themselves read one Redis, in one
round trip (``survey``, sec19). A nonce's record and session entry expire its lifetime after the charge
by Redis's clock (sec19: no later than that; sec20: at that, not at an earlier deadline of a server
whose clock ran behind), so it is never usable after its charge has left the window, whatever the
issuing server's clock says. Nor, since back21, after its deadline on the clock it was charged by when
Redis's clock has stepped back since: ``store-clock-back`` ("<total ms> <before> <after>", no expiry)
is the steps back the servers measured (``config.StoreWatch``, ``mark_clock_back``) or a script saw
(``store-clock-high``: the latest Redis time the nonce's and the claim's scripts read), each record
keeps the total at its charge (``cb``), and an unused record whose expiry less the steps since has
passed is gone (``_PAST``, in the nonce's, the claim's and the use's scripts). Since sec24 each check also
keeps its host's reading of Redis's clock (``store-clock-host:<host>``, ``note_host_reading``), so a server
started on that host measures a step made while no server ran; since sec27 a server on a host with no reading
from its boot retires every unused nonce charged before it when ``store-clock-high`` is recent
(``config.StoreWatch._retire_unmeasured``); since sec28 it defers its host first (``store-clock-gen``,
``store-clock-defer``, ``_DEFER``/``_VOUCH``) and retires only when no host with a live reading vouches.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from hil.ingest.store import (
    CLAIM_LEASE_MS,
    MAX_COPIES_PER_CLAIM,
    MAX_PROBES_PER_NONCE,
    Charge,
    Claim,
    Issued,
    KeyPin,
    NonceRecord,
    Outcome,
    PinResult,
    Settle,
    StoreClockDeferred,
    StoreLimits,
    StoreUnavailable,
    StoreUnchecked,
    Use,
    decide_pin,
    failure_member,
)

F = TypeVar("F", bound=Callable[..., Any])


# A step back of Redis's clock (back21): Redis expires every key by its own clock, so a step of it back by
# J let every unused nonce live J longer than its charge's lifetime on the clock it was charged by (a
# rooted terminal captures more windows under one charge), and nothing detected it. A server that
# measures such a step adds it to the store's total of steps back (``store-clock-back``: "<total ms>
# <before> <after>", no expiry); every record carries the total at its charge (``cb``), and an unused
# one whose expiry (``PEXPIRETIME``) less the steps marked since its charge has passed by Redis's clock
# is gone: it expires when it would have on the old clock. Deleted where a script finds it so, with
# the session entry that names it (the claim, the use, a repeat, the add's prune of its terminal).
# Redis's clock is also held to itself: the nonce's and the claim's scripts keep the latest Redis time
# they read (``store-clock-high``), and one that reads more than ``BACK_SLACK_MS`` behind it marks the
# step at once, by what it shows (the latest time less now: at most the step, which a server running
# across it measures whole and completes), whatever server runs it: one started after the step too.
BACK_SLACK_MS = 2_000
_PAST = """
local function back_total(prefix)
  local v = redis.call('GET', prefix .. 'store-clock-back')
  return v and tonumber(string.match(v, '^(%d+)')) or 0
end
-- Redis's time now against the latest a script read: behind it by more than the slack, the step is
-- marked (added to the total) and the latest is now; returns the store's total of steps back. The
-- latest is written at most once a second of Redis's time (it lags by up to that: within the slack).
local function seen(prefix, now)
  local hk = prefix .. 'store-clock-high'
  local high = tonumber(redis.call('GET', hk) or '0') or 0
  local total = back_total(prefix)
  if high - now > """ + str(BACK_SLACK_MS) + """ then
    total = total + high - now
    redis.call('SET', prefix .. 'store-clock-back', total .. ' ' .. high .. ' ' .. now)
    redis.call('SET', hk, now)
  elseif now - high >= 1000 then
    redis.call('SET', hk, now)
  end
  return total
end
local function past(nk, hex, total, now)
  if total <= 0 then return false end              -- (no step back ever marked: nothing read)
  local f = redis.call('HMGET', nk, 'pid', 'cb', 'sk')
  if f[1] or not f[2] then return false end
  local shift = total - tonumber(f[2])
  if shift <= 0 then return false end
  local at = redis.call('PEXPIRETIME', nk)
  if at < 0 or at - shift > now then return false end
  if f[3] and redis.call('HGET', f[3], 'n') == hex then redis.call('DEL', f[3]) end
  redis.call('DEL', nk)
  return true
end
"""

_ADD = """#!lua
-- KEYS: nonce hash, terminal set, the session's entry, then the m failure sets to charge (none to
--       three), then the sets whose counts add to theirs (a subject key rotation's previous names)
-- ARGV: now (this server's clock: only untimed failure sets read it; sec21: no longer the repeat), cap,
--       unused (sec20; was a horizon by this server's clock), member, expires, t, s, pu, k, i, prefix,
--       the terminal set's lifetime (ms), sub, ch, fr (each left out of the record when empty), window_ms,
--       max kept, the request's digest ('' : no session entry), unused (sec20; was keep_used_ms), m,
--       the subject key's check value
--       ('' : not checked), skid (left out when empty), then each failure set's limit in KEYS' order,
--       then for each the KEYS index of the set whose count adds to its own (0 : none), then the previous
--       subject key's check value ('' : none) and the rotation's overlap (ms), then '1' when the failure
--       sets are timed by Redis's TIME (the charge's time, its window) rather than by now ('' : by now),
--       then the run_id the server checked ('*' : a store nobody checks, '' : not checked yet), then
--       this server's own quarantine after a data loss (ms: its failure window, StoreWatch), then the
--       latest Redis TIME (ms) this server's elapsed time allows ('0' : no bound) and the Redis TIME
--       (ms) before which this server charges nothing ('0' : none) (StoreWatch: a jump of Redis's clock),
--       then the Redis TIME (ms) of this server's first reading of the store ('0' : none; sec21: a jump
--       another server marked after it, store-clock-jump, holds this server from the next charge), then
--       the earliest Redis TIME (ms) this server's elapsed time allows ('0' : no bound; back21: a step
--       back of Redis's clock)
-- Returns {-3} (Redis is not the one the server checked: nothing read, nothing changed), {0, clock}
-- (stored and charged), {j, clock} (KEYS[3 + j] is at the limit: nothing changed), {-2, clock} (the
-- check value is not the store's pinned subject key, or in a rotation's overlap the previous one is not
-- the store's pinned previous key: nothing changed) or {-1, clock, nonce hex, the
-- record's fields and values}: the session's unused, unexpired nonce for the same request, returned
-- as stored (nothing charged, nothing re-timed). clock: Redis's TIME (ms) the script compared with the
-- server's bound (0 : a store nobody checks), which the server compares again after the reply (sec20).
local now = tonumber(ARGV[1])
local m = tonumber(ARGV[20])
-- The store's checks (sec18): unless ARGV[26 + 2m] is '*' (a store no server checks: tests, tools),
-- Redis's run_id must be the one the server checked (persistence, eviction, version). A restart or a
-- failover gives Redis another run_id, so the first charge after it is refused until the server has
-- checked the Redis it now talks to ('' : never checked: refused). INFO refused (an ACL): refused.
local run = ARGV[26 + 2 * m]
local clock = 0                  -- Redis's TIME (ms) as the checks compared it, returned to the server (sec20)
if run ~= '*' then
  local info = redis.pcall('INFO', 'server')
  if type(info) ~= 'string' or string.match(info, 'run_id:(%x+)') ~= run then return {-3} end
  -- and the store's epoch (_EPOCH) must be there and out of its quarantine: a store that lost its data
  -- (the key went with it) or lost it less than this server's own failure window ago (sec19: each
  -- server its own, from the new epoch's written time; before, the longest window any server that saw
  -- the loss had) charges nothing
  local ep = redis.call('GET', ARGV[11] .. 'store-epoch')
  local lost, wrote
  if ep then lost, wrote = string.match(ep, '^%x+ (%d+) (%d+)$') end
  if not lost then return {-3} end
  local t = redis.call('TIME')
  local rnow = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  clock = rnow
  if tonumber(lost) > 0 and rnow < tonumber(wrote) + tonumber(ARGV[27 + 2 * m]) then return {-3} end
  -- Redis's clock against this server's elapsed time since its check (sec19): ahead of what that allows,
  -- Redis's clock jumped (every window there shortened by the jump): refused, and the server's check
  -- measures the jump and holds its charges that long
  local bound = tonumber(ARGV[28 + 2 * m])
  if (bound > 0 and rnow > bound) or rnow < tonumber(ARGV[29 + 2 * m]) then return {-3} end
  -- and behind what it allows (back21): Redis's clock stepped back, and every unused nonce charged before
  -- lives that much longer in Redis: refused, and the server's check measures the step and marks it
  -- (store-clock-back), after which those nonces expire when they would have on the old clock
  if rnow < (tonumber(ARGV[31 + 2 * m]) or 0) then return {-3} end
  -- A jump another server measured and marked ("<before> <after>", Redis's times of the readings it fell
  -- between), when this server's first reading came after its start: this server has no reading from
  -- before it to measure it by, so it charges nothing for its own failure window from the later reading
  -- (sec21: read here at every charge; before, only by the server's next check, up to STORE_RECHECK_MS
  -- of charges after the mark). A server whose readings began before the jump judges by its own.
  local first = tonumber(ARGV[30 + 2 * m]) or 0
  if first > 0 then
    local mk = redis.call('GET', ARGV[11] .. 'store-clock-jump')
    local jb, ja
    if mk then jb, ja = string.match(mk, '^(%d+) (%d+)$') end
    if jb and first > tonumber(jb) and rnow < tonumber(ja) + tonumber(ARGV[27 + 2 * m]) then return {-3} end
  end
end
-- The session's repeat: its nonce unused and unexpired by Redis's clock, which expires the record its
-- lifetime after the charge (sec21: the record there is unexpired; before, its issuing server's deadline
-- against this server's clock, so a server ahead charged an honest repeat as a new challenge).
-- (back21: and not past its expiry on the clock it was charged by, before a step back of Redis's clock;
-- a step this script's reading shows against the latest a script read is marked here, _PAST's seen)
local pt = redis.call('TIME')
local pnow = tonumber(pt[1]) * 1000 + math.floor(tonumber(pt[2]) / 1000)
local total = seen(ARGV[11], pnow)
if ARGV[18] ~= '' then
  local e = redis.call('HMGET', KEYS[3], 'q', 'n')
  if e[1] == ARGV[18] and e[2] then
    local nk = ARGV[11] .. 'n:' .. e[2]
    local h = redis.call('HMGET', nk, 't', 'pid')
    if h[1] == ARGV[6] and not h[2] and not past(nk, e[2], total, pnow) then
      local out = redis.call('HGETALL', nk)
      table.insert(out, 1, e[2])
      table.insert(out, 1, clock)
      table.insert(out, 1, -1)
      return out
    end
  end
end
-- Every key is checked before the first at its limit is named: the same work whichever key it is
-- (an early return made a refusal's time say which key, for free: refusals charge nothing).
-- The subject key named in the charge must be the one the store pins (a store that pins none, because
-- it was unreachable when this server started or has lost its data, is pinned to it now).
if ARGV[21] ~= '' then
  local pin = redis.call('GET', ARGV[11] .. 'subject-key-check')
  if not pin then redis.call('SET', ARGV[11] .. 'subject-key-check', ARGV[21])
  elseif pin ~= ARGV[21] then return {-2, clock}
  else
    -- in a rotation's overlap the charge must read the pinned previous key's names too (review 13),
    -- the overlap timed by Redis's clock, as its start was (never a server's: their skew shortened it)
    local pv = redis.call('GET', ARGV[11] .. 'subject-key-previous')
    local sp = pv and string.find(pv, ' ', 1, true)
    if sp and string.sub(pv, 1, sp - 1) ~= ARGV[23 + 2 * m] then   -- "<previous check> <since ms>"
      local since = tonumber(string.sub(pv, sp + 1)) or 0
      local t = redis.call('TIME')
      if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) < since + tonumber(ARGV[24 + 2 * m]) then
        return {-2, clock}
      end
    end
  end
end
-- The failure sets' time: Redis's clock, one for every server sharing the store (sec17: each server's
-- own clock timed them, and one whose clock ran ahead pruned the others' charges out of the window).
local fnow = now
if ARGV[25 + 2 * m] == '1' then
  local t = redis.call('TIME')
  fnow = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local locked = 0
for j = 4, 3 + m do
  redis.call('ZREMRANGEBYSCORE', KEYS[j], '-inf', fnow - tonumber(ARGV[16]))
  local count = redis.call('ZCARD', KEYS[j])
  local also = tonumber(ARGV[19 + m + j])
  if also > 0 then count = count + redis.call('ZCOUNT', KEYS[also], '(' .. (fnow - tonumber(ARGV[16])), '+inf') end
  if count >= tonumber(ARGV[19 + j]) and locked == 0 then locked = j - 3 end
end
if locked > 0 then return {locked, clock} end
for j = 4, 3 + m do
  redis.call('ZADD', KEYS[j], fnow, ARGV[4])
  local m = redis.call('ZCARD', KEYS[j])
  if m > tonumber(ARGV[17]) then redis.call('ZREMRANGEBYRANK', KEYS[j], 0, m - tonumber(ARGV[17]) - 1) end
  redis.call('PEXPIRE', KEYS[j], ARGV[16])
end
-- The terminal's records that are gone (Redis expired its hash: an unused one at its lifetime after
-- its charge, a used one at the retention it was used under, each by Redis's clock) leave its set now,
-- as MemoryStore prunes them, so they do not count against its cap. Gone by Redis's clock and nothing
-- else (sec20): this pruned by the adding server's clock (an unused record past its deadline, a used
-- one past its use plus retention, and the set's members before a horizon), so a server whose clock
-- ran ahead deleted the terminal's unused nonces that other servers had just issued: an honest
-- terminal's challenge vanished before it answered. At most the cap's worth of members.
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local nk = ARGV[11] .. 'n:' .. m
  if redis.call('EXISTS', nk) == 0 or past(nk, m, total, pnow) then
    redis.call('ZREM', KEYS[2], m)
  end
end
-- The record (and the session's entry) leave Redis its lifetime after now by Redis's clock (sec19,
-- sec20): the issuing server's clock set the deadline, and one running ahead gave its nonces that much
-- longer in the store than their charges, which Redis's clock times, stay in the window (a nonce used
-- after its charge left it settled nothing: its failure went uncounted); one running behind gave them
-- less, down to nothing. The deadline the terminal is told (e) is still the issuing server's, but no
-- server refuses by it (sec21: each did, by its own clock): the record is unexpired while Redis holds it.
local rt = redis.call('TIME')
local rnow = tonumber(rt[1]) * 1000 + math.floor(tonumber(rt[2]) / 1000)
local gone = rnow + tonumber(ARGV[5]) - tonumber(ARGV[10])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 't', ARGV[6], 's', ARGV[7], 'pu', ARGV[8], 'k', ARGV[9], 'i', ARGV[10], 'e', ARGV[5])
for j, name in ipairs({'sub', 'ch', 'fr'}) do
  if ARGV[12 + j] ~= '' then redis.call('HSET', KEYS[1], name, ARGV[12 + j]) end
end
if ARGV[22] ~= '' then redis.call('HSET', KEYS[1], 'skid', ARGV[22]) end
redis.call('HSET', KEYS[1], 'cb', total)      -- the steps back marked before its charge (back21)
-- the store's clock generation at its charge (sec28: a server whose host had no reading defers the nonces
-- charged before it took one, store-clock-gen; none: 0)
local gen = redis.call('GET', ARGV[11] .. 'store-clock-gen')
if gen then redis.call('HSET', KEYS[1], 'g', gen) end
redis.call('PEXPIREAT', KEYS[1], gone)
if ARGV[18] ~= '' then
  redis.call('DEL', KEYS[3])
  redis.call('HSET', KEYS[3], 'q', ARGV[18], 'n', ARGV[4])
  redis.call('PEXPIREAT', KEYS[3], gone)
  redis.call('HSET', KEYS[1], 'sk', KEYS[3])
end
-- Scored in the order Redis adds them (sec20; was the issuing server's issue time, so a server whose
-- clock ran behind had its newest nonces evicted first): Redis's clock in microseconds, never at or
-- below the set's last score (the same microsecond, or Redis's clock stepped back), so the cap evicts
-- the first added, as MemoryStore does.
local score = tonumber(rt[1]) * 1000000 + tonumber(rt[2])
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')[2]
if top and tonumber(top) >= score then score = tonumber(top) + 1 end
redis.call('ZADD', KEYS[2], score, ARGV[4])
local n = redis.call('ZCARD', KEYS[2])
while n > tonumber(ARGV[2]) do
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  redis.call('ZREM', KEYS[2], oldest)
  local nk = ARGV[11] .. 'n:' .. oldest
  local rec = redis.call('HMGET', nk, 'pid', 'sk')
  if rec[1] then redis.call('DEL', ARGV[11] .. 'p:' .. ARGV[6] .. ':' .. rec[1]) end
  if rec[2] and redis.call('HGET', rec[2], 'n') == oldest then redis.call('DEL', rec[2]) end
  redis.call('DEL', nk)
  n = n - 1
end
redis.call('PEXPIRE', KEYS[2], ARGV[12])
return {0, clock}
"""

_USE = """#!lua flags=allow-oom
-- allow-oom (sec18): it finishes a challenge charged under the limit (the module's docstring).
-- KEYS: nonce hash, probe id key, counter key, terminal set, then the failure sets to settle.
-- ARGV: terminal, probe id, digest, counter, receipt, now, keep_used_ms, member (the nonce's hex),
--       settle ('refund', 'fail' or ''), window_ms, the failure's member (store.failure_member), the
--       judged copy's hold token ('' : not checked), '1' when the failure is timed by Redis's TIME ('' : now),
--       the store's prefix (back21: an unused record past its expiry on the clock it was charged by is gone)
-- Returns {outcome, Redis's TIME (ms), the record's fields and values as HGETALL lists them} (one round
-- trip; {'unknown'} alone when the record is not this terminal's or gone); 'lapsed'
-- (nothing changed) when the hold is no longer among the probe id's holds: another copy took it over.
-- An unused record is unexpired while Redis holds it (its lifetime after the charge, by Redis's clock;
-- sec21: no longer its issuing server's deadline against this server's clock, ARGV[6]), unless a step
-- back of Redis's clock marked since its charge puts its expiry on the old clock in the past (back21).
local pt = redis.call('TIME')
past(KEYS[1], ARGV[8], back_total(ARGV[14]), tonumber(pt[1]) * 1000 + math.floor(tonumber(pt[2]) / 1000))
local h = redis.call('HMGET', KEYS[1], 't', 'pid', 'd')
if not h[1] or h[1] ~= ARGV[1] then return {'unknown'} end
local outcome = 'used'
if h[2] then
  outcome = (h[2] == ARGV[2] and h[3] == ARGV[3]) and 'same_probe' or 'replayed'
elseif redis.call('EXISTS', KEYS[2]) == 1 then outcome = 'replayed'
else
  if ARGV[12] ~= '' then
    local found = false
    for tok in string.gmatch(redis.call('HGET', KEYS[1], 'l:' .. ARGV[2]) or '', '(%S+) %S+') do
      if tok == ARGV[12] then found = true end
    end
    if not found then return {'lapsed'} end
  end
  local last = redis.call('GET', KEYS[3])
  if last and tonumber(ARGV[4]) <= tonumber(last) then outcome = 'stale_counter' end
end
if outcome == 'used' then
  local sk = redis.call('HGET', KEYS[1], 'sk')
  if sk and redis.call('HGET', sk, 'n') == ARGV[8] then redis.call('DEL', sk) end
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do         -- the claims go with the use
    local p = string.sub(f, 1, 2)
    if p == 'c:' or p == 'l:' or p == 'h:' or f == 'nc' then redis.call('HDEL', KEYS[1], f) end
  end
  -- 'u' the using server's clock (what it says); 'ru' Redis's, which times the retry window (sec21)
  local ut = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'pid', ARGV[2], 'd', ARGV[3], 'r', ARGV[5], 'u', ARGV[6], 'ku', ARGV[7],
             'ru', tonumber(ut[1]) * 1000 + math.floor(tonumber(ut[2]) / 1000))
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  redis.call('SET', KEYS[2], ARGV[8], 'PX', ARGV[7])
  redis.call('SET', KEYS[3], ARGV[4])
  local fnow = ARGV[6]
  if ARGV[13] == '1' then
    local t = redis.call('TIME')
    fnow = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  for j = 5, #KEYS do
    if ARGV[9] == 'refund' then
      redis.call('ZREM', KEYS[j], ARGV[8])
    elseif ARGV[9] == 'fail' and redis.call('ZSCORE', KEYS[j], ARGV[8]) then   -- the charge becomes the failure
      redis.call('ZREM', KEYS[j], ARGV[8])
      redis.call('ZADD', KEYS[j], fnow, ARGV[11])
      redis.call('PEXPIRE', KEYS[j], ARGV[10])
    end
  end
end
local out = redis.call('HGETALL', KEYS[1])
local t = redis.call('TIME')
table.insert(out, 1, tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
table.insert(out, 1, outcome)
return out
"""

_CLAIM = """#!lua flags=allow-oom
-- allow-oom (sec18): a challenge charged under the limit can be finished (the module's docstring).
-- KEYS: nonce hash, counter key, probe id key. ARGV: terminal, now, probe id, digest, max claims,
--       max holds of one claim (identical copies), the hold's token, the lease (ms); now is unused since sec21
--       (the record is unexpired while Redis holds it: its lifetime after the charge, by Redis's clock,
--       and, back21, not past it on the clock it was charged by before a marked step back), then the
--       store's prefix, the nonce's hex and the earliest Redis TIME (ms) this server's elapsed time allows
--       ('0' : no bound), then this server's host ('' : none; sec28)
-- The read before judging (the record, the counter) and, when the nonce is this terminal's, unused and
-- unexpired and the probe id unused, the probe id's claim on it: fields c:<id> (the holder's digest),
-- l:<id> (its holds: "<token> <ms> ..." by Redis's clock, one per identical copy) and nc (ids holding
-- claims), in the nonce's hash, so they go with it. A hold older than the lease does not count against
-- the copies' cap: the oldest such is replaced by this copy's (its judge's use then finds its token gone).
-- Returns {claim, counter or '', Redis's TIME (ms), the record's fields and values as HGETALL lists them},
-- or {'behind'} (nothing read or changed) when Redis's clock is behind what the server's elapsed time
-- allows (back21): a step back, which the server's check measures and marks before it reads again.
-- {'deferred'} (nothing changed): the nonce is unused and was charged (its generation 'g', 0 when none)
-- before the generation this server's host is vouched from (sec28, store-clock-defer: its first reading
-- of Redis's clock came after it, and no host with a live reading has vouched for it since).
local pt = redis.call('TIME')
local pnow = tonumber(pt[1]) * 1000 + math.floor(tonumber(pt[2]) / 1000)
if pnow < (tonumber(ARGV[11]) or 0) then return {'behind'} end
past(KEYS[1], ARGV[10], seen(ARGV[9], pnow), pnow)
if (ARGV[12] or '') ~= '' then
  local d = redis.call('HGET', ARGV[9] .. 'store-clock-defer', ARGV[12])
  local gv = d and tonumber(string.match(d, '^%d+ (%d+)'))
  if gv then
    local r = redis.call('HMGET', KEYS[1], 'g', 'pid', 't')
    if r[3] == ARGV[1] and not r[2] and (tonumber(r[1] or '0') or 0) < gv then return {'deferred'} end
  end
end
local h = redis.call('HGETALL', KEYS[1])
local counter = redis.call('GET', KEYS[2]) or ''
local claim = 'none'
local r = redis.call('HMGET', KEYS[1], 't', 'pid')
if r[1] == ARGV[1] and not r[2] then       -- unexpired: Redis holds it (by its clock; sec21, not ARGV[2])
  if redis.call('EXISTS', KEYS[3]) == 1 then claim = 'used'
  else
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local held = redis.call('HGET', KEYS[1], 'c:' .. ARGV[3])
    if held then
      if held ~= ARGV[4] then claim = 'taken'
      else
        local holds, oldest = {}, nil
        for tok, ms in string.gmatch(redis.call('HGET', KEYS[1], 'l:' .. ARGV[3]) or '', '(%S+) (%S+)') do
          table.insert(holds, {tok, tonumber(ms)})
          if not oldest or tonumber(ms) < holds[oldest][2] then oldest = #holds end
        end
        -- h:<id> counts every hold, a pre-lease server's (a count, no token, no time: it never lapses) and
        -- these, so the pre-lease servers' holds are what it counts beyond l:<id> (sec24: _HOLDS)
        local old = math.max((tonumber(redis.call('HGET', KEYS[1], 'h:' .. ARGV[3]) or '0') or 0) - #holds, 0)
        if old + #holds >= tonumber(ARGV[6]) then
          if not oldest or now - holds[oldest][2] < tonumber(ARGV[8]) then claim = 'busy'
          else table.remove(holds, oldest) end
        end
        if claim ~= 'busy' then
          table.insert(holds, {ARGV[7], now})
          local out = {}
          for _, x in ipairs(holds) do table.insert(out, x[1] .. ' ' .. x[2]) end
          redis.call('HSET', KEYS[1], 'l:' .. ARGV[3], table.concat(out, ' '), 'h:' .. ARGV[3], old + #holds)
          claim = 'held'
        end
      end
    elseif tonumber(redis.call('HGET', KEYS[1], 'nc') or '0') >= tonumber(ARGV[5]) then claim = 'full'
    else
      redis.call('HSET', KEYS[1], 'c:' .. ARGV[3], ARGV[4], 'l:' .. ARGV[3], ARGV[7] .. ' ' .. now, 'h:' .. ARGV[3], 1)
      redis.call('HINCRBY', KEYS[1], 'nc', 1)
      claim = 'held'
    end
  end
end
local rt = redis.call('TIME')
table.insert(h, 1, tonumber(rt[1]) * 1000 + math.floor(tonumber(rt[2]) / 1000))
table.insert(h, 1, counter)
table.insert(h, 1, claim)
return h
"""

_RELEASE = """#!lua flags=allow-oom
-- KEYS: nonce hash. ARGV: terminal, probe id, digest, the hold's token. That hold of the probe id's
-- claim given back (a probe refused before it was judged); the claim goes when no identical copy holds it.
-- allow-oom: it only removes (or shortens a hold list), so it runs when Redis is over its maxmemory.
-- h:<id> counts every hold, a pre-lease server's too (sec24: _HOLDS): the claim stays while any is left.
local r = redis.call('HMGET', KEYS[1], 't', 'pid', 'c:' .. ARGV[2], 'l:' .. ARGV[2], 'h:' .. ARGV[2])
if r[1] ~= ARGV[1] or r[2] or r[3] ~= ARGV[3] then return 0 end
local out, found = {}, false
for tok, ms in string.gmatch(r[4] or '', '(%S+) (%S+)') do
  if tok == ARGV[4] then found = true else table.insert(out, tok .. ' ' .. ms) end
end
if not found then return 0 end
local old = math.max((tonumber(r[5] or '0') or 0) - #out - 1, 0)
if #out > 0 then
  redis.call('HSET', KEYS[1], 'l:' .. ARGV[2], table.concat(out, ' '), 'h:' .. ARGV[2], old + #out)
elseif old > 0 then
  redis.call('HDEL', KEYS[1], 'l:' .. ARGV[2])
  redis.call('HSET', KEYS[1], 'h:' .. ARGV[2], old)
else
  redis.call('HDEL', KEYS[1], 'c:' .. ARGV[2], 'l:' .. ARGV[2], 'h:' .. ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'nc', -1)
end
return 1
"""

_FAIL = """#!lua flags=allow-oom
-- allow-oom (sec18): a judged probe's failure counts whatever Redis's memory (the module's docstring).
-- KEYS: failure set. ARGV: now ('' : Redis's TIME), window_ms, member, max kept, the member it replaces ('' : none)
local now = tonumber(ARGV[1])
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
if ARGV[5] ~= '' then redis.call('ZREM', KEYS[1], ARGV[5]) end
redis.call('ZADD', KEYS[1], now, ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
if n > tonumber(ARGV[4]) then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - tonumber(ARGV[4]) - 1)
  n = tonumber(ARGV[4])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return n
"""

_COUNT = """#!lua flags=no-writes
-- KEYS: failure set. ARGV: window_ms. Its members within the window by Redis's TIME (a read).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. (now - tonumber(ARGV[1])), '+inf')
"""

_RUN = """#!lua flags=no-writes
-- Redis's run_id, as the nonce's script reads it (sec18: the store's checks are bound to it), its
-- role: a replica (a primary demoted by a failover keeps its run_id) takes none of the store's writes,
-- and its version (RedisStore.survey).
local server = redis.call('INFO', 'server')
return {string.match(server, 'run_id:(%x+)') or '',
        string.match(redis.call('INFO', 'replication'), 'role:(%a+)') or '',
        string.match(server, 'redis_version:([%d%.]+)') or ''}
"""


_EPOCH = """#!lua flags=allow-oom
-- allow-oom: one small key, written once per store (or per loss); a full Redis is not an unchecked one.
-- KEYS: the store's epoch key, its total of steps back of its clock (back21). ARGV: a new epoch (hex),
-- the epoch the caller knew ('' : none), the caller's failure window (ms). The value: "<epoch> <lost>
-- <written ms>" (Redis's TIME), no expiry: it goes with the data. lost: 0, or the written time plus
-- the failure window of the server that first saw the loss (what a sec18 server reads as the
-- quarantine's end). None: written (lost if the caller knew an epoch; else 0, a store first seen).
-- Another than the caller knew: the data was lost before it was written: marked lost if it is not.
-- Returns {the value, Redis's TIME in ms, the store's total of marked steps back of its clock in ms
-- (back21: store-clock-back, read with the time)}. Each server's nonce's script then refuses to charge
-- while the key is missing or, marked lost, until the written time plus its own failure window (sec19;
-- before, until the longest any server that saw it had).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('GET', KEYS[1])
if not v then
  local lost = 0
  if ARGV[2] ~= '' then lost = now + tonumber(ARGV[3]) end
  v = ARGV[1] .. ' ' .. lost .. ' ' .. now
  redis.call('SET', KEYS[1], v)
elseif ARGV[2] ~= '' then
  local e, u, w = string.match(v, '^(%x+) (%d+) (%d+)$')
  if e and e ~= ARGV[2] and tonumber(u) == 0 then
    v = e .. ' ' .. (tonumber(w) + tonumber(ARGV[3])) .. ' ' .. w
    redis.call('SET', KEYS[1], v)
  end
end
local back = redis.call('GET', KEYS[2])
return {v, now, back and tonumber(string.match(back, '^(%d+)')) or 0}
"""


_MARK = """#!lua flags=allow-oom
-- KEYS: the store's clock-jump mark. ARGV: the readings of Redis's TIME (ms) a server measured a jump
-- between. Kept unless a mark of a later jump is there (sec20: StoreWatch, for servers started after it).
local v = redis.call('GET', KEYS[1])
local after = v and tonumber(string.match(v, ' (%d+)$'))
if not after or after < tonumber(ARGV[2]) then redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2]) end
return 0
"""

_BACK = """#!lua flags=allow-oom
-- KEYS: the store's total of steps back of its clock, the latest Redis time the scripts read (set to
-- now: the step measured here is marked, so the scripts do not mark it again by what they see).
-- ARGV: the total the measuring server read with
-- its last reading before the step (ms), the step it measured (ms), the least step that counts (ms),
-- and the Redis times (ms) of the two readings it fell between. What the servers marked since that
-- reading is taken off (several servers measure one step), and what is left, above the least step, is
-- added: "<total> <before> <after>", no expiry (back21). A total below the one the server read went
-- with the store's data (and every record marked under it): nothing is taken off then. Returns {ms
-- added, the total now}.
local v = redis.call('GET', KEYS[1])
local total = v and tonumber(string.match(v, '^(%d+)')) or 0
local t = redis.call('TIME')
redis.call('SET', KEYS[2], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local add = tonumber(ARGV[2]) - math.max(total - tonumber(ARGV[1]), 0)
if add <= tonumber(ARGV[3]) then return {0, total} end
total = total + add
redis.call('SET', KEYS[1], total .. ' ' .. ARGV[4] .. ' ' .. ARGV[5])
return {add, total}
"""

# A host's last reading of Redis's clock (sec24): ``<prefix>store-clock-host:<host>`` "<Redis ms> <elapsed ms
# before> <elapsed ms after> <steps back total ms>", the host's elapsed clock (CLOCK_BOOTTIME, one per boot,
# shared by every server process on it) around a reading of Redis's TIME. A server that starts on that host
# measures Redis's clock against it (config.StoreWatch), so a step while no server ran is seen.
HOST_READING_KEEP_MS = 86_400_000       # a day (by Redis's clock): the slack then is 2 s + 1 %, 866 s
_HOST = """#!lua flags=allow-oom
-- allow-oom: one small key per host and boot, written at each check; a full Redis is not an unchecked one.
-- KEYS: the host's reading. ARGV: the reading, its lifetime (ms).
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 0
"""


# A host's trust deferred (sec28): a server whose host has no reading of Redis's clock from its boot cannot
# tell a step back of that clock while no server ran from time passing; sec27 retired every unused nonce
# then (a rolling reboot of N hosts cost the sessions in flight N times). Now it takes the store's next
# clock generation (``store-clock-gen``, which every charge writes into its record as ``g``) and defers
# its host: ``store-clock-defer`` field <host> "<generation> <vouched from> <elapsed ms then>"; its claims
# on unused nonces charged before the generation its host is vouched from are ``deferred`` (not judged, not
# retired) until a server on a host with a live reading, which measured Redis's clock across the time in
# question, vouches for them (``_VOUCH``) or the deferral's bound passes (config.StoreWatch: retired then).
_DEFER = """#!lua flags=allow-oom
-- KEYS: the store's clock generation, the deferrals. ARGV: the host, its elapsed ms. Returns the generation.
local g = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], ARGV[1], g .. ' ' .. g .. ' ' .. ARGV[2])
return g
"""
_VOUCH = """#!lua flags=allow-oom
-- KEYS: the deferrals. ARGV: the generation the vouching host is vouched from, the earliest Redis TIME (ms)
-- its elapsed time allows (its floor, back21), its host. Read with Redis's TIME in one script: behind the
-- floor (a step back since its check) nothing is vouched (-1); otherwise every other host deferred from a
-- later generation is vouched from this host's (from 0: its deferral is gone). Returns how many.
local t = redis.call('TIME')
if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) < tonumber(ARGV[2]) then return -1 end
local mine, n = tonumber(ARGV[1]), 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local g, gv, rest = string.match(all[i + 1], '^(%d+) (%d+) (%d+)$')
  if all[i] ~= ARGV[3] and g and tonumber(g) > mine and tonumber(gv) > mine then
    if mine == 0 then redis.call('HDEL', KEYS[1], all[i])
    else redis.call('HSET', KEYS[1], all[i], g .. ' ' .. mine .. ' ' .. rest) end
    n = n + 1
  end
end
return n
"""


def _deferral(raw) -> tuple[int, int, int] | None:
    """``store-clock-defer``'s field as (generation, vouched from, elapsed ms then), or None."""
    if not isinstance(raw, bytes) or len(raw) > 80:
        return None
    parts = raw.split()
    if len(parts) != 3 or not all(p.isdigit() and len(p) <= 18 for p in parts):
        return None
    g, gv, since = (int(p) for p in parts)
    return g, gv, since


def _host_reading(raw) -> tuple[int, float, float, int] | None:
    """``store-clock-host``'s value as (Redis ms, elapsed s before, elapsed s after, steps back ms), or None
    when there is none or it is not four integers in order (a value not this code's: ignored, as no reading)."""
    if not isinstance(raw, bytes) or len(raw) > 100:
        return None
    parts = raw.split()
    if len(parts) != 4 or not all(p.isdigit() and len(p) <= 18 for p in parts):
        return None
    redis_ms, before, after, back = (int(p) for p in parts)
    if before > after:
        return None
    return redis_ms, before / 1000, after / 1000, back


def _with_past(script: str) -> str:
    """The script with ``_PAST``'s functions after its shebang line (which must stay the first)."""
    head, _, body = script.partition("\n")
    return head + "\n" + _PAST.lstrip("\n") + body


_ADD, _USE, _CLAIM = _with_past(_ADD), _with_past(_USE), _with_past(_CLAIM)
_WITNESS = """#!lua flags=allow-oom
-- KEYS: the terminal's witness record, the count the bank fetched its history up to (sec32), its unfetched record
-- (sec33). ARGV: the record read ('' : none), the new one, the highest and the lowest count of the history the new
-- one drops ('' : none). Compare-and-set (witness31): written only if the record is still the one the server
-- checked against; no expiry. 2: written, and the dropped count is above the one fetched (decimal strings, no
-- leading zeros: compared by length first); the dropped counts then widen the unfetched record ("LO HI N FIRST_MS
-- LAST_MS", Redis's TIME) in the same step, so that every server sees the flag (sec33: one server's memory before).
-- allow-oom: it finishes a probe already charged, one key per registered terminal.
local function lt(a, b) return #a < #b or (#a == #b and a < b) end
local function bad(v) return type(v) == 'table' and v.err ~= nil end
-- Every read and check before the witness moves (fix33, review33b): a record not this server's (another type, or
-- not "LO HI N FIRST_MS LAST_MS" in order) is WITNESS_UNREADABLE, the witness left as it was (before: raised after
-- it moved, or replaced silently).
local held = redis.pcall('GET', KEYS[1])
if bad(held) then return redis.error_reply('WITNESS_UNREADABLE') end
if (held or '') ~= ARGV[1] then return 0 end
local f, u = nil, nil
if ARGV[3] ~= '' then
  f = redis.pcall('GET', KEYS[2])
  u = redis.pcall('GET', KEYS[3])
  if bad(f) or bad(u) or (f and not string.match(f, '^%d+$')) then return redis.error_reply('WITNESS_UNREADABLE') end
end
local ulo, uhi, un, ufirst, ulast
if u and not (f and not lt(f, ARGV[3])) then
  ulo, uhi, un, ufirst, ulast = string.match(u, '^(%d+) (%d+) (%d+) (%d+) (%d+)$')
  if not ulo or lt(uhi, ulo) or lt(ulast, ufirst) then return redis.error_reply('WITNESS_UNREADABLE') end
end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[3] == '' then return 1 end
if f and not lt(f, ARGV[3]) then return 1 end
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
if ulast and lt(now, ulast) then now = ulast end   -- Redis's clock stepped back: the record stays in order (fix33)
local lo, hi, n, first = ARGV[4], ARGV[3], 1, now
if ulo then
  if lt(ulo, lo) then lo = ulo end
  if lt(hi, uhi) then hi = uhi end
  n, first = tonumber(un) + 1, ufirst
end
redis.call('SET', KEYS[3], lo .. ' ' .. hi .. ' ' .. string.format('%d', n) .. ' ' .. first .. ' ' .. now)
return 2
"""

_FETCHED = """#!lua flags=allow-oom
-- KEYS: the count the bank fetched a terminal's witness history up to (sec32). ARGV: a count fetched now. Raised
-- to it, never lowered (decimal strings, no leading zeros).
local f = redis.call('GET', KEYS[1])
if not f or #f < #ARGV[1] or (#f == #ARGV[1] and f < ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""

_ANCHOR = """#!lua flags=allow-oom
-- KEYS: the terminal's held audit anchor (sec34), its anchor history (anchor34: a list, oldest first), the entry the
-- bank fetched its anchors up to. ARGV: the record read ('' : none), the new one, the read record's entry ('' :
-- none), the history's cap. Compare-and-set, as the witness's: written only if the record is still the one the server
-- checked the probe's anchor against, so a second server (or one restarted) checks against what the first held, and
-- two racing never move it back. The record replaced joins the history in the same step (review34a: only the latest
-- was kept, so a cut log grown past it again replaced the evidence of the cut); when the history is full, the oldest
-- records the bank fetched make room; none fetched: the replaced record is not kept (the oldest unfetched stay, so a
-- flood of probes pushes no earlier evidence out) and 2 is returned, which the server flags ANCHOR_UNFETCHED.
-- Every read and check before any write: a key of another type, a fetched entry not a decimal, a history record
-- without its entry is ANCHOR_UNREADABLE, nothing written (a string not this server's is refused by the reader).
local function bad(v) return type(v) == 'table' and v.err ~= nil end
local function lt(a, b) return #a < #b or (#a == #b and a < b) end
local function unreadable() return redis.error_reply('ANCHOR_UNREADABLE') end
local held = redis.pcall('GET', KEYS[1])
if bad(held) then return unreadable() end
if (held or '') ~= ARGV[1] then return 0 end
if ARGV[1] == '' then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
local n = redis.pcall('LLEN', KEYS[2])
local f = redis.pcall('GET', KEYS[3])
if bad(n) or bad(f) or (f and not (f == '0' or string.match(f, '^[1-9]%d*$'))) then return unreadable() end
local cap, drop = tonumber(ARGV[4]), 0
while n - drop >= cap do
  local oldest = redis.call('LINDEX', KEYS[2], drop)
  local s = oldest and string.match(oldest, '"seq":(%d+)[,}]')
  if not s then return unreadable() end
  if not f or lt(f, s) then break end
  drop = drop + 1
end
redis.call('SET', KEYS[1], ARGV[2])
if drop > 0 then redis.call('LTRIM', KEYS[2], drop, -1) end
if n - drop >= cap then return 2 end
redis.call('RPUSH', KEYS[2], ARGV[1])
return 1
"""

_ANCHOR_HISTORY_MAX = 4096        # the most records a history is read back (its cap is AnchorStore's, 256 by default)

_ANCHOR_FLAG = """#!lua flags=allow-oom
-- KEYS: the terminal's anchor flags, a hash (sec34). ARGV: the reason, the probe's JSON ([probe id, detail]). The
-- reason's field "N FIRST_MS LAST_MS" counts one more, at Redis's TIME, never below the last one held (a step back of
-- Redis's clock keeps the record in order: fix33's rule for wu:); REASON:first keeps the first probe, REASON:last
-- the latest. Every check before any write, of the whole record (review34a: only the flagged reason's count was, so a
-- record the reader refuses was written to): a key of another type, a field not one of ARGV[3..] (the reasons) ×
-- {"", ":first", ":last"}, a reason without its three, a count not "N FIRST LAST" (decimals without leading zeros,
-- N >= 1, FIRST <= LAST), a probe not a JSON pair of strings of at most 1024 bytes is ANCHOR_UNREADABLE, nothing
-- written.
local function lt(a, b) return #a < #b or (#a == #b and a < b) end
local function unreadable() return redis.error_reply('ANCHOR_UNREADABLE') end
local function count(v)
  local n, a, b = string.match(v, '^([1-9]%d*) (%d+) (%d+)$')
  if not n or #n > 15 or #a > 18 or #b > 18 or (#a > 1 and a:sub(1, 1) == '0') or (#b > 1 and b:sub(1, 1) == '0')
     or lt(b, a) then return nil end
  return n, a, b
end
local function probe(v)
  if #v > 1024 then return false end
  local ok, t = pcall(cjson.decode, v)
  if not ok or type(t) ~= 'table' or type(t[1]) ~= 'string' or type(t[2]) ~= 'string' then return false end
  local k = 0
  for _ in pairs(t) do k = k + 1 end
  return k == 2
end
local all = redis.pcall('HGETALL', KEYS[1])
if type(all) == 'table' and all.err ~= nil then return unreadable() end
local reasons, fields = {}, {}
for i = 3, #ARGV do reasons[ARGV[i]] = true end
for i = 1, #all, 2 do fields[all[i]] = all[i + 1] end
for k, v in pairs(fields) do
  local r, part = string.match(k, '^([^:]*)(.*)$')
  if not reasons[r] or not (part == '' or part == ':first' or part == ':last') then return unreadable() end
  if not (fields[r] and fields[r .. ':first'] and fields[r .. ':last']) then return unreadable() end
  if part == '' then
    if not count(v) then return unreadable() end
  elseif not probe(v) then return unreadable() end
end
local held = fields[ARGV[1]]
local n, first, last = '0', nil, nil
if held then n, first, last = count(held) end
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
if last and lt(now, last) then now = last end
if not first then
  first = now
  redis.call('HSET', KEYS[1], ARGV[1] .. ':first', ARGV[2])
end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d', tonumber(n) + 1) .. ' ' .. first .. ' ' .. now,
           ARGV[1] .. ':last', ARGV[2])
return 1
"""

_SCRIPTS = (_WITNESS, _FETCHED, _ANCHOR, _ANCHOR_FLAG,
            _ADD, _USE, _CLAIM, _RELEASE, _FAIL, _COUNT, _RUN, _EPOCH, _MARK, _BACK, _HOST, _DEFER,
            _VOUCH)


class PolicyUnreadable(Exception):
    """Redis refused ``CONFIG GET maxmemory-policy`` (ACL, renamed command): the reason, never a secret."""


@dataclass(frozen=True)
class Survey:
    """What ``config.StoreWatch`` checks, as one Redis said it (``RedisStore.survey``); a setting Redis
    would not say (``CONFIG`` refused) is its :class:`PolicyUnreadable`."""

    run: str                                            # run_id (a primary's)
    version: tuple[int, ...]
    policy: str | PolicyUnreadable                      # maxmemory-policy
    persistence: tuple[bool, str] | PolicyUnreadable    # appendonly, save points ("" : none)
    epoch: tuple[str, int, int]                         # as RedisStore.epoch
    old: bool = False           # a Redis before 7.0: only its version was read (its scripts never loaded)
    clock_mark: tuple[int, int] | None = None           # a jump of its clock a server measured (sec20)
    clock_back: int = 0         # the steps back of its clock servers marked (ms, back21), read with epoch[2]
    host_reading: tuple[int, float, float, int] | None = None   # this host's last reading (sec24, note_host_reading)
    clock_high: int = 0         # the latest Redis time the scripts read (ms, store-clock-high; 0 : none; sec27)
    deferral: tuple[int, int, int] | None = None   # this host's deferral (sec28: generation, vouched from, elapsed)


def _primary_run(got) -> str:
    """The ``_RUN`` script's reply: the run_id, refused unless Redis says one and is a primary."""
    run, role = (g.decode() if isinstance(g, bytes) else str(g) for g in got[:2])
    if not run:
        raise PolicyUnreadable("INFO server says no run_id")
    if role != "master":
        raise StoreUnavailable(f"redis: a replica (role {role[:16]!r}), which takes no writes")
    return run


def _past(h: dict[bytes, bytes], at: int, back: bytes | None, store_ms: int) -> bool:
    """``_PAST``'s rule for a record read outside a script (``get_nonce``): unused, charged before steps back
    of Redis's clock marked since (``cb`` under the store's total), and its expiry (``at``, ``PEXPIRETIME``)
    less those steps at or before ``store_ms``: gone (back21; the scripts delete it where they find it)."""
    if not h or b"pid" in h or b"cb" not in h or int(at) < 0:
        return False
    shift = (int(back.split()[0]) if back else 0) - int(h[b"cb"])
    return shift > 0 and int(at) - shift <= store_ms


def _check_hold(hold: str) -> None:
    """A hold token is what the server draws (hex): never a space, which separates the holds' list."""
    if not hold or len(hold) > 64 or not hold.isalnum():
        raise ValueError("a claim's hold is 1-64 letters or digits")


def connect_url(url: str):
    """A Redis client for ``redis://HOST:PORT/DB`` or ``unix:///path/redis.sock``."""
    import redis
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("store must be \"memory\", redis://HOST:PORT[/DB] or unix:///PATH")
    return redis.Redis.from_url(url, decode_responses=False, socket_timeout=2.0, socket_connect_timeout=2.0,
                                health_check_interval=30)


def _guarded(fn: F) -> F:
    """Redis connection and server errors become :class:`StoreUnavailable` (the call is retried), and
    so does a full Redis refusing a write (``maxmemory-policy noeviction``, which the server requires:
    ``OOM command not allowed``; before, a raw exception, a traceback at start), and a Redis that takes
    no writes now (review18): a replica (``READONLY``: a failover that this server's address did not
    follow, the old primary demoted), one cut off from its primary (``MASTERDOWN``), or a primary short
    of the replicas its ``min-replicas-to-write`` asks for (``NOREPLICAS``). Before, those were raw
    exceptions: the terminal's call ended ``UNKNOWN``, which it does not retry, at every server."""
    @functools.wraps(fn)
    def call(*args, **kwargs):
        import redis
        try:
            return fn(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.OutOfMemoryError,
                redis.exceptions.ReadOnlyError, redis.exceptions.MasterDownError) as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}") from None
        except redis.ResponseError as exc:
            if str(exc).startswith("NOREPLICAS"):
                raise StoreUnavailable("redis: NOREPLICAS") from None
            raise
    return call  # type: ignore[return-value]


class RedisStore:
    def __init__(self, client, limits: StoreLimits | None = None, prefix: str = "ca:"):
        self.limits = limits or StoreLimits()
        self.r = client
        self.prefix = prefix
        # The run_id of the Redis whose settings the server checked (``config.StoreWatch``): the nonce's
        # script refuses to charge on any other. None: nobody checks this store (tests, tools), every
        # charge goes through; "" : not checked yet, every charge is refused (StoreUnchecked).
        self.checked_run: str | None = None
        # How long after a data loss this server charges nothing (ms; StoreWatch sets its failure window,
        # sec19: each server its own): the nonce's script reads the loss from the store's epoch.
        self.quarantine_ms = 0
        # A jump of Redis's clock (StoreWatch, sec19): the latest Redis TIME (ms) this server's elapsed
        # time since its check allows (None: no bound), and the Redis TIME before which it charges nothing.
        self.clock_bound: Callable[[], int] | None = None
        self.held_until_ms = 0
        # Redis's TIME (ms) at this server's first reading of the store (StoreWatch, sec21; 0 : none yet):
        # the nonce's script holds this server's charges after a jump another server marked, when this
        # server has no reading from before it (store-clock-jump).
        self.first_ms = 0
        # The earliest Redis TIME (ms) this server's elapsed time since its check allows (StoreWatch, back21;
        # None: no bound): the nonce's and the claim's scripts refuse below it (a step back of Redis's clock).
        self.clock_floor: Callable[[], int] | None = None
        # Called with Redis's TIME (ms) that the nonce's script read, after its reply (StoreWatch, sec20):
        # the server compares it with its elapsed time then, at the check's slack, not the script's.
        self.clock_seen: Callable[[int], None] | None = None
        # A charge's replication (sec19, ``store_wait_replicas``/``store_wait_ms``): WAIT after the
        # nonce's script, on its connection; a charge fewer replicas acknowledged in time is refused.
        self.wait_replicas, self.wait_ms = 0, 100
        self._add = client.register_script(_ADD)
        self._use = client.register_script(_USE)
        self._fail = client.register_script(_FAIL)
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)
        self._count = client.register_script(_COUNT)
        self._run = client.register_script(_RUN)
        self._epoch = client.register_script(_EPOCH)
        self._mark = client.register_script(_MARK)
        self._back = client.register_script(_BACK)
        self._host = client.register_script(_HOST)
        self._defer = client.register_script(_DEFER)
        self._vouch = client.register_script(_VOUCH)
        self._witness = client.register_script(_WITNESS)
        self._fetched = client.register_script(_FETCHED)
        self._anchor = client.register_script(_ANCHOR)
        self._anchor_flag = client.register_script(_ANCHOR_FLAG)
        self.host = ""                          # this server's host (StoreWatch; sec28: its claims' deferral)

    @classmethod
    def from_url(cls, url: str, limits: StoreLimits | None = None, prefix: str = "ca:") -> RedisStore:
        return cls(connect_url(url), limits, prefix)

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def _session_key(self, terminal_id: str, session_id: str) -> str:
        return self._k("sess", terminal_id, hashlib.sha256(session_id.encode()).hexdigest())

    def _issue(self, nonce: bytes, record: NonceRecord, now_ms: int, charge: Charge | None,
               request: bytes) -> Issued:
        keep_ms = int(self.limits.keep_used_s * 1000)
        life_ms = max(record.expires_ms - record.issued_ms, 0)
        charged = charge.keys if charge is not None else ()
        also = [old for old in (charge.also if charge is not None else ()) if old]
        first = 4 + len(charged)                      # the KEYS index of the first set whose count adds
        where = [0] * len(charged)
        if charge is not None and charge.also:
            n = 0
            for i, old in enumerate(charge.also):
                if old:
                    where[i], n = first + n, n + 1
        got = self._added(keys=[self._k("n", nonce.hex()), self._k("t", record.terminal_id),
                                self._session_key(record.terminal_id, record.session_id),
                                *(self._k("f", key) for key in charged), *(self._k("f", key) for key in also)],
                          args=[now_ms, self.limits.nonces_per_terminal, 0, nonce.hex(), record.expires_ms,
                                record.terminal_id, record.session_id, record.purpose, record.server_key_id,
                                record.issued_ms, self.prefix, life_ms + keep_ms, record.subject,
                                record.challenges, str(record.frames) if record.frames else "",
                                charge.window_ms if charge else 0, self.limits.max_failures_kept, request.hex(),
                                0, len(charged), charge.key_check if charge else "", record.subject_key_id,
                                *(charge.limits if charge else ()), *where,
                                charge.previous_check if charge else "", charge.overlap_ms if charge else 0,
                                "1" if charge is not None and charge.store_clock else "",
                                "*" if self.checked_run is None else self.checked_run, self.quarantine_ms,
                                self.clock_bound() if self.clock_bound is not None else 0, self.held_until_ms,
                                self.first_ms, self.clock_floor() if self.clock_floor is not None else 0])
        head = int(got[0])
        if head == -3:
            raise StoreUnchecked("redis: not checked since it (re)started or failed over")
        if int(got[1]) and self.clock_seen is not None:
            self.clock_seen(int(got[1]))
        if head == -2:
            return Issued(None, stale_key=True)
        if head > 0:
            return Issued(charged[head - 1])
        if head == 0:
            return Issued(None, nonce, record)
        old = got[2].decode() if isinstance(got[2], bytes) else got[2]
        fields = dict(zip(got[3::2], got[4::2], strict=True))
        rec = self._record(fields, now_ms)
        if rec is None:                              # not reached: the script found it unused and held
            raise StoreUnavailable("redis: the session's nonce vanished")
        return Issued(None, bytes.fromhex(old), rec, repeated=True)

    def _added(self, keys: list[str], args: list[Any]) -> list[Any]:
        """The nonce's script, by its digest (``EVALSHA``); with ``wait_replicas``, followed on the same
        connection (a pipeline: one round trip) by ``WAIT wait_replicas wait_ms``, and a charge or a
        repeat's nonce that fewer replicas acknowledged in time is refused (``StoreUnavailable``: the
        terminal retries, a repeat of its request gets the same challenge, uncharged). Redis replicates
        asynchronously, so a failover to a replica lost the charges it had not received (a partial loss:
        the epoch stays, no quarantine); WAIT closes that for charges (not for what the other scripts
        write). A Redis that does not hold the script (restarted, failed over, its cache flushed) is
        not given it here when the server checks its store (sec20): ``StoreUnchecked``, and the checks,
        which read its version before they load any script (``survey``), load it if it passes; a Redis
        before 7.0 would not compile it (the shebang), and its error reached the terminal raw."""
        import redis
        for _ in range(2):
            pipe = self.r.pipeline(transaction=False)
            pipe.evalsha(self._add.sha, len(keys), *keys, *args)
            if self.wait_replicas:
                pipe.wait(self.wait_replicas, self.wait_ms)
            replies = pipe.execute(raise_on_error=False)
            got = replies[0]
            if isinstance(got, redis.exceptions.NoScriptError):
                if self.checked_run is not None:
                    raise StoreUnchecked("redis: not checked since it (re)started or failed over (it holds no scripts)")
                self.r.script_load(_ADD)                 # (a store nobody checks: tests, tools)
                continue
            if isinstance(got, Exception):
                raise got
            if self.wait_replicas:
                acked = replies[1]
                if isinstance(acked, Exception):
                    raise acked
                if int(got[0]) in (0, -1) and int(acked) < self.wait_replicas:
                    raise StoreUnavailable(f"redis: the charge reached {int(acked)} of {self.wait_replicas} "
                                           f"replicas within {self.wait_ms} ms")
            return list(got)
        raise StoreUnavailable("redis: the nonce's script is not loaded")

    def _call(self, script, keys: list[str], args: list[Any]) -> Any:
        """One of the store's scripts by its digest (``EVALSHA``; sec20). A Redis that does not hold it
        (restarted, failed over, its cache flushed) is given the store's scripts only once a plain
        ``INFO`` says it is 7.0 or later; an older one cannot compile them (the shebang), and its
        compile error reached the caller raw (``UNKNOWN`` to a terminal, which does not retry): now
        ``StoreUnavailable`` (retried), and the checks refuse it ``AGT_STORE_VERSION``."""
        import redis
        for _ in range(2):
            try:
                return self.r.evalsha(script.sha, len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:
                try:
                    version = self.version()
                except PolicyUnreadable:         # (INFO refused: loaded as before; the checks refuse charges)
                    version = ()
                if version and version < (7, 0):
                    raise StoreUnavailable(f"redis: Redis {'.'.join(map(str, version))} cannot run the store's "
                                           "scripts") from None
                self.load_scripts()
        raise StoreUnavailable("redis: the store's scripts are not loaded")

    def load_scripts(self) -> None:
        """Every script of the store loaded into Redis (``SCRIPT LOAD``): ``survey``, once it has read a
        version of 7.0 or later."""
        for script in _SCRIPTS:
            self.r.script_load(script)

    @_guarded
    def add_nonce(self, nonce: bytes, record: NonceRecord, now_ms: int, charge: Charge | None = None) -> str | None:
        if charge is not None and charge.key_check:
            raise ValueError("add_nonce does not check a subject key: issue_nonce does")
        return self._issue(nonce, record, now_ms, charge, b"").locked

    @_guarded
    def issue_nonce(self, nonce: bytes, record: NonceRecord, now_ms: int, charge: Charge | None,
                    request: bytes) -> Issued:
        if not request:
            raise ValueError("issue_nonce needs the request's digest")
        return self._issue(nonce, record, now_ms, charge, request)

    @_guarded
    def get_nonce(self, nonce: bytes, now_ms: int) -> NonceRecord | None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hgetall(self._k("n", nonce.hex()))
        pipe.time()
        pipe.execute_command("PEXPIRETIME", self._k("n", nonce.hex()))
        pipe.get(self._k("store-clock-back"))
        h, (sec, usec), at, back = pipe.execute()
        store_ms = int(sec) * 1000 + int(usec) // 1000
        return None if _past(h, at, back, store_ms) else self._record(h, now_ms, store_ms)

    @_guarded
    def nonce_and_counter(self, nonce: bytes, terminal_id: str, now_ms: int) -> tuple[NonceRecord | None, int]:
        # Two reads in one round trip, as one snapshot (MULTI/EXEC): a resubmit racing its first
        # call must not see the nonce unused and the counter already advanced.
        pipe = self.r.pipeline(transaction=True)
        pipe.hgetall(self._k("n", nonce.hex()))
        pipe.get(self._k("c", terminal_id))
        pipe.time()
        pipe.execute_command("PEXPIRETIME", self._k("n", nonce.hex()))
        pipe.get(self._k("store-clock-back"))
        h, counter, (sec, usec), at, back = pipe.execute()
        store_ms = int(sec) * 1000 + int(usec) // 1000
        rec = None if _past(h, at, back, store_ms) else self._record(h, now_ms, store_ms)
        return rec, int(counter) if counter else 0

    @_guarded
    def read_and_claim(self, nonce: bytes, terminal_id: str, probe_id: str, digest: bytes,
                       now_ms: int, *, hold: str, lease_ms: int = CLAIM_LEASE_MS) -> tuple[NonceRecord | None, int,
                                                                                          Claim]:
        _check_hold(hold)
        got = self._call(self._claim, keys=[self._k("n", nonce.hex()), self._k("c", terminal_id),
                                self._k("p", terminal_id, probe_id)],
                          args=[terminal_id, now_ms, probe_id, digest, MAX_PROBES_PER_NONCE, MAX_COPIES_PER_CLAIM,
                                hold, int(lease_ms), self.prefix, nonce.hex(),
                                self.clock_floor() if self.clock_floor is not None else 0, self.host])
        head = got[0].decode() if isinstance(got[0], bytes) else got[0]
        if head == "behind":
            raise StoreUnchecked("redis: its clock is behind this server's elapsed time since its check")
        if head == "deferred":
            raise StoreClockDeferred("redis: the nonce was charged before this server's host had a reading of its "
                                     "clock, and no host with a live reading has vouched for it yet (sec28)")
        claim = Claim(head)
        fields = dict(zip(got[3::2], got[4::2], strict=True))
        return self._record(fields, now_ms, int(got[2])), int(got[1]) if got[1] else 0, claim

    @_guarded
    def release_claim(self, nonce: bytes, terminal_id: str, probe_id: str, digest: bytes, *, hold: str) -> None:
        _check_hold(hold)
        self._call(self._release, keys=[self._k("n", nonce.hex())], args=[terminal_id, probe_id, digest, hold])

    @_guarded
    def eviction_policy(self) -> str:
        """Redis's ``maxmemory-policy`` (``CONFIG GET``). Raises :class:`PolicyUnreadable` when Redis
        refuses the command (an ACL without ``+config``, a managed Redis that renamed CONFIG)."""
        import redis
        try:
            got = self.r.config_get("maxmemory-policy")
        except redis.ResponseError as exc:           # NOPERM, unknown command: not a connection failure
            raise PolicyUnreadable(str(exc).split("\n")[0][:200]) from None
        value = got.get("maxmemory-policy", got.get(b"maxmemory-policy", b""))
        return value.decode() if isinstance(value, bytes) else str(value)

    @_guarded
    def persistence(self) -> tuple[bool, str]:
        """Whether Redis keeps its data across a restart: ``appendonly`` and the RDB ``save`` points
        (``CONFIG GET``; "" : no snapshots). Raises :class:`PolicyUnreadable` when Redis refuses
        ``CONFIG`` (an ACL without ``+config``, a managed Redis that renamed it)."""
        import redis
        try:
            got = {**self.r.config_get("appendonly"), **self.r.config_get("save")}
        except redis.ResponseError as exc:
            raise PolicyUnreadable(str(exc).split("\n")[0][:200]) from None
        text = {(k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else str(v))
                for k, v in got.items()}
        return text.get("appendonly", "no") == "yes", text.get("save", "").strip()

    @_guarded
    def version(self) -> tuple[int, ...]:
        """Redis's version (``INFO server``'s ``redis_version``: (7, 0, 15)). Raises
        :class:`PolicyUnreadable` when Redis refuses ``INFO`` (an ACL without it)."""
        import redis
        try:
            got = self.r.info("server")
        except redis.ResponseError as exc:
            raise PolicyUnreadable(str(exc).split("\n")[0][:200]) from None
        text = str(got.get("redis_version", ""))
        return tuple(int(p) for p in text.split(".") if p.isdigit())

    @_guarded
    def run_id(self) -> str:
        """Redis's ``run_id`` (``INFO server``): another one after every restart, and on another
        server after a failover. Raises :class:`PolicyUnreadable` when Redis refuses ``INFO``, and
        :class:`StoreUnavailable` when it is a replica (review18: a primary demoted by a failover keeps
        its ``run_id``, so the health check said SERVING while every charge was refused ``READONLY``).
        By the script's digest (sec20): a Redis that does not hold it is given the store's scripts only
        once it says it is 7.0 or later (as ``survey``); an older one is :class:`PolicyUnreadable`."""
        import redis
        for _ in range(2):
            try:
                got = self.r.evalsha(self._run.sha, 0)   # read as the nonce's script reads it (redis-py's
            except redis.exceptions.NoScriptError:       # INFO parser makes numbers of what looks like one)
                version = self.version()
                if version and version < (7, 0):
                    raise PolicyUnreadable(f"Redis {'.'.join(map(str, version))} cannot run the store's scripts") \
                        from None
                self.load_scripts()
                continue
            except (redis.exceptions.ReadOnlyError, redis.exceptions.MasterDownError):
                raise                        # (StoreUnavailable: _guarded)
            except redis.ResponseError as exc:
                raise PolicyUnreadable(str(exc).split("\n")[0][:200]) from None
            return _primary_run(got)
        raise StoreUnavailable("redis: the store's scripts are not loaded")

    @_guarded
    def survey(self, new: str, known: str, window_ms: int, host: str = "") -> Survey:
        """Everything ``config.StoreWatch`` checks, read from one Redis (sec19): its version (``INFO
        server``, a plain command), ``run_id`` and role (as :meth:`run_id`), ``maxmemory-policy``,
        ``appendonly`` and ``save``, and its epoch (as :meth:`epoch`), in one pipeline on one connection.
        Read one call each, on whatever connection the pool gave each (before), a failover between two
        reads bound one Redis's ``run_id`` to another's settings (review 18). Raises as :meth:`run_id`
        does; a ``CONFIG`` refused is its field's :class:`PolicyUnreadable`.

        The version comes first and no script is loaded before it is known (sec20): the scripts are
        sent by their digest alone (``EVALSHA``), and a Redis that does not hold them (a new one, or
        restarted: ``NOSCRIPT``) is given them (``SCRIPT LOAD``) and read again only if it is 7.0 or
        later. Before, the pipeline loaded its scripts first, and Redis 6 cannot compile their ``#!lua``
        shebang: the compile error was read as ``INFO`` refused, ``AGT_STORE_UNWATCHED``, never
        ``AGT_STORE_VERSION``. A Redis older than 7.0 is returned with only its version
        (``Survey.old``), for the version check to refuse. ``host``: this host's id (``config.host_id``),
        whose last reading of Redis's clock is read too (``note_host_reading``; "" : none), and the latest
        Redis time the scripts read (``store-clock-high``, sec27)."""
        import redis
        for _ in range(3):
            pipe = self.r.pipeline(transaction=False)
            pipe.execute_command("INFO", "server")
            pipe.evalsha(self._run.sha, 0)
            pipe.config_get("maxmemory-policy")
            pipe.config_get("appendonly")
            pipe.config_get("save")
            pipe.evalsha(self._epoch.sha, 2, self._k("store-epoch"), self._k("store-clock-back"), new, known,
                         int(window_ms))
            pipe.get(self._k("store-clock-jump"))
            pipe.get(self._k("store-clock-host", host) if host else self._k("store-clock-host"))
            pipe.get(self._k("store-clock-high"))
            pipe.hget(self._k("store-clock-defer"), host or "-")
            info, got, policy, aof, save, ep, jumped, hosted, high, deferred = pipe.execute(raise_on_error=False)
            for reply in (info, got):
                if isinstance(reply, (redis.exceptions.ReadOnlyError, redis.exceptions.MasterDownError)):
                    raise reply                  # (StoreUnavailable: _guarded)
            if isinstance(info, redis.ResponseError):
                raise PolicyUnreadable(str(info).split("\n")[0][:200])
            version = tuple(int(p) for p in str(info.get("redis_version", "")).split(".") if p.isdigit())
            if version and version < (7, 0):
                return Survey("", version, "", (False, ""), (known, 0, 0), old=True)
            if isinstance(got, redis.exceptions.NoScriptError) or isinstance(ep, redis.exceptions.NoScriptError):
                self.load_scripts()              # (a Redis of 7.0 or later that does not hold them yet)
                continue
            break
        else:
            raise StoreUnavailable("redis: the store's scripts are not loaded (its script cache keeps emptying)")
        if isinstance(got, redis.ResponseError):     # a script Redis will not run (SCRIPT refused by an ACL):
            raise PolicyUnreadable(str(got).split("\n")[0][:200])      # as run_id says it
        run = _primary_run(got)

        def config(reply, name: str) -> str | PolicyUnreadable:
            if isinstance(reply, redis.ResponseError):
                return PolicyUnreadable(str(reply).split("\n")[0][:200])
            value = reply.get(name, reply.get(name.encode(), b""))
            return value.decode() if isinstance(value, bytes) else str(value)
        said = [config(policy, "maxmemory-policy"), config(aof, "appendonly"), config(save, "save")]
        persists: tuple[bool, str] | PolicyUnreadable
        if isinstance(said[1], PolicyUnreadable) or isinstance(said[2], PolicyUnreadable):
            persists = said[1] if isinstance(said[1], PolicyUnreadable) else said[2]    # type: ignore[assignment]
        else:
            persists = (said[1] == "yes", str(said[2]).strip())
        if isinstance(ep, Exception):
            raise ep
        mark = None
        if isinstance(jumped, bytes):
            parts = jumped.split()
            if len(parts) == 2 and all(p.isdigit() for p in parts):
                mark = (int(parts[0]), int(parts[1]))
        return Survey(run, version, said[0], persists, self._epoch_read(ep, window_ms), clock_mark=mark,
                      clock_back=int(ep[2]), host_reading=_host_reading(hosted) if host else None,
                      clock_high=int(high) if isinstance(high, bytes) and high.isdigit() and len(high) <= 18 else 0,
                      deferral=_deferral(deferred) if host else None)

    @_guarded
    def defer_clock(self, host: str, elapsed_ms: int) -> int:
        """This host's trust in Redis's clock deferred (sec28, ``_DEFER``): the store's next clock generation,
        which this host is vouched from until a live host vouches for the earlier ones."""
        return int(self._call(self._defer, keys=[self._k("store-clock-gen"), self._k("store-clock-defer")],
                              args=[host, int(elapsed_ms)]))

    @_guarded
    def vouch_clock(self, vouched_from: int, floor_ms: int, host: str) -> int:
        """Vouch for the other hosts' deferrals from ``vouched_from`` (sec28, ``_VOUCH``); -1 when Redis's
        clock is behind ``floor_ms`` (nothing vouched)."""
        return int(self._call(self._vouch, keys=[self._k("store-clock-defer")],
                              args=[int(vouched_from), int(floor_ms), host]))

    @_guarded
    def end_deferrals(self) -> int:
        """After a retire (every unused nonce charged before it gone): the deferrals taken before it are moot
        and deleted (sec28). Returns how many."""
        gen = self.r.get(self._k("store-clock-gen"))
        top = int(gen) if isinstance(gen, bytes) and gen.isdigit() else 0
        ended = [h for h, v in self.r.hgetall(self._k("store-clock-defer")).items()
                 if (d := _deferral(v)) is None or d[0] <= top]
        return int(self.r.hdel(self._k("store-clock-defer"), *ended)) if ended else 0

    @_guarded
    def note_host_reading(self, host: str, redis_ms: int, before_s: float, after_s: float, back_ms: int) -> None:
        """This host's latest reading of Redis's clock (sec24): Redis's TIME read between ``before_s`` and
        ``after_s`` of the host's elapsed clock, and the store's total of steps back then, kept
        ``HOST_READING_KEEP_MS`` for the next server to start on this host (``survey`` reads it)."""
        value = f"{int(redis_ms)} {math.floor(before_s * 1000)} {math.ceil(after_s * 1000)} {int(back_ms)}"
        self._call(self._host, keys=[self._k("store-clock-host", host)], args=[value, HOST_READING_KEEP_MS])

    @_guarded
    def mark_clock_jump(self, before_ms: int, after_ms: int) -> None:
        """A jump of Redis's clock that this server measured, for servers that start after it (sec20):
        ``<prefix>store-clock-jump`` "<before> <after>", Redis's times of the two readings it fell between
        (the later kept when two servers write; no expiry: one small key, read by ``survey``)."""
        self._call(self._mark, keys=[self._k("store-clock-jump")], args=[int(before_ms), int(after_ms)])

    @_guarded
    def mark_clock_back(self, known_ms: int, step_ms: int, least_ms: int, before_ms: int,
                        after_ms: int) -> tuple[int, int]:
        """A step back of Redis's clock that this server measured (back21): added to the store's total of
        steps back (``<prefix>store-clock-back`` "<total> <before> <after>", ``_BACK``), less what servers
        marked since this server's last reading before it, whose total was ``known_ms`` (another server
        measured the same step), when the rest exceeds ``least_ms``. Every unused nonce charged before
        then expires when it would have on the old clock (``_PAST``). Returns (ms added, the total now)."""
        got = self._call(self._back, keys=[self._k("store-clock-back"), self._k("store-clock-high")],
                         args=[int(known_ms), int(step_ms), int(least_ms), int(before_ms), int(after_ms)])
        return int(got[0]), int(got[1])

    @_guarded
    def epoch(self, new: str, known: str, window_ms: int) -> tuple[str, int, int]:
        """The store's epoch (``<prefix>store-epoch``, ``_EPOCH``): (epoch, until ms, Redis's now ms),
        ``new`` written when there is none. ``known``: the epoch this server last read ("" : none), so
        a loss quarantines the store for ``window_ms`` after the new epoch was written (this server's
        charges refused until ``until``; each server's by its own window)."""
        got = self._call(self._epoch, keys=[self._k("store-epoch"), self._k("store-clock-back")],
                         args=[new, known, int(window_ms)])
        return self._epoch_read(got, window_ms)

    @staticmethod
    def _epoch_read(got, window_ms: int) -> tuple[str, int, int]:
        """The epoch script's reply as (epoch, until ms, Redis's now ms): until is the written time plus
        ``window_ms`` (the caller's own failure window, sec19) when the store is marked lost, else 0."""
        value = got[0].decode() if isinstance(got[0], bytes) else str(got[0])
        epoch, lost, written = (value.split(" ") + ["0", "0"])[:3]
        return epoch, int(written) + int(window_ms) if int(lost) else 0, int(got[1])

    @_guarded
    def now_ms(self) -> int:
        sec, usec = self.r.time()
        return int(sec) * 1000 + int(usec) // 1000

    @_guarded
    def pin_subject_keys(self, current: str, previous: str, overlap_ms: int) -> tuple[PinResult, KeyPin]:
        # No expiry: they name the keys the store's counts are under. ``subject-key-check`` holds the
        # current check value (as before rotations existed, so a store pinned then reads the same);
        # ``subject-key-previous`` "<check> <since_ms>" during a rotation. Read, decided and written
        # in one optimistic transaction (WATCH/MULTI; start and reload only, never per call).
        # ``subject-key-retired``, a set: every check value pinned as a previous key (one per rotation),
        # so no server rotates the store back to one (``PinResult.RETIRED``). The time (a rotation's
        # start, the overlap's end) is Redis's TIME, read inside the transaction: never this server's
        # clock, which another server's would be compared with.
        cur_k, prev_k = self._k("subject-key-check"), self._k("subject-key-previous")
        ret_k = self._k("subject-key-retired")

        def step(pipe) -> tuple[PinResult, KeyPin]:
            sec, usec = pipe.time()
            now_ms = int(sec) * 1000 + int(usec) // 1000
            cur, prev = pipe.get(cur_k), pipe.get(prev_k)
            retired = frozenset(m.decode() for m in pipe.smembers(ret_k))
            p_check, _, p_since = (prev.decode() if prev else "").partition(" ")
            pinned = KeyPin(cur.decode() if cur else "", p_check, int(p_since or 0))
            result, after = decide_pin(pinned, current, previous, now_ms, overlap_ms, retired)
            pipe.multi()
            if after != pinned:
                pipe.set(cur_k, after.current)
                if after.previous:
                    pipe.set(prev_k, f"{after.previous} {after.since_ms}")
                else:
                    pipe.delete(prev_k)
            if after.previous and after.previous not in retired:
                pipe.sadd(ret_k, after.previous)
            return result, after
        return self.r.transaction(step, cur_k, prev_k, ret_k, value_from_callable=True)

    @_guarded
    def claims_held(self, nonce: bytes) -> int:
        """Probe ids holding a claim on the nonce (tests)."""
        return int(self.r.hget(self._k("n", nonce.hex()), "nc") or 0)

    @staticmethod
    def _record(h: dict[bytes, bytes], now_ms: int, store_ms: int | None = None) -> NonceRecord | None:
        """The record as Redis holds it. Unused, it is unexpired because Redis holds it: Redis expires it
        its lifetime after the charge, by Redis's clock (sec21: before, it was also dropped here when the
        reading server's clock, ``now_ms``, was past its issuing server's deadline, so a server whose clock
        ran ahead refused an honest terminal's probe as EXPIRED, and charged its repeated ``BeginCapture``
        as a new challenge). Used, with ``store_ms`` (Redis's TIME read in the same step) and Redis's time of
        the use (``ru``): ``used_ms`` is given on the caller's clock as ``now_ms`` less the use's age by
        Redis's clock, so the retry window (``now_ms - used_ms``) is Redis's too, whatever the using and
        the reading servers' clocks say (a record used before sec21 has no ``ru``: its using server's time)."""
        if not h or b"t" not in h:
            return None
        used_ms = int(h.get(b"u", b"0"))
        if store_ms is not None and h.get(b"ru"):
            used_ms = now_ms - max(store_ms - int(h[b"ru"]), 0)
        return NonceRecord(terminal_id=h[b"t"].decode(), session_id=h[b"s"].decode(), purpose=int(h[b"pu"]),
                           server_key_id=h[b"k"].decode(), issued_ms=int(h[b"i"]), expires_ms=int(h[b"e"]),
                           probe_id=h.get(b"pid", b"").decode(), digest=h.get(b"d", b""), receipt=h.get(b"r", b""),
                           used_ms=used_ms, subject=h.get(b"sub", b"").decode(),
                           challenges=h.get(b"ch", b"").decode(), frames=int(h.get(b"fr", b"0")),
                           subject_key_id=h.get(b"skid", b"").decode())

    @_guarded
    def use_nonce(self, nonce: bytes, *, terminal_id: str, probe_id: str, digest: bytes, counter: int,
                  receipt: bytes, now_ms: int, settle: Settle | None = None, hold: str = "") -> Use:
        if not 0 < counter < 2**53:           # Lua compares numbers as doubles
            raise ValueError("counter out of range")
        if hold:
            _check_hold(hold)
        keep_ms = int(self.limits.keep_used_s * 1000)
        settled = settle.keys if settle is not None else ()
        mode = "" if settle is None else "refund" if settle.refund else "fail"
        got = self._call(self._use, keys=[self._k("n", nonce.hex()), self._k("p", terminal_id, probe_id),
                              self._k("c", terminal_id), self._k("t", terminal_id),
                              *(self._k("f", key) for key in settled)],
                        args=[terminal_id, probe_id, digest, counter, receipt, now_ms, keep_ms, nonce.hex(), mode,
                              settle.window_ms if settle else 0, failure_member(nonce, digest), hold,
                              "1" if settle is not None and settle.store_clock else "", self.prefix])
        head = got[0]
        outcome = Outcome(head.decode() if isinstance(head, bytes) else head)
        if outcome is Outcome.UNKNOWN or len(got) < 2:            # ('lapsed': nothing read)
            return Use(outcome)
        fields = dict(zip(got[2::2], got[3::2], strict=True))
        return Use(outcome, self._record(fields, now_ms, int(got[1])))

    @_guarded
    def last_counter(self, terminal_id: str) -> int:
        v = self.r.get(self._k("c", terminal_id))
        return int(v) if v else 0

    @_guarded
    def witness(self, terminal_id: str) -> bytes | None:
        v = self.r.get(self._k("w", terminal_id))
        return bytes(v) if v is not None else None

    @_guarded
    def swap_witness(self, terminal_id: str, expected: bytes | None, new: bytes, drops: int | None = None,
                     drops_lo: int | None = None) -> int:
        if not new:
            raise ValueError("a witness record is never empty")
        from hil.ingest.attestation import WitnessUnreadable
        lo = drops if drops_lo is None else drops_lo
        return self._refusing(self._witness, [self._k("w", terminal_id), self._k("wf", terminal_id),
                                              self._k("wu", terminal_id)],
                              [expected or b"", new, "" if drops is None else str(int(drops)),
                               "" if lo is None else str(int(lo))],
                              "WITNESS_UNREADABLE", lambda: WitnessUnreadable(
                                  "the witness, fetched or unfetched record held is not a record this server writes "
                                  "(the witness not moved)"))

    @_guarded
    def witness_unfetched(self, terminal_id: str) -> bytes | None:
        v = self.r.get(self._k("wu", terminal_id))
        return bytes(v) if v is not None else None

    @_guarded
    def note_witness_fetched(self, terminal_id: str, count: int) -> None:
        self._call(self._fetched, keys=[self._k("wf", terminal_id)], args=[str(int(count))])

    def _refusing(self, script, keys: list[str], args: list[Any], code: str,
                  refusal: Callable[[], Exception]) -> int:
        """A script whose own refusal (an error reply starting with ``code``, every check before any write: fix33,
        sec34) is ``refusal()``, a ``StoreUnavailable`` of the record's kind."""
        import redis
        try:
            return int(self._call(script, keys=keys, args=args))
        except redis.ResponseError as exc:
            if str(exc).startswith(code):
                raise refusal() from None
            raise

    def _anchor_script(self, script, keys: list[str], args: list[Any]) -> int:
        from hil.ingest.anchors import AnchorUnreadable
        return self._refusing(script, keys, args, "ANCHOR_UNREADABLE", lambda: AnchorUnreadable(
            "the anchor or anchor-flag record held is not a record this server writes (nothing written)"))

    @_guarded
    def anchor(self, terminal_id: str) -> bytes | None:
        import redis

        from hil.ingest.anchors import AnchorUnreadable
        try:
            v = self.r.get(self._k("a", terminal_id))
        except redis.ResponseError:                 # WRONGTYPE: a key this server does not write
            raise AnchorUnreadable("the anchor held is not a record this server writes") from None
        return bytes(v) if v is not None else None

    @_guarded
    def swap_anchor(self, terminal_id: str, expected: bytes | None, new: bytes, expected_seq: int | None = None,
                    cap: int = 256) -> int:
        if not new:
            raise ValueError("an anchor record is never empty")
        if expected is not None and expected_seq is None:
            raise ValueError("a replaced anchor's entry is needed to keep it")
        return self._anchor_script(self._anchor, [self._k("a", terminal_id), self._k("ah", terminal_id),
                                                  self._k("ahf", terminal_id)],
                                   [expected or b"", new, "" if expected_seq is None else str(int(expected_seq)),
                                    str(max(1, min(int(cap), _ANCHOR_HISTORY_MAX)))])

    @_guarded
    def anchor_history(self, terminal_id: str) -> list[bytes]:
        import redis

        from hil.ingest.anchors import AnchorUnreadable
        try:
            got = self.r.lrange(self._k("ah", terminal_id), 0, _ANCHOR_HISTORY_MAX)
        except redis.ResponseError:                 # WRONGTYPE: a key this server does not write
            raise AnchorUnreadable("the anchor history held is not a record this server writes") from None
        if len(got) > _ANCHOR_HISTORY_MAX:
            raise AnchorUnreadable("the anchor history held is longer than this server writes")
        return [bytes(v) for v in got]

    @_guarded
    def note_anchors_fetched(self, terminal_id: str, seq: int) -> None:
        self._anchor_script(self._fetched, [self._k("ahf", terminal_id)], [str(int(seq))])

    @_guarded
    def note_anchor_flag(self, terminal_id: str, reason: str, seen: bytes) -> None:
        from hil.ingest.anchors import FLAGS
        self._anchor_script(self._anchor_flag, [self._k("af", terminal_id)], [reason, seen, *FLAGS])

    @_guarded
    def anchor_flags(self, terminal_id: str) -> dict[bytes, bytes] | None:
        import redis

        from hil.ingest.anchors import AnchorUnreadable
        try:
            got = self.r.hgetall(self._k("af", terminal_id))
        except redis.ResponseError:                 # WRONGTYPE
            raise AnchorUnreadable("the anchor-flag record held is not a record this server writes") from None
        return {bytes(k): bytes(v) for k, v in got.items()} or None

    @_guarded
    def add_failure(self, key: str, now_ms: int | None, window_ms: int, member: str = "", replaces: str = "") -> int:
        member = member or f"{now_ms or 'r'}:{os.urandom(6).hex()}"
        return int(self._call(self._fail, keys=[self._k("f", key)],
                              args=["" if now_ms is None else now_ms, window_ms, member, self.limits.max_failures_kept,
                                    replaces]))

    @_guarded
    def failures(self, key: str, now_ms: int | None, window_ms: int) -> int:
        if now_ms is None:
            return int(self._call(self._count, keys=[self._k("f", key)], args=[window_ms]))
        return int(self.r.zcount(self._k("f", key), f"({now_ms - window_ms}", "+inf"))

    @_guarded
    def nonce_count(self, terminal_id: str) -> int:
        """Nonce records listed for a terminal (tests and benches)."""
        return int(self.r.zcard(self._k("t", terminal_id)))

    def close(self) -> None:
        self.r.close()

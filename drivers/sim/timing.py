"""When a command reaches the hardware: actuation latency and jitter of the simulated controls.

A real D4xx does not switch its projector on the frame after ``set_option``: the command crosses
USB and the firmware, and the change shows 1-2 frames later, not always the same number
(librealsense issue #9450: per-frame on/off alternation "not always deterministic"). Its per-frame
emitter metadata can itself disagree with the pixels by a frame (librealsense issue #14260).

Commands are indexed by tick: a command issued while tick ``n`` is the next one to be produced is
*issued at* ``n``; with latency ``L`` it takes effect at ``n + L``, or ``n + L + 1`` with probability
``jitter``. Commands never overtake each other (the firmware applies them in order), so an edge that
lands late also delays the edges queued behind it to at least its own tick. Everything is drawn from
a seeded generator in issue order, so the same commands at the same ticks give the same timeline.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")
MAX_LATENCY_FRAMES = 3


@dataclass(frozen=True)
class Landing(Generic[T]):
    """One command: the state it asks for, the tick it was issued at and the tick it took effect."""

    state: T
    issued: int
    effective: int


class Timeline(Generic[T]):
    """The state a control physically has at each tick, given the commands issued so far.

    ``state_at(k)`` is the state of the last command whose effective tick is <= ``k`` (the initial
    state before any). Queries for ticks already produced never change, because a new command is
    always issued at or after the next tick to be produced and lands no earlier than that.
    """

    def __init__(self, initial: T, latency: int, jitter: float, rng: np.random.Generator | None = None):
        if not 0 <= latency <= MAX_LATENCY_FRAMES:
            raise ValueError(f"latency must be within 0..{MAX_LATENCY_FRAMES} frames")
        if not 0.0 <= jitter <= 1.0:
            raise ValueError("jitter must be within 0..1")
        if jitter > 0 and rng is None:
            raise ValueError("a jittered timeline needs its random generator")
        self.latency = latency
        self.jitter = jitter
        self._rng = rng
        self._initial = initial
        self._landings: list[Landing[T]] = []
        self._effective: list[int] = []          # effective ticks, non-decreasing (bisect)

    def command(self, state: T, issued: int) -> Landing[T]:
        """Record a command issued at tick ``issued``; returns where it lands."""
        if self._landings and issued < self._landings[-1].issued:
            raise ValueError("commands must be issued in tick order")
        late = 0
        if self.jitter > 0:
            assert self._rng is not None
            late = int(self._rng.random() < self.jitter)     # one draw per command: reproducible
        effective = issued + self.latency + late
        if self._effective:
            effective = max(effective, self._effective[-1])   # no overtaking
        landing = Landing(state, issued, effective)
        self._landings.append(landing)
        self._effective.append(effective)
        return landing

    def state_at(self, tick: int) -> T:
        i = bisect.bisect_right(self._effective, tick)
        return self._initial if i == 0 else self._landings[i - 1].state

    @property
    def landings(self) -> tuple[Landing[T], ...]:
        return tuple(self._landings)

    def forget_before(self, tick: int) -> None:
        """Drop commands superseded before ``tick`` (bounded memory on long streams)."""
        i = bisect.bisect_right(self._effective, tick) - 1
        if i > 0:
            self._initial = self._landings[i - 1].state
            del self._landings[:i]
            del self._effective[:i]

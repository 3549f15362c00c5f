"""Injected streams: what an attacker on the camera link puts in front of the agent.

An injector sits between the camera and the agent (a USB gadget cloning the camera, or a hooked
SDK). It sees every command the agent sends, but not the room: the kiosk screen's light never
reaches the pixels it delivers. Each species decides three things per frame: the projector state
its IR/depth pixels show, the projector state its metadata claims, and the screen light on its
colour pixels. Frame counters and timestamps are the injector's own, continuing the device's
(consecutive numbers, the device's frame period on the device's clock), so they look like the real
camera's.

``replay``  a recording made earlier: pixels follow the projector (and screen) pattern that was
            recorded, whatever the agent commands now; metadata claims to obey.
``splice``  both projector states of the person were recorded beforehand (at the camera's default
            projector power, with the exposure locked); for each frame the injector serves the
            recorded frame whose state matches the command it saw. It cannot show a projector
            power it did not record; its metadata claims whatever was commanded.
``render``  a face rendered live into an RGB-D-IR stream by a 3D renderer that simulates the
            projector (any commanded power) and the camera's auto-exposure.

An adaptive injector imitates the camera it replaces as well as it can: it shows each command at
the camera's typical latency (no jitter: it has no reason to add errors) and its metadata agrees
with its own pixels. None of them sees the screen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .timing import Timeline

ProjectorState = tuple[bool, float]          # (on, power in mW)
Rgb = tuple[float, float, float]
BLACK: Rgb = (0.0, 0.0, 0.0)
SPECIES = ("replay", "splice", "render")


@dataclass
class Shown:
    """What one injected depth/IR frame shows and claims."""

    pixels: ProjectorState
    claimed: ProjectorState


class Injector:
    """Base: follows the commands it sees, at the camera's typical latency (used by the adaptive
    species; ``replay`` overrides what its pixels show)."""

    name = "injector"
    fixed_ir_exposure = False        # pixels recorded at one exposure (splice)
    obeys_exposure_lock = True       # a lock changes its pixels (a live renderer does)

    def __init__(self, initial: ProjectorState, latency: int, default_power_mw: float, seed: int):
        self._seen = Timeline(initial, latency, 0.0)
        self.default_power_mw = default_power_mw
        self.seed = seed

    def command(self, state: ProjectorState, issued: int) -> None:
        self._seen.command(state, issued)

    def shown(self, tick: int) -> Shown:
        s = self._seen.state_at(tick)
        return Shown(pixels=s, claimed=s)

    def screen(self, color_tick: int) -> Rgb:
        """The screen light on the injected colour pixels: none (the injector never sees it)."""
        return BLACK

    def forget_before(self, tick: int) -> None:
        self._seen.forget_before(tick)


class Replay(Injector):
    name = "replay"
    obeys_exposure_lock = False      # a recording's exposure went wherever its own camera took it

    def __init__(self, initial: ProjectorState, latency: int, default_power_mw: float, seed: int):
        super().__init__(initial, latency, default_power_mw, seed)
        self._rng = np.random.default_rng(seed + 7777)
        self._pattern: list[tuple[bool, Rgb]] = []

    def _recorded(self, tick: int) -> tuple[bool, Rgb]:
        # The recorded session's own projector and screen pattern, changing every third frame.
        while len(self._pattern) <= tick:
            if len(self._pattern) % 3 == 0:
                on = bool(self._rng.random() < 0.6)
                level = float(self._rng.choice([0.0, 0.0, 1.0]))
                step = (on, (level, level, level))
            else:
                step = self._pattern[-1]
            self._pattern.append(step)
        return self._pattern[tick]

    def shown(self, tick: int) -> Shown:
        on, _ = self._recorded(tick)
        return Shown(pixels=(on, self.default_power_mw if on else 0.0), claimed=self._seen.state_at(tick))

    def screen(self, color_tick: int) -> Rgb:
        """The recording was lit by whatever screen it was recorded in front of."""
        return self._recorded(color_tick)[1]


class Splice(Injector):
    name = "splice"
    fixed_ir_exposure = True

    def shown(self, tick: int) -> Shown:
        claimed = self._seen.state_at(tick)
        on = claimed[0]
        # Only the recorded power exists; the metadata claims the commanded one.
        return Shown(pixels=(on, self.default_power_mw), claimed=claimed)


class Render(Injector):
    name = "render"


def make_injector(species: str, initial: ProjectorState, latency: int, default_power_mw: float,
                  seed: int) -> Injector | None:
    cls = {"replay": Replay, "splice": Splice, "render": Render}.get(species)
    return None if cls is None else cls(initial, latency, default_power_mw, seed)

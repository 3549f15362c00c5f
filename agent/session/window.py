"""The challenge window: ``n`` framesets read while the projector follows the nonce's schedule."""

from __future__ import annotations

from collections.abc import Callable

from agent.liveness.challenge import Challenge
from agent.pipeline.frames import FramesetReader
from agent.pipeline.sync import SyncTimeout
from agent.session.projector import Projector
from drivers.errors import CaptureAgentError
from drivers.frame import FrameSet


def collect(reader: FramesetReader, n: int, challenge: Challenge | None, projector: Projector | None, *,
            timeout_s: float = 30.0, cancelled: Callable[[], bool] | None = None,
            on_frameset: Callable[[FrameSet], None] | None = None) -> list[FrameSet]:
    """Read ``n`` framesets, switching the projector by the challenge's schedule when there is one.

    Stops early, with what it has, when ``cancelled()`` turns true or ``timeout_s`` passes; the caller
    decides whether that is enough. A camera that fails after the first frameset (a recording that
    ends, a device lost) also ends the window early; one that fails before it raises.
    ``on_frameset`` sees each frameset as it is matched (to stream it to the liveness worker)."""
    out: list[FrameSet] = []
    schedule = challenge.schedule if challenge is not None else ()
    if schedule and projector is not None:
        projector.show(schedule[0])
    try:
        for fs in reader.stream(timeout_s=timeout_s, cancelled=cancelled):
            out.append(fs)
            if projector is not None and len(out) < len(schedule):
                projector.show(schedule[len(out)])
            if on_frameset is not None:
                on_frameset(fs)
            if len(out) >= n:
                break
    except SyncTimeout:
        pass
    except CaptureAgentError:
        if not out:
            raise
    return out

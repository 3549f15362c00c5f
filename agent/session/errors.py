"""A capture session's own typed errors (the camera's ``DRV_*``, the uplink's ``UPL_*`` and the
liveness worker's ``LIV_*`` codes reach the session's caller too)."""

from __future__ import annotations

from drivers.errors import CaptureAgentError


class SessionError(CaptureAgentError):
    code = "SES_ERROR"


class ConsentRequired(SessionError):
    code = "SES_CONSENT_REQUIRED"


class LockedOut(SessionError):
    code = "SES_LOCKED_OUT"


class StageTimeout(SessionError):
    code = "SES_STAGE_TIMEOUT"


class Cancelled(SessionError):
    code = "SES_CANCELLED"


class BadRequest(SessionError):
    code = "SES_BAD_REQUEST"


class Busy(SessionError):
    """Another capture is running: the terminal has one camera and one person in front of it."""

    code = "SES_BUSY"


class ExposureNotHeld(SessionError):
    """The server was told the challenge window's exposure is held (``exposure_lock``), and the camera
    refused a lock it claims: the window would run on auto-exposure under that declaration."""

    code = "SES_EXPOSURE_NOT_HELD"


class FramesLost(SessionError):
    """The challenge window lost a frameset (a frame counter or timestamp jumped in a stream): its
    framesets no longer line up with the challenge by their place, so it is ended unjudged. The
    person is asked to try again, and the attempt counts against the lockout like a failed one:
    an injector that fakes gaps buys no free tries (``agent/pipeline/gaps.py``)."""

    code = "SES_FRAMES_LOST"
    # The window's finding (``window.host_late``): the frames were lost or read late while the reader was
    # away from the camera on the terminal's own work (bench30), and not in a burst on the link (late31). The
    # session's lockout graces such a window (no strike) within ``host_late_grace_per_hour`` and counts the
    # rest (agent/session/capture.py, ``Lockout.grace``); never read as a pass.
    host_late: bool = False


class WindowLate(FramesLost):
    """The challenge window's reader fell behind the camera: a command (a projector edge, a screen
    colour) was about to be sent more than ``window.READER_MAX_BEHIND_FRAMES`` frame intervals after the
    frameset it follows arrived, so it would land on frames later than the ones the challenge
    scheduled it for, by more than the verifier's lag allows. A streaming camera does not wait for a
    starved daemon, so the window is ended unjudged (never ``attack``) and handled as lost frames: the
    person is asked to try again, and the attempt counts like a failed one although a genuine person
    on a loaded terminal did nothing wrong, because an injector on the camera link that pauses its frames
    makes a window late at a frame of its choosing (the frameset matcher hands frameset k - 1 over when frame k
    arrives; a frame's arrival is stamped by the host when it is read, so frames delivered in a burst are not
    late in themselves) and must buy no free tries (docs/liveness.md, *Review 30*). One the terminal itself made
    late (``host_late``) is graced within the lockout's hourly allowance (late31, ``Lockout.grace``)."""

    code = "SES_WINDOW_LATE"

"""pad-eval's projector enrolment: each sim camera's dot reference, enrolled from its own frames.

Challenged presentations test every on-off pair against the camera's projector pattern
(``dot_reference_for``), enrolled as an installer would with ``projector-enrol``'s code from a board
and a wall (``enrolment_uris``), once per camera profile and depth mode, and cached between runs
(``enrolment_cache_dir``) under a digest of the code the result depends on (``enrolment_version``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import urllib.parse
from pathlib import Path

from agent.commands.projector_enrol import enrol_uris
from agent.liveness.dotref import DotReference, ReferenceInvalid
from drivers.sim.config import UNIT_KEYS, SimConfig
from drivers.sim.families import POOLS

# Enrolment scenes for a presentation's camera (``agent.commands.projector_enrol``): a flat print held
# at 0.45 m and at 0.65 m (a matte board: where faces are, bright dots) and the bare wall (1.6 m: the
# rest of the field, and the depth that pins the parallax), in the family's own light. Four on-off
# pairs a scene find the sim cameras' f·b as 16 do (docs/liveness.md, "Review 4 (a)").
ENROL_LUX = 150.0
ENROL_PAIRS = 4
_DOT_REFERENCES: dict[str, DotReference] = {}
# The sim URI keys that make one camera unit's projector another's (``drivers.sim.config.UNIT_KEYS``):
# an enrolment is that unit's, and is cached under its scenes' URIs, which carry them.
# What the enrolment's result depends on besides its scenes: the enrolment code and the simulator
# that renders the scenes (its projector pattern, optics and noise).
_ENROLMENT_SOURCES = ("agent/liveness/dotref.py", "agent/commands/projector_enrol.py")
_SIMULATOR_SOURCES = "drivers/sim"


# Lights under which no technician can enrol a projector: the "wall" behind the board is a sunlit
# street behind glazing (the tenth family's backlight), whose near infrared drowns the dots (every
# enrolment under it fails LIV_DOT_ENROLMENT_FAILED). The installation enrols facing a wall (blinds
# down, or the unit enrolled at the depot; docs/liveness.md), so pad-eval enrols under the family's
# first light that has one. The twenty-third family's fountain caustics (reflected.Caustics) likewise: the sun's
# network swims over the board and the wall between every on-off pair with more 850 nm than the dots' (every
# enrolment of its D435if under them failed, "no fixed projector pattern seen", session 34); a technician enrols
# when the sun is off the pool (another hour) or at the depot.
NO_WALL_LIGHTS = frozenset({"backlight", "caustics"})


def enrolment_light(family: str) -> str:
    """The light a family's cameras are enrolled under: its pool's first with a wall behind the board."""
    return next(light for light in POOLS[family].lights if light not in NO_WALL_LIGHTS)


def enrolment_uris(uri: str) -> list[str]:
    """The sim scenes a presentation's camera is enrolled from: the same camera profile, family,
    depth mode and unit (``UNIT_KEYS``: its own projector) as ``uri``, a board (``subject=print``) at
    0.45 m and 0.65 m, then the wall alone, under :func:`enrolment_light`."""
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(uri).query))
    family = q.get("family", "train")
    keep = {k: q[k] for k in ("camera", "depth_mode", "scatter", "scatter_core", "ir_leak") + UNIT_KEYS if k in q}
    return board_and_wall({"family": family, **keep, "light": enrolment_light(family)})


def board_and_wall(camera: dict[str, str]) -> list[str]:
    """The enrolment's three scenes of the sim camera whose URI keys are ``camera``: a board
    (``subject=print``) at 0.45 m and 0.65 m, then the wall alone, at ``ENROL_LUX``, unpaced."""
    base = {**camera, "lux": str(ENROL_LUX), "background": "plain", "realtime": "0", "identity": "1", "seed": "1"}
    return ["sim://?" + urllib.parse.urlencode({**base, "subject": subject, **extra})
            for subject, extra in (("print", {"distance_mm": "450"}), ("print", {"distance_mm": "650"}),
                                   ("none", {}))]


@functools.lru_cache(maxsize=1)
def enrolment_version() -> str:
    """A digest of the code an enrolment's result depends on (the enrolment and the simulator's
    sources): a cached reference is used only by the code that made it."""
    root = Path(__file__).resolve().parent.parent
    files = [root / f for f in _ENROLMENT_SOURCES] + sorted((root / _SIMULATOR_SOURCES).rglob("*.py"))
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def enrolment_cache_dir() -> Path | None:
    """Where enrolled sim references are kept between runs: ``$CAPTURE_AGENT_CACHE/dot-references``,
    else ``$XDG_CACHE_HOME`` (or ``~/.cache``) ``/capture-agent/dot-references``; None (no cache) when
    ``CAPTURE_AGENT_CACHE`` is ``off``. The files hold the projector's pattern as the camera saw it
    on a board and a wall, never a face."""
    env = os.environ.get("CAPTURE_AGENT_CACHE")
    if env == "off":
        return None
    if env:
        return Path(env) / "dot-references"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "capture-agent" / "dot-references"


def _enrolment_key(uris: list[str]) -> str:
    from drivers.sim.camera import FIRMWARE, serial_for

    # The profile, depth mode and unit (its pattern seed and mounting, ``UNIT_KEYS``) are in the scenes'
    # URIs, and each a key of its own besides, with the serial that unit's camera reports (``serial_for``:
    # each unit its own since fix34, unit 0's the simulator's ``SERIAL`` as before).
    # Read as the simulator reads them (``SimConfig.from_query``): a malformed or out-of-range key is its
    # ``InvalidUri`` (``DRV_INVALID_URI``), never a bare ValueError or a key for a unit no camera can be (fix34).
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(uris[0]).query)) if uris else {}
    cfg = SimConfig.from_query(q)
    unit = {"uris": uris, "serial": serial_for(cfg.unit), "firmware": FIRMWARE, "pairs": ENROL_PAIRS,
            "code": enrolment_version(), "unit": {k: int(getattr(cfg, k)) for k in UNIT_KEYS}}
    return hashlib.sha256(json.dumps(unit, sort_keys=True).encode()).hexdigest()


def _cached(path: Path) -> DotReference | None:
    try:
        return DotReference.load(path)
    except ReferenceInvalid:
        return None


def _store(ref: DotReference, path: Path) -> None:
    """Write atomically (a concurrent run reads a whole file or none)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(ref.to_bytes())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dot_reference_for(uri: str) -> DotReference:
    """The projector pattern of the camera ``uri`` names, enrolled from its own frames once per camera
    profile, depth mode and unit (``UNIT_KEYS``: a unit's own pattern and mounting): kept in this
    process, and in :func:`enrolment_cache_dir` keyed by the enrolment scenes, the unit and
    :func:`enrolment_version` (a file that does not load strictly is enrolled again)."""
    return dot_reference_from(enrolment_uris(uri))


def dot_reference_from(uris: list[str]) -> DotReference:
    """The dot reference enrolled from the scenes ``uris`` (one camera's), cached as :func:`dot_reference_for`
    caches it."""
    key = _enrolment_key(uris)
    ref = _DOT_REFERENCES.get(key)
    if ref is not None:
        return ref
    cache = enrolment_cache_dir()
    path = None if cache is None else cache / f"{key[:40]}.npz"
    ref = None if path is None or not path.is_file() else _cached(path)
    if ref is None:
        ref = enrol_uris(uris, ENROL_PAIRS)
        if path is not None:
            _store(ref, path)
    _DOT_REFERENCES[key] = ref
    return ref

"""Presentation-attack evaluation on the simulator as an ISO/IEC 30107-3 report.

Presentations come from the simulator's families (``drivers/sim/families.py``): ``train``,
``heldout``, ``field``, ``fresh``, ``fifth``, ``sixth``, ``seventh`` and ``eighth`` draw disjoint people, camera
profiles, light sources and attack instruments, across the capture envelope (15-7500 lux, 350-520 mm, yaw ±18°,
pitch ±15°, three backgrounds).
Thresholds are fitted on ``train`` only (``--write-calibration`` stores them in
``agent/liveness/calibration.json``) and the other families are reported at those thresholds. The
held-out family's failures did steer driver fixes; ``field`` was added after everything was fixed,
so nothing about it chose anything (its refusals were diagnosed later); ``fresh`` was added after the
judge was fixed too, evaluated once and diagnosed since; ``fifth`` was added the same way after that
(session 16), and evaluated once; ``sixth`` was added after that (session 17) and evaluated once, on
that session's final judge (the sixth family draws lux per light: ``families.LIGHT_LUX``);
``seventh`` was added after that (session 18) and evaluated once; ``eighth`` (session 19: bright
near-infrared light, direct sun and halogen) was added after that and evaluated once; ``ninth``
(session 20: a CCTV camera's 850 nm flood independent of the lux, a flickering LED light) was added
after that, built and not run by its builder, and evaluated once (main 83018af); ``tenth`` (session
21: a bright street behind the head through the glazing, passers-by's shadows sweeping the face, the
RealSense D435f, people with their own beards) was added after that, built and not run by its builder,
and evaluated once (main 874f83e); ``eleventh`` (session 22: an LED advertising panel beside the kiosk
lighting one side of the face in changing colours, sunflecks through a tree drifting over the face,
the RealSense D455f, people with their own headscarves) was added after that, built and not run by
its builder, and evaluated once, in part (main 664b7f3); ``twelfth`` (session 23: the kiosk's own ring
light lighting the face in the near field, cars' headlamps sweeping a walk-up ATM at night, the
RealSense D457 on GMSL, people with their own spectacle lenses' reflectance) was added after that,
built and not run by its builder, and evaluated once (main ad1bea7); ``thirteenth`` (session 24: the
RealSense D435i, whose IR imagers see visible light (``ir_leak`` for every URI, the kiosk screen's
light included), LED panels dimmed by PWM banding its rolling-shutter colour image, attack displays at
350-1000 cd/m^2 on a stand or held steadier, people with their own palpebral fissure) was added after
that, built and not run by its builder, and evaluated once (main e872e0c); ``fourteenth`` (session 25:
the RealSense D456, low sun through venetian blinds striping the face and the wall, every eye's cornea
mirroring the projector and the lamp, people with their own corneal radius and diameter) was added
after that, built and not run by its builder, and evaluated once (main d779572); ``fifteenth`` (session
26: the Orbbec Gemini 335Le on Ethernet, whose IR imagers see visible light (``ir_leak`` for every URI),
halogen downlights under a turning ceiling fan whose blades' shadows pulse on the face at 7.5-29 Hz, and
high-pressure sodium street lights at night flickering at twice the mains frequency, every eye's cornea
drawn, attack displays as the thirteenth's) was added after that, built and not run by its builder, and
evaluated once; ``sixteenth`` (session 27: the Orbbec Gemini 330, whose IR imagers see visible light
(``ir_leak`` for every URI), a lobby under fluorescent troffers one of whose tubes is failing and blinks
on and off at random, and a night street beside an amber warning beacon whose flashes change the face's
colour, every eye's cornea drawn, attack displays as the thirteenth's) was added after that, built and
not run by its builder, and evaluated once (main 46c04a4); ``seventeenth`` (session 28: the RealSense
D436, rendered with an IR-pass filter, a vestibule's occupancy-controlled dim-to-warm LED downlights
fading up or down once during the session, and a night street beside an emergency vehicle's light bar
flashing red and blue, every eye's cornea drawn, attack displays as the thirteenth's, people with their
own make-up) was added after that, built and not run by its builder, to be evaluated once on the final
judge.

Each presentation runs as the daemon would: the quality phase (at most 30 framesets; the gate's
prompts, the colour exposure metered on the face, the projector's power planned) and, when it
completes, the challenge window judged in this process. A quality phase that never completes is a
failure to acquire for a live person (FTA, by the prompt it ended on) and a non-response for an
attack (APNRR); neither enters BPCER or APCER. ``passive`` runs the same presentations without a
challenge, as a recording or a camera that cannot drive its projector is judged.

People who follow prompts (``follow_prompts``, ``--follow-prompts N``; off by default, so figures
stay comparable with runs before it): the simulated person never moves during a quality phase, so
without it a live face refused with a distance prompt is an FTA at once. With it, a presentation
refused ``MOVE_CLOSER`` or ``MOVE_BACK`` is presented again with the same person, light, pose,
background and seed, moved along the camera axis by one step (``followed_uri``), up to N more
times; a person, attacker or injected stream alike (an attacker follows prompts too). The record
keeps every attempt (``attempts``) and reports the last one's outcome; the report gives FTA, BPCER,
APCER and APNRR both at the first attempt (``first_attempt``) and after the prompts, with the
attempts and camera time taken (``prompts_followed``). The light prompts (``TOO_BRIGHT_TO_VERIFY``:
into shade out of the sun, else a dimmer place; ``LIGHT_CHANGED``: later) come after a window judged
and refused: a presentation accepted after one is accepted after the prompts and refused at the first
attempt, and ``prompts_followed`` counts them per kind (``light_prompts``), the shade step apart.

A seed fixes every presentation: its scene (``presentation_query``), its nonce (a digest of its URI),
and the order in which framesets are folded (the judge measures on threads but folds in arrival
order; the simulator renders on demand with ``realtime=0`` and stamps arrival on the camera's own
timeline, and the reader's only wall-clock bound is on waiting for a frame that does not come). The
same command gives the same records, on an idle machine or a loaded one.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import tempfile
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import drivers
from agent.commands.projector_enrol import enrol_uris
from agent.liveness.challenge import failed_unmeasurable
from agent.liveness.detectors import Ramp, evaluate
from agent.liveness.dotref import DotReference, ReferenceInvalid
from agent.liveness.fusion import VerdictThresholds, fuse
from agent.liveness.judge import DROWNED_SCORE_CAP, judge
from agent.quality import QualityGate
from agent.quality.gate import SIM_LUX_K
from agent.quality.settings import QualitySettings
from agent.session.events import IR_FLOOD_CANNOT_VERIFY, LIGHT_CHANGED, verdict_prompt
from agent.session.offline import capture
from drivers.errors import CaptureAgentError
from drivers.sim import ATTACKS
from drivers.sim.families import POOLS, light_for, presentation_query
from hil.metrics import rate

SPLITS = tuple(POOLS)                       # ("train", ..., "fifteenth", "sixteenth", "seventeenth")
# The family being built for a session's one unseen evaluation, which the development benches
# (``bench.rerun_records``, ``bench.skin_area``) refuse to run; empty while none is being built. The
# eighth was built and evaluated once in the nineteenth session, the ninth in the twentieth, the tenth in
# the twenty-first, the eleventh in the twenty-second, the twelfth in the twenty-third, the thirteenth in
# the twenty-fourth, the fourteenth in the twenty-fifth, the fifteenth in the twenty-sixth, the sixteenth in
# the twenty-seventh, the seventeenth in the twenty-eighth (docs/liveness.md, *The eighth family* ... *The
# seventeenth family*); all are development sets since. Name the next family here while it is built.
UNSEEN_SPLITS: frozenset[str] = frozenset()
INJECTIONS = ("replay", "splice", "render")
LIVE = "live"
RECORD_VERSION = 2
# Defaults: ~3/n bounds APCER at 10 % per species with 30 error-free presentations, BPCER at 2 % with 150.
DEFAULT_PER_SPECIES = 30
DEFAULT_LIVE = 150
DEFAULT_INJECTION = 30
SOURCES = {"sim": "simulator, judged live", "db3": "genuine RealSense .db3 recordings, judged by analyze"}
IPD_ENVELOPE_PX = 60.0                      # §7.4: the capture envelope's lower bound on the IPD


@dataclass(frozen=True)
class Presentation:
    kind: str             # "bona_fide", "attack" or "injection"
    species: str          # "live", an attack species, or an injection kind
    split: str
    index: int
    uri: str

    @property
    def key(self) -> str:
        return f"{self.split}/{self.kind}/{self.species}/{self.index}"


def presentation_uri(split: str, species: str, index: int, inject: str | None = None, ir_leak: bool = False,
                     cornea: bool = False) -> str:
    """The sim URI of a presentation; ``ir_leak``: with the visible light a broadband camera's IR imagers
    see (``drivers/sim/leak.py``), appended as ``ir_leak=1``; ``cornea``: with the corneas' mirror images
    of the projector and the lamp (``drivers/sim/cornea.py``), appended as ``cornea=1`` (the scene
    otherwise the same either way)."""
    q = presentation_query(split, species, index)
    if inject is not None:
        q["inject"] = inject
    if ir_leak:
        q["ir_leak"] = "1"
    if cornea:
        q["cornea"] = "1"
    return "sim://?" + "&".join(f"{k}={v}" for k, v in q.items())


def ir_leak_splits() -> tuple[str, ...]:
    """The splits whose every camera's IR imagers lack an IR-pass filter: those ``--ir-leak`` can run."""
    from drivers.sim.profiles import get_profile
    return tuple(s for s in SPLITS if all(get_profile(c).visible_response is not None for c in POOLS[s].cameras))


def record_rendered_with(rec: Mapping[str, Any], key: str) -> bool:
    """Whether a record's presentation was rendered with ``key=1`` (``ir_leak``, ``cornea``): such
    records are reported apart from the others."""
    query = rec.get("uri", "").split("?", 1)
    return len(query) == 2 and f"{key}=1" in query[1].split("&")


def presentations(split: str, *, live: int, per_species: int, injection: int,
                  species: Iterable[str] | None = None, ir_leak: bool = False,
                  cornea: bool = False) -> list[Presentation]:
    """The presentations of a run: ``live`` bona fide, ``per_species`` of each attack species and
    ``injection`` of each injection kind (a live person's stream injected on the camera link), or
    only those named in ``species``; ``ir_leak``: each rendered with ``ir_leak=1``; ``cornea``: with
    ``cornea=1``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}")
    wanted = set(species) if species is not None else None
    out: list[Presentation] = []

    def want(name: str) -> bool:
        return wanted is None or name in wanted

    if want(LIVE):
        out += [Presentation("bona_fide", LIVE, split, i,
                             presentation_uri(split, LIVE, i, ir_leak=ir_leak, cornea=cornea)) for i in range(live)]
    for sp in ATTACKS:
        if want(sp):
            out += [Presentation("attack", sp, split, i,
                                 presentation_uri(split, sp, i, ir_leak=ir_leak, cornea=cornea))
                    for i in range(per_species)]
    for inj in INJECTIONS:
        if want(inj):
            # Injected streams show live people of the family (their own draws, not the bona fide ones).
            out += [Presentation("injection", inj, split, i,
                                 presentation_uri(split, LIVE, 10_000 + i, inj, ir_leak=ir_leak, cornea=cornea))
                    for i in range(injection)]
    return out


def presentation_nonce(p: Presentation) -> bytes:
    """The challenge nonce for one presentation: fixed by its scene, so the same command gives the
    same records (the server draws fresh random nonces in service; a bench must be repeatable). A
    presentation rendered with ``cornea=1`` takes the nonce of the same one without it: the same
    projector schedule and scene, the corneas' glints the only difference (a paired comparison)."""
    base, _, query = p.uri.partition("?")
    uri = base + "?" + "&".join(kv for kv in query.split("&") if kv != "cornea=1") if query else p.uri
    return hashlib.sha256(b"capture-agent/pad-eval/v2\0" + uri.encode()).digest()


# --- people who follow prompts --------------------------------------------------------------------------

# The prompts a person answers by stepping along the camera's axis, and the direction (mm, + away).
# IR_TOO_BRIGHT ("step back a little or move out of direct light"), in the quality phase: the simulated
# person steps back (the projector's dots dim with the square of the distance; the ambient light on
# the face does not change). After a judged window, TOO_BRIGHT_TO_VERIFY: into shade (LIGHT_PROMPTS);
# LIGHT_CHANGED: the same place and light, a few seconds later (RETRY_PROMPTS).
DISTANCE_PROMPTS = {"MOVE_CLOSER": -1.0, "MOVE_BACK": 1.0, "IR_TOO_BRIGHT": 1.0}
# One answer to "please move a little closer": the head comes forward by a lean or a half step, not
# a stride. The step the gate needs at the envelope's far end is about 50 mm (on the fifth family's
# Gemini 336L the faces refused MOVE_CLOSER measured 50-60 px at 464-520 mm, 60 px is reached near
# 470 mm: docs/liveness.md); a lean of the trunk moves the head 50-100 mm and a half step about as
# much, so the mean step is 70 mm with a standard deviation of 25 mm, clipped to 20-150 mm: some
# people barely move (the same prompt then comes again), some overshoot (and may hear MOVE_BACK).
# TOO_BRIGHT_TO_VERIFY ("move out of the bright light", after a challenge the ambient light left
# unmeasurable: ``agent.session.events.challenge_unmeasurable``, as the daemon decides it): the person
# steps into shade, a model, not a measurement: the light on the face, ``lux`` and with it the
# ambient NIR (the simulator's is proportional to it), falls by ``SHADE_FACTOR``; from open shade
# (1,000-7,000 lux in the sixth family) under an awning or a lobby's overhang, a quarter of it. Every
# other key is kept: the same light source and colour temperature, the same distance.
LIGHT_PROMPTS = {"TOO_BRIGHT_TO_VERIFY": 4.0}
SHADE_FACTOR = LIGHT_PROMPTS["TOO_BRIGHT_TO_VERIFY"]
# Where the bright light is not the room's ``lux`` (issue 14, twenty-fourth session), the step into shade
# is what takes the face out of that light, not a dimmer room:
# - in direct sun (``direct_sun``: the beam is 65 % of the lux, sun.py) or under a tree's sunflecks
#   (``dappled_sun``: 2,000-10,000 lux of direct sun on top of the canopy's 200-1,500, lobby.py), the
#   person steps a pace into the shadow of the canopy, the kiosk's hood or the denser foliage, out of the
#   sun: ``shade=1`` (the simulator: the whole face on the edge's shaded side, 0.35 of the lux; or no
#   fleck, the canopy's lux kept, for the gaps' sun is what was bright). Striped by low sun through
#   venetian blinds (``blinds``, the fourteenth family: sun.Blinds), the person steps aside out of the
#   stripes: ``shade=1``, the whole face in the blind's shade (0.10-0.30 of the lux). Already in that shade
#   (``shade=1``), a further prompt finds no more sun to leave: the open-shade answer above.
# - at night under a forecourt's canopy with passing cars' headlamps (``headlights``): the canopy's
#   15-80 lux are not what was bright, and no step takes a face out of a beam that sweeps the whole
#   forecourt from the road; by the time the prompt is read the car has passed: the person stays where
#   they are and tries again (``RETRY_PROMPTS``'s answer: the same light, the scene's lights later).
SUN_LIGHTS = frozenset({"direct_sun", "dappled_sun", "blinds"})
SWEPT_LIGHTS = frozenset({"headlights"})
# LIGHT_CHANGED ("the light on your face changed during the check: hold still and try again", after a
# window a passing shadow or another uncommanded change of the room's light left unmeasurable): the
# person stays where they are, in the same light, and tries again a little later. The simulator starts
# every session at scene time 0, so the retry starts the scene's lights at ``t0_s`` = the previous
# attempt's start + its camera time (``camera_s``) + ``RETRY_PAUSE_S``: reading the prompt (20
# characters, about 1 s at a reading speed of ~300 Chinese characters a minute) and the app's
# restart of the session (a tap or its own retry, about 1-2 s); 3 s, a model. Nothing else changes.
RETRY_PROMPTS = frozenset({LIGHT_CHANGED.code})
# IR_FLOOD_CANNOT_VERIFY ("infrared light here keeps the check from working: please ask staff", after a window
# whose projector a light the person cannot see hid on a dim face: a CCTV dome's flood, ``cctv_ir``): nothing
# the person can do takes the face out of it (the dome is on the camera's side, 1-3 m away, so a pace moves
# the face a little within the flood, and the face must stay towards the camera), so the person does as
# told and tries no more here: the presentation ends refused. (Before misc26 the prompt was
# TOO_BRIGHT_TO_VERIFY, answered by a quarter of the lux, which dims the lobby's LEDs but not the flood.)
STOP_PROMPTS = frozenset({IR_FLOOD_CANNOT_VERIFY.code})
# An attacker is not bound by that "ask staff" (review 27): the prompt comes after the strike, the kiosk lets
# any presenter start a new session while the lockout leaves tries, and nothing in the terminal changes
# with the prompt. pad-eval's attacker (``kind`` not ``bona_fide``) answers it as the retry prompts: the
# same place and light, a few seconds later (``t0_s``). Before, it stopped as the person does, and the
# after-prompts APCER counted refused what a real attacker would have tried again.
_LIGHT_OR_RETRY = frozenset(LIGHT_PROMPTS) | RETRY_PROMPTS
# FACE_HEADWEAR ("please take off your hat or cap": something in front of the eyes, nothing below them, as a
# brim pulled over them) refuses the quality phase; the person takes the cap off and tries again (``cap=0``,
# added at the end when absent: the sixteenth family's caps, drivers/sim/identity.CAP_*), an attacker as well
# (a mask or a print under a cap is presented without it). Answered as the distance prompts are.
HEADWEAR_PROMPTS = frozenset({"FACE_HEADWEAR"})
RETRY_PAUSE_S = 3.0
_SIM_T0_S = 3600.0                           # what a sim:// URI accepts (drivers/sim/config.py)
_SIM_LUX = (1.0, 100000.0)                   # what a sim:// URI accepts (drivers/sim/config.py)
PROMPT_STEP_MM = 70.0
PROMPT_STEP_SD_MM = 25.0
PROMPT_STEP_RANGE_MM = (20.0, 150.0)
_SIM_DISTANCE_MM = (150.0, 3000.0)           # what a sim:// URI accepts (drivers/sim/config.py)
_FOLLOW_SALT = 0x70F0                       # the step's own stream, apart from the scene's draws


def prompt_step_mm(seed: int, attempt: int) -> float:
    """How far the person of presentation seed ``seed`` moves answering the prompt before attempt
    ``attempt`` (1 = the first re-presentation): deterministic in both."""
    rng = np.random.default_rng([int(seed), int(attempt), _FOLLOW_SALT])
    return float(np.clip(rng.normal(PROMPT_STEP_MM, PROMPT_STEP_SD_MM), *PROMPT_STEP_RANGE_MM))


def followed_uri(uri: str, reason: str, attempt: int, camera_s: float = 0.0) -> str:
    """The presentation ``uri`` again after its person answered the distance prompt ``reason``
    (``DISTANCE_PROMPTS``): only ``distance_mm`` changes, by :func:`prompt_step_mm` of the URI's own
    seed; or the light prompt ``reason`` (``LIGHT_PROMPTS``): only ``lux`` changes, divided by its
    factor, save where the bright light is the sun's (``SUN_LIGHTS``: only ``shade=1`` is set, added at
    the end when absent) or a passing headlamp's (``SWEPT_LIGHTS``: the retry's answer); or the retry
    prompt ``reason`` (``RETRY_PROMPTS``): only ``t0_s`` changes (added at the end when absent),
    advanced by the previous attempt's camera time ``camera_s`` and ``RETRY_PAUSE_S``; a stop prompt
    (``STOP_PROMPTS``, which only an attacker answers) as a retry prompt; or ``FACE_HEADWEAR``
    (``HEADWEAR_PROMPTS``): only ``cap`` changes, to 0 (added at the end when absent).
    Every other key (identity, light, pose, background, seed) is kept, in its order."""
    base, query = uri.split("?", 1)
    pairs = [kv.split("=", 1) for kv in query.split("&")]
    q = dict(pairs)
    if reason in HEADWEAR_PROMPTS:
        if "cap" not in q:
            return f"{uri}&cap=0"
        return base + "?" + "&".join(f"{k}={'0' if k == 'cap' else v}" for k, v in pairs)
    if reason in LIGHT_PROMPTS:
        light = light_for(q.get("family", "any"), int(q.get("identity", "0")), q.get("light"))
        if light in SUN_LIGHTS and q.get("shade", "0") in ("0", "false", "off", "no"):
            if "shade" not in q:
                return f"{uri}&shade=1"
            return base + "?" + "&".join(f"{k}={'1' if k == 'shade' else v}" for k, v in pairs)
        if light in SWEPT_LIGHTS:
            reason = LIGHT_CHANGED.code
    if reason in RETRY_PROMPTS or reason in STOP_PROMPTS:
        if not (math.isfinite(camera_s) and camera_s >= 0):
            raise ValueError(f"camera_s must be a finite time >= 0, got {camera_s!r}")
        t0 = str(round(min(float(q.get("t0_s", "0")) + camera_s + RETRY_PAUSE_S, _SIM_T0_S), 3))
        if "t0_s" not in q:
            return f"{uri}&t0_s={t0}"
        return base + "?" + "&".join(f"{k}={t0 if k == 't0_s' else v}" for k, v in pairs)
    if reason in LIGHT_PROMPTS:
        lux = str(round(min(max(float(q["lux"]) / LIGHT_PROMPTS[reason], _SIM_LUX[0]), _SIM_LUX[1]), 1))
        return base + "?" + "&".join(f"{k}={lux if k == 'lux' else v}" for k, v in pairs)
    step = prompt_step_mm(int(q.get("seed", "0")), attempt)
    d = float(q["distance_mm"]) + DISTANCE_PROMPTS[reason] * step
    moved = str(round(min(max(d, _SIM_DISTANCE_MM[0]), _SIM_DISTANCE_MM[1])))
    return base + "?" + "&".join(f"{k}={moved if k == 'distance_mm' else v}" for k, v in pairs)


def _clean(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return round(v, 5) if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


# Enrolment scenes for a presentation's camera (``agent.commands.projector_enrol``): a flat print held
# at 0.45 m and at 0.65 m (a matte board: where faces are, bright dots) and the bare wall (1.6 m: the
# rest of the field, and the depth that pins the parallax), in the family's own light. Four on-off
# pairs a scene find the sim cameras' f·b as 16 do (docs/liveness.md, "Review 4 (a)").
ENROL_LUX = 150.0
ENROL_PAIRS = 4
_DOT_REFERENCES: dict[str, DotReference] = {}
# What the enrolment's result depends on besides its scenes: the enrolment code and the simulator
# that renders the scenes (its projector pattern, optics and noise).
_ENROLMENT_SOURCES = ("agent/liveness/dotref.py", "agent/commands/projector_enrol.py")
_SIMULATOR_SOURCES = "drivers/sim"


# Lights under which no technician can enrol a projector: the "wall" behind the board is a sunlit
# street behind glazing (the tenth family's backlight), whose near infrared drowns the dots (every
# enrolment under it fails LIV_DOT_ENROLMENT_FAILED). The installation enrols facing a wall (blinds
# down, or the unit enrolled at the depot; docs/liveness.md), so pad-eval enrols under the family's
# first light that has one.
NO_WALL_LIGHTS = frozenset({"backlight"})


def enrolment_light(family: str) -> str:
    """The light a family's cameras are enrolled under: its pool's first with a wall behind the board."""
    return next(light for light in POOLS[family].lights if light not in NO_WALL_LIGHTS)


def enrolment_uris(uri: str) -> list[str]:
    """The sim scenes a presentation's camera is enrolled from: the same camera profile, family and
    depth mode as ``uri``, a board (``subject=print``) at 0.45 m and 0.65 m, then the wall alone, under
    :func:`enrolment_light`."""
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(uri).query))
    family = q.get("family", "train")
    keep = {k: q[k] for k in ("camera", "depth_mode", "scatter", "scatter_core", "ir_leak") if k in q}
    base = {"family": family, **keep, "light": enrolment_light(family), "lux": str(ENROL_LUX),
            "background": "plain", "realtime": "0", "identity": "1", "seed": "1"}
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
    from drivers.sim.camera import FIRMWARE, SERIAL

    # The profile and depth mode are in the scenes' URIs; the unit is the simulator's one serial.
    unit = {"uris": uris, "serial": SERIAL, "firmware": FIRMWARE, "pairs": ENROL_PAIRS,
            "code": enrolment_version()}
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
    profile and depth mode (every sim unit of a profile has one pattern): kept in this process, and
    in :func:`enrolment_cache_dir` keyed by the enrolment scenes, the unit and
    :func:`enrolment_version` (a file that does not load strictly is enrolled again)."""
    uris = enrolment_uris(uri)
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


def kiosk_gate() -> QualityGate:
    """pad-eval's quality gate: the default one, with the simulator's lux calibration (``SIM_LUX_K``) so the
    face's illuminance is estimated as on a kiosk whose camera has one (the prompt after a refused verdict
    reads it: ``events.verdict_prompt``), and its illuminance checks open (0 lux up), so acquisition is as
    with the uncalibrated gate pad-eval ran before (a sim family draws its lux inside the envelope)."""
    return QualityGate(QualitySettings(lux_calibration={"default": SIM_LUX_K},
                                       thresholds={"lux_min": 0.0, "lux_max": float(_SIM_LUX[1])}))


def run_presentation(p: Presentation, *, frames: int, passive: bool, gate: QualityGate,
                     thresholds: VerdictThresholds, dot_reference: bool = True) -> dict[str, Any]:
    """One presentation, as the daemon would run it; a record with no face data in it. With
    ``dot_reference`` (challenged sessions) the camera's projector pattern is enrolled first
    (:func:`dot_reference_for`) and every on-off pair is tested against it."""
    rec: dict[str, Any] = {"v": RECORD_VERSION, "key": p.key, "split": p.split, "kind": p.kind,
                           "species": p.species, "index": p.index, "uri": p.uri, "passive": passive,
                           "frames": frames, "source": "sim", "dot_reference": dot_reference and not passive}
    ref = None
    try:
        if dot_reference and not passive:
            ref = dot_reference_for(p.uri)
            rec["dot_reference_sha256"] = hashlib.sha256(ref.to_bytes()).hexdigest()
        cam = drivers.open(p.uri)
        with cam:
            cap = capture(cam, frames, None if passive else presentation_nonce(p), gate, require_quality=True)
            elapsed = getattr(cam, "scene_time_s", None)          # the simulator's: a retry's start (followed_uri)
    except CaptureAgentError as exc:
        return {**rec, "outcome": "error", "error": exc.code, "message": str(exc)}
    q = cap.quality
    if isinstance(elapsed, float):
        rec["camera_s"] = round(elapsed, 3)
    rec["quality"] = q.to_dict()
    if math.isfinite(q.lux):
        rec["face_lux"] = round(q.lux, 1)                       # the gate's estimate (kiosk_gate): the prompt's
    rec["in_envelope"] = not (q.ipd_px == q.ipd_px and q.ipd_px < IPD_ENVELOPE_PX)
    if not q.complete:
        return _clean({**rec, "outcome": "not_acquired", "reason": q.reason})
    if len(cap.sets) < frames:           # a stalled source: never silently a shorter window
        return _clean({**rec, "outcome": "error", "error": "SYN_TIMEOUT",
                       "message": f"only {len(cap.sets)} of {frames} framesets in the window"})
    r = judge(cap.sets, gate, thresholds, challenge=cap.challenge, notes=cap.notes, dot_reference=ref)
    v = r.verdict
    reported = [fs.ir.metadata.projector_on for fs in cap.sets if fs.ir is not None]
    claimed_off = bool(reported) and all(x is False for x in reported)
    projector_checked = "projector" in (v.challenge or {})     # then the dots decide, as in the judge
    rec.update(outcome="accepted" if v.verdict == "live" else "rejected", verdict=v.verdict, score=v.score,
               detectors=v.detectors, cues=v.cues, notes=v.notes,
               challenge=v.challenge, injection_signals=v.injection,
               projector_seen=projector_checked or not claimed_off, projector_claimed_off=claimed_off)
    told = verdict_prompt(v, thresholds.live_min, q.lux)
    if told is not None:
        rec["prompt"] = told.code                               # what the daemon tells the person (capture.py)
    return _clean(rec)


def rescore(rec: dict[str, Any], r: Mapping[str, Ramp]) -> float:
    """The session score a record's stored cue summary gets under ramps ``r``: the judge's own rules
    (``agent.liveness.judge.Judge.finish``) on numbers instead of frames, so ramps fitted on a
    training split can be tried on its records without rendering them again. A test checks it
    gives the judge's score under the ramps the judge used."""
    cues = rec.get("cues") or {}
    if not rec.get("detectors"):
        return 0.0                                   # too few face frames: inconclusive, score 0
    m = {k: (float("nan") if v is None else float(v)) for k, v in cues.items()}
    challenged = any(k in m for k in ("projector_speckle", "projector_share"))
    s = evaluate(m, challenged=challenged, projector_seen=rec.get("projector_seen", True), r=r)
    fused = min(fuse(s.as_dict()), s.material_bound)
    if s.unmeasured:
        fused = min(fused, DROWNED_SCORE_CAP)
    if (rec.get("challenge") or {}).get("passed") is False:
        # Not measurable (bright light) caps the score like drowned material; a contradiction is 0.
        fused = min(fused, DROWNED_SCORE_CAP) if failed_unmeasurable(rec.get("challenge")) else 0.0
    if rec.get("projector_claimed_off") and ((rec.get("challenge") or {}).get("projector") or {}).get("passed"):
        fused = 0.0                                  # metadata contradicting the dots (the judge's rule)
    if (rec.get("injection_signals") or {}).get("suspicious"):
        fused = 0.0
    return float(fused)


RECORD_SETTLE_SETS = 10          # framesets the recording rig lets the exposure settle on the face first


def record_presentation(p: Presentation, path: Path, frames: int) -> int:
    """A genuine RealSense recording of ``p`` (librealsense's own recorder through
    ``rs.software_device``, ``drivers/realsense_record.py``), made as the agent's lab record mode
    would make it: the colour exposure metered on the face, the projector left on (nothing to
    challenge), the framesets after the exposure settled. Returns the framesets written."""
    from agent.pipeline.align import align_frameset
    from agent.pipeline.frames import FramesetReader
    from agent.quality.metering import FaceMetering
    from drivers.realsense_record import Recorder

    gate = QualityGate()
    cam = drivers.open(p.uri)
    written = 0
    with cam:
        reader = FramesetReader(cam)
        metering = FaceMetering(cam)
        rec = Recorder(cam, str(path))
        try:
            for k, fs in enumerate(reader.stream(timeout_s=30.0, per_frameset=True)):
                if k < RECORD_SETTLE_SETS:
                    a = align_frameset(fs)
                    metering.observe(gate.evaluate(a).face, a.color.width, a.color.height)
                    continue
                for f in fs.frames.values():
                    rec.write(f)
                written += 1
                if written >= frames + 2:          # a little more than analyze reads
                    break
        finally:
            rec.close()
            metering.end()
    return written


def run_recorded(p: Presentation, *, frames: int, workdir: Path) -> dict[str, Any]:
    """``p`` recorded to a ``.db3`` and judged by ``capture-agent analyze realsense+file://...``
    (in this process: the same judging code as the sandboxed worker). The file is deleted after."""
    from agent.commands.analyze import analyze

    rec: dict[str, Any] = {"v": RECORD_VERSION, "key": p.key, "split": p.split, "kind": p.kind,
                           "species": p.species, "index": p.index, "uri": p.uri, "passive": True,
                           "frames": frames, "source": "db3"}
    path = workdir / f"{p.split}-{p.species}-{p.index}.db3"
    try:
        record_presentation(p, path, frames)
        out = analyze(f"realsense+file://{path}", frames, isolated=False)
    except CaptureAgentError as exc:
        # Bad input refused by analyze (no face, empty depth, a missing stream) or a source error:
        # an error with its code, never a verdict.
        return _clean({**rec, "outcome": "error", "error": exc.code, "message": str(exc)})
    finally:
        path.unlink(missing_ok=True)
    q = out["quality"]
    lv = out["liveness"]
    rec["quality"] = {"complete": bool(q["ok"]), "prompts": q.get("prompts", [])}
    rec["in_envelope"] = True
    ipd = (q.get("metrics") or {}).get("ipd_px")
    if ipd is not None:
        rec["in_envelope"] = ipd >= IPD_ENVELOPE_PX
    if not q["ok"]:
        return _clean({**rec, "outcome": "not_acquired", "reason": (q.get("prompts") or ["NO_FACE"])[0]})
    rec.update(outcome="accepted" if lv["verdict"] == "live" else "rejected", verdict=lv["verdict"],
               score=lv["score"], detectors=lv["detectors"], cues=lv["cues"], notes=lv["notes"],
               challenge=None, injection_signals=lv["injection"], projector_seen=True)
    return _clean(rec)


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            if r.get("v") == RECORD_VERSION:
                out.append(r)
    return out


def _prompt_to_follow(rec: dict[str, Any]) -> str | None:
    """The prompt a person acts on after this attempt: a distance prompt or ``FACE_HEADWEAR`` that
    refused the quality phase, or ``TOO_BRIGHT_TO_VERIFY`` or ``LIGHT_CHANGED`` after a judged window
    (``prompt``, as the daemon emits it). After ``STOP_PROMPTS`` None for a bona fide person (no step answers them); an
    attacker or injector tries again (:func:`followed_uri`: the retry's answer)."""
    if rec["outcome"] == "not_acquired" and (rec.get("reason") in DISTANCE_PROMPTS
                                             or rec.get("reason") in HEADWEAR_PROMPTS):
        return str(rec["reason"])
    if rec["outcome"] == "rejected" and rec.get("prompt") in _answered(rec.get("kind")):
        return str(rec["prompt"])
    return None


def _answered(kind: Any) -> frozenset[str]:
    """The prompts after a judged window that a presenter of ``kind`` answers with another attempt: the
    light and retry prompts, and for anyone not ``bona_fide`` the stop prompts too (an attacker is not
    bound by "ask staff")."""
    return _LIGHT_OR_RETRY if kind == "bona_fide" else _LIGHT_OR_RETRY | STOP_PROMPTS


def run_following(p: Presentation, follow_prompts: int, attempt: Callable[[Presentation], dict[str, Any]]
                  ) -> dict[str, Any]:
    """``p`` presented by ``attempt``, and again while it is refused with a distance prompt, its
    person moved as told (:func:`followed_uri`), at most ``follow_prompts`` more times. The record is
    the last attempt's with the presentation's own ``uri`` (its drawn conditions), ``final_uri``,
    ``follow_prompts`` and every attempt's record in ``attempts`` (the first is the record the
    presentation gets without following prompts)."""
    attempts = [attempt(p)]
    while len(attempts) <= follow_prompts and (told := _prompt_to_follow(attempts[-1])) is not None:
        moved = dataclasses.replace(p, uri=followed_uri(attempts[-1]["uri"], told, len(attempts),
                                                        float(attempts[-1].get("camera_s") or 0.0)))
        attempts.append(attempt(moved))
    last = attempts[-1]
    return {**last, "key": p.key, "uri": p.uri, "final_uri": last["uri"], "follow_prompts": follow_prompts,
            "attempts": attempts}


def run(items: list[Presentation], *, frames: int, passive: bool, thresholds: VerdictThresholds,
        records: Path | None = None, progress: Callable[[int, int, dict], None] | None = None,
        recordings: Path | None = None, dot_reference: bool = True, follow_prompts: int = 0
        ) -> list[dict[str, Any]]:
    """Run ``items`` in order. With ``records``, each record is appended to that JSONL file as it
    is made, and presentations already in it (same key, mode, source, window and ``follow_prompts``)
    are not run again: a long evaluation can be split across several invocations and resumed. With
    ``recordings`` (a directory for the temporary ``.db3`` files) each presentation is recorded and
    judged from the recording (passive by nature). With ``follow_prompts`` N > 0 a presentation
    refused with a distance prompt is presented again, moved as told, up to N times (``run_following``;
    simulator presentations only)."""
    if follow_prompts < 0 or (follow_prompts and recordings is not None):
        raise ValueError("follow_prompts must be >= 0, and applies to simulator presentations only")
    source = "db3" if recordings is not None else "sim"
    done: dict[tuple[str, str], dict[str, Any]] = {}      # by key and URI (ir_leak=1 runs share keys)
    if records is not None:
        for r in read_records(records):
            if r["passive"] == passive and r["frames"] == frames and r.get("source", "sim") == source \
                    and r.get("dot_reference", False) == (dot_reference and not passive and recordings is None) \
                    and r.get("follow_prompts", 0) == follow_prompts:
                done[(r["key"], r.get("uri", ""))] = r
    gate = kiosk_gate()

    def attempt(p: Presentation) -> dict[str, Any]:
        return run_presentation(p, frames=frames, passive=passive, gate=gate, thresholds=thresholds,
                                dot_reference=dot_reference)

    out = []
    for k, p in enumerate(items):
        rec = done.get((p.key, p.uri))
        if rec is None:
            if recordings is not None:
                rec = run_recorded(p, frames=frames, workdir=recordings)
            elif follow_prompts:
                rec = run_following(p, follow_prompts, attempt)
            else:
                rec = attempt(p)
            if records is not None:
                with records.open("a") as fh:
                    fh.write(json.dumps(rec) + "\n")
        out.append(rec)
        if progress is not None:
            progress(k + 1, len(items), rec)
    return out


# --- the report ------------------------------------------------------------------------------------

def select(records: list[dict[str, Any]], *, split: str, frames: int, source: str = "sim",
           passive: bool | None = None, follow_prompts: int = 0, ir_leak: bool = False,
           cornea: bool = False) -> list[dict[str, Any]]:
    return [r for r in records if r["split"] == split and r["frames"] == frames
            and r.get("source", "sim") == source and (passive is None or r["passive"] == passive)
            and r.get("follow_prompts", 0) == follow_prompts and record_rendered_with(r, "ir_leak") == ir_leak
            and record_rendered_with(r, "cornea") == cornea]


def rescored(records: list[dict[str, Any]], r: Mapping[str, Ramp]) -> list[dict[str, Any]]:
    """Records with ``score`` as ramps ``r`` give it (``rescore``), the run's own kept as ``run_score``
    (every attempt of a record that followed prompts too)."""
    out = []
    for rec in records:
        if rec["outcome"] in ("accepted", "rejected"):
            rec = {**rec, "run_score": rec.get("run_score", rec.get("score")), "score": round(rescore(rec, r), 5)}
        if rec.get("attempts"):
            rec = {**rec, "attempts": rescored(rec["attempts"], r)}
        out.append(rec)
    return out


def accepted(rec: dict[str, Any], live_min: float) -> bool:
    """Accepted at ``live_min``: the session's score reaches it (the verdict's own rule; scores are
    forced to 0 by a failed challenge or a non-physical stream, capped below 0.5 when material was
    unmeasurable, so they never pass)."""
    return rec["outcome"] in ("accepted", "rejected") and (rec.get("score") or 0.0) >= live_min


def _rate_dict(errors: int, n: int) -> dict[str, Any]:
    r = rate(errors, n)
    return {"rate": _clean(r.rate), "upper95": _clean(r.upper_one_sided), "errors": errors, "n": n}


def threshold_for_apcer(attack_scores: dict[str, list[float]], target: float) -> float:
    """The lowest live threshold that holds every species' APCER at or below ``target`` on these
    scores (ties at the threshold count as accepted, so it sits just above the deciding score)."""
    t = 0.0
    for scores in attack_scores.values():
        s = np.sort(np.asarray(scores, dtype=np.float64))
        if s.size == 0:
            continue
        allowed = int(np.floor(target * s.size))
        t = max(t, float(s[s.size - 1 - allowed]) + 1e-6) if allowed < s.size else t
    return t


LIVE_MIN_CAP = 0.9          # a live threshold above this would turn away live faces by the score's own noise


def fit_thresholds(records: list[dict[str, Any]], target_apcer: float = 0.001, margin: float = 0.02,
                   floor: float = 0.5) -> dict[str, Any]:
    """Verdict thresholds from a training split's records: the live threshold holds every attack
    species' APCER (decided presentations) at ``target_apcer`` with a margin above the deciding
    score, never below ``floor``; the attack threshold sits under the lowest live score.

    A species that no threshold up to ``LIVE_MIN_CAP`` holds at the target (its attacks score like
    live faces on every cue) is named in ``not_held`` and left out of the choice: the threshold is
    then fitted on the others, and every report shows that species' APCER as it is."""
    decided = [r for r in records if r["outcome"] in ("accepted", "rejected")]
    attacks: dict[str, list[float]] = defaultdict(list)
    for r in decided:
        if r["kind"] == "attack":
            attacks[r["species"]].append(r.get("score") or 0.0)
    live = [r.get("score") or 0.0 for r in decided if r["kind"] == "bona_fide"]
    raw = threshold_for_apcer(attacks, target_apcer)
    not_held = sorted(sp for sp, sc in attacks.items() if threshold_for_apcer({sp: sc}, target_apcer) > LIVE_MIN_CAP)
    held = {sp: sc for sp, sc in attacks.items() if sp not in not_held}
    live_min = round(float(min(1.0, max(floor, threshold_for_apcer(held, target_apcer) + margin))), 4)
    attack_max = round(float(max(0.0, min(live_min - 0.01, (min(live) - 0.02) if live else 0.2))), 4)
    return {"live_min": live_min, "attack_max": attack_max, "apcer_threshold": round(raw, 4),
            "target_apcer": target_apcer, "not_held": not_held,
            "live": len(live), "attacks": sum(map(len, attacks.values()))}


LUX_BANDS = (15.0, 50.0, 200.0, 1000.0, 3000.0, 7500.0)
DISTANCE_BANDS = (350.0, 410.0, 470.0, 520.0)
YAW_BANDS = (0.0, 6.0, 12.0, 18.0)


def _band(value: float, edges: tuple[float, ...], unit: str) -> str:
    for lo, hi in zip(edges, edges[1:], strict=False):
        if value < hi:
            return f"{lo:g}-{hi:g} {unit}"
    return f">= {edges[-1]:g} {unit}"


def skin_type(q: Mapping[str, str]) -> int:
    """The presented person's Fitzpatrick type: the URI's ``skin`` or its identity's in its family."""
    from drivers.sim.identity import Identity
    if "skin" in q:
        return int(q["skin"])
    return Identity.draw(int(q.get("identity", 0)), q.get("family", "any")).skin


def conditions(rec: dict[str, Any]) -> dict[str, str]:
    q = dict(kv.split("=", 1) for kv in rec["uri"].split("?", 1)[1].split("&"))
    return {"camera": q.get("camera", "?"), "light": q.get("light", "?"), "background": q.get("background", "?"),
            "lux": _band(float(q["lux"]), LUX_BANDS, "lux"),
            "distance": _band(float(q["distance_mm"]), DISTANCE_BANDS, "mm"),
            "yaw": _band(abs(float(q["yaw"])), YAW_BANDS, "°"),
            "skin": f"Fitzpatrick {skin_type(q)}"}


def breakdown(records: list[dict[str, Any]], live_min: float) -> dict[str, list[dict[str, Any]]]:
    """BPCER and FTA (bona fide) and APCER over all attack species, per condition: an average can
    hide a condition where everything fails (or a skin type the gate refuses: ``skin``, the
    presented person's Fitzpatrick type)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for axis in ("camera", "light", "lux", "distance", "yaw", "background", "skin"):
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in records:
            if r["outcome"] != "error" and r["kind"] in ("bona_fide", "attack"):
                groups[conditions(r)[axis]].append(r)
        rows = []
        for value, rs in sorted(groups.items()):
            bona = [r for r in rs if r["kind"] == "bona_fide"]
            bona_dec = [r for r in bona if r["outcome"] != "not_acquired"]
            att_dec = [r for r in rs if r["kind"] == "attack" and r["outcome"] != "not_acquired"]
            rows.append({"value": value,
                         "bpcer": _rate_dict(sum(not accepted(r, live_min) for r in bona_dec), len(bona_dec)),
                         "fta": _rate_dict(sum(r["outcome"] == "not_acquired" for r in bona), len(bona)),
                         "apcer_all_species": _rate_dict(sum(accepted(r, live_min) for r in att_dec), len(att_dec))})
        out[axis] = rows
    return out


def _camera_seconds(attempt: dict[str, Any]) -> float:
    """Camera time one attempt took: its quality phase's framesets, and the challenge window when it
    was acquired, at the URI's frame rate (the simulator's 30 fps when it names none)."""
    q = dict(kv.split("=", 1) for kv in attempt["uri"].split("?", 1)[1].split("&"))
    sets = (attempt.get("quality") or {}).get("framesets") or 0
    if attempt["outcome"] in ("accepted", "rejected"):
        sets += attempt.get("frames", 0)
    return sets / float(q.get("fps", 30.0))


def light_answer(before: str, after: str) -> str:
    """How the person answered a light prompt between two attempts' URIs (``followed_uri``): ``shade``
    (stepped out of the sun: ``shade=1`` added or set), ``dimmer`` (a quarter of the lux) or
    ``retry`` (the same place, later: ``t0_s``)."""
    a, b = (dict(kv.split("=", 1) for kv in u.split("?", 1)[1].split("&")) for u in (before, after))
    if b.get("shade", "0") == "1" and a.get("shade", "0") != "1":
        return "shade"
    return "dimmer" if b.get("lux") != a.get("lux") else "retry"


def light_prompts(records: list[dict[str, Any]], live_min: float) -> dict[str, Any]:
    """What the light prompts (``TOO_BRIGHT_TO_VERIFY``, ``LIGHT_CHANGED``) did to ``records`` (one
    kind's, people who followed prompts), as the person lived it (issue 14, twenty-fifth session):
    each such prompt came after a window judged and refused, so a presentation accepted after one was
    refused first and presented again. ``retried``: presentations that heard one and tried again;
    ``answers``: the retries by answer (``light_answer``); ``accepted_only_after_one``: presentations
    accepted at ``live_min`` after a light prompt (the after-prompts rates count them accepted, the
    first-attempt rates refused, or not acquired when a distance prompt came first); ``..._shade``:
    the same for those that stepped into shade; ``after_shade``: the final outcome of every
    presentation that stepped into shade (its verdict when judged, ``not_acquired`` otherwise);
    ``stopped``: bona fide presentations that ended on a prompt no step answers (``STOP_PROMPTS``), by
    code (an attacker answers them: its retries are among ``answers``)."""
    answers: Counter[str] = Counter()
    retried = accepted_after = accepted_after_shade = 0
    after_shade: Counter[str] = Counter()
    stopped = Counter(str(r["prompt"]) for r in records
                      if r["outcome"] == "rejected" and r.get("prompt") in STOP_PROMPTS and r["kind"] == "bona_fide")
    for r in records:
        att = r.get("attempts") or []
        heard = [light_answer(a["uri"], b["uri"]) for a, b in zip(att, att[1:], strict=False)
                 if a["outcome"] == "rejected" and a.get("prompt") in _answered(r["kind"])]
        if not heard:
            continue
        retried += 1
        answers.update(heard)
        ok = accepted(r, live_min)
        accepted_after += ok
        if "shade" in heard:
            accepted_after_shade += ok
            after_shade["accepted" if ok else str(r.get("verdict") or r["outcome"])] += 1
    return {"retried": retried, "answers": dict(sorted(answers.items())), "accepted_only_after_one": accepted_after,
            "accepted_only_after_shade": accepted_after_shade, "after_shade": dict(sorted(after_shade.items())),
            "stopped": dict(sorted(stopped.items()))}


def prompts_followed(records: list[dict[str, Any]], live_min: float = 0.5) -> dict[str, Any]:
    """What following the prompts took, per kind: attempts per presentation, how many were acquired
    only after a prompt, how many were accepted only after a light prompt (``light_prompts``), and the
    camera time to the end of the last attempt (``_camera_seconds``; the person's own step, a second
    or two per prompt, is not in it)."""
    out: dict[str, Any] = {"step_mm": {"mean": PROMPT_STEP_MM, "sd": PROMPT_STEP_SD_MM,
                                       "range": list(PROMPT_STEP_RANGE_MM)}}
    for kind in ("bona_fide", "attack", "injection"):
        rs = [r for r in records if r["kind"] == kind and r.get("attempts")]
        if not rs:
            continue
        secs = np.array([sum(_camera_seconds(a) for a in r["attempts"]) for r in rs])
        out[kind] = {
            "presentations": len(rs),
            "attempts": {str(n): c for n, c in sorted(Counter(len(r["attempts"]) for r in rs).items())},
            "acquired_after_a_prompt": sum(r["outcome"] != "not_acquired"
                                           and r["attempts"][0]["outcome"] == "not_acquired" for r in rs),
            "still_refused_with_a_distance_prompt": sum(r["outcome"] == "not_acquired"
                                                        and r.get("reason") in DISTANCE_PROMPTS for r in rs),
            "light_prompts": light_prompts(rs, live_min),
            "camera_seconds": {"median": _clean(float(np.median(secs))), "p90": _clean(float(np.quantile(secs, 0.9))),
                               "max": _clean(float(secs.max()))},
        }
    return out


def report(records: list[dict[str, Any]], *, split: str, passive: bool, live_min: float,
           threshold_source: str, frames: int, source: str = "sim", follow_prompts: int = 0,
           ir_leak: bool = False, cornea: bool = False) -> dict[str, Any]:
    """The ISO/IEC 30107-3 report of one split's records at the live threshold ``live_min``.
    ``source``: presentations judged live from the simulator (``sim``) or from genuine RealSense
    recordings of them (``db3``), reported apart. ``follow_prompts``: the records of runs whose
    people followed that many distance prompts (0: none); then every rate is after the prompts and
    ``first_attempt`` holds the same rates at each presentation's first attempt (ISO/IEC 30107-3
    counts FTA per transaction: both are honest, labelled). ``ir_leak``: the records rendered with the
    broadband IR imagers' visible light (``ir_leak=1``), reported apart from the rest; ``cornea``: those
    rendered with the corneas' glints (``cornea=1``), likewise."""
    records = [r for r in records if r["split"] == split and r["passive"] == passive and r["frames"] == frames
               and r.get("source", "sim") == source and r.get("follow_prompts", 0) == follow_prompts
               and record_rendered_with(r, "ir_leak") == ir_leak and record_rendered_with(r, "cornea") == cornea]
    errors = Counter(r.get("error") for r in records if r["outcome"] == "error")
    bona = [r for r in records if r["kind"] == "bona_fide" and r["outcome"] != "error"]
    bona_dec = [r for r in bona if r["outcome"] != "not_acquired"]
    not_acq = [r for r in bona if r["outcome"] == "not_acquired"]
    in_env = [r for r in bona if r.get("in_envelope", True)]
    bpcer = _rate_dict(sum(not accepted(r, live_min) for r in bona_dec), len(bona_dec))
    fta = _rate_dict(len(not_acq), len(bona))
    fta_env = _rate_dict(sum(r["outcome"] == "not_acquired" for r in in_env), len(in_env))

    def species_rows(kind: str, names: Iterable[str]) -> list[dict[str, Any]]:
        rows = []
        for name in names:
            rs = [r for r in records if r["kind"] == kind and r["species"] == name and r["outcome"] != "error"]
            if not rs:
                continue
            dec = [r for r in rs if r["outcome"] != "not_acquired"]
            a = _rate_dict(sum(accepted(r, live_min) for r in dec), len(dec))
            nr = _rate_dict(len(rs) - len(dec), len(rs))
            # The non-response rate's one-sided 95 % lower bound (Clopper-Pearson: one minus the upper
            # bound of the acquired share): 10 of 10 refused is "at least 74 %", its upper bound 1.0 says
            # nothing.
            nr_lower = 1.0 - rate(len(dec), len(rs)).upper_one_sided
            scores = [r.get("score") or 0.0 for r in dec]
            rows.append({"name": name, "apcer": a["rate"], "apcer_upper95": a["upper95"], "n": len(dec),
                         "accepted": a["errors"], "presented": len(rs), "apnrr": nr["rate"],
                         "apnrr_upper95": nr["upper95"],
                         "apnrr_lower95": _clean(nr_lower),
                         "apnrr_by_reason": dict(Counter(r.get("reason") for r in rs
                                                         if r["outcome"] == "not_acquired")),
                         "max_score": round(max(scores), 4) if scores else None})
        # Worst first; among equal APCERs the least tested (widest bound) first.
        return sorted(rows, key=lambda x: (-(x["apcer"] if x["apcer"] is not None else -1), -(x["apcer_upper95"] or 0)))

    species = species_rows("attack", ATTACKS)
    injection = species_rows("injection", INJECTIONS)
    # BPCER at APCER <= 0.1 %: the threshold is the one fixed on train (``live_min``); what this
    # split shows at it is BPCER above and every species' APCER in ``species``.
    worst = max((s["apcer"] for s in species if s["apcer"] is not None), default=None)
    live_scores = np.array([r.get("score") or 0.0 for r in bona_dec])
    attack_scores = {s: [r.get("score") or 0.0 for r in records if r["kind"] == "attack" and r["species"] == s
                         and r["outcome"] in ("accepted", "rejected")] for s in ATTACKS}
    own = threshold_for_apcer(attack_scores, 0.001)
    return {
        "split": split,
        "ir_leak": ir_leak,
        "cornea": cornea,
        "mode": "passive" if passive else "challenged",
        "source": SOURCES[source],
        "frames_per_session": frames,
        "threshold": {"live_min": live_min, "source": threshold_source},
        "species": species,
        "max_apcer": worst,
        "injection": injection if not passive else [],
        "bpcer": bpcer["rate"], "bpcer_upper95": bpcer["upper95"], "bpcer_n": bpcer["n"],
        "bpcer_at_apcer_0.1pct": {
            "threshold": live_min, "threshold_fixed_on": "train",
            "bpcer": bpcer["rate"], "bpcer_upper95": bpcer["upper95"],
            "max_apcer": worst,
            # For reference only, never a result: the threshold this split's own scores would have
            # chosen, and the BPCER there (optimistic, because chosen on the data it is reported on).
            "this_split_own_threshold": round(own, 4),
            "bpcer_at_own_threshold": _clean(float(np.mean(live_scores < own))) if live_scores.size else None,
        },
        "fta": fta["rate"], "fta_upper95": fta["upper95"], "fta_n": fta["n"],
        "fta_in_envelope": fta_env["rate"], "fta_in_envelope_upper95": fta_env["upper95"],
        "fta_in_envelope_n": fta_env["n"],
        "fta_by_reason": dict(Counter(r.get("reason") for r in not_acq)),
        "bpnrr": fta["rate"], "bpnrr_upper95": fta["upper95"],
        "refusals_without_prompt": sum(1 for r in records if r["outcome"] == "not_acquired" and not r.get("reason")),
        "challenge_failed_bona_fide": sum(1 for r in bona_dec if (r.get("challenge") or {}).get("passed") is False),
        "conditions": breakdown(records, live_min),
        "counts": {"bona_fide": len(bona), "bona_fide_decided": len(bona_dec),
                   "attacks": sum(s["presented"] for s in species),
                   "injection": sum(s["presented"] for s in injection), "errors": dict(errors)},
        "supports": {"bpcer_demonstrable_at_0_errors": _clean(1 - 0.05 ** (1 / max(len(bona_dec), 1))),
                     "apcer_demonstrable_per_species_at_0_errors":
                         _clean(1 - 0.05 ** (1 / max(min((s["n"] for s in species), default=1), 1)))},
        **(_after_prompts(records, split=split, passive=passive, live_min=live_min, threshold_source=threshold_source,
                          frames=frames, source=source, follow_prompts=follow_prompts) if follow_prompts else {}),
    }


def _after_prompts(records: list[dict[str, Any]], *, follow_prompts: int, **kw: Any) -> dict[str, Any]:
    """The report's part for people who followed prompts: the rates at each presentation's first
    attempt, and what following took."""
    first = [{**r["attempts"][0], "key": r["key"]} for r in records if r.get("attempts")]
    f = report(first, **kw)
    keep = ("bpcer", "bpcer_upper95", "bpcer_n", "fta", "fta_upper95", "fta_n", "fta_in_envelope",
            "fta_in_envelope_upper95", "fta_in_envelope_n", "fta_by_reason", "max_apcer")
    rows = ("name", "apcer", "apcer_upper95", "n", "accepted", "presented", "apnrr", "apnrr_upper95", "apnrr_lower95",
            "apnrr_by_reason")
    return {"rates": f"after following up to {follow_prompts} prompts (distance; light: into shade, a dimmer "
                     "place or later; first_attempt: without)",
            "first_attempt": {**{k: f[k] for k in keep},
                              "species": [{k: s[k] for k in rows} for s in f["species"]],
                              "injection": [{k: s[k] for k in rows} for s in f["injection"]]},
            "prompts_followed": {"max_reattempts": follow_prompts,
                                 **prompts_followed(records, kw["live_min"])}}


# --- fitting the ramps on train ---------------------------------------------------------------------

LIVE_COST = 0.01            # an "all" ramp may cost at most this share of the training family's live faces
ANY_MARGIN = 0.25           # an "any" ramp's live end: this far from its attack end toward the live median
MIN_LIVE, MIN_ATTACKS = 20, 5
CHALLENGE_ONLY = ("projector_speckle", "projector_sharpness", "challenge_soft_dots", "eye_dots")


def _values(records: list[dict[str, Any]], cue: str, species: Iterable[str] | None) -> np.ndarray:
    want = None if species is None else set(species)
    v = [r["cues"].get(cue) for r in records if r.get("cues") and r["outcome"] in ("accepted", "rejected")
         and (r["kind"] == "bona_fide" if want is None else r["species"] in want)]
    return np.array([x for x in v if x is not None], dtype=np.float64)


def fit_ramp(rule: str, live: np.ndarray, attack: np.ndarray, attack_quantile: float = 1.0
             ) -> tuple[float, float, str]:
    """One ramp's (attack, live) ends from the cue's values on live faces and on the attacks it answers.

    - ``all`` (every cue of the detector must look alive): the live end at the live faces' 1st
      percentile on the attack side (``LIVE_COST``); the attack end at the most live-like attack if
      they separate (the ramp spans the gap), else just beyond the live end (the cue then stops only
      what lies beyond 99 % of live faces; other detectors must stop the rest).
    - ``any`` (one sign of life is enough): every one of the detector's cues must miss an attack for
      the detector to stop it, so each cue's attack end lies beyond ``attack_quantile`` of the
      attacks (the detector's own, ``detectors.DETECTORS``); the live end ``ANY_MARGIN`` of the way
      toward the live median. Attacks left over are other detectors' to stop."""
    up = float(np.median(live)) > float(np.median(attack))        # live-like values are high
    sign = 1.0 if up else -1.0
    worst = float(attack.max() if up else attack.min())           # the most live-like attack
    if rule == "any":
        end = float(np.quantile(attack, attack_quantile if up else 1 - attack_quantile))
        return end, end + ANY_MARGIN * (float(np.median(live)) - end), "any"
    live_end = float(np.quantile(live, LIVE_COST if up else 1 - LIVE_COST))
    if sign * (live_end - worst) > 0:
        return worst, live_end, "separable"
    width = 0.1 * abs(float(np.median(live)) - live_end) or 1e-3
    return live_end - sign * width, live_end, "overlap"


def fit_ramps(passive: list[dict[str, Any]], challenged: list[dict[str, Any]]) -> dict[str, Any]:
    """Every ramp refitted on training records. A ramp serves both modes, so its cue's values are
    pooled over the ``passive`` records (all frames lit) and the ``challenged`` ones (the cues the
    judge reads from the frames the challenge left usable: lit frames, same-colour pairs), and the
    live end holds for live faces of either; the projector's own speckle exists only under the
    challenge. A ramp keeps its default when its training data is too thin (a species the gate never
    let through, say), and the result says so."""
    from agent.liveness.detectors import DETECTORS, RAMPS

    rule_of = {name: (rule, q) for rule, names, q in DETECTORS.values() for name in names}
    fitted: dict[str, list[float]] = {}
    notes: dict[str, str] = {}
    for name, r in RAMPS.items():
        recs = challenged if name in CHALLENGE_ONLY else passive + challenged
        live, attack = _values(recs, r.cue, None), _values(recs, r.cue, r.answers)
        if live.size < MIN_LIVE or attack.size < MIN_ATTACKS:
            notes[name] = f"default kept: {live.size} live, {attack.size} attacks of {', '.join(r.answers)} judged"
            continue
        a, li, how = fit_ramp(*rule_of[name][:1], live, attack, rule_of[name][1])
        fitted[name] = [round(a, 5), round(li, 5)]
        notes[name] = f"{how}: {live.size} live, {attack.size} attacks"
    return {"ramps": fitted, "notes": notes}


def thresholds_entry(fit: dict[str, Any]) -> dict[str, float]:
    return {"live_min": fit["live_min"], "attack_max": fit["attack_max"]}


def with_mode(calibration: dict[str, Any], mode: str, fit: dict[str, Any], note: dict[str, Any]) -> dict[str, Any]:
    """``calibration`` with ``mode``'s thresholds replaced by ``fit`` for every channel."""
    out = dict(calibration)
    entry = thresholds_entry(fit)
    out[mode] = {"default": entry, "channels": {c: entry for c in ("counter", "kiosk", "vtm", "mobile")},
                 "fitted": {**note, **{k: fit[k] for k in ("apcer_threshold", "target_apcer", "not_held", "live",
                                                           "attacks")}}}
    for legacy in ("default", "channels"):
        out.pop(legacy, None)
    return out


def replace_threshold(thresholds: VerdictThresholds, live_min: float) -> VerdictThresholds:
    return dataclasses.replace(thresholds, live_min=live_min, attack_max=min(thresholds.attack_max, live_min - 0.01))

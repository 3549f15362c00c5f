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

The code: this module is the split registry (``SPLITS``, ``UNSEEN_SPLITS``, the species ``LIVE`` and
``INJECTIONS``, a run's default sizes, ``ir_leak_splits``); ``hil.pad_presentations`` draws a run's presentations from a
split and an index, ``hil.pad_prompts`` has the people who follow prompts, ``hil.pad_enrolment`` each
sim camera's projector enrolment, ``hil.pad_records`` runs presentations into records (JSONL) and reads
them back, ``hil.pad_fit`` fits ramps and thresholds on train and rescores records, and
``hil.pad_report`` makes the report; ``capture-agent pad-eval`` (``hil/commands/pad_eval.py``) joins them.
"""

from __future__ import annotations

from drivers.sim.families import POOLS

SPLITS = tuple(POOLS)                       # ("train", ..., "twentyfirst", "twentysecond", "twentythird")
# The family being built for a session's one unseen evaluation, which the development benches
# (``bench.rerun_records``, ``bench.skin_area``) refuse to run; empty while none is being built. The
# eighth was built and evaluated once in the nineteenth session, the ninth in the twentieth, the tenth in
# the twenty-first, the eleventh in the twenty-second, the twelfth in the twenty-third, the thirteenth in
# the twenty-fourth, the fourteenth in the twenty-fifth, the fifteenth in the twenty-sixth, the sixteenth in
# the twenty-seventh, the seventeenth in the twenty-eighth, the eighteenth in the twenty-ninth, the nineteenth
# in the thirtieth, the twentieth in the thirty-first, the twenty-first in the thirty-second, the twenty-second
# in the thirty-third, the twenty-third in the thirty-fourth (docs/liveness.md, *The eighth family* ... *The
# twenty-third family*); all are development sets since. Name the next family here while it is built.
UNSEEN_SPLITS: frozenset[str] = frozenset()
# ``other_unit``: another unit's stream (a genuine camera of the same model elsewhere, its projector drawing
# another pattern, ``unit=N``, obeying this terminal's commands) sent into this terminal, whose dot
# reference is its own unit's. ``other_mount`` (run only when named, ``--species other_mount``): the same,
# from a unit with this one's pattern design mounted 2-3 px off along the rows or across them
# (``mount_dx``/``mount_dy``): whether real units of one model share a design is not known, so its
# figures are reported apart, never mixed into ``other_unit``'s.
INJECTIONS = ("replay", "splice", "render", "other_unit")
NAMED_INJECTIONS = ("other_mount",)
LIVE = "live"
# Defaults: ~3/n bounds APCER at 10 % per species with 30 error-free presentations, BPCER at 2 % with 150.
DEFAULT_PER_SPECIES = 30
DEFAULT_LIVE = 150
DEFAULT_INJECTION = 30


def refuse_unseen(specs: list[str]) -> None:
    """Stop a bench given ``split:species:index`` specs of a family in :data:`UNSEEN_SPLITS` (nobody
    runs or reads a family before its one evaluation)."""
    refused = [s for s in specs if s.split(":", 1)[0] in UNSEEN_SPLITS]
    if refused:
        raise SystemExit(f"{', '.join(refused)}: a family that is not to be run")


def ir_leak_splits() -> tuple[str, ...]:
    """The splits whose every camera's IR imagers lack an IR-pass filter: those ``--ir-leak`` can run."""
    from drivers.sim.profiles import get_profile
    return tuple(s for s in SPLITS if all(get_profile(c).visible_response is not None for c in POOLS[s].cameras))

"""pad-eval's presentations: what a run presents, drawn from a split (a simulator family) and an index.

A presentation is a sim URI (``presentation_uri``: its scene is the family's ``presentation_query``
for that species and index) with its kind (bona fide, attack or injection) and key; ``presentations``
lists a run's; ``presentation_nonce`` gives each the challenge nonce its URI fixes. The splits
themselves are ``hil.padeval``'s registry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from drivers.sim import ATTACKS
from drivers.sim.config import UNIT_KEYS
from drivers.sim.families import presentation_query
from hil.padeval import INJECTIONS, LIVE, NAMED_INJECTIONS, SPLITS

# ``other_mount``'s offsets (columns, rows) of this unit's pattern design, cycled by index: 2 and 3 px
# along the rows (which depth moves the dots along: an injector writing depth can undo these) and
# across them (which it cannot), each way.
MOUNT_OFFSETS = ((2, 0), (0, 2), (3, 0), (0, 3), (-2, 0), (0, -2), (-3, 0), (0, -3))


def unit_query(species: str, index: int) -> dict[str, str]:
    """The sim keys of the camera unit an injection of ``species`` streams from: ``other_unit``'s
    person ``index`` (pad-eval's injection i draws 10 000 + i) from unit ``1 + index % 999`` (another
    pattern; unit 0 is the terminal's), ``other_mount``'s from unit 0's design moved by ``MOUNT_OFFSETS``
    (cycled); none for any other species (the terminal's own unit)."""
    if species == "other_unit":
        return {"unit": str(1 + index % 999)}
    if species == "other_mount":
        dx, dy = MOUNT_OFFSETS[index % len(MOUNT_OFFSETS)]
        return {"mount_dx": str(dx), "mount_dy": str(dy)}
    return {}


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
    if inject in ("other_unit", "other_mount"):
        q.update(unit_query(inject, index))         # a genuine camera, another unit's: no ``inject`` key
    elif inject is not None:
        q["inject"] = inject
    if ir_leak:
        q["ir_leak"] = "1"
    if cornea:
        q["cornea"] = "1"
    return "sim://?" + "&".join(f"{k}={v}" for k, v in q.items())


def presentations(split: str, *, live: int, per_species: int, injection: int,
                  species: Iterable[str] | None = None, ir_leak: bool = False,
                  cornea: bool = False) -> list[Presentation]:
    """The presentations of a run: ``live`` bona fide, ``per_species`` of each attack species and
    ``injection`` of each injection kind (a live person's stream injected on the camera link; the
    ``NAMED_INJECTIONS`` only when ``species`` names them), or only those named in ``species``;
    ``ir_leak``: each rendered with ``ir_leak=1``; ``cornea``: with
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
    for inj in INJECTIONS + NAMED_INJECTIONS:
        if want(inj) and (inj in INJECTIONS or wanted is not None):
            # Injected streams show live people of the family (their own draws, not the bona fide ones).
            out += [Presentation("injection", inj, split, i,
                                 presentation_uri(split, LIVE, 10_000 + i, inj, ir_leak=ir_leak, cornea=cornea))
                    for i in range(injection)]
    return out


def terminal_uri(p: Presentation) -> str:
    """The sim URI of the terminal's own camera for ``p``, the one its dot reference is enrolled on:
    ``p``'s own, save for an injection from another unit (``other_unit``, ``other_mount``), whose frames
    are that unit's while the terminal's camera is unit 0 (``UNIT_KEYS`` left out)."""
    if p.kind != "injection":
        return p.uri
    base, _, query = p.uri.partition("?")
    kept = [kv for kv in query.split("&") if kv.split("=", 1)[0] not in UNIT_KEYS]
    return base + "?" + "&".join(kept)


def presentation_nonce(p: Presentation) -> bytes:
    """The challenge nonce for one presentation: fixed by its scene, so the same command gives the
    same records (the server draws fresh random nonces in service; a bench must be repeatable). A
    presentation rendered with ``cornea=1`` takes the nonce of the same one without it: the same
    projector schedule and scene, the corneas' glints the only difference (a paired comparison)."""
    base, _, query = p.uri.partition("?")
    uri = base + "?" + "&".join(kv for kv in query.split("&") if kv != "cornea=1") if query else p.uri
    return hashlib.sha256(b"capture-agent/pad-eval/v2\0" + uri.encode()).digest()

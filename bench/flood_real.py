"""select30: an attacker's chosen flood frames on real rendered windows, through the judge's own code.

``bench.flood_select`` bounds the selection a foreign flood gives (``judge.flood_frames`` /
``judge.flood_pairs``: a flooded frame is read in no pair; an edge touched is re-read on frames up to 2
apart) on synthetic frames only. Here the simulator renders train attacks (and, for contrast, train lives)
and the judge judges each window as in service; then, inside ``Judge.finish``, the session is scored again
for attacker-chosen flooded sets: every pair ``flood_pairs`` gives for the set is read by the judge's own
``_light`` (cached per pair), pooled by ``ProjectorMeasure.pool``, scored by ``detectors.score`` with every
other cue the window's own, and decided as ``finish`` decides (``fuse``, the material bound, the unmeasured
cap). A flooded frame is only left out (what a burst would add is never read), so this is an upper bound
on the attacker: no light need pass the 2 DN rise. A session whose challenge failed or whose stream was
called injected stays where ``finish`` put it (no pair changes that) and is not searched.

Sets per window: every k-th frame (k 2-6, each phase), every lit or every unlit frame, ``--random`` random
sets (10-70 % of the frames), and a greedy search from no flood that floods, a frame at a time, the frame
that raises the session most (verdict first: attack < inconclusive < live, then score) until none does.

    PYTHONPATH=. python -m bench.flood_real OUT.jsonl CONDITION SPECIES[,SPECIES] [--n 6] [--random 300]

CONDITION: ``clip`` or ``halogen`` (``bench.material_sweep``'s conditions: 32 framesets, a D435 without
its power capability, a fixed nonce) or ``train`` (pad-eval's train split presentations, their nonces and
dot reference). One JSON line per session (no face data): the verdict as judged, as replayed with no
flood (a self-check: the same), the best over the sets and the set (``x`` flooded), how many sets improve
it (a higher verdict, or a score >= 0.5)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from typing import Any

import numpy as np

import agent.liveness.judge as J
from agent.liveness.detectors import MIN_EYE_READINGS, MIN_PROJECTOR_PAIRS
from agent.liveness.features import ProjectorMeasure
from agent.liveness.fusion import decide, fuse
from bench.flood_select import candidate_sets, greedy

LIVE_MIN = 0.5
RANK = {"attack": 0, "inconclusive": 1, "live": 2}


class Replay:
    """One judged window, scored again for any flooded set as ``Judge.finish`` scores it."""

    def __init__(self, judge: J.Judge, lit: list[bool], score_args: tuple, score_kwargs: dict[str, Any]):
        self.judge, self.lit = judge, lit
        self.args, self.kwargs = score_args, score_kwargs
        self.usual_power = J._usual_power(judge.sets, lit)

    def verdict(self, flooded: list[bool] | None) -> tuple[str, float, int, int]:
        """(verdict, score, pairs read, eye readings) with ``flooded`` as the window's flooded frames."""
        pairs, edges = J.flood_pairs(self.lit, flooded)
        lights = [self.judge._light(on, off, p) for on, off, p in pairs
                  if self.judge.faces[on] is not None and self.usual_power(on)]
        proj = replace(ProjectorMeasure.pool(lights), flood_edges=edges) if lights or edges else None
        s = J.score(*self.args, **{**self.kwargs, "projector": proj})
        fused = min(fuse(s.as_dict()), s.material_bound)
        result = decide(fused, self.judge.thresholds)
        if s.unmeasured:
            result = "attack" if result == "attack" else "inconclusive"
            fused = min(fused, J.DROWNED_SCORE_CAP)
        return result, fused, (proj.pairs if proj else 0), (proj.eyes_read if proj else 0)


def realizable(flooded: list[bool], lit: list[bool]) -> bool:
    """Whether ``judge.flood_frames`` could flag exactly this set: each flagged frame needs a clear frame of its
    projector state among its ``FLOOD_REACH`` nearest of that state on either side (a light only adds: the
    least level must be a frame it missed), and a clear frame stays clear under a light that misses it."""
    n = len(lit)
    for k in range(n):
        if not flooded[k]:
            continue
        same = [j for j in range(n) if j != k and lit[j] == lit[k]]
        near = [j for j in same if j < k][-J.FLOOD_REACH:] + [j for j in same if j > k][:J.FLOOD_REACH]
        if not any(not flooded[j] for j in near):
            return False
    return True


def key(v: tuple[str, float, int, int]) -> tuple[int, float]:
    return RANK[v[0]], v[1]


def search(r: Replay, rng: np.random.Generator, randoms: int) -> dict[str, Any]:
    n = len(r.lit)
    drawn = r.verdict(None)
    sets = candidate_sets(n, r.lit, rng, randoms, periods=(2, 3, 4, 5, 6))
    got = [r.verdict(f) for f in sets]
    g_set = greedy(lambda f: key(r.verdict(f)), n)[1]
    g_best = r.verdict(g_set)
    got.append(g_best)
    sets.append(g_set)
    i = max(range(len(got)), key=lambda j: key(got[j]))
    better = sum(key(v) > key(drawn) and (RANK[v[0]] > RANK[drawn[0]] or v[1] >= LIVE_MIN) for v in got)
    real = [j for j in range(len(got)) if realizable(sets[j], r.lit)]
    i_real = max(real, key=lambda j: key(got[j])) if real else None
    better_real = sum(key(got[j]) > key(drawn) and (RANK[got[j][0]] > RANK[drawn[0]] or got[j][1] >= LIVE_MIN)
                      for j in real)
    measuring = sum(p >= MIN_PROJECTOR_PAIRS and e >= MIN_EYE_READINGS for _, _, p, e in got)
    return {"replayed": [drawn[0], round(drawn[1], 3), drawn[2], drawn[3]],
            "best": [got[i][0], round(got[i][1], 3), got[i][2], got[i][3]],
            "best_set": "".join("x" if f else "." for f in sets[i]),
            "lit": "".join("1" if x else "0" for x in r.lit),
            "best_realizable": ([got[i_real][0], round(got[i_real][1], 3), got[i_real][2], got[i_real][3],
                                 "".join("x" if f else "." for f in sets[i_real])] if i_real is not None else None),
            "improve_realizable": better_real, "realizable": len(real),
            "greedy": [g_best[0], round(g_best[1], 3)], "sets": len(sets), "improve": better,
            "measuring": measuring, "pairs_read": len(r.judge.lights)}


class Catch:
    """Wraps ``Judge.finish`` (and what it calls) to search each window the session judges."""

    def __init__(self, rng: np.random.Generator, randoms: int):
        self.rng, self.randoms = rng, randoms
        self.found: list[dict[str, Any]] = []
        self._seen: dict[str, Any] = {}

    def install(self) -> None:
        finish, score, pairs = J.Judge.finish, J.score, J.flood_pairs
        catch = self

        def flood_pairs(lit, flooded):
            catch._seen["lit"] = list(lit)
            return pairs(lit, flooded)

        def score_(*a, **kw):
            catch._seen["score"] = (a, kw)
            return score(*a, **kw)

        def finish_(judge):
            catch._seen.clear()
            res = finish(judge)
            v = res.verdict
            rec: dict[str, Any] = {"verdict": v.verdict, "score": round(v.score, 3)}
            forced = any(n.startswith(("challenge failed", "stream does not look", "the IR frames' metadata"))
                         for n in v.notes)
            if "lit" not in catch._seen or "score" not in catch._seen or forced:
                rec["searched"] = False
            else:
                a, kw = catch._seen["score"]
                r = Replay(judge, catch._seen["lit"], a, kw)
                rec.update(search(r, catch.rng, catch.randoms))
                rec["searched"] = True
            catch.found.append(rec)
            return res

        J.flood_pairs, J.score = flood_pairs, score_
        J.Judge.finish = finish_  # type: ignore[method-assign]


def run(condition: str, species: list[str], n: int) -> list[tuple[str, Any]]:
    """(uri, a callable judging it) for the condition's sessions."""
    out: list[tuple[str, Any]] = []
    if condition in ("clip", "halogen"):
        import drivers
        from agent.liveness.fusion import load_thresholds
        from agent.session.offline import capture_and_judge
        from bench.material_sweep import NONCE, uris
        from drivers.base import Capability
        th = load_thresholds("kiosk", challenged=True)
        for sp in species:
            for uri in uris(sp, condition)[:n]:
                def judge_it(uri: str = uri) -> str:
                    cam = drivers.open(uri)
                    cam.capabilities = cam.capabilities - {Capability.PROJECTOR_POWER}
                    with cam:
                        return capture_and_judge(cam, 32, thresholds=th, nonce=NONCE).verdict.verdict
                out.append((uri, judge_it))
    elif condition == "train":
        from agent.liveness.fusion import load_thresholds
        from hil import pad_presentations as PP
        from hil import pad_records as R
        gate, th = R.kiosk_gate(), load_thresholds("kiosk", challenged=True)
        for sp in species:
            live = n if sp == "live" else 0
            for p in PP.presentations("train", live=live, per_species=n, injection=0, species=[sp]):
                def judge_pres(p: PP.Presentation = p) -> str:
                    rec = R.run_presentation(p, frames=32, passive=False, gate=gate, thresholds=th)
                    return str(rec.get("verdict") or rec.get("outcome"))
                out.append((p.key, judge_pres))
    else:
        raise SystemExit(f"unknown condition {condition!r} (clip, halogen, train)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("condition")
    ap.add_argument("species")
    ap.add_argument("--n", type=int, default=6)
    ap.add_argument("--random", type=int, default=300)
    args = ap.parse_args(argv)
    catch = Catch(np.random.default_rng(3030), args.random)
    catch.install()
    with open(args.out, "a") as out:
        for name, judge_it in run(args.condition, args.species.split(","), args.n):
            catch.found.clear()
            outcome = judge_it()
            for rec in catch.found or [{"searched": False}]:
                rec = {"session": name, "condition": args.condition, "outcome": outcome, **rec}
                out.write(json.dumps(rec) + "\n")
                out.flush()
                print(json.dumps({k: rec.get(k) for k in ("session", "verdict", "score", "replayed", "best",
                                                          "best_set", "improve", "measuring")}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

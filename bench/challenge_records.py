"""What each challenge said on pad-eval's records (sec21): per judged window, every challenge's outcome
(passed, not measurable, contradicted) beside the verdict, each of a record's attempts (``attempts``:
pad-eval lists every window of a presentation there, the last one being the record's own, when the
person followed a prompt and was judged again) a window of its own.

    python -m bench.challenge_records [--by light] /work/eighth-records/live.jsonl [...]

``--by NAME``: the counts split by the scene's ``NAME=`` in the window's URI (``light``: direct sun,
a shop's halogen, ...).

It answers "how often were both challenges not measurable, and was any such window ``live``?"
(docs/liveness.md, *Both challenges unmeasurable*). Records of a family in
``hil.padeval.UNSEEN_SPLITS`` are refused, as ``bench.rerun_records`` refuses them: nobody reads them.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable
from typing import Any

STATES = {"passed": "P", "unmeasurable": "U", "contradicted": "F"}


def _value(x: Any) -> Any:
    """pad-eval writes the challenge and the attempts as Python reprs (``str(dict)``), or as JSON."""
    if isinstance(x, str):
        try:
            return ast.literal_eval(x)
        except (ValueError, SyntaxError):
            return None
    return x


def state(result: Any) -> str:
    """One challenge's outcome: ``P``, ``U`` (failed, not measurable) or ``F`` (failed, a contradiction)."""
    if not isinstance(result, dict):
        return "F"
    if result.get("passed") is True:
        return STATES["passed"]
    return STATES["unmeasurable"] if result.get("measurable") is False else STATES["contradicted"]


def windows(records: Iterable[dict[str, Any]], by: str = "") -> Iterable[tuple[str, str, str]]:
    """(record key, the challenges' outcomes as ``illumination:P,projector:U``, verdict) per window judged
    under a challenge: each of a record's ``attempts`` (the last is the record's own window), or the record
    itself when it lists none. ``by``: the verdict is
    prefixed with the value of that parameter in the window's URI (``direct_sun inconclusive``)."""
    from hil.padeval import UNSEEN_SPLITS
    for r in records:
        if r.get("split") in UNSEEN_SPLITS or str(r.get("key", "")).split("/", 1)[0] in UNSEEN_SPLITS:
            raise SystemExit(f"refused: {r.get('key')} belongs to an unseen family ({sorted(UNSEEN_SPLITS)})")
        tries = [t for t in (_value(r.get("attempts")) or []) if isinstance(t, dict)]
        for a in tries or [r]:
            ch = _value(a.get("challenge"))
            if not isinstance(ch, dict) or not isinstance(ch.get("kinds"), list) or not ch["kinds"]:
                continue
            said = ",".join(f"{k}:{state(ch.get(k))}" for k in sorted(str(k) for k in ch["kinds"]))
            verdict = str(a.get("verdict"))
            if by:
                m = re.search(rf"[?&]{re.escape(by)}=([^&]*)", str(a.get("uri") or r.get("uri") or ""))
                verdict = f"{m.group(1) if m else '?'} {verdict}"
            yield str(r.get("key", "")), said, verdict


def summary(rows: Iterable[tuple[str, str, str]]) -> dict[str, Any]:
    """The windows, their (outcomes, verdict) counts, those with every challenge not measurable (keys) and
    the ``live`` ones with any challenge not passed (keys: none, if the judge's rule holds)."""
    counts: Counter[tuple[str, str]] = Counter()
    blind, live_unpassed = [], []
    for key, said, verdict in rows:
        counts[(said, verdict)] += 1
        outcomes = [part.rsplit(":", 1)[1] for part in said.split(",")]
        if all(o == "U" for o in outcomes):
            blind.append((key, verdict))
        if verdict.rsplit(" ", 1)[-1] == "live" and any(o != "P" for o in outcomes):
            live_unpassed.append(key)
    return {"windows": sum(counts.values()), "counts": counts, "all_unmeasurable": blind,
            "live_with_a_challenge_not_passed": live_unpassed}


def _main(argv: list[str]) -> int:
    by = ""
    if argv[:1] == ["--by"] and len(argv) > 1:
        by, argv = argv[1], argv[2:]
    if not argv:
        print(__doc__)
        return 2
    for path in argv:
        with open(path) as f:
            records = [json.loads(line) for line in f if line.strip()]
        s = summary(windows(records, by))
        print(f"{path}: {s['windows']} windows judged under a challenge")
        for (said, verdict), n in sorted(s["counts"].items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"  {n:5d}  {said:40s} {verdict}")
        print(f"  every challenge not measurable: {len(s['all_unmeasurable'])} {s['all_unmeasurable']}")
        print(f"  live with a challenge not passed: {len(s['live_with_a_challenge_not_passed'])} "
              f"{s['live_with_a_challenge_not_passed']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))

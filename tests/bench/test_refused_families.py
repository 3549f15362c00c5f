"""The families bench.rerun_records, skin_area, texture_out and sharpness_sampling may run again (never the unseen).

``hil.padeval.UNSEEN_SPLITS`` names the family being built for a session's unseen evaluation (empty
between them: the eighth was evaluated in the nineteenth session); the tests name it ``eighth`` as it
was while it was unseen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import rerun_records as R
from hil import pad_presentations, pad_records
from hil import padeval as P


def _record(split: str, index: int) -> dict:
    return {"v": pad_records.RECORD_VERSION, "key": f"{split}/bona_fide/live/{index}", "split": split,
            "kind": "bona_fide", "species": "live", "index": index,
            "uri": f"sim://?subject=live&family={split}&identity={index}",
            "outcome": "rejected", "verdict": "attack", "reason": None}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    recs = tmp_path / "recs.jsonl"
    recs.write_text("".join(json.dumps(_record(s, 3)) + "\n" for s in ("seventh", "eighth")))
    return recs, tmp_path / "keys.txt", tmp_path / "out.jsonl"


def test_a_development_family_runs_again(files: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    recs, keys, out = files
    keys.write_text("seventh/bona_fide/live/3\n")
    ran: list[str] = []

    def present(p: pad_presentations.Presentation, **_: object) -> dict:
        ran.append(p.key)
        return {"key": p.key, "uri": p.uri, "outcome": "accepted", "verdict": "live"}

    monkeypatch.setattr(pad_records, "run_presentation", present)
    assert R.main([str(recs), "--keys", str(keys), "--out", str(out)]) == 0
    assert ran == ["seventh/bona_fide/live/3"]
    row = json.loads(out.read_text())
    assert row["verdict"] == "live" and row["old"]["verdict"] == "attack"


def test_the_unseen_family_is_refused_before_anything_runs(files: tuple[Path, Path, Path],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    recs, keys, out = files
    monkeypatch.setattr(P, "UNSEEN_SPLITS", frozenset({"eighth"}))
    # The unseen family's key after a development family's: nothing runs, not even the first.
    keys.write_text("seventh/bona_fide/live/3\neighth/bona_fide/live/3\n")

    def present(p: pad_presentations.Presentation, **_: object) -> dict:
        raise AssertionError(f"{p.key} was run")

    monkeypatch.setattr(pad_records, "run_presentation", present)
    with pytest.raises(SystemExit, match="eighth/bona_fide/live/3"):
        R.main([str(recs), "--keys", str(keys), "--out", str(out)])
    assert not out.exists()


@pytest.mark.parametrize("bench_name", ["skin_area", "texture_out"])
def test_probing_benches_refuse_the_unseen_family_before_anything_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                       bench_name: str) -> None:
    import importlib

    from bench import sharpness_sampling

    def present(*_: object, **__: object) -> dict:
        raise AssertionError("a presentation was run")

    monkeypatch.setattr(sharpness_sampling, "present_probed", present)
    monkeypatch.setattr(P, "UNSEEN_SPLITS", frozenset({"eighth"}))
    out = tmp_path / "rows.jsonl"
    bench = importlib.import_module(f"bench.{bench_name}")
    extra = {"seeds": ()} if bench_name == "skin_area" else {}
    with pytest.raises(SystemExit, match="eighth:live:0"):
        bench.run(out, ["seventh:live:0", "eighth:live:0"], frames=32, **extra)
    assert not out.exists()


@pytest.mark.parametrize("entry", ["run", "injector"])
def test_sharpness_sampling_refuses_the_unseen_family_before_anything_runs(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           entry: str) -> None:
    from bench import sharpness_sampling

    def present(*_: object, **__: object) -> dict:
        raise AssertionError("a presentation was run")

    monkeypatch.setattr(sharpness_sampling, "present_probed", present)
    monkeypatch.setattr(P, "UNSEEN_SPLITS", frozenset({"eighth"}))
    out = tmp_path / "rows.jsonl"
    kwargs: dict = ({"jitter": (), "sets": {}, "offset": None, "frames": 32} if entry == "run"
                    else {"offsets": (0.0,), "jitters": (), "frames": 32})
    with pytest.raises(SystemExit, match="eighth:live:0"):
        getattr(sharpness_sampling, entry)(out, ["seventh:live:0", "eighth:live:0"], **kwargs)
    assert not out.exists()


def test_the_unseen_family_is_one_pad_eval_knows() -> None:
    # A misspelled name would refuse nothing; the guard names a split pad-eval can present.
    assert P.UNSEEN_SPLITS <= set(P.SPLITS)


def test_quality_phase_refuses_the_unseen_family_before_anything_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import quality_phase

    def present(*_: object, **__: object) -> list:
        raise AssertionError("a presentation was listed")

    # Whichever family is unseen, not a name written into the bench.
    monkeypatch.setattr(P, "UNSEEN_SPLITS", frozenset({"seventh"}))
    monkeypatch.setattr(pad_presentations, "presentations", present)
    with pytest.raises(SystemExit):
        quality_phase.main(["--split", "seventh", "--live", "1"])

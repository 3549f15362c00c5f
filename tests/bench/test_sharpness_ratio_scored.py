"""``bench.sharpness_sampling ratio-scored``: the ratio alone, and ``--either`` (the larger of the two).

The session below is the nineteenth family's live/100 cue summary as its one evaluation stored it (numbers
only; docs/liveness.md, "The nineteenth's material and eye-region refusals"): its absolute dot sharpness
1.799 (a sharp arrangement of dots on its cheeks' discs) holds the material at 0, its ratio over the
recorded pattern's own reading, 0.653, is under the ratio ramp's live end (0.676).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.sharpness_sampling import ratio_scored

LIVE_100 = {
    "plane_rms_mm": 10.11918, "cylinder_rms_mm": 8.29669, "nose_prominence_mm": 33.69101, "scale_ratio": 0.86165,
    "depth_share": 0.99308, "ir_face_level": 114.12805, "ir_face_contrast": 0.81472, "speckle_contrast": 0.16372,
    "dot_sharpness": 0.98979, "ir_dot_sharpness": 1.26972, "eye_recess_mm": 16.99996, "eye_dot_sharpness": 0.92269,
    "motion": 0.02715, "nonrigid": 0.01504, "nonrigid_peak": 0.0194, "blink": 0.34198, "blink_drop": 0.75812,
    "motion_snr": 12.83471, "projector_speckle": 0.21568, "projector_speckle_low": 0.21182,
    "projector_speckle_high": 0.21946, "projector_pairs": 7.0, "projector_share": 1.0, "projector_snr": 265.59832,
    "projector_sharpness": 1.79921, "projector_sharpness_ratio": 0.65297, "projector_pattern_checked": 1.0,
    "projector_unmatched": 0.32723, "projector_speckle_forehead": 0.20661, "projector_speckle_cheeks": 0.22299,
    "projector_speckle_upper": 0.21162, "projector_speckle_lower": 0.21991, "projector_sharpness_lower": 1.90774,
    "projector_lower_rims_pairs": 7.0, "projector_sharpness_eyes": 0.96057, "projector_sharpness_forehead": 0.88703,
    "projector_sharpness_cheeks": 1.79921,
}


def _record(key: str, **cues: float) -> dict:
    return {"key": key, "species": "live", "outcome": "rejected", "challenge": {"passed": True},
            "detectors": {"material": 0.0}, "projector_seen": True, "projector_claimed_off": False,
            "injection_signals": {"suspicious": False}, "cues": {**LIVE_100, **cues}}


@pytest.fixture
def records(tmp_path: Path) -> Path:
    rows = [_record("sharp_dots_soft_ratio"),
            # Soft absolute dots, a ratio past the ratio ramp's attack end (0.778): the absolute passes it.
            _record("soft_dots_hard_ratio", projector_sharpness=1.0, projector_sharpness_ratio=0.80)]
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_the_ratio_alone_clears_the_sharp_arrangement_and_refuses_the_hard_ratio(
        records: Path, capsys: pytest.CaptureFixture) -> None:
    ratio_scored([records], 0.77848, 0.67636)
    out = capsys.readouterr().out
    assert "live: refused 1 of 2 as judged, 1 of 2 with the ratio scored" in out
    assert "sharp_dots_soft_ratio: 0.000 -> 1.000" in out
    assert "soft_dots_hard_ratio: 1.000 -> 0.000" in out


def test_either_only_clears_never_refuses(records: Path, capsys: pytest.CaptureFixture) -> None:
    ratio_scored([records], 0.77848, 0.67636, either=True)
    out = capsys.readouterr().out
    assert "live: refused 1 of 2 as judged, 0 of 2 with the larger of the absolute and the ratio scored" in out
    assert "sharp_dots_soft_ratio: 0.000 -> 1.000" in out
    assert "soft_dots_hard_ratio" not in out


def test_the_one_sided_floors_cap_as_their_ramps_do(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # One-sided pairs soft in absolute terms (1.0) but hard over the pattern's own reading (0.95): the ratio
    # alone caps the session at 0, the larger of the two caps does not.
    path = tmp_path / "floor.jsonl"
    path.write_text(json.dumps(_record("soft_floor_hard_ratio_floor", projector_sharpness_floor=1.0,
                                       projector_sharpness_ratio_floor=0.95)) + "\n")
    ratio_scored([path], 0.77848, 0.67636)
    assert "refused 1 of 1 as judged, 1 of 1 with the ratio scored" in capsys.readouterr().out
    ratio_scored([path], 0.77848, 0.67636, either=True)
    assert "refused 1 of 1 as judged, 0 of 1 with the larger of the absolute and the ratio scored" \
        in capsys.readouterr().out


def test_the_gate_on_the_patterns_fit_leaves_the_absolute_standing(
        records: Path, capsys: pytest.CaptureFixture) -> None:
    # live/100's dots fit the pattern its depth predicts at 0.327: a gate under that leaves its absolute
    # reading (1.799, material 0) standing, whatever the ratio says; a gate over it lets the ratio clear.
    ratio_scored([records], 0.77848, 0.67636, either=True, max_unmatched=0.3)
    out = capsys.readouterr().out
    assert "refused 1 of 2 as judged, 1 of 2 with the larger of the absolute and the ratio scored where " \
           "projector_unmatched <= 0.3" in out
    assert "sharp_dots_soft_ratio" not in out
    ratio_scored([records], 0.77848, 0.67636, either=True, max_unmatched=0.33)
    assert "sharp_dots_soft_ratio: 0.000 -> 1.000" in capsys.readouterr().out


def _pair(sharpness: float, reference: float, grid: list[list[float]], one_sided: bool = False) -> dict:
    return {"sharpness": sharpness, "one_sided": one_sided, "unmatched": 0.1, "reference": reference, "grid": grid}


def test_the_injectors_best_is_the_largest_reference_within_the_gate() -> None:
    from bench.sharpness_sampling import injector_best
    # Per pair: offsets (m), the fit there, the pattern's reading there. The second pair's sharpest
    # prediction fits worse than the gate, so its best within the gate is 2.0.
    row = {"pairs": [_pair(1.8, 2.0, [[-0.005, 0.2, 2.2], [0.005, 0.3, 2.4]]),
                     _pair(1.6, 2.0, [[-0.005, 0.9, 3.2], [0.005, 0.25, 2.0]]),
                     _pair(1.7, 1.9, [[-0.005, 0.2, 2.3], [0.005, 0.2, 2.1]]),
                     _pair(9.0, 1.0, [[-0.005, 0.2, 1.0]], one_sided=True)]}
    honest, injected, fit = injector_best(row, 0.5)
    assert honest == pytest.approx(float(sorted([1.8 / 2.0, 1.6 / 2.0, 1.7 / 1.9])[1]))
    assert injected == pytest.approx(float(sorted([1.8 / 2.4, 1.6 / 2.0, 1.7 / 2.3])[1]))
    assert fit == pytest.approx(0.25)
    # A pair none of whose offsets fits within the gate leaves the injector without a ratio: not measurable.
    _, injected, _ = injector_best(row, 0.22)
    assert injected != injected


def _fit_record(split: str, species: str, ratio: float, unmatched: float) -> dict:
    return {"split": split, "kind": "bona_fide" if species == "live" else "attack", "species": species,
            "outcome": "accepted" if species == "live" else "rejected",
            "cues": {"projector_pattern_checked": 1.0, "projector_sharpness_ratio": ratio,
                     "projector_unmatched": unmatched}}


def test_the_refit_is_trains_alone(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from bench.sharpness_sampling import ratio_fit
    lives = [_fit_record("train", "live", 0.45 + 0.01 * i, 0.1 + 0.05 * i) for i in range(25)]
    masks = [_fit_record("train", "mask", 0.86 + 0.05 * i, 0.1) for i in range(6)]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lives + masks))
    (attack, live, how), gate = ratio_fit([path])
    # Separable: the attack end at the most live-like mask, the live end at the lives' 99th percentile.
    assert how == "separable" and attack == pytest.approx(0.86)
    assert live == pytest.approx(float(np.quantile([0.45 + 0.01 * i for i in range(25)], 0.99)))
    assert gate == pytest.approx(float(np.quantile([0.1 + 0.05 * i for i in range(25)], 0.99)))
    assert "margin +0.170" in capsys.readouterr().out
    other = tmp_path / "dev.jsonl"
    other.write_text(path.read_text() + json.dumps(_fit_record("nineteenth", "live", 0.5, 0.2)) + "\n")
    with pytest.raises(SystemExit, match="train only"):
        ratio_fit([other])


def test_the_eye_discs_ratio_stands_in_for_eye_dots_alone(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # Soft dots on the skin (material alive), sharp ones on the eye discs (1.45, past eye_dots' attack end
    # 1.325: the eye region refuses, as the nineteenth's live/31 was): ``--eyes --either`` clears it when the
    # discs' ratio is under the ratio ramp's live end, never the one whose ratio is past its attack end, and
    # leaves the absolute standing where the pattern's fit is over the gate. The skin's ratio is not read.
    rows = [_record("eyes_sharp_ratio_soft", projector_sharpness=1.0, projector_sharpness_eyes=1.45,
                    projector_sharpness_eyes_ratio=0.69),
            _record("eyes_sharp_ratio_hard", projector_sharpness=1.0, projector_sharpness_eyes=1.45,
                    projector_sharpness_eyes_ratio=0.85)]
    path = tmp_path / "eyes.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ratio_scored([path], 0.80, 0.72, either=True, eyes=True)
    out = capsys.readouterr().out
    assert "live: refused 2 of 2 as judged, 1 of 2 with the larger of the absolute and the ratio scored on the " \
           "discs over the eyes" in out
    assert "eyes_sharp_ratio_soft: 0.000 -> 1.000" in out and "eyes_sharp_ratio_hard" not in out
    ratio_scored([path], 0.80, 0.72, either=True, eyes=True, max_unmatched=0.3)
    assert "refused 2 of 2 as judged, 2 of 2" in capsys.readouterr().out


def test_the_eye_discs_refit_is_against_the_printed_eyes_on_train_alone(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from bench.sharpness_sampling import ratio_fit

    def rec(split: str, species: str, ratio: float) -> dict:
        r = _fit_record(split, species, 0.6, 0.2)
        r["cues"]["projector_sharpness_eyes_ratio"] = ratio
        return r
    lives = [rec("train", "live", 0.40 + 0.01 * i) for i in range(25)]
    eyes = [rec("train", "print_eyes", 0.90 + 0.02 * i) for i in range(4)]
    masks = [rec("train", "mask", 0.50) for _ in range(3)]          # not what eye_dots answers: not fitted on
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lives + eyes + masks))
    (attack, live, how), _ = ratio_fit([path], eyes=True)
    assert how == "separable" and attack == pytest.approx(0.90)
    assert live == pytest.approx(float(np.quantile([0.40 + 0.01 * i for i in range(25)], 0.99)))
    assert "projector_sharpness_eyes_ratio ramp" in capsys.readouterr().out
    other = tmp_path / "dev.jsonl"
    other.write_text(path.read_text() + json.dumps(rec("twentieth", "live", 0.5)) + "\n")
    with pytest.raises(SystemExit, match="train only"):
        ratio_fit([other], eyes=True)

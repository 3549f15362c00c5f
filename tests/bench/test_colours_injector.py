"""``bench.colours_injector``: the two-colour light it adds and its counts (the figures are in docs/liveness.md,
*A room light stepping between two colours*)."""

import numpy as np

from bench.colours_injector import STREAMS, STRING, run, turns


def test_the_light_takes_turns_between_its_two_colours_and_only_adds_light():
    rng = np.random.default_rng(3)
    pair = (np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0]))
    light = turns(200, rng, 0.02, pair)
    assert light.shape == (200, 3) and np.all(light >= 0) and np.all(light[:, 1] == 0)
    red, blue = light[:, 0] > 0, light[:, 2] > 0
    assert np.all(red ^ blue) and red.any() and blue.any()          # one colour a frame, both used
    assert np.count_nonzero(red[1:] != red[:-1]) >= 2                # it steps, more than once in 200 frames
    assert all(np.all(c >= 0) and abs(np.linalg.norm(c) - 1) < 1e-9 for c in STRING)


def test_the_rule_never_changes_a_pass_and_relabels_the_string_over_a_genuine_face():
    out = run(3)
    assert set(out) == set(STREAMS)
    for c in out.values():
        assert c["passed_new"] == c["passed_old"]                    # the rule never passes a window
    assert out["blind+colours"]["colours"] == 0 and out["steady+colours"]["colours"] == 0
    assert out["genuine+colours"]["attack_new"] <= out["genuine+colours"]["attack_old"]

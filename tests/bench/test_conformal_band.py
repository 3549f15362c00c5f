"""``bench.conformal_band --salts``: the same presentations under other challenge nonces (review 22's
method, made a bench option in the twenty-third session, eye23)."""

from __future__ import annotations

from bench.conformal_band import salted_nonce
from hil.pad_presentations import Presentation, presentation_nonce, presentation_uri


def test_a_salted_nonce_is_repeatable_and_another_per_salt_and_presentation():
    a = Presentation("attack", "print_eyes", "train", 3, presentation_uri("train", "print_eyes", 3))
    b = Presentation("attack", "print_eyes", "train", 2, presentation_uri("train", "print_eyes", 2))
    n = salted_nonce("s00")(a)
    assert n == salted_nonce("s00")(a) and len(n) == 32
    assert len({n, salted_nonce("s01")(a), salted_nonce("s00")(b), presentation_nonce(a)}) == 4

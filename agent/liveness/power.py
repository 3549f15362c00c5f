"""The IR imager's full scale and the projector's power as the daemon's planning reads them.

The one definition, shared by the material measure (``agent.liveness.features``) and the daemon's
planning (``agent/session/projector.py`` plans power and IR exposure from the worker's
assessments), here without OpenCV or the face models, which the daemon does not load."""

from __future__ import annotations

SATURATED_DN = 250                  # of an 8-bit IR image

# When a projector on-off pair's light counts (the material measure's, ``agent.liveness.features``),
# here so that ``agent.liveness.detectors`` (whose ``material_light`` the daemon's NOT_LIVE prompt
# reads, ``agent/session/events.py``) needs no OpenCV: importing OpenCV once cost the daemon 16.7 MiB
# of RSS for good (issue 20, growth28).
# A pair whose projector light stands fewer than this many noise deviations per pixel above the
# difference's noise is one-sided (``ProjectorLight.one_sided``): its contrast has the noise
# estimate subtracted, and a noise estimate inflated (by ambient NIR that changes between the two
# same-state frames, say) lowers it, so it can show a surface hard, never soft.
MIN_PROJECTOR_SNR = 5.0
# Without a same-state pair to measure the noise, the projector must carry this share of the
# skin's IR light for its pair to count (the contrast then keeps the noise: it errs toward hard).
MIN_PROJECTOR_SHARE = 0.5
# Clipped dots have lost their peaks (and leaving them out would keep only the dim ones): above
# this share of clipped skin pixels a pair's speckle is only a floor under the surface's
# (``ProjectorLight.one_sided``). Even a little clipping lowers a hard surface's contrast: the
# simulator's masks with 0.6-1.9 % of the skin clipped read 0.17-0.23, skin's range, and only the
# dot-sharpness veto holds them (as before this measure). A 0.2 % limit would close that, but
# simulated live faces clip on 0.3-0.8 % in ordinary light and 12 of 39 train faces lost their
# measure; until the IR exposure leaves the dots headroom the limit stays at main's 2 %.
# docs/liveness.md has the figures.
MAX_CLIPPED_SHARE = 0.02


def same_power(a: float, b: float) -> bool:
    """Two projector powers (mW) one setting apart at most by rounding in metadata."""
    return abs(a - b) <= 0.5

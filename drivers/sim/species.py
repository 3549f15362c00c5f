"""Presentation-attack instruments (PAI species, ISO/IEC 30107-3), each built from what it is made of.

Every instrument shows a *target* identity (the person the attacker wants to pass as). Worn
instruments sit on a *wearer*, a different person whose real face shows wherever the instrument
does not cover it (eye holes, the face below a printed eye band), with the wearer's real blinks,
breathing and jaw motion there. Instrument properties (material reflectance, paper curvature, hole
sizes, thickness) are drawn per instrument instance from the family's seed, so train and held-out
families present different physical objects.

Physics per species (what the sensors see, honestly — including where it looks like skin):

- print, print_curved, print_cutout: ink on paper. Colour inks are transparent at 850 nm, so NIR shows
  mostly paper; dots stay sharp; depth is a plane or a cylinder; cutout holes show the holder.
- screen_still, screen_video: an LCD emits no NIR and its glass mirrors the projector away.
- mask, head_model: rigid resin / plaster with painted face; paint is NIR-transparent, so the base
  material shows; sharp dots; true 3D depth; no blinks, no non-rigid motion.
- mask_eyeholes: a rigid resin mask with eye holes, worn: the wearer's real eyes (and blinks) show in
  the holes, a few millimetres behind the mask surface.
- silicone_mask: flexible silicone over the wearer's head, eye holes: at 850 nm silicone scatters and
  reflects much like skin (that is the point of it), it follows the wearer's jaw partly and the head
  fully. The remaining real differences: NIR albedo does not follow skin tone, no vessels (not
  simulated either way), a thickness step at the eye holes.
- paper_mask: a print bent around the wearer's face (a cylinder: paper cannot take a nose), eye holes.
- head_model_hand: a rigid head model moved by hand: hand tremor and drift instead of breathing.
- print_eyes: a printed eye band worn over the wearer's eyes; the rest of the face is real.
- glasses_print: spectacle frames with printed eyes in the lens openings.
"""

from __future__ import annotations

import zlib
from dataclasses import replace
from functools import lru_cache

import cv2
import numpy as np

from .body import torso_height
from .head import HEAD_X, HEAD_Y, HeadLayers, clothing, glasses_layers, head_layers, landmarks, surface_from_layers
from .identity import Identity, family_salt
from .render import Plane
from .sensor import SCREEN_LUMINANCE_LUX
from .subject import GRID_RES_M, MISS, PAPER, PLASTER, RESIN, SCREEN, SILICONE, Surface, grid, print_texture

WORN = ("mask_eyeholes", "silicone_mask", "paper_mask", "print_eyes", "glasses_print")
PORTRAIT_BG = np.array([0.42, 0.36, 0.30], np.float32)    # a studio backdrop, blue-grey


def instrument_rng(family: str, species: str, index: int) -> np.random.Generator:
    """The random stream that shapes one physical instrument (one per family, species and index)."""
    return np.random.default_rng([family_salt(family), zlib.crc32(species.encode()), index])


def wearer_of(target: Identity) -> Identity:
    """The person wearing an instrument made to look like ``target``: another identity of the same
    family, without spectacles (they would not fit under a mask)."""
    return replace(Identity.draw(target.index + 101, target.family), glasses="none")


def _head_sample(layers: HeadLayers, a: np.ndarray, gx: np.ndarray, gy: np.ndarray, border: float = 0.0) -> np.ndarray:
    mx = ((gx - HEAD_X[0]) / GRID_RES_M).astype(np.float32)
    my = ((gy - HEAD_Y[0]) / GRID_RES_M).astype(np.float32)
    return cv2.remap(a, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def portrait(ident: Identity, gx: np.ndarray, gy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A photograph of ``ident`` against a backdrop, in clothes: (albedo, eyes-closed albedo, eye weight)."""
    lay = head_layers(ident)
    inside = _head_sample(lay, (lay.height > MISS / 2).astype(np.float32), gx, gy) > 0.5
    torso = torso_height(ident, gx, gy) > MISS / 2
    cloth, _, _ = clothing(ident)
    bg = np.where(torso[..., None], cloth, PORTRAIT_BG)
    albedo = np.where(inside[..., None], _head_sample(lay, lay.albedo, gx, gy), bg)
    closed = np.where(inside[..., None], _head_sample(lay, lay.closed, gx, gy), bg)
    eye = _head_sample(lay, lay.eye_weight, gx, gy)
    return albedo.astype(np.float32), closed.astype(np.float32), eye.astype(np.float32)


# --- Species that existed before the identity model ---------------------------------------------
@lru_cache(maxsize=8)
def printed_photo(ident: Identity, shape: str = "flat") -> Plane:
    """A life-size print of the face. ``shape``: flat, curved (around a vertical axis, 10 cm radius)
    or cutout (eye and mouth holes). Paper is flat or bent one way: drawn in closed form."""
    gx, gy = grid((-0.090, 0.090), (-0.125, 0.150))
    albedo, _, _ = portrait(ident, gx, gy)
    printed, nir = print_texture(albedo)
    alpha = np.ones_like(gx, dtype=np.float32)
    if shape == "cutout":
        lm = landmarks(ident)
        (lx, ly), (rx, ry) = lm.eyes
        mx, my = lm.mouth
        holes = (((gx - lx) / 0.013) ** 2 + ((gy - ly) / 0.0075) ** 2 < 1) | \
                (((gx - rx) / 0.013) ** 2 + ((gy - ry) / 0.0075) ** 2 < 1) | \
                (((gx - mx) / 0.022) ** 2 + ((gy - my) / 0.008) ** 2 < 1)
        alpha[holes] = 0.0
    bend = 0.10 if shape == "curved" else 0.0
    return Plane(alpha, printed, nir, GRID_RES_M, float(gx[0, 0]), float(gy[0, 0]), PAPER.dot_blur_px,
                 bend_a=bend, bend_c=bend)


@lru_cache(maxsize=8)
def screen(ident: Identity) -> Plane:
    """A tablet showing the face. ``albedo`` holds the displayed image (emitted, gamma-encoded by the
    panel); LCD backlights emit no NIR and the glass returns almost no diffuse NIR."""
    gx, gy = grid((-0.075, 0.075), (-0.105, 0.105))
    display_scale = 0.8       # the face appears a little smaller than life on a 10" tablet
    albedo, closed, eye = portrait(ident, gx / display_scale, gy / display_scale)
    # Panel gamma differs from the scene's: displayed = content^(1.25) and a raised black level.
    disp = (0.02 + 0.95 * np.power(np.clip(albedo / 0.9, 0, 1), 1.25)).astype(np.float32)
    disp_closed = (0.02 + 0.95 * np.power(np.clip(closed / 0.9, 0, 1), 1.25)).astype(np.float32)
    bezel = (np.abs(gx) > 0.068) | (np.abs(gy) > 0.098)
    disp[bezel] = 0.01
    disp_closed[bezel] = 0.01
    nir = np.full(gx.shape, 0.03, np.float32)
    return Plane(np.ones_like(gx, dtype=np.float32), disp, nir, GRID_RES_M, float(gx[0, 0]), float(gy[0, 0]),
                 SCREEN.dot_blur_px, specular=SCREEN.specular, emissive=True, albedo_closed=disp_closed,
                 eye_weight=eye)


# The thirteenth family's attack displays (``screen_instrument``): an attacker turns the panel up.
# Full-screen white at the top of the stock brightness slider: low-end phones 300-400 cd/m^2, mid-range
# 400-500 (inquisitiveuniverse.com, 2020), a flagship 1,033 measured (phonearena.com, iPhone 14 Pro Max,
# 2022: "1000 nit" advertised for everyday use), tablets ~500-600 (recalled); read as search excerpts,
# session 24. Drawn uniform in 350-1000 cd/m^2, shown as pi x L lux-equivalents (the scale of
# sensor.SCREEN_LUMINANCE_LUX, 260 = pi x ~83 cd/m^2, which every other family keeps). Half the panels
# stand on something (a stand, a phone propped on the kiosk's ledge: no motion), the rest are held
# steadier than the 0.8 sway every other family's screens have (0.3-0.8 of the live sway; an
# assumption, no source measures how still an attacker holds a phone).
# The fourteenth family keeps the thirteenth's panels (its screens could reach the judge: 12 of 20
# acquired in its one evaluation, docs/liveness.md), drawn from its own stream; the fifteenth, the
# sixteenth, the seventeenth, the eighteenth, the nineteenth, the twentieth, the twenty-first, the
# twenty-second and the twenty-third too.
SCREEN_FAMILIES = ("thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth",
                   "nineteenth", "twentieth", "twentyfirst", "twentysecond", "twentythird")
SCREEN_NITS = (350.0, 1000.0)
SCREEN_ON_STAND = 0.5
SCREEN_SWAY = (0.3, 0.8)
SCREEN_SWAY_DEFAULT = 0.8


def screen_instrument(target: Identity, species: str, instance: int) -> tuple[float, float | None]:
    """An attack display's own luminance (lux-equivalent) and its sway amplitude (None: on a stand,
    still). Every family but the thirteenth, the fourteenth, the fifteenth, the sixteenth, the seventeenth, the
    eighteenth, the nineteenth, the twentieth, the twenty-first, the twenty-second and the twenty-third:
    ``sensor.SCREEN_LUMINANCE_LUX``, hand-held at 0.8."""
    if target.family not in SCREEN_FAMILIES:
        return SCREEN_LUMINANCE_LUX, SCREEN_SWAY_DEFAULT
    rng = instrument_rng(target.family, species, instance)
    nits = float(rng.uniform(*SCREEN_NITS))
    stand = bool(rng.random() < SCREEN_ON_STAND)
    sway = float(rng.uniform(*SCREEN_SWAY))
    return float(np.pi * nits), None if stand else sway


def _painted_nir(albedo: np.ndarray, base: float) -> np.ndarray:
    """Paint over a base material: nearly transparent at 850 nm, so the base shows through."""
    lum = albedo @ np.array([0.11, 0.59, 0.30], np.float32)
    return (base * (0.88 + 0.12 * np.clip(lum / 0.5, 0, 1))).astype(np.float32)


def _face_oval(ident: Identity, gx, gy) -> np.ndarray:
    return ((gx / (0.455 * ident.face_width_m)) ** 2 + ((gy - 0.005 * ident.length) / (0.105 * ident.length)) ** 2) < 1


@lru_cache(maxsize=8)
def rigid_head(ident: Identity, kind: str = "mask", base_nir: float | None = None) -> Surface:
    """A rigid 3D mask (face only, no neck; resin) or a head model (hair and neck; plaster).

    The painted face is the target's; the eyes are painted open."""
    lay = head_layers(replace(ident, glasses="none"))
    if kind == "mask":
        height = np.where(_face_oval(ident, lay.gx, lay.gy), lay.face_height, MISS).astype(np.float32)
        material, base = RESIN, 0.50
    else:
        height = lay.height
        material, base = PLASTER, 0.80
    base = base if base_nir is None else base_nir
    nir = _painted_nir(lay.albedo, base)
    return surface_from_layers(lay, material, height=height, nir=nir,
                               dot_blur=np.full_like(height, material.dot_blur_px),
                               blinks=False, mouth_weight=np.zeros_like(height))


# --- Worn instruments -----------------------------------------------------------------------------
def _holes(lm_eyes, gx, gy, half_w: float, half_h: float) -> np.ndarray:
    out = np.zeros(gx.shape, bool)
    for ex, ey in lm_eyes:
        out |= ((gx - ex) / half_w) ** 2 + ((gy - ey) / half_h) ** 2 < 1
    return out


def _worn(wear: HeadLayers, cover: np.ndarray, height: np.ndarray, albedo: np.ndarray, nir: np.ndarray,
          dot_blur: float | np.ndarray, mouth_follow: float, material) -> Surface:
    """The wearer's head with an instrument over the ``cover`` cells."""
    c3 = cover[..., None]
    h = np.where(cover, height, wear.height).astype(np.float32)
    return surface_from_layers(
        wear, material, height=h,
        albedo=np.where(c3, albedo, wear.albedo).astype(np.float32),
        closed=np.where(c3, albedo, wear.closed).astype(np.float32),
        nir=np.where(cover, nir, wear.nir).astype(np.float32),
        eye_weight=np.where(cover, 0.0, wear.eye_weight).astype(np.float32),
        mouth_weight=(wear.mouth_weight * np.where(cover, mouth_follow, 1.0)).astype(np.float32),
        dot_blur=np.where(cover, dot_blur, wear.dot_blur).astype(np.float32),
        gloss=np.zeros_like(h))


def _aligned_target(target: HeadLayers, wear: HeadLayers, a: np.ndarray) -> np.ndarray:
    """Target layer ``a`` resampled so the target's eyes land on the wearer's eyes."""
    t_eyes, w_eyes = target.landmarks.eyes, wear.landmarks.eyes
    sx = (t_eyes[1][0] - t_eyes[0][0]) / (w_eyes[1][0] - w_eyes[0][0])
    dy = t_eyes[0][1] - w_eyes[0][1]
    return _head_sample(target, a, wear.gx * sx, wear.gy + dy, border=0.3)


@lru_cache(maxsize=8)
def worn_rigid_mask(target: Identity, instance: int) -> Surface:
    """``mask``: a rigid resin face mask without eye holes (eyes painted open), worn: the wearer's
    hair, ears and neck show around it; the wearer's blinks and jaw do not reach its surface."""
    rng = instrument_rng(target.family, "mask", instance)
    tgt = head_layers(replace(target, glasses="none"))
    wear = head_layers(wearer_of(target))
    cover = _face_oval(target, wear.gx, wear.gy) & (wear.face_height > MISS / 2)
    height = np.maximum(tgt.face_height, wear.face_height + float(rng.uniform(0.002, 0.004)) + 0.002)
    nir = _painted_nir(tgt.albedo, 0.50)
    return _worn(wear, cover, height, tgt.albedo, nir, RESIN.dot_blur_px, 0.0, RESIN)


@lru_cache(maxsize=8)
def mask_eyeholes(target: Identity, instance: int) -> Surface:
    rng = instrument_rng(target.family, "mask_eyeholes", instance)
    tgt = head_layers(replace(target, glasses="none"))
    wear = head_layers(wearer_of(target))
    gx, gy = wear.gx, wear.gy
    thickness = float(rng.uniform(0.002, 0.004))
    region = _face_oval(target, gx, gy) & (wear.face_height > MISS / 2)
    holes = _holes(tgt.landmarks.eyes, gx, gy, float(rng.uniform(0.012, 0.016)), float(rng.uniform(0.006, 0.009)))
    cover = region & ~holes
    height = np.maximum(tgt.face_height, wear.face_height + thickness + 0.002)
    nir = _painted_nir(tgt.albedo, float(rng.uniform(0.40, 0.60)))
    return _worn(wear, cover, height, tgt.albedo, nir, RESIN.dot_blur_px, 0.0, RESIN)


@lru_cache(maxsize=8)
def silicone_mask(target: Identity, instance: int) -> Surface:
    rng = instrument_rng(target.family, "silicone_mask", instance)
    tgt = head_layers(replace(target, glasses="none", beard=False))
    wear = head_layers(wearer_of(target))
    gx, gy = wear.gx, wear.gy
    # A full-head mask: the target's face, hair and neck, stretched over the wearer's head. Silicone
    # gives: its shape lies between the sculpt and the face under it.
    region = (tgt.height > MISS / 2) & (wear.height > MISS / 2) & (gy < 0.20)
    holes = _holes(tgt.landmarks.eyes, gx, gy, float(rng.uniform(0.010, 0.013)), float(rng.uniform(0.005, 0.007)))
    cover = region & ~holes
    thickness = float(rng.uniform(0.002, 0.005))
    height = np.maximum(0.6 * tgt.height + 0.4 * wear.height + thickness, wear.height + 0.002)
    # Pigments in the silicone are mostly NIR-transparent: the NIR albedo is the silicone's own,
    # skin-like but not tied to the painted tone; implanted hair keeps hair's NIR.
    s_nir = float(rng.uniform(0.50, 0.66))
    hairy = tgt.dot_blur < 0.85
    nir = np.where(hairy, tgt.nir, s_nir * (0.92 + 0.08 * np.clip(tgt.nir / max(tgt.identity.skin_nir, 1e-3), 0, 1.2)))
    dot_blur = np.where(hairy, tgt.dot_blur, float(rng.uniform(0.80, 0.90)))
    return _worn(wear, cover, height, tgt.albedo, nir, dot_blur, float(rng.uniform(0.4, 0.7)), SILICONE)


@lru_cache(maxsize=8)
def paper_mask(target: Identity, instance: int) -> Surface:
    rng = instrument_rng(target.family, "paper_mask", instance)
    tgt = head_layers(replace(target, glasses="none"))
    wear = head_layers(wearer_of(target))
    gx, gy = wear.gx, wear.gy
    radius = float(rng.uniform(0.09, 0.14))
    bend = radius - np.sqrt(np.clip(radius * radius - gx * gx, 0, None))
    # The cut-out follows the target's head outline (face and hair), down to the chin.
    region = (tgt.height > MISS / 2) & (gy < tgt.landmarks.chin_y + 0.008) & (np.abs(gx) < radius * 0.95)
    holes = _holes(tgt.landmarks.eyes, gx, gy, float(rng.uniform(0.011, 0.015)), float(rng.uniform(0.006, 0.009)))
    cover = region & ~holes
    # Paper cannot take the nose: it is a cylinder just clearing the wearer's face everywhere.
    clear = np.where(region & (wear.height > MISS / 2), wear.height + bend, -1.0)
    front = float(clear.max()) + 0.003
    height = (front - bend).astype(np.float32)
    printed, nir = print_texture(tgt.albedo)
    nir = nir * float(rng.uniform(0.90, 1.08))
    return _worn(wear, cover, height, printed, nir, PAPER.dot_blur_px, 0.0, PAPER)


@lru_cache(maxsize=8)
def print_eyes(target: Identity, instance: int) -> Surface:
    rng = instrument_rng(target.family, "print_eyes", instance)
    tgt = head_layers(replace(target, glasses="none"))
    wear = head_layers(wearer_of(target))
    gx, gy = wear.gx, wear.gy
    eye_y = wear.landmarks.eyes[0][1]
    half_w = float(rng.uniform(0.058, 0.070))
    band = (np.abs(gx) < half_w) & (gy > eye_y - float(rng.uniform(0.016, 0.022))) & \
        (gy < eye_y + float(rng.uniform(0.013, 0.018))) & (wear.height > MISS / 2)
    radius = float(rng.uniform(0.08, 0.12))
    bend = radius - np.sqrt(np.clip(radius * radius - gx * gx, 0, None))
    front = float(np.where(band, wear.height + bend, -1.0).max()) + 0.002
    height = (front - bend).astype(np.float32)
    printed, nir = print_texture(_aligned_target(tgt, wear, tgt.albedo))
    return _worn(wear, band, height, printed, nir, PAPER.dot_blur_px, 1.0, PAPER)


@lru_cache(maxsize=8)
def glasses_print(target: Identity, instance: int) -> Surface:
    rng = instrument_rng(target.family, "glasses_print", instance)
    tgt = head_layers(replace(target, glasses="none"))
    w_ident = wearer_of(target)
    wear = head_layers(w_ident)
    gx, gy = wear.gx, wear.gy
    frame, frame_h, lens, lens_h, _, optics, _ = glasses_layers(replace(w_ident, glasses="clear"), gx, gy,
                                                        wear.face_height, wear.landmarks)
    printed, nir = print_texture(_aligned_target(tgt, wear, tgt.albedo))
    nir = nir * float(rng.uniform(0.9, 1.05))
    insert = lens > 0
    h = np.where(insert, lens_h, np.where(frame, frame_h, MISS))
    albedo = np.where(frame[..., None], optics["frame_bgr"], printed)
    nir = np.where(frame, optics["frame_nir"], nir)
    dot_blur = np.where(frame, 0.4, PAPER.dot_blur_px)
    cover = insert | (frame & (frame_h > MISS / 2))
    h = np.where(cover, np.maximum(h, wear.height), wear.height)
    return _worn(wear, cover, h, albedo, nir, dot_blur, 1.0, PAPER)


NEW_WORN = {"mask_eyeholes": mask_eyeholes, "silicone_mask": silicone_mask, "paper_mask": paper_mask,
            "print_eyes": print_eyes, "glasses_print": glasses_print}


def head_model_nir(target: Identity, instance: int) -> float:
    """A hand-held head model is plaster or painted resin; which one is part of the instance."""
    rng = instrument_rng(target.family, "head_model_hand", instance)
    return float(rng.choice([0.80, 0.75, 0.55, 0.48]))

"""Identities: who stands in front of the simulated camera, drawn deterministically from a number.

``Identity.draw(n, family)`` draws head shape (nose relief, face width, IPD, brow and chin depth,
face length; in the sixth family also eye-socket depth and breathing rate and phase; in the seventh
blink rate and blink duration; in the eighth the skin's own 850 nm reflectance within its type; in the
ninth the skin's sheen; in the tenth whether the person has facial hair, and its length, density and
how far up the cheeks it grows; in the eleventh whether the person wears a headscarf, its fabric, how
far down the forehead and in from the temples it reaches, and how far it stands off; in the twelfth
their spectacle lenses' material and coating, so their reflectance in the visible and at 850 nm; in the
thirteenth the palpebral fissure; in the fourteenth the cornea's radius and diameter; in the sixteenth
a peaked cap; in the seventeenth make-up: a foundation's coverage, shade, 850 nm and sharpening of the
projector's dots, and lipstick; in the eighteenth whether the person is older, their age and photo-ageing:
forehead lines, crow's feet, nasolabial folds, thinner cheeks and drooping lids; in the nineteenth a winter
scarf wound up to the chin or the lower lip; in the twentieth facial piercings; in the twenty-first a medical
mask pulled down under the chin; in the twenty-second long bangs over the brows; in the twenty-third whether the
person is seated: a wheelchair user at the counter, lower in the frame and looking up), skin tone
(Fitzpatrick I-VI), hair, glasses, beard, fringe, clothing and a texture seed from ``n``.
``identity=0`` is the reference person: the portrait's own proportions (IPD 63 mm, nose 24 mm),
Fitzpatrick II, no glasses, beard or fringe. Every field can be overridden by a URI key, except the
sixth family's eye-socket depth and breathing, the seventh family's blinks, the eighth family's
skin NIR factor, the ninth's sheen, the tenth's beard style, the eleventh's headscarf, the twelfth's
lenses, the thirteenth's palpebral fissure, the fourteenth's corneas, the sixteenth's caps, the
seventeenth's make-up, the eighteenth's age, the nineteenth's winter scarf, the twentieth's piercings, the
twenty-first's chin masks, the twenty-second's bangs and the twenty-third's seats (no key sets them; ``beard=1``
on a tenth-family person drawn without facial hair gives the one look everyone else has).

Skin reflectance by Fitzpatrick type. Melanin absorbs strongly in the visible and weakly at 850 nm,
so visible reflectance falls ~5x from type I to VI while 850 nm reflectance falls only ~1.4x.
Figures are read off published spectra: Jacquez et al., "Spectral reflectance of human skin in the
region 0.7-2.6 µm", J. Appl. Physiol. 8 (1955) (pigment differences only below ~1 µm);
Anderson & Parrish, "The optics of human skin", J. Invest. Dermatol. 77 (1981) (light vs dark skin,
250-1000 nm); Cooksey et al., NIST skin reflectance data (2015-2017). Visible values are linear
reflectance per channel (B, G, R) at roughly 450/550/600 nm; NIR is at 850 nm.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

# Fitzpatrick type -> (B, G, R) linear visible reflectance, 850 nm reflectance.
SKIN_TONES: dict[int, tuple[tuple[float, float, float], float]] = {
    1: ((0.42, 0.47, 0.62), 0.62),
    2: ((0.33, 0.39, 0.55), 0.58),   # the reference portrait's skin
    3: ((0.24, 0.30, 0.45), 0.56),
    4: ((0.14, 0.19, 0.31), 0.52),
    5: ((0.075, 0.10, 0.17), 0.48),
    6: ((0.045, 0.058, 0.095), 0.43),
}

# Hair: (B, G, R) linear reflectance and 850 nm reflectance. Eumelanin absorbs far less at 850 nm,
# so even black hair is several times brighter in NIR than in the visible.
HAIR_COLOURS: dict[str, tuple[tuple[float, float, float], float]] = {
    "black": ((0.012, 0.013, 0.016), 0.12),
    "dark_brown": ((0.020, 0.028, 0.045), 0.18),
    "brown": ((0.045, 0.070, 0.110), 0.27),
    "light_brown": ((0.090, 0.150, 0.220), 0.36),   # the reference portrait's hair
    "blond": ((0.180, 0.290, 0.400), 0.45),
    "grey": ((0.250, 0.260, 0.270), 0.42),
}
HAIR_STYLES = ("short", "medium", "long")
GLASSES = ("none", "clear", "tinted")

# Clothing: visible colours (B, G, R linear) and their NIR reflectance. Textile dyes are often
# transparent at 850 nm (a navy jacket can be bright in NIR); carbon-black fabric is not.
CLOTHING: tuple[tuple[str, tuple[float, float, float], float], ...] = (
    ("navy suit", (0.060, 0.030, 0.020), 0.55),
    ("charcoal suit", (0.035, 0.035, 0.035), 0.15),
    ("white shirt", (0.70, 0.72, 0.70), 0.80),
    ("light blue shirt", (0.55, 0.42, 0.30), 0.75),
    ("red sweater", (0.05, 0.05, 0.35), 0.65),
    ("green jacket", (0.05, 0.12, 0.06), 0.50),
    ("beige coat", (0.30, 0.40, 0.48), 0.70),
    ("black t-shirt", (0.020, 0.020, 0.022), 0.35),
)

FAMILIES = ("any", "train", "heldout", "field", "fresh", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
            "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth",
            "eighteenth", "nineteenth", "twentieth", "twentyfirst", "twentysecond", "twentythird")
# The identity stream for each family is salted so that family=train&identity=5,
# family=heldout&identity=5, family=field&identity=5, family=fresh&identity=5,
# family=fifth&identity=5, family=sixth&identity=5, family=seventh&identity=5, family=eighth&identity=5
# family=ninth&identity=5, family=tenth&identity=5, family=eleventh&identity=5 and
# family=twelfth&identity=5 are different people,
# and none of them equals family=any&identity=5.
_FAMILY_SALT = {"any": 10_000, "train": 2_000_003, "heldout": 7_000_019, "field": 11_000_027,
                "fresh": 13_000_027, "fifth": 17_000_041, "sixth": 19_000_051, "seventh": 23_000_077,
                "eighth": 29_000_081, "ninth": 31_000_091,
                "tenth": 37_000_111, "eleventh": 41_000_129, "twelfth": 43_000_133,
                "thirteenth": 47_000_147, "fourteenth": 53_000_161,
                "fifteenth": 59_000_173, "sixteenth": 61_000_187, "seventeenth": 67_000_201,
                "eighteenth": 71_000_223, "nineteenth": 73_000_237,
                "twentieth": 79_000_241, "twentyfirst": 83_000_257, "twentysecond": 89_000_273,
                "twentythird": 97_000_283}

# What the simulator gave everyone alike until the sixth family, which draws them per person:
# - the eye sockets' depth under the brow-cheek surface (head.face_height), 11 mm. Hertel
#   exophthalmometry (how far the cornea stands in front of the lateral orbital rim) in adults has
#   population and sex means of about 15-18 mm with an SD of about 2 mm and a normal range of about
#   12-21 mm (figures as recalled from the exophthalmometry literature, e.g. Migliori and Gladstone,
#   Am. J. Ophthalmol. 98 (1984), 438-442: not read here). A deeper-set eye sits that much further
#   behind the rim, so the sixth family draws Hertel ~ N(16.5, 2) mm clipped to 12-21 mm and sets the
#   socket to 11 mm + (16.5 mm - Hertel): 6.5-15.5 mm, 11 mm at the mean;
# - the breathing that moves head and shoulders (scene.Scene.pose): 15 breaths/min, in phase for
#   everyone. Adults at rest breathe 12-20 times a minute (the clinical normal range); the sixth
#   family draws the rate uniformly in it and the phase uniformly over the cycle.
SOCKET_M = 0.011
BREATH_HZ = 0.25
HERTEL_MM = (16.5, 2.0, 12.0, 21.0)           # mean, SD, clip range
BREATHS_PER_MIN = (12.0, 20.0)
PER_PERSON_FAMILIES = ("sixth",)               # families that draw sockets and breathing per person
# What the simulator still gave everyone alike until the seventh family, which draws it per person:
# the blinks (scene.blink_schedule, scene.eyes_closed_at). Everyone else blinks every 2-5 s (12-30 a
# minute, 17 on average) with one 300 ms blink (80 ms closing, 60 ms shut, 160 ms opening). Adults at
# rest blink about 8-21 times a minute, each blink lasting about 100-400 ms (the ranges of the blink
# literature as the brief gives them and as recalled, e.g. Doughty's review of spontaneous eyeblink
# rates, Optom. Vis. Sci. 78 (2001), and Caffier et al., Eur. J. Appl. Physiol. 89 (2003) on blink
# duration: not read here). The seventh family draws each person's rate uniformly in 8-21 a minute and
# the duration uniformly in 100-400 ms (the same shape, scaled); their blinks keep the old spread of
# intervals around their own mean (x0.57-1.43, as 2-5 s around 3.5 s), and the first one falls anywhere
# in the person's first interval after 0.4 s, as a presentation starts at any point of someone's cycle.
BLINK_S = 0.30
BLINKS_PER_MIN = (8.0, 21.0)
BLINK_DURATION_S = (0.10, 0.40)
BLINK_FAMILIES = ("seventh",)                  # families that draw blink rate and duration per person
# What the simulator still gave everyone of one Fitzpatrick type alike until the eighth family: the
# skin's 850 nm reflectance (SKIN_TONES: one value per type). Between people of one type it varies
# with the dermis' thickness, blood and water content, which absorb and scatter there; in the NIST
# skin reflectance measurements (Cooksey et al., above) people of similar visible tone differ at 850 nm
# by about +-10 % of the value (as recalled, not read here: a figure of the spread, not a fitted
# distribution). The eighth family draws a factor on its type's value uniformly in 0.90-1.10, which
# under bright sun moves how close a face's IR comes to clipping; everyone else keeps 1.0 exactly.
SKIN_NIR_FACTOR = (0.90, 1.10)
SKIN_NIR_FAMILIES = ("eighth",)                # families that draw the skin's NIR factor per person
# What the simulator still gave everyone alike until the ninth family: skin has no sheen (the renderer's
# skin is Lambertian; its lamp glints come from spectacle lenses only). Skin reflects 3-6 % of light at
# its surface (sebum and stratum corneum, index ~1.45-1.55), as a highlight whose strength differs between
# people and over a face by about 3-4x (oily to dry skin): Weyrich et al., "Analysis of human faces using
# a measurement-based skin reflectance model", SIGGRAPH 2006, fitted a Torrance-Sparrow specular term per
# person and face region over 149 subjects (their spread as recalled, not read here). Under a diffuse
# light it is lost in the diffuse light; under a point-like source (the ninth family's CCTV IR flood,
# night.py) it is a spot on the forehead, nose and cheeks. The ninth family draws each person's peak
# highlight uniformly in 0.04-0.16 of the flood's irradiance (on a skin whose 850 nm diffuse reflectance
# is 0.43-0.62); everyone else 0.0 exactly (and no other light here draws a highlight from it).
SKIN_SHEEN = (0.04, 0.16)
SHEEN_FAMILIES = ("ninth",)                    # families that draw the skin's sheen per person
# What the simulator still gave every bearded person alike until the tenth family: one beard (drawn
# coverage 0.55-0.97, standing 6 mm off the skin, its upper edge 4 mm above the nose's base line).
# Facial hair runs from a few days' stubble to a full beard: beard hair grows about 0.3-0.4 mm a day
# (recalled: Randall and Ebling's measurements of beard growth, ~0.27-0.38 mm/day), so 1-3 mm after
# 3-7 days unshaven and 10-50 mm after months; its density is 20-80 hairs per cm2 on the cheeks to
# 100+ on the chin and lip (recalled, typical dermatology figures), and where the beard's upper edge
# ("cheek line") lies differs by 20-30 mm between men, from the jaw's angle to the upper cheeks
# (recalled). The tenth family therefore draws facial hair per person (30 % of people, stubble included,
# where the other families draw a beard for 18 %): its length log-uniform in 1-30 mm (standing off the
# skin by half its length, hair lying and curling: 0.5-15 mm, against everyone else's 6 mm), its
# coverage 0.30-0.97 (sparse stubble to dense), and its upper edge raised 0-25 mm up the cheeks (the
# lower cheeks the judge reads alone in some sessions). Everyone else keeps the one look exactly.
BEARD_STYLE_FAMILIES = ("tenth",)              # families that draw the beard's style per person
BEARD_SHARE = 0.30                             # the tenth family: who has facial hair (stubble included)
BEARD_LENGTH_MM = (1.0, 30.0)                  # log-uniform
BEARD_DENSITY = (0.30, 0.97)
BEARD_RISE_MM = (0.0, 25.0)
BEARD_STANDOFF_M = 0.006                       # everyone else's beard: 6 mm off the skin
# What the simulator still gave everyone until the eleventh family: a bare head (hair, ears and the
# whole forehead up to the hairline in view). Many people at a kiosk cover the head: a headscarf or
# hijab wraps the hair, ears and neck and leaves the face's oval open; where its edge sits differs from
# person to person, from the hairline to about 2 cm down the forehead, and from the temples to over
# the cheeks' outer edge (recalled, typical of how hijab styles are worn; no measured distribution was
# reachable here); the fabric stands a few millimetres off the skin (an underscarf and pins under it,
# 3-12 mm, typical). Its fabric differs in the visible and at 850 nm: most textile dyes are transparent
# in the near infrared, so a dyed fabric reflects 0.5-0.8 at 850 nm whatever its colour, while a
# carbon-black (or sulphur-black) dyed one stays dark there (~0.05-0.10): recalled figures from the
# near-infrared camouflage and textile-sorting literature, marked as such. The judge reads discs on the
# forehead and cheeks: a scarf reaching down over the forehead's top or in over the cheeks' edge puts
# fabric, not skin, under some of them. The eleventh family draws a headscarf for 30 % of people
# (typical of a Muslim-majority or mixed city's branch, recalled); the others (and every earlier
# family's people) are bare-headed exactly as before.
SCARF_FAMILIES = ("eleventh",)                 # families that draw a headscarf per person
SCARF_SHARE = 0.30
SCARF_BROW_MM = (0.0, 20.0)                    # how far below the face's top (the hairline) its edge sits
SCARF_OPEN = (0.34, 0.42)                      # the face opening's half width, x the face width
SCARF_STANDOFF_MM = (3.0, 12.0)
# Fabrics: name, linear B, G, R visible reflectance, 850 nm reflectance (recalled, see above).
SCARVES: tuple[tuple[str, tuple[float, float, float], float], ...] = (
    ("black, reactive dye", (0.035, 0.035, 0.040), 0.55),
    ("black, carbon", (0.030, 0.030, 0.030), 0.07),
    ("navy", (0.14, 0.05, 0.03), 0.60),
    ("white", (0.78, 0.80, 0.80), 0.80),
    ("beige", (0.42, 0.52, 0.60), 0.72),
    ("maroon", (0.06, 0.05, 0.24), 0.65),
    ("grey", (0.24, 0.24, 0.24), 0.55),
    ("dusty pink", (0.52, 0.46, 0.70), 0.74),
    ("olive", (0.08, 0.25, 0.20), 0.62),
)
# What the simulator still gave every spectacle wearer until the twelfth family: a lens that mirrors
# 0.8 % per surface (coated, half of them) or 4 % (uncoated), the same in the visible and at 850 nm
# (head.glasses_layers). Neither holds for real lenses. An uncoated lens mirrors by Fresnel's law at
# normal incidence, R = ((n - 1) / (n + 1))^2 per surface, so its material decides: CR-39 (n 1.50) 4.0 %,
# Trivex (1.53) 4.4 %, polycarbonate (1.59) 5.2 %, 1.60 5.3 %, 1.67 6.3 %, 1.74 7.3 % (the indices are
# the ophthalmic materials' nominal ones, recalled; the dispersion between 550 and 850 nm moves R by
# < 0.2 points, left out). An anti-reflective coating is a thin-film stack designed for the visible: its
# residual luminous reflectance is ~0.3-1.5 % per surface (the spread of commercial coatings, recalled:
# premium ones below 0.5 %), but outside its design band the reflectance climbs, and at 850 nm published
# curves of visible AR stacks show several per cent, 2-8 % per surface (recalled from AR-coating
# reflectance curves, not read here): a coated lens that looks clear to the eye can mirror the projector
# as much as an uncoated one, or more. 70 % of spectacle lenses are coated (typical of markets where
# AR is sold with most lenses, recalled). The twelfth family draws, for everyone (used by those who
# wear glasses), the lens material, whether it is coated, and the coated lens's visible and 850 nm
# reflectance per surface; everyone else keeps the old lenses exactly.
LENS_FAMILIES = ("twelfth",)                   # families that draw the lenses' reflectance per person
LENS_INDICES = (1.498, 1.53, 1.586, 1.60, 1.67, 1.74)
LENS_COATED_SHARE = 0.70
LENS_AR_VIS = (0.003, 0.015)                   # per surface, coated
LENS_AR_NIR = (0.02, 0.08)                     # per surface at 850 nm, coated
# The thirteenth family's eyelids: each person's vertical palpebral fissure (the open eye's height,
# upper to lower lid margin, in primary gaze), drawn from Read et al., Optom. Vis. Sci. 83 (2006):
# 9.7 +- 1.2 mm for white adults in primary gaze; Dutton (eyelid retraction chapter): "the vertical
# interpalpebral fissure measures 8-10 mm" with the upper lid 2-3 mm below the limbus; van den Bosch
# et al. (2001): with age the lower lid drops ~0.5-1 mm from the pupil centre (read as search excerpts,
# session 24). Clipped to 2 SD. The portrait every face is rendered from has the textbook ~10 mm
# ("about 10mm vertically", Wikipedia, read): a fissure under it is rendered as a resting partial lid
# (``lid_rest``, scene.py: the blink's own blend toward the closed lid, by (10 - h) / 10); the
# simulator cannot open an eye wider than its portrait, so fissures over 10 mm render as 10 mm.
FISSURE_FAMILIES = ("thirteenth",)
FISSURE_MM = (9.7, 1.2, 7.3, 12.1)             # mean, SD, lower and upper clip
PORTRAIT_FISSURE_MM = 10.0
# The fourteenth family's corneas (cornea.py; the family renders them on every URI): each person's
# anterior corneal radius and visible corneal diameter, where everyone else's are the schematic eye's
# 7.8 mm and 11.7 mm. Diameter (white-to-white): 11.71 +- 0.42 mm in 390 healthy subjects aged 10-80
# (Rüfer et al., Cornea 24 (2005): normal ranges 10.70-12.58 mm; Hashemi et al. 2015, 4787 adults: mean
# 11.80, 2 SD 10.8-12.8; read as search excerpts, session 25). Radius: 7.8 mm (Millodot's "constants of
# the eye", read) with an adult SD of ~0.26 mm (recalled from keratometry surveys, not read here). Each
# clipped to 2 SD; drawn independently (the diameter's correlation with the radius, r = 0.42 in
# Hashemi et al., is not modelled). A flatter cornea mirrors a larger image (the glint's equivalent
# albedo goes as r^2, cornea.sphere_glint_albedo): 0.88-1.14 x the fixed eye's; a wider one shows a glint
# at larger angles (asin(limbus / r)).
CORNEA_FAMILIES = ("fourteenth",)
CORNEA_RADIUS_MM = (7.8, 0.26, 7.28, 8.32)     # mean, SD, lower and upper clip
CORNEA_DIAMETER_MM = (11.71, 0.42, 10.87, 12.55)
# The sixteenth family's caps: what no family drew, a peaked (baseball-style) cap, whose brim stands in
# front of the brow. Banks often post signs asking customers to take hats off at ATMs (for the CCTV,
# recalled), and many do not; the capture gate asks for no such thing. A cap's wearer in the capture
# envelope presents a face whose eyes the camera sees, so the brim is drawn as worn and then limited
# so that its front edge, seen from in front, stays above the upper lid (a brim over the eyes would be
# refused by the gate, not judged). Drawn for ``CAP_SHARE`` (20 %) of people (an assumption: no count of
# cap wearers at kiosks was reached). Geometry (typical of adult caps, recalled, not read): the brim is
# 60-90 mm from the crown's band to its front edge (the brief's "60-90 mm in front of the brow"),
# 170-200 mm across at its root, its planform half an ellipse, pulled down 5-25° from the horizontal;
# its root sits 10-35 mm above the brows. The crown's fabric (one of the headscarves' fabrics, SCARVES,
# visible and 850 nm) covers the head above the root, 3 mm off the skin or hair. The brim is rendered as
# the frontmost surface seen from in front (the head is a height field, head.py): a wedge from its top
# surface back to the forehead, so its underside and the air under it are not modelled, nor the shadow
# it casts (the simulator's room light has no cast shadows in any family: sensor.color_irradiance).
CAP_FAMILIES = ("sixteenth",)
CAP_SHARE = 0.20
CAP_BRIM_MM = (60.0, 90.0)
CAP_WIDTH_MM = (170.0, 200.0)
CAP_TILT_DEG = (5.0, 25.0)
CAP_ROOT_MM = (10.0, 35.0)                     # the brim's root above the brows
# The seventeenth family's make-up: what no family drew, skin under a cosmetic film. A liquid or cream
# foundation (often set with powder) is a 5-30 um film of pigments (titanium dioxide, iron oxides) and
# fillers in a binder over the skin (recalled from cosmetic-science texts, not read here). What a person
# in the capture envelope presents with it, as drawn here for ``MAKEUP_SHARE`` (35 %) of people (an
# assumption: no count of made-up customers at kiosks was reached):
# - coverage ``MAKEUP_COVER`` 0.3-0.9 (sheer to full): the share of the skin's own look (its colour,
#   freckles and mottling, and its 850 nm) the film replaces, over the face's skin from the hairline to
#   the jaw, not over the eyes (their whites, lids and lashes), the brows or the lips;
# - its shade ``MAKEUP_SHADE`` 0.85-1.15 x the person's skin colour per channel (a shade matched within
#   the ranges' steps, slightly warmer or cooler: each channel drawn on its own, recalled as typical);
# - its 850 nm reflectance ``MAKEUP_NIR`` 0.8-1.3 x the person's skin's: iron oxides reflect strongly in
#   the near infrared and titanium dioxide scatters it, so a film can read brighter or darker there than
#   the skin it covers (recalled; no spectra of foundations read);
# - the projector's dots: skin blurs them by subsurface scattering (``SKIN.dot_blur_px`` 0.9 px); an
#   opaque pigment film returns part of the light from its surface, so the dots read sharper where it
#   covers: ``MAKEUP_SHARPEN`` 0.20-0.50 of the way from skin's blur towards a resin mask's (0.55 px),
#   times the coverage (an assumption: the film's share of the 850 nm return is not measured here);
# - lipstick for half of them (``LIPSTICK_SHARE``): one of ``LIPSTICKS``' colours over the lips, its 850 nm
#   that of the lips (organic red pigments are transparent at 850 nm, recalled).
MAKEUP_FAMILIES = ("seventeenth",)
MAKEUP_SHARE = 0.35
MAKEUP_COVER = (0.3, 0.9)
MAKEUP_SHADE = (0.85, 1.15)
MAKEUP_NIR = (0.8, 1.3)
MAKEUP_SHARPEN = (0.20, 0.50)
LIPSTICK_SHARE = 0.5
LIPSTICKS: tuple[tuple[str, tuple[float, float, float]], ...] = (   # linear B, G, R reflectance (typical)
    ("classic red", (0.05, 0.04, 0.42)),
    ("deep berry", (0.10, 0.03, 0.20)),
    ("coral", (0.10, 0.16, 0.55)),
    ("nude pink", (0.22, 0.20, 0.45)),
    ("brown", (0.06, 0.07, 0.16)),
)

# The eighteenth family's older people: what no family drew, a face aged 60-85. Every family's people are
# drawn as one adult face of unstated age (the portrait's); people aged 60 and over are about 30 % of the
# adults of the EU (Eurostat's population pyramids, recalled, not read) and use branches more than the
# young (recalled), so ``AGE_SHARE`` (30 %) of the family's people are drawn older, their age uniform in
# ``AGE_YEARS`` and a photo-ageing factor ``AGE_PHOTO`` (sun exposure, smoking: the same age with shallower
# or deeper lines; an assumption) scaling every line's depth. What the capture envelope sees of it (the
# depths recalled from skin-profilometry and facial-ageing reviews, not read here; severity s = (age - 60)
# / 25, 0..1):
# - forehead lines: 3-5 horizontal furrows (``AGE_FOREHEAD_LINES``), 6-10 mm apart from 12 mm above the
#   brows, (0.15 + 0.30 s) mm deep x the photo-ageing factor, ~1.6 mm wide (sigma 0.8 mm: at the
#   projector's dots' scale, 1-3 mm at the face);
# - crow's feet: 3 lines fanning from each eye's outer corner, 8-14 mm long, (0.10 + 0.20 s) mm deep;
# - nasolabial folds: a groove from beside each nostril to beside the mouth's corner, (0.5 + 1.0 s) mm deep,
#   ~3 mm wide;
# - thinner cheeks: the cheeks' fat pads lose (0.2 + 0.3 s) of their 6 mm relief and a hollow (0.5 + 1.5 s)
#   mm deep forms under the cheekbones (relief the depth image resolves at 0.35-0.52 m);
# - drooping upper lids (dermatochalasis, senile ptosis): the palpebral fissure (10 mm, the portrait's)
#   narrows by (0.5 + 1.5 s) mm, through the thirteenth family's resting lid (``lid_rest``).
# The skin's colour, 850 nm and the dots' blur are left as the person's type gives them (age spots and
# thinner dermis not modelled).
AGE_FAMILIES = ("eighteenth",)
AGE_SHARE = 0.30
AGE_YEARS = (60.0, 85.0)
AGE_PHOTO = (0.6, 1.4)
AGE_FOREHEAD_LINES = (3, 5)
# The nineteenth family's winter scarves: what no family drew, the lower face covered from below. A person
# coming in from the cold keeps a knitted scarf (or a coat's raised collar) wound up round the neck; no
# family covered the jaw and chin (the eleventh's headscarves frame the face from above and the sides, and
# leave the chin bare). ``WINTER_SHARE`` (25 %: a branch in a northern winter; an assumption, no source
# reached) of the family's people wear one, its top edge at ``WINTER_REACH`` of the way from 5 mm under the
# chin's tip (a collar under the jaw) up to the lower lip (a scarf pulled up over the chin), uniform, with a
# soft wavy edge (+-3 mm); wool of one of the headscarves' fabrics (SCARVES: their colour and 850 nm
# reflectance), standing ``WINTER_STANDOFF_MM`` (10-25 mm: one or two turns of knitted wool, recalled) off
# the skin, rising over its first 10 mm from the edge (the roll of the fabric), with 3 mm folds. What it
# exercises: the face detector's and the quality gate's chin and jaw, the depth-shape cues over a face
# whose lower third is fabric standing off it, the mouth's lower lip covered in some. No face landmark is
# moved: the face keeps its shape under the scarf.
WINTER_FAMILIES = ("nineteenth",)
WINTER_SHARE = 0.25
WINTER_REACH = (0.0, 1.0)
WINTER_STANDOFF_MM = (10.0, 25.0)
# The twentieth family's facial piercings: what no family drew, polished metal on the face. Metal is a
# mirror, not a diffuser: a stud's or a ring's convex surface mirrors the room's lamp and the camera's own
# projector as bright points (in colour and at 850 nm), where skin, make-up, hair and fabric scatter; and it
# stands 1-4 mm off the skin in a few millimetres, relief at the depth image's limit. ``PIERCING_SHARE``
# (15 %: an assumption near the 14 % of 18-50-year-olds with a piercing other than the earlobe in a US survey,
# Laumann & Derick 2006, recalled, not read; that counts body sites too, so a face share this high is on the
# high side on purpose) of the family's people wear 1-3 (``PIERCING_COUNT``) at distinct sites
# (``PIERCING_SITES``): a nostril stud or ring, an eyebrow barbell (two balls, 8-10 mm apart vertically), a
# labret (lower-lip) stud or ring, a septum ring. Studs are balls or domes ``STUD_MM`` (2-4 mm) across; rings
# ``RING_MM`` (8-12 mm outer diameter) of ``WIRE_MM`` (0.8-1.6 mm: 20 to 14 gauge) wire, the quarter that
# enters the tissue hidden (sizes recalled from jewellery catalogues' ranges, not read). The metal is one of
# ``METALS``: surgical steel, titanium or gold, each with its visible (B, G, R) and 850 nm specular
# reflectance (polished metals' near-normal reflectance, recalled: steel ~0.55-0.6 visible, ~0.65 at 850
# nm; titanium ~0.5/0.55; gold ~0.38 blue, ~0.8 red, ~0.97 at 850 nm). No face landmark moves.
PIERCING_FAMILIES = ("twentieth",)
PIERCING_SHARE = 0.15
PIERCING_COUNT = (1, 3)
PIERCING_SITES = ("nostril", "brow", "labret", "septum")
STUD_MM = (2.0, 4.0)
RING_MM = (8.0, 12.0)
WIRE_MM = (0.8, 1.6)
RING_SHARE = 0.5                  # of nostril and labret piercings (septum: always a ring; brow: a barbell)
# name, visible specular reflectance (B, G, R), 850 nm specular reflectance
METALS: tuple[tuple[str, tuple[float, float, float], float], ...] = (
    ("steel", (0.56, 0.57, 0.58), 0.65),
    ("titanium", (0.50, 0.49, 0.48), 0.55),
    ("gold", (0.38, 0.70, 0.85), 0.97),
)

# The twenty-first family's medical masks pulled down under the chin: what no family drew, a thin light
# fabric cupping the chin with elastic ear loops running up across the cheeks. Since 2020 people wear a
# surgical mask at the chin between uses (observed in studies of mask use in public, 2020-2021: a few to
# ~15 % of wearers with it below the nose or the chin, recalled, not read); a customer at a terminal in a
# clinic's lobby or a season of flu keeps it there. ``MASK_SHARE`` (15 %: an assumption, high on purpose
# as the piercings' share) of the family's people wear one: its top edge at ``MASK_REACH`` of the way from
# 4 mm under the chin's tip (0: the chin bare, the mask under the jaw) to 14 mm under the mouth's line (1:
# the labiomental fold), its lower part under the jaw, ``MASK_HALF_WIDTH`` (0.8-1.0) of the face's half
# width across, on the skin with pleats ``MASK_PLEAT_MM`` (1-3 mm: three folded pleats, recalled) proud,
# its ear loops ``LOOP_MM`` (2-4 mm elastic, recalled) wide from its top corners up to the ears beside the
# nose's tip. Its fabric (``MASKS``): a surgical mask's blue or white spunbond polypropylene, or a black cloth
# or KN95 mask; (B, G, R) albedo and 850 nm reflectance (recalled: undyed polypropylene nonwoven ~0.8 in the
# visible and at 850 nm; phthalocyanine-blue dyed ~0.75 at 850 nm, the dyes clearing past ~750 nm; black
# polyester with disperse dyes ~0.45 at 850 nm, carbon-black ~0.07 as SCARVES' carbon black).
MASK_FAMILIES = ("twentyfirst",)
MASK_SHARE = 0.15
MASK_REACH = (0.0, 1.0)
MASK_HALF_WIDTH = (0.8, 1.0)
MASK_PLEAT_MM = (1.0, 3.0)
LOOP_MM = (2.0, 4.0)
# name, (B, G, R) albedo, 850 nm reflectance; share among the masks (weights)
MASKS: tuple[tuple[str, tuple[float, float, float], float], ...] = (
    ("surgical blue", (0.80, 0.64, 0.42), 0.75),
    ("surgical white", (0.80, 0.81, 0.80), 0.80),
    ("black polyester", (0.035, 0.035, 0.040), 0.45),
    ("black carbon", (0.030, 0.030, 0.030), 0.07),
)
MASK_WEIGHTS = (0.55, 0.2, 0.15, 0.1)

# The twenty-second family's bangs: a fringe cut long, down over the brows (what no family drew: everyone's
# ``fringe`` ends 20-28 mm above the pupils' line, over the brows, head._hair_layers). Blunt, curtain and
# side-swept bangs reaching the brows or the lashes are a common cut (recalled, no survey read; ``BANGS_SHARE``
# 30 % is an assumption, high on purpose as the piercings' and the masks' shares). Drawn: the edge
# ``BANGS_REACH_MM`` from the brows' line (-3: their upper half hidden; +8: 8 mm under it, above the upper lid's
# crease; head.BROW_ABOVE_EYE_M puts the brows 16 mm over the pupils), straight (half) or swept to one side
# (``BANGS_SWEEP_MM``: the edge dropping this much from one side of the face to its middle and on), its last
# 10 mm thinned to ``BANGS_WISP`` of gaps between clumps (0: a dense blunt cut; 0.5: wispy), lying
# ``BANGS_STANDOFF_MM`` (1-4 mm: a few hairs thick, recalled) off the forehead, in the person's own hair colour.
BANGS_FAMILIES = ("twentysecond",)
BANGS_SHARE = 0.30
BANGS_REACH_MM = (-3.0, 8.0)
BANGS_SWEPT = 0.5                  # of bangs: swept to one side (else straight across)
BANGS_SWEEP_MM = (6.0, 15.0)
BANGS_WISP = (0.0, 0.5)
BANGS_STANDOFF_MM = (1.0, 4.0)

# The twenty-third family's seated users: a wheelchair user (or anyone seated) at a counter or a kiosk built for
# people standing, whose face is lower than everyone else's and who tilts the head back to face the camera (what
# no family drew: everyone else stands with the face on the camera's axis, ``SimConfig.pitch`` drawn about level).
# Figures recalled, not read: a seated adult's eyes are ~1.1-1.3 m above the floor against ~1.5-1.7 m standing
# (anthropometric tables), so at a terminal whose camera is set for standing eyes a seated face is well below the
# axis; at the envelope's 350-520 mm the camera sees only a few centimetres of that (the D435-class colour field is
# ±21° vertically, a face ±11-16°): ``SEATED_DROP_MM`` 15-40 mm lower (the rest of the difference taken by the head
# tilted back and the camera's own tilt); ``SEATED_PITCH_DEG`` 10-20° up (the brief's range; the line from a
# seated user's eyes to a camera 0.3-0.5 m above them at 0.5-1 m is 17-45° up, shared by the eyes and the neck).
# ``SEATED_SHARE`` 25 % is an assumption, high on purpose (the brief's figure; ~1 % of adults use a wheelchair,
# recalled), as the bangs' and the piercings' shares. The pose's pitch with the seat is held inside the capture
# envelope (families.ENVELOPE's -15°, scene.Scene.pose): the envelope is what the gate admits.
SEATED_FAMILIES = ("twentythird",)
SEATED_SHARE = 0.25
SEATED_PITCH_DEG = (10.0, 20.0)
SEATED_DROP_MM = (15.0, 40.0)


def fresnel_normal(n: float) -> float:
    """Reflectance of one uncoated surface of index ``n`` in air at normal incidence."""
    return ((n - 1.0) / (n + 1.0)) ** 2


@dataclass(frozen=True)
class Identity:
    """One simulated person. Lengths in metres."""

    index: int
    family: str
    skin: int                      # Fitzpatrick type 1..6
    nose_m: float                  # nose-tip relief over the face's base shape (what depth sees)
    ipd_m: float                   # interpupillary distance
    face_width_m: float            # head width at the cheekbones (the dome's width)
    brow_m: float                  # brow-ridge relief
    chin_m: float                  # chin projection
    length: float                  # vertical scale of the face (1 = the portrait's)
    mirror: bool
    hair_colour: str
    hair_style: str
    hairline: float                # how high the hairline sits, 0 (low) .. 1 (receding)
    glasses: str
    beard: bool
    fringe: bool
    clothing: int                  # index into CLOTHING
    texture_seed: int              # freckles, mottling, blemishes, frame shape
    socket_m: float = SOCKET_M     # eye sockets' depth under the brow-cheek surface
    breath_hz: float = BREATH_HZ   # breathing rate
    breath_phase: float = 0.0      # breathing phase at t = 0 (radians)
    blink_per_min: float | None = None   # blink rate; None: the schedule everyone had (every 2-5 s)
    blink_s: float = BLINK_S       # one blink's duration, closing to open again
    skin_nir_factor: float = 1.0   # the skin's 850 nm reflectance relative to its type's
    skin_sheen: float = 0.0        # the skin's highlight under a point-like source (night.IrFlood)
    beard_length_mm: float | None = None  # the tenth family's beard (None: the one look, head.py)
    beard_density: float | None = None    # its coverage 0..1 (None: drawn in head.py, 0.55-0.97)
    beard_rise_mm: float = 0.0            # how far above the usual line it reaches up the cheeks
    scarf: int | None = None              # the eleventh family's headscarf: index into SCARVES (None: bare)
    scarf_brow_mm: float = 0.0            # its edge below the face's top (the hairline)
    scarf_open: float = 0.0               # the face opening's half width, x the face width
    scarf_standoff_mm: float = 0.0        # how far the fabric stands off the skin
    lens_index: float = 0.0               # the twelfth family's lens material (0.0: the old lenses)
    lens_coated: bool = False             # anti-reflective coating
    lens_r_vis: float | None = None       # per-surface reflectance, visible (None: the old lenses)
    lens_r_nir: float | None = None       # per-surface reflectance at 850 nm
    fissure_mm: float | None = None       # the thirteenth family's palpebral fissure (None: the portrait's)
    cornea_radius_mm: float | None = None   # the fourteenth family's corneas (None: cornea.RADIUS_M's)
    cornea_diameter_mm: float | None = None  # and their visible diameter (None: 2 x cornea.LIMBUS_M)
    cap: int | None = None                # the sixteenth family's peaked cap: its fabric, index into SCARVES
    cap_brim_mm: float = 0.0              # the brim's length from the crown to its front edge
    cap_width_mm: float = 0.0             # its width at the root
    cap_tilt_deg: float = 0.0             # how far it is pulled down from the horizontal
    cap_root_mm: float = 0.0              # its root above the brows
    makeup_cover: float = 0.0             # the seventeenth family's foundation: its coverage (0.0: bare skin)
    makeup_shade: tuple[float, float, float] = (1.0, 1.0, 1.0)   # its colour x the skin's, B, G, R
    makeup_nir: float = 1.0               # its 850 nm reflectance x the skin's
    makeup_sharpen: float = 0.0           # how far it takes the dots' blur from skin's towards resin's
    lipstick: int | None = None           # index into LIPSTICKS (None: bare lips)
    age_years: float | None = None        # the eighteenth family's older people (None: the portrait's adult face)
    age_photo: float = 1.0                # their photo-ageing factor (every line's depth x this)
    winter_scarf: int | None = None       # the nineteenth family's winter scarf: its wool, index into SCARVES
    winter_reach: float = 0.0             # its top edge: 0 under the chin .. 1 at the lower lip
    winter_standoff_mm: float = 0.0       # how far it stands off the skin
    # The twentieth family's piercings: (site, side -1/+1, "stud"/"ring", size mm, wire mm, metal index)
    piercings: tuple[tuple[str, float, str, float, float, int], ...] = ()
    # The twenty-first family's medical mask under the chin: (fabric index into MASKS, reach 0..1, half width
    # share, pleat mm, loop mm), or None
    chin_mask: tuple[int, float, float, float, float] | None = None
    # The twenty-second family's bangs: (reach below the brows' line mm, sweep mm signed (0: straight), wisp 0..1,
    # standoff mm), or None
    bangs: tuple[float, float, float, float] | None = None
    # The twenty-third family's seat: (the head tilted back, degrees up; the face lowered, mm), or None (standing)
    seated: tuple[float, float] | None = None

    @property
    def beard_standoff_m(self) -> float:
        """How far the beard stands off the skin: half its length, or everyone's 6 mm."""
        return BEARD_STANDOFF_M if self.beard_length_mm is None else self.beard_length_mm / 2000.0

    @property
    def skin_bgr(self) -> np.ndarray:
        return np.array(SKIN_TONES[self.skin][0], np.float32)

    @property
    def skin_nir(self) -> float:
        return SKIN_TONES[self.skin][1] * self.skin_nir_factor   # x 1.0 exactly outside the eighth family

    @classmethod
    def reference(cls) -> Identity:
        # Nose relief 32 mm: the geometry the simulator always gave this face (a 24 mm tip term on a
        # bridge that adds another 9 mm there), now stated as what depth measures.
        return cls(0, "any", 2, 0.032, 0.063, 0.154, 0.004, 0.005, 1.0, False, "light_brown", "short",
                   0.5, "none", False, False, 0, 0)

    @classmethod
    def draw(cls, index: int, family: str = "any") -> Identity:
        """The identity numbered ``index`` in ``family`` (deterministic across processes)."""
        if family not in FAMILIES:
            raise ValueError(f"unknown family {family!r}")
        if index == 0 and family == "any":
            return cls.reference()
        rng = np.random.default_rng([_FAMILY_SALT[family], index])
        skin = int(rng.integers(1, 7))
        ipd = float(np.clip(rng.normal(0.0630, 0.0036), 0.054, 0.072))
        # Wider heads tend to have wider-set eyes; the rest is individual.
        width = float(np.clip(0.154 + 1.6 * (ipd - 0.063) + rng.normal(0, 0.007), 0.120, 0.160))
        nose = float(rng.uniform(0.014, 0.032))
        brow = float(rng.uniform(0.001, 0.008))
        chin = float(rng.uniform(0.002, 0.012))
        length = float(rng.uniform(0.93, 1.07))
        dark = skin >= 4
        hair_p = (np.array([0.55, 0.30, 0.10, 0.0, 0.0, 0.05]) if dark
                  else np.array([0.10, 0.22, 0.25, 0.18, 0.15, 0.10]))
        hair = list(HAIR_COLOURS)[int(rng.choice(len(HAIR_COLOURS), p=hair_p))]
        style = HAIR_STYLES[int(rng.choice(3, p=[0.45, 0.35, 0.20]))]
        glasses = GLASSES[int(rng.choice(3, p=[0.60, 0.28, 0.12]))]
        beard = bool(rng.random() < 0.18)
        fringe = bool(rng.random() < 0.25)
        person = cls(index, family, skin, nose, ipd, width, brow, chin, length, bool(index % 2), hair, style,
                     float(rng.uniform(0.2, 0.9)), glasses, beard, fringe, int(rng.integers(len(CLOTHING))),
                     int(rng.integers(1, 2**31 - 1)))
        if family in PER_PERSON_FAMILIES:
            # Drawn after everything else, so the fields above come from the stream as in every family.
            mean, sd, lo, hi = HERTEL_MM
            hertel_mm = float(np.clip(rng.normal(mean, sd), lo, hi))
            person = replace(person, socket_m=SOCKET_M + (mean - hertel_mm) / 1000.0,
                             breath_hz=float(rng.uniform(*BREATHS_PER_MIN)) / 60.0,
                             breath_phase=float(rng.uniform(0.0, 2 * np.pi)))
        if family in BLINK_FAMILIES:
            # Likewise drawn after every other field.
            person = replace(person, blink_per_min=float(rng.uniform(*BLINKS_PER_MIN)),
                             blink_s=float(rng.uniform(*BLINK_DURATION_S)))
        if family in SKIN_NIR_FAMILIES:
            # Likewise drawn after every other field.
            person = replace(person, skin_nir_factor=float(rng.uniform(*SKIN_NIR_FACTOR)))
        if family in SHEEN_FAMILIES:
            # Likewise drawn after every other field.
            person = replace(person, skin_sheen=float(rng.uniform(*SKIN_SHEEN)))
        if family in BEARD_STYLE_FAMILIES:
            # Likewise drawn after every other field (the drawn ``beard`` above is replaced by this one).
            has = bool(rng.random() < BEARD_SHARE)
            lo, hi = np.log(BEARD_LENGTH_MM[0]), np.log(BEARD_LENGTH_MM[1])
            length, density, rise = float(np.exp(rng.uniform(lo, hi))), float(rng.uniform(*BEARD_DENSITY)), \
                float(rng.uniform(*BEARD_RISE_MM))
            person = replace(person, beard=has, beard_length_mm=length if has else None,
                             beard_density=density if has else None, beard_rise_mm=rise if has else 0.0)
        if family in SCARF_FAMILIES:
            # Likewise drawn after every other field; a scarf's wearer is drawn without a beard.
            has = bool(rng.random() < SCARF_SHARE)
            fabric, brow = int(rng.integers(len(SCARVES))), float(rng.uniform(*SCARF_BROW_MM))
            opening, standoff = float(rng.uniform(*SCARF_OPEN)), float(rng.uniform(*SCARF_STANDOFF_MM))
            if has:
                person = replace(person, beard=False, fringe=False, scarf=fabric, scarf_brow_mm=brow,
                                 scarf_open=opening, scarf_standoff_mm=standoff)
        if family in LENS_FAMILIES:
            # Likewise drawn after every other field, for everyone (used where they wear glasses).
            n = float(rng.choice(LENS_INDICES))
            coated = bool(rng.random() < LENS_COATED_SHARE)
            r_vis, r_nir = float(rng.uniform(*LENS_AR_VIS)), float(rng.uniform(*LENS_AR_NIR))
            if not coated:
                r_vis = r_nir = fresnel_normal(n)
            person = replace(person, lens_index=n, lens_coated=coated, lens_r_vis=r_vis, lens_r_nir=r_nir)
        if family in FISSURE_FAMILIES:
            # Likewise drawn after every other field.
            mean, sd, lo, hi = FISSURE_MM
            person = replace(person, fissure_mm=float(np.clip(rng.normal(mean, sd), lo, hi)))
        if family in CORNEA_FAMILIES:
            # Likewise drawn after every other field.
            (rm, rs, rlo, rhi), (dm, ds, dlo, dhi) = CORNEA_RADIUS_MM, CORNEA_DIAMETER_MM
            person = replace(person, cornea_radius_mm=float(np.clip(rng.normal(rm, rs), rlo, rhi)),
                             cornea_diameter_mm=float(np.clip(rng.normal(dm, ds), dlo, dhi)))
        if family in CAP_FAMILIES:
            # Likewise drawn after every other field, for everyone (used where they wear a cap).
            has = bool(rng.random() < CAP_SHARE)
            fabric = int(rng.integers(len(SCARVES)))
            brim, width = float(rng.uniform(*CAP_BRIM_MM)), float(rng.uniform(*CAP_WIDTH_MM))
            tilt, root = float(rng.uniform(*CAP_TILT_DEG)), float(rng.uniform(*CAP_ROOT_MM))
            if has:
                person = replace(person, cap=fabric, cap_brim_mm=brim, cap_width_mm=width, cap_tilt_deg=tilt,
                                 cap_root_mm=root)
        if family in MAKEUP_FAMILIES:
            # Likewise drawn after every other field, for everyone (used where they wear make-up).
            has = bool(rng.random() < MAKEUP_SHARE)
            cover = float(rng.uniform(*MAKEUP_COVER))
            sb, sg, sr = (float(x) for x in rng.uniform(*MAKEUP_SHADE, size=3))
            nir, sharpen = float(rng.uniform(*MAKEUP_NIR)), float(rng.uniform(*MAKEUP_SHARPEN))
            lips = int(rng.integers(len(LIPSTICKS))) if rng.random() < LIPSTICK_SHARE else None
            if has:
                person = replace(person, makeup_cover=cover, makeup_shade=(sb, sg, sr), makeup_nir=nir,
                                 makeup_sharpen=sharpen, lipstick=lips)
        if family in AGE_FAMILIES:
            # Likewise drawn after every other field, for everyone (used where they are drawn older).
            older = bool(rng.random() < AGE_SHARE)
            age, photo = float(rng.uniform(*AGE_YEARS)), float(rng.uniform(*AGE_PHOTO))
            if older:
                person = replace(person, age_years=age, age_photo=photo,
                                 fissure_mm=PORTRAIT_FISSURE_MM - person.lid_droop_mm(age))
        if family in WINTER_FAMILIES:
            # Likewise drawn after every other field, for everyone (used where they wear one).
            wears = bool(rng.random() < WINTER_SHARE)
            wool, reach = int(rng.integers(len(SCARVES))), float(rng.uniform(*WINTER_REACH))
            standoff = float(rng.uniform(*WINTER_STANDOFF_MM))
            if wears:
                person = replace(person, winter_scarf=wool, winter_reach=reach, winter_standoff_mm=standoff)
        if family in PIERCING_FAMILIES:
            # Likewise drawn after every other field, for everyone (used where they wear any).
            wears = bool(rng.random() < PIERCING_SHARE)
            n = int(rng.integers(PIERCING_COUNT[0], PIERCING_COUNT[1] + 1))
            sites = rng.permutation(len(PIERCING_SITES))[:n]
            metal = int(rng.integers(len(METALS)))
            drawn = []
            for i in sites:
                site = PIERCING_SITES[int(i)]
                side = float(rng.choice([-1.0, 1.0]))
                ring = site == "septum" or (site != "brow" and bool(rng.random() < RING_SHARE))
                size = float(rng.uniform(*RING_MM)) if ring else float(rng.uniform(*STUD_MM))
                drawn.append((site, side, "ring" if ring else "stud", size, float(rng.uniform(*WIRE_MM)), metal))
            if wears:
                person = replace(person, piercings=tuple(drawn))
        if family in MASK_FAMILIES:
            # Likewise drawn after every other field, for everyone (used where they wear one).
            wears = bool(rng.random() < MASK_SHARE)
            mask = (int(rng.choice(len(MASKS), p=MASK_WEIGHTS)), float(rng.uniform(*MASK_REACH)),
                    float(rng.uniform(*MASK_HALF_WIDTH)), float(rng.uniform(*MASK_PLEAT_MM)),
                    float(rng.uniform(*LOOP_MM)))
            if wears:
                person = replace(person, chin_mask=mask)
        if family in BANGS_FAMILIES:
            # Likewise drawn after every other field, for everyone (used where they wear them); bangs take the
            # place of the shorter fringe.
            wears = bool(rng.random() < BANGS_SHARE)
            reach = float(rng.uniform(*BANGS_REACH_MM))
            swept = bool(rng.random() < BANGS_SWEPT)
            sweep = float(rng.uniform(*BANGS_SWEEP_MM)) * float(rng.choice([-1.0, 1.0]))
            bangs = (reach, sweep if swept else 0.0, float(rng.uniform(*BANGS_WISP)),
                     float(rng.uniform(*BANGS_STANDOFF_MM)))
            if wears:
                person = replace(person, bangs=bangs, fringe=False)
        if family in SEATED_FAMILIES:
            # Likewise drawn after every other field, for everyone (used where they are seated).
            sits = bool(rng.random() < SEATED_SHARE)
            seat = (float(rng.uniform(*SEATED_PITCH_DEG)), float(rng.uniform(*SEATED_DROP_MM)))
            if sits:
                person = replace(person, seated=seat)
        return person

    @staticmethod
    def lid_droop_mm(age_years: float) -> float:
        """How far an older person's upper lid narrows the fissure (AGE_*): 0.5-2.0 mm over 60-85 years."""
        return 0.5 + 1.5 * age_severity(age_years)

    @property
    def lid_rest(self) -> float:
        """How far the open eye rests toward the closed lid, 0..1 (the blink's blend, scene.py): 0 for
        everyone but the thirteenth family's people with a fissure under the portrait's 10 mm."""
        if self.fissure_mm is None:
            return 0.0
        return max(0.0, (PORTRAIT_FISSURE_MM - self.fissure_mm) / PORTRAIT_FISSURE_MM)

    def with_overrides(self, *, skin: int | None = None, nose_mm: float | None = None,
                       ipd_mm: float | None = None, face_width_mm: float | None = None,
                       brow_mm: float | None = None, chin_mm: float | None = None,
                       glasses: str | None = None, beard: bool | None = None,
                       fringe: bool | None = None, cap: bool | None = None) -> Identity:
        """This identity with the URI's explicit keys applied (``None`` keeps the drawn value). ``cap``
        False takes a cap off (the sixteenth family's; pad-eval's person answering ``FACE_HEADWEAR``);
        True keeps a wearer's own and gives nobody one (a cap's fabric and brim are drawn with the person)."""
        changes: dict = {}
        if skin is not None:
            changes["skin"] = int(skin)
        if nose_mm is not None:
            changes["nose_m"] = nose_mm / 1000.0
        if ipd_mm is not None:
            changes["ipd_m"] = ipd_mm / 1000.0
        if face_width_mm is not None:
            changes["face_width_m"] = face_width_mm / 1000.0
        if brow_mm is not None:
            changes["brow_m"] = brow_mm / 1000.0
        if chin_mm is not None:
            changes["chin_m"] = chin_mm / 1000.0
        if glasses is not None:
            changes["glasses"] = glasses
        if beard is not None:
            changes["beard"] = bool(beard)
        if fringe is not None:
            changes["fringe"] = bool(fringe)
        if cap is False and self.cap is not None:
            changes.update(cap=None, cap_brim_mm=0.0, cap_width_mm=0.0, cap_tilt_deg=0.0, cap_root_mm=0.0)
        return replace(self, **changes) if changes else self


def age_severity(age_years: float) -> float:
    """0 at 60 years, 1 at 85 (AGE_*): how far along the drawn ageing a face is."""
    return float(np.clip((age_years - AGE_YEARS[0]) / (AGE_YEARS[1] - AGE_YEARS[0]), 0.0, 1.0))


def family_salt(family: str) -> int:
    """The seed salt of a family (identities, instruments and scenes of different families never share
    a random stream)."""
    return _FAMILY_SALT[family]

"""What each slider operator's value 1 means: the constants of :mod:`prefstyle.imaging.ops`, in a
module that imports nothing (so that the numpy mirror :mod:`prefstyle.imaging.retouch_np` shares
them without importing torch). :mod:`prefstyle.imaging.ops` re-exports every name."""

# Rec.709 weights, applied to gamma-encoded values ("luma") for the chroma operators.
LUMA_WEIGHTS = (0.2126, 0.7152, 0.0722)

# --- strengths (what the parameter value 1 means) -------------------------------------------
WB_TEMPERATURE_STOPS = 0.35  # log2 gain of R (+) and B (-) at temperature = 1 (R/B ratio x1.62)
WB_TINT_STOPS = 0.25  # log2 gain of G (-) at tint = 1 (magenta)
CONTRAST_STEEPNESS = 6.0  # logistic steepness of the contrast S-curve at +1
HIGHLIGHTS_GAIN = (2.0, 1.0)  # (recover, i.e. amount < 0; lift, amount > 0) times t^4 (1 - t)
SHADOWS_GAIN = (1.0, 2.0)  # (deepen, amount < 0; lift, amount > 0) times t (1 - t)^4
WHITES_GAIN = 0.15  # white point moves by this much at +-1 (t^4 weight)
BLACKS_GAIN = 0.15  # black point moves by this much at +-1 ((1 - t)^4 weight)
HSL_HUE_DEG = 30.0  # hue shift at +-1
SPLIT_TONING_GAIN = 0.3  # chroma offset of a full-strength tint at full weight
VIBRANCE_SKIN_PROTECTION = 0.6  # fraction of the vibrance removed on skin hues
SKIN_HUE_DEG = (25.0, 25.0)  # (centre, half width) of the protected skin hues (HSV degrees)
GAMUT_SOFTNESS = 4.0  # p of the soft minimum used for the gamut limit of chroma boosts

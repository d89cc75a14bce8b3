"""Stature for age and sex: `shape.height` is a percentile, not anny's raw phenotype.

anny's `height` phenotype in [0, 1] is not a stature: at a given age it spans far more than
people do (at anny age 0.75, an adult, phenotype 0 -> 1 gives 1.2-2.5 m). Sampled
uniformly, 43% of the old default space's bodies were taller than the 99th percentile
of their age and sex, and a MediaPipe run reported "very tall" (giants of 2.2-2.4 m)
as a failure mode.

anny ships the calibration it samples realistic bodies with (`anny.shape_distribution`,
fitted to WHO height-for-age data): per sex, a Beta distribution of the height phenotype
whose parameters are interpolated in anny's age. `height_phenotype` maps a percentile
p in [0, 1] through that distribution's quantile function: p = 0.5 is the median stature
for the body's age and sex, 0 the 1st percentile and 1 the 99th (`PERCENTILE_RANGE`).
anny's gender phenotype runs from 0 (male) to 1 (female); between them the phenotype is
interpolated linearly between the boys' and the girls' quantiles.

The tables are read once from anny's own data files (`data/shape_calibration/*.pth`,
loaded with `weights_only=True`: tensors only, no pickled code).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# Percentile 0 / 1 of `shape.height` -> these quantiles of the height distribution.
PERCENTILE_RANGE = (0.01, 0.99)


@lru_cache(maxsize=1)
def _tables() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """sex -> (anny age anchors, alpha anchors, beta anchors) of the height phenotype."""
    import torch
    from anny.paths import get_anny_root_dir

    out = {}
    for sex in ("boys", "girls"):
        sd = torch.load(get_anny_root_dir() / "data" / "shape_calibration" / f"{sex}.pth",
                        weights_only=True, map_location="cpu")["conditional_height_distribution"]
        out[sex] = tuple(sd[k].double().numpy() for k in ("age_anchors", "alpha_anchors", "beta_anchors"))
    return out


def height_phenotype(percentile, age, gender) -> np.ndarray:
    """Stature percentile(s) for the given anny age(s) and gender(s) -> anny's height
    phenotype (arrays broadcast). Percentiles outside [0, 1] are clipped."""
    from scipy.stats import beta

    p = np.clip(np.asarray(percentile, dtype=np.float64), 0.0, 1.0)
    q = PERCENTILE_RANGE[0] + (PERCENTILE_RANGE[1] - PERCENTILE_RANGE[0]) * p
    age = np.asarray(age, dtype=np.float64)
    by_sex = {}
    for sex, (anchors, a, b) in _tables().items():
        by_sex[sex] = beta.ppf(q, np.interp(age, anchors, a), np.interp(age, anchors, b))
    g = np.clip(np.asarray(gender, dtype=np.float64), 0.0, 1.0)
    return (1.0 - g) * by_sex["boys"] + g * by_sex["girls"]

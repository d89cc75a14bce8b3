"""Garment types and their style parameters.

Every garment has the same four style parameters, each in [0, 1] (TailorNet's style is
also a 4-vector; ours is interpretable instead of a PCA code):

    sleeve_length  fraction of the type's sleeve range (tops; ignored by lower garments)
    hem_length     fraction of the type's length range (tops: cropped .. hip; pants /
                   shorts: leg length; skirt: mini .. maxi)
    looseness      0 tight .. 1 loose (ease between body and cloth, flare of a skirt)
    waist          tops: 0 straight .. 1 fitted at the waist; lower garments: rise,
                   0 low (hip) .. 1 high (above the navel)

Lengths are fractions of the body's own limb length (shoulder -> wrist for sleeves,
hip -> ankle for legs and skirts), so a style means the same on a child and an adult.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.errors import PoseExaminerError

STYLE_NAMES = ("sleeve_length", "hem_length", "looseness", "waist")
SLOTS = ("upper", "lower")


class GarmentError(PoseExaminerError, ValueError):
    """Unknown garment type, bad style values, or garment weights that do not fit."""


@dataclass(frozen=True)
class GarmentSpec:
    """One garment type.

    slot: "upper" | "lower"; kind: how the template is built ("top", "bottom" from the
    body's own surface, "skirt" as a grid ring around the hips); sleeve / length:
    (min, max) fraction of the limb covered at style 0 and 1 (sleeve: shoulder ->
    wrist; length for lower garments: hip -> ankle; for tops the hem height is
    fixed by `hem_z` instead); ease: (tight, loose) cloth-body gap in metres;
    hem_z: (cropped, long) hem height of tops in metres relative to the rest pelvis,
    for the mean adult body (scaled by the torso height of other bodies)."""

    name: str
    slot: str
    kind: str
    sleeve: tuple[float, float] = (0.0, 0.0)
    length: tuple[float, float] = (0.0, 0.0)
    ease: tuple[float, float] = (0.006, 0.045)
    hem_z: tuple[float, float] = (0.20, 0.0)
    description: str = ""


GARMENTS: dict[str, GarmentSpec] = {
    "t-shirt": GarmentSpec(
        "t-shirt", "upper", "top", sleeve=(0.12, 0.45), ease=(0.006, 0.045), hem_z=(0.20, 0.0),
        description="short sleeves (cap .. elbow), crew neck",
    ),
    "shirt": GarmentSpec(
        "shirt", "upper", "top", sleeve=(0.60, 0.97), ease=(0.008, 0.05), hem_z=(0.16, 0.0),
        description="long sleeves (three-quarter .. wrist)",
    ),
    "pants": GarmentSpec(
        "pants", "lower", "bottom", length=(0.70, 0.97), ease=(0.006, 0.05),
        description="trousers (calf .. ankle)",
    ),
    "shorts": GarmentSpec(
        "shorts", "lower", "bottom", length=(0.12, 0.50), ease=(0.006, 0.05),
        description="short pants (hot pants .. knee)",
    ),
    "skirt": GarmentSpec(
        "skirt", "lower", "skirt", length=(0.22, 0.85), ease=(0.008, 0.10),
        description="A-line skirt (mini .. maxi)",
    ),
}
UPPER_TYPES = tuple(n for n, s in GARMENTS.items() if s.slot == "upper")
LOWER_TYPES = tuple(n for n, s in GARMENTS.items() if s.slot == "lower")


def available_garments() -> list[str]:
    return list(GARMENTS)


def get_spec(name: str) -> GarmentSpec:
    try:
        return GARMENTS[name]
    except KeyError:
        raise GarmentError(f"unknown garment type {name!r}; available: {', '.join(GARMENTS)}") from None


def check_style(style, n: int | None = None) -> np.ndarray:
    """style (4,) or (B, 4) in [0, 1] (order STYLE_NAMES) -> (B, 4) float64."""
    s = np.atleast_2d(np.asarray(style, dtype=np.float64))
    if s.shape[-1] != len(STYLE_NAMES):
        raise GarmentError(f"a garment style has {len(STYLE_NAMES)} values {STYLE_NAMES}, got shape {s.shape}")
    if not np.all(np.isfinite(s)) or s.min() < -1e-9 or s.max() > 1 + 1e-9:
        raise GarmentError(f"garment style values must lie in [0, 1] ({', '.join(STYLE_NAMES)}), got {s.tolist()}")
    if n is not None and len(s) == 1 and n > 1:
        s = np.repeat(s, n, 0)
    return np.clip(s, 0.0, 1.0)


PATTERN_CHOICES = ("plain", "stripes", "plaid")


@dataclass(frozen=True)
class ClothingParams:
    """What the person wears (part of `SceneParams`; the default is no clothing).

    upper: none | t-shirt | shirt; lower: none | pants | shorts | skirt. Style values in
    [0, 1] (see the module docstring): sleeve_length, upper_length (hem), upper_looseness,
    upper_fit (waist shaping of tops); lower_length, lower_looseness, rise (waist height
    of lower garments). Colours as HSV hue / value in [0, 1] (saturation 0.55);
    patterns: plain | stripes | plaid."""

    upper: str = "none"
    lower: str = "none"
    sleeve_length: float = 0.5
    upper_length: float = 0.6
    upper_looseness: float = 0.3
    upper_fit: float = 0.0
    lower_length: float = 0.8
    lower_looseness: float = 0.3
    rise: float = 0.5
    upper_hue: float = 0.58
    upper_value: float = 0.65
    lower_hue: float = 0.62
    lower_value: float = 0.3
    upper_pattern: str = "plain"
    lower_pattern: str = "plain"

    def __post_init__(self) -> None:
        from simulator.errors import ParamError

        if self.upper not in ("none",) + UPPER_TYPES:
            raise ParamError(f"clothing.upper must be one of {('none',) + UPPER_TYPES}, got {self.upper!r}")
        if self.lower not in ("none",) + LOWER_TYPES:
            raise ParamError(f"clothing.lower must be one of {('none',) + LOWER_TYPES}, got {self.lower!r}")
        for name in ("upper_pattern", "lower_pattern"):
            if getattr(self, name) not in PATTERN_CHOICES:
                raise ParamError(f"clothing.{name} must be one of {PATTERN_CHOICES}, got {getattr(self, name)!r}")

    @property
    def worn(self) -> bool:
        return self.upper != "none" or self.lower != "none"

    def upper_style(self) -> np.ndarray:
        return np.array([self.sleeve_length, self.upper_length, self.upper_looseness, self.upper_fit], dtype=np.float64)

    def lower_style(self) -> np.ndarray:
        return np.array([0.0, self.lower_length, self.lower_looseness, self.rise], dtype=np.float64)


CLOTHING_CHOICES = {
    "upper": ("none",) + UPPER_TYPES,
    "lower": ("none",) + LOWER_TYPES,
    "upper_pattern": PATTERN_CHOICES,
    "lower_pattern": PATTERN_CHOICES,
}

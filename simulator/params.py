"""Scene parameters and the normalised search space over them.

`SceneParams` is the single, versioned description of a scene in physical units
(radians, metres, phenotypes in [0, 1]). `ParamSpace` maps a normalised vector in
[-1, 1]^D to `SceneParams` and back; the search only ever sees that vector.

Coordinate conventions (world frame of the body model, see ``simulator/body.py``):
+Z up, the subject faces -Y, the subject's left is +X. Camera azimuth 0 puts the
camera in front of the subject; positive azimuth moves it towards the subject's left.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from simulator.errors import ParamError
from simulator.garments.spec import CLOTHING_CHOICES, ClothingParams
from simulator.joints import POSE_DOFS, neutral_pose

SCHEMA_VERSION = 1
DEG = math.pi / 180.0

SHAPE_NAMES = ("gender", "age", "muscle", "weight", "height", "proportions")
# Selected local changes of the body model (anny: MakeHuman targets), 0.5 = neutral;
# backends without them ignore these values.
LOCAL_SHAPE_NAMES = ("belly", "head_size", "hip_width", "torso_width")
ALL_SHAPE_NAMES = SHAPE_NAMES + LOCAL_SHAPE_NAMES
BACKGROUND_KINDS = ("solid", "noise", "checker", "image")
OCCLUDER_KINDS = ("none", "rectangle", "box")


@dataclass(frozen=True)
class CameraParams:
    """Pinhole camera orbiting the subject.

    azimuth / elevation / roll in radians, distance in metres from the look-at point
    (the body's centre), fov_y the vertical field of view in radians. offset_x / offset_y
    shift the subject in the image, as a fraction of the image width / height
    (0.5 puts the body centre on the image border).
    """

    azimuth: float = 0.0
    elevation: float = 5 * DEG
    distance: float = 2.6
    fov_y: float = 50 * DEG
    roll: float = 0.0
    offset_x: float = 0.0
    offset_y: float = 0.0
    width: int = 256
    height: int = 256


@dataclass(frozen=True)
class LightParams:
    """One directional key light plus ambient. Angles in radians relative to the
    camera's azimuth (0 = light comes from the camera side); intensity in pyrender
    units (W/m^2); ambient in [0, 1]."""

    azimuth: float = 30 * DEG
    elevation: float = 40 * DEG
    intensity: float = 3.5
    ambient: float = 0.3


@dataclass(frozen=True)
class BackgroundParams:
    """kind: solid | noise | checker | image. Colour as HSV in [0, 1]; texture_scale in
    [0, 1] (fine to coarse); image_index in [0, 1) picks a file from the render
    config's background folder (sorted by name)."""

    kind: str = "solid"
    hue: float = 0.58
    saturation: float = 0.15
    value: float = 0.75
    texture_scale: float = 0.5
    image_index: float = 0.0


@dataclass(frozen=True)
class OccluderParams:
    """A flat coloured rectangle (image-space) or a 3D box between the camera and the
    subject. x / y: centre relative to the subject's centre, as a fraction of the image
    size; width / height: fractions of the image size."""

    kind: str = "none"
    x: float = 0.0
    y: float = 0.0
    width: float = 0.3
    height: float = 0.3
    hue: float = 0.0
    value: float = 0.5


@dataclass(frozen=True)
class SceneParams:
    """Everything that defines one scene. Frozen; `replace()` makes modified copies."""

    pose: Mapping[str, float] = field(default_factory=neutral_pose)
    shape: Mapping[str, float] = field(default_factory=lambda: {k: 0.5 for k in ALL_SHAPE_NAMES})
    skin_tone: float = 0.3
    camera: CameraParams = field(default_factory=CameraParams)
    light: LightParams = field(default_factory=LightParams)
    background: BackgroundParams = field(default_factory=BackgroundParams)
    occluder: OccluderParams = field(default_factory=OccluderParams)
    clothing: ClothingParams = field(default_factory=ClothingParams)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        unknown = set(self.pose) - set(POSE_DOFS)
        if unknown:
            raise ParamError(
                f"unknown pose parameter(s) {sorted(unknown)}; valid names: "
                f"{', '.join(POSE_DOFS)}"
            )
        unknown = set(self.shape) - set(ALL_SHAPE_NAMES)
        if unknown:
            raise ParamError(
                f"unknown shape parameter(s) {sorted(unknown)}; valid names: {', '.join(ALL_SHAPE_NAMES)}"
            )
        # Fill in defaults so every scene is complete and two equal scenes compare equal.
        object.__setattr__(self, "pose", {**neutral_pose(), **{k: float(v) for k, v in self.pose.items()}})
        object.__setattr__(self, "shape", {**{k: 0.5 for k in ALL_SHAPE_NAMES}, **{k: float(v) for k, v in self.shape.items()}})
        if self.background.kind not in BACKGROUND_KINDS:
            raise ParamError(f"background.kind must be one of {BACKGROUND_KINDS}, got {self.background.kind!r}")
        if self.occluder.kind not in OCCLUDER_KINDS:
            raise ParamError(f"occluder.kind must be one of {OCCLUDER_KINDS}, got {self.occluder.kind!r}")

    # ---- flat view -------------------------------------------------------------------
    def flat(self) -> dict[str, Any]:
        """Flat {"group.name": value} view, the names `ParamSpace` dimensions use."""
        out: dict[str, Any] = {f"pose.{k}": v for k, v in self.pose.items()}
        out.update({f"shape.{k}": v for k, v in self.shape.items()})
        out["appearance.skin_tone"] = self.skin_tone
        for group in ("camera", "light", "background", "occluder", "clothing"):
            for k, v in dataclasses.asdict(getattr(self, group)).items():
                out[f"{group}.{k}"] = v
        return out

    def with_values(self, values: Mapping[str, Any]) -> "SceneParams":
        """A copy with flat "group.name" values replaced; unknown names raise ParamError."""
        pose, shape = dict(self.pose), dict(self.shape)
        groups = {g: dataclasses.asdict(getattr(self, g)) for g in ("camera", "light", "background", "occluder", "clothing")}
        skin = self.skin_tone
        for name, value in values.items():
            group, _, key = name.partition(".")
            if group == "pose" and key in POSE_DOFS:
                pose[key] = float(value)
            elif group == "shape" and key in ALL_SHAPE_NAMES:
                shape[key] = float(value)
            elif name == "appearance.skin_tone":
                skin = float(value)
            elif group in groups and key in groups[group]:
                groups[group][key] = value
            else:
                raise ParamError(f"unknown parameter {name!r}; run `examiner space` to list valid names")
        return SceneParams(
            pose=pose,
            shape=shape,
            skin_tone=skin,
            camera=CameraParams(**groups["camera"]),
            light=LightParams(**groups["light"]),
            background=BackgroundParams(**groups["background"]),
            occluder=OccluderParams(**groups["occluder"]),
            clothing=ClothingParams(**groups["clothing"]),
        )

    # ---- JSON ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["pose"] = dict(self.pose)
        d["shape"] = dict(self.shape)
        return d

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), **kw)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SceneParams":
        if not isinstance(d, Mapping):
            raise ParamError(f"scene parameters must be a JSON object, got {type(d).__name__}")
        version = d.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise ParamError(
                f"scene schema_version {version} is not supported (this version reads {SCHEMA_VERSION})"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ParamError(f"unknown scene field(s) {sorted(unknown)}; valid fields: {sorted(known)}")
        kwargs: dict[str, Any] = {}
        sub = {"camera": CameraParams, "light": LightParams, "background": BackgroundParams, "occluder": OccluderParams,
               "clothing": ClothingParams}
        for k, v in d.items():
            if k in sub:
                if not isinstance(v, Mapping):
                    raise ParamError(f"scene field {k!r} must be an object, got {_json_type(v)}")
                fields = {f.name: f for f in dataclasses.fields(sub[k])}
                bad = set(v) - set(fields)
                if bad:
                    raise ParamError(f"unknown {k} field(s) {sorted(bad)}; valid: {sorted(fields)}")
                kwargs[k] = sub[k](**{name: _typed(f"{k}.{name}", str(fields[name].type), x) for name, x in v.items()})
            elif k in ("pose", "shape"):
                if not isinstance(v, Mapping):
                    raise ParamError(f"scene field {k!r} must be an object of name: number, got {_json_type(v)}")
                kwargs[k] = {str(name): _typed(f"{k}.{name}", "float", x) for name, x in v.items()}
            elif k == "skin_tone":
                kwargs[k] = _typed(k, "float", v)
            elif k != "schema_version":
                kwargs[k] = v
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> "SceneParams":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ParamError(f"malformed scene JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
        return cls.from_dict(d)

    def replace(self, **changes: Any) -> "SceneParams":
        return dataclasses.replace(self, **changes)


def _json_type(v: Any) -> str:
    return {type(None): "null", bool: "true/false", str: "a string", list: "a list", dict: "an object"}.get(
        type(v), type(v).__name__)


def _typed(name: str, ann: str, v: Any) -> Any:
    """`v` checked against a field annotation ("float", "int", "str"): JSON strings, nulls,
    lists and booleans where a number belongs are refused with a ParamError naming the
    field; an integral float is accepted for an int field (256.0), 256.5 is not. Valid
    values come back unchanged (int stays int in a float field)."""
    if ann == "float":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ParamError(f"scene field {name} must be a number, got {_json_type(v)}")
        if not math.isfinite(v):
            raise ParamError(f"scene field {name} must be a finite number, got {v!r}")
        return v  # unchanged: scenes hash their JSON (seeds), and 0 and 0.0 print differently
    if ann == "int":
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
            raise ParamError(f"scene field {name} must be an integer, got {v!r}")
        return v
    if ann == "str" and not isinstance(v, str):
        raise ParamError(f"scene field {name} must be a string, got {_json_type(v)}")
    return v


# ---------------------------------------------------------------------------------------
# Parameter space
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dimension:
    """One searchable dimension. Continuous dimensions map [-1, 1] linearly onto
    [low, high]; categorical ones split [-1, 1] into equal bins, one per choice."""

    name: str
    low: float
    high: float
    unit: str
    choices: tuple[str, ...] | None = None
    description: str = ""

    @property
    def group(self) -> str:
        return self.name.split(".", 1)[0]

    def to_physical(self, u: float) -> Any:
        u = min(max(float(u), -1.0), 1.0)
        if self.choices:
            idx = min(int((u + 1.0) / 2.0 * len(self.choices)), len(self.choices) - 1)
            return self.choices[idx]
        return self.low + (u + 1.0) * 0.5 * (self.high - self.low)

    def to_normalised(self, value: Any) -> float:
        if self.choices:
            if value not in self.choices:
                raise ParamError(f"{self.name} must be one of {self.choices}, got {value!r}")
            idx = self.choices.index(value)
            return -1.0 + (2 * idx + 1) / len(self.choices)
        if self.high == self.low:
            return 0.0
        return 2.0 * (float(value) - self.low) / (self.high - self.low) - 1.0

    def format(self, value: Any) -> str:
        if self.choices:
            return str(value)
        if self.unit == "rad":
            return f"{math.degrees(value):.0f}°"
        if self.unit == "m":
            return f"{value:.2f} m"
        return f"{value:.2f}"


def _pose_dimensions() -> list[Dimension]:
    from simulator.joints import POSE_LIMITS

    return [
        Dimension(f"pose.{name}", lo, hi, "rad", description=desc)
        for name, (lo, hi, desc) in POSE_LIMITS.items()
    ]


def default_dimensions() -> list[Dimension]:
    """All searchable dimensions with their default bounds (everyday-to-hard range)."""
    dims = _pose_dimensions()
    dims += [
        Dimension("shape.gender", 0.0, 1.0, "", description="0 female .. 1 male"),
        Dimension("shape.age", 0.1, 1.0, "", description="0 newborn .. 0.1 child .. 0.5 adult .. 1 elder"),
        Dimension("shape.muscle", 0.0, 1.0, ""),
        Dimension("shape.weight", 0.0, 1.0, "", description="0 skinny .. 1 corpulent"),
        Dimension("shape.height", 0.0, 1.0, ""),
        Dimension("shape.proportions", 0.0, 1.0, ""),
        Dimension("shape.belly", 0.3, 1.0, "", description="0.5 neutral .. 1 pregnant-like belly"),
        Dimension("shape.head_size", 0.2, 0.8, "", description="head height, 0.5 neutral"),
        Dimension("shape.hip_width", 0.2, 0.8, "", description="0.5 neutral"),
        Dimension("shape.torso_width", 0.2, 0.8, "", description="0.5 neutral"),
        Dimension("appearance.skin_tone", 0.0, 1.0, "", description="0 light .. 1 dark"),
        Dimension("camera.azimuth", -180 * DEG, 180 * DEG, "rad", description="0 = in front of the subject"),
        Dimension("camera.elevation", -30 * DEG, 60 * DEG, "rad"),
        Dimension("camera.distance", 2.2, 5.5, "m"),
        Dimension("camera.fov_y", 40 * DEG, 60 * DEG, "rad"),
        Dimension("camera.roll", -30 * DEG, 30 * DEG, "rad"),
        Dimension("camera.offset_x", -0.25, 0.25, "", description="fraction of image width"),
        Dimension("camera.offset_y", -0.25, 0.25, "", description="fraction of image height"),
        Dimension("light.azimuth", -180 * DEG, 180 * DEG, "rad"),
        Dimension("light.elevation", 0.0, 80 * DEG, "rad"),
        Dimension("light.intensity", 0.5, 8.0, "W/m^2"),
        Dimension("light.ambient", 0.02, 0.6, ""),
        # "image" joins the choices only when a background folder is configured.
        Dimension("background.kind", 0, 0, "", choices=tuple(k for k in BACKGROUND_KINDS if k != "image")),
        Dimension("background.hue", 0.0, 1.0, ""),
        Dimension("background.saturation", 0.0, 1.0, ""),
        Dimension("background.value", 0.05, 1.0, ""),
        Dimension("background.texture_scale", 0.0, 1.0, ""),
        Dimension("occluder.kind", 0, 0, "", choices=OCCLUDER_KINDS),
        Dimension("occluder.x", -0.4, 0.4, "", description="fraction of image width from the body centre"),
        Dimension("occluder.y", -0.4, 0.4, "", description="fraction of image height from the body centre"),
        Dimension("occluder.width", 0.05, 0.6, ""),
        Dimension("occluder.height", 0.05, 0.6, ""),
        Dimension("occluder.hue", 0.0, 1.0, ""),
        Dimension("occluder.value", 0.05, 1.0, ""),
        # Clothing (simulator.garments; style values are fractions of each type's range).
        Dimension("clothing.upper", 0, 0, "", choices=CLOTHING_CHOICES["upper"]),
        Dimension("clothing.lower", 0, 0, "", choices=CLOTHING_CHOICES["lower"]),
        Dimension("clothing.sleeve_length", 0.0, 1.0, "", description="short .. long within the top's range"),
        Dimension("clothing.upper_length", 0.0, 1.0, "", description="cropped .. hip-long hem"),
        Dimension("clothing.upper_looseness", 0.0, 1.0, "", description="tight .. loose top"),
        Dimension("clothing.upper_fit", 0.0, 1.0, "", description="straight .. waisted top"),
        Dimension("clothing.lower_length", 0.0, 1.0, "", description="short .. long legs / skirt"),
        Dimension("clothing.lower_looseness", 0.0, 1.0, "", description="tight .. wide legs / flared skirt"),
        Dimension("clothing.rise", 0.0, 1.0, "", description="low .. high waistband"),
        Dimension("clothing.upper_hue", 0.0, 1.0, ""),
        Dimension("clothing.upper_value", 0.05, 1.0, ""),
        Dimension("clothing.lower_hue", 0.0, 1.0, ""),
        Dimension("clothing.lower_value", 0.05, 1.0, ""),
        Dimension("clothing.upper_pattern", 0, 0, "", choices=CLOTHING_CHOICES["upper_pattern"]),
        Dimension("clothing.lower_pattern", 0, 0, "", choices=CLOTHING_CHOICES["lower_pattern"]),
    ]
    return dims


class ParamSpace:
    """A box of named dimensions around a base scene.

    >>> space = ParamSpace.from_groups("pose,camera")
    >>> params = space.to_params(np.zeros(space.dim))
    >>> np.allclose(space.to_vector(params), 0)
    True
    """

    def __init__(
        self,
        dimensions: Sequence[Dimension],
        base: SceneParams | None = None,
        clamp: bool = True,
    ) -> None:
        if not dimensions:
            raise ParamError("the parameter space has no dimensions; name at least one group (e.g. 'pose')")
        names = [d.name for d in dimensions]
        if len(set(names)) != len(names):
            raise ParamError("duplicate dimension names in the parameter space")
        self.dimensions: tuple[Dimension, ...] = tuple(dimensions)
        self.base = base or SceneParams()
        self.clamp = clamp
        base_flat = self.base.flat()
        for d in self.dimensions:
            if d.name not in base_flat:
                raise ParamError(f"dimension {d.name!r} is not a scene parameter")

    # ---- construction ----------------------------------------------------------------
    @classmethod
    def groups(cls) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d.group for d in default_dimensions()))

    @classmethod
    def from_groups(
        cls,
        groups: str | Iterable[str],
        base: SceneParams | None = None,
        overrides: Mapping[str, tuple[float, float]] | None = None,
        clamp: bool = True,
        background_images: bool = False,
    ) -> "ParamSpace":
        """Restrict the default dimensions to groups ("pose,camera") or explicit
        dimension names ("pose.l_knee_flexion"); everything else stays at `base`.
        `overrides` replaces bounds: {"camera.distance": (2.0, 8.0)}."""
        if isinstance(groups, str):
            groups = [g.strip() for g in groups.split(",") if g.strip()]
        groups = list(groups)
        all_dims = default_dimensions()
        if background_images:
            all_dims = [
                dataclasses.replace(d, choices=BACKGROUND_KINDS) if d.name == "background.kind" else d
                for d in all_dims
            ]
        valid_groups = list(dict.fromkeys(d.group for d in all_dims))
        chosen: list[Dimension] = []
        for g in groups:
            if g in ("all", "*"):
                chosen.extend(all_dims)
            elif g in valid_groups:
                chosen.extend(d for d in all_dims if d.group == g)
            elif any(d.name == g for d in all_dims):
                chosen.extend(d for d in all_dims if d.name == g)
            else:
                raise ParamError(
                    f"unknown space group or dimension {g!r}; valid groups: {', '.join(valid_groups)}"
                )
        chosen = list({d.name: d for d in chosen}.values())
        if overrides:
            by_name = {d.name: d for d in chosen}
            for name, (lo, hi) in overrides.items():
                if name not in by_name:
                    raise ParamError(f"bound override for {name!r}, which is not in the space")
                if not lo < hi:
                    raise ParamError(f"bounds for {name!r} must satisfy low < high, got ({lo}, {hi})")
                by_name[name] = dataclasses.replace(by_name[name], low=float(lo), high=float(hi))
            chosen = list(by_name.values())
        return cls(chosen, base=base, clamp=clamp)

    # ---- mapping -----------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return len(self.dimensions)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    def _check_vector(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        if u.shape != (self.dim,):
            raise ParamError(f"expected a vector of {self.dim} values for this space, got shape {u.shape}")
        if not np.all(np.isfinite(u)):
            raise ParamError("parameter vector contains NaN or infinity")
        if np.any(np.abs(u) > 1.0 + 1e-9):
            if not self.clamp:
                i = int(np.argmax(np.abs(u)))
                raise ParamError(
                    f"normalised value {u[i]:.3f} for {self.names[i]} is outside [-1, 1]; "
                    "pass clamp=True to clip"
                )
            u = np.clip(u, -1.0, 1.0)
        return u

    def to_params(self, u: np.ndarray) -> SceneParams:
        """(D,) normalised vector in [-1, 1] -> SceneParams."""
        u = self._check_vector(u)
        values = {d.name: d.to_physical(x) for d, x in zip(self.dimensions, u)}
        return self.base.with_values(values)

    def to_vector(self, params: SceneParams) -> np.ndarray:
        """SceneParams -> (D,) normalised vector (values outside the bounds map outside
        [-1, 1])."""
        flat = params.flat()
        return np.array([d.to_normalised(flat[d.name]) for d in self.dimensions], dtype=np.float64)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, D) uniform samples in [-1, 1]."""
        return rng.uniform(-1.0, 1.0, size=(n, self.dim))

    def describe(self, u: np.ndarray) -> dict[str, str]:
        u = self._check_vector(u)
        return {d.name: d.format(d.to_physical(x)) for d, x in zip(self.dimensions, u)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "dimensions": [dataclasses.asdict(d) for d in self.dimensions],
            "base": self.base.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ParamSpace":
        dims = [
            Dimension(**{**x, "choices": tuple(x["choices"]) if x.get("choices") else None})
            for x in d["dimensions"]
        ]
        return cls(dims, base=SceneParams.from_dict(d["base"]))


MAX_IMAGE_SIZE = 8192


def check_image_size(v: Any, name: str = "--size") -> int:
    """An image side in pixels: an integer in [16, MAX_IMAGE_SIZE]."""
    whole = isinstance(v, (int, np.integer)) or (isinstance(v, float) and v.is_integer())
    if isinstance(v, bool) or not whole or not 16 <= int(v) <= MAX_IMAGE_SIZE:
        raise ParamError(f"{name} must be a whole number of pixels from 16 to {MAX_IMAGE_SIZE}, got {v!r}")
    return int(v)


def validate_params(params: SceneParams, clamp: bool = False) -> SceneParams:
    """Check every value against the default bounds (pose: anatomical limits).

    With clamp=False an out-of-range value raises ParamError naming the parameter and its
    range; with clamp=True values are clipped into range."""
    flat = params.flat()
    fixes: dict[str, Any] = {}
    for key in ("camera.width", "camera.height"):
        check_image_size(flat[key], key)
    for d in default_dimensions():
        if d.choices:
            continue
        v = flat[d.name]
        lo, hi = d.low, d.high
        if d.group == "camera" and d.name in ("camera.distance", "camera.fov_y"):
            # Search bounds are narrower than what renders fine; validate physical sanity.
            lo, hi = (0.3, 100.0) if d.name == "camera.distance" else (5 * DEG, 150 * DEG)
        if d.group in ("camera", "light", "occluder", "background") and d.unit == "rad" and d.name != "camera.fov_y":
            lo, hi = min(lo, -math.pi), max(hi, math.pi)
            if d.name in ("camera.elevation", "light.elevation"):
                lo, hi = -math.pi / 2, math.pi / 2
        if d.name in ("camera.offset_x", "camera.offset_y", "occluder.x", "occluder.y"):
            lo, hi = -1.0, 1.0
        if not (lo - 1e-9 <= v <= hi + 1e-9):
            if not clamp:
                unit = "°" if d.unit == "rad" else (f" {d.unit}" if d.unit else "")
                conv = math.degrees if d.unit == "rad" else float
                raise ParamError(
                    f"{d.name} = {conv(v):.4g}{unit} is outside its range "
                    f"[{conv(lo):.4g}, {conv(hi):.4g}]{unit}; fix the value or use --clamp"
                )
            fixes[d.name] = min(max(v, lo), hi)
    return params.with_values(fixes) if fixes else params

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

SCHEMA_VERSION = 2
# Versions `SceneParams.from_dict` reads: v1 scenes had no ground, framing, truncation or
# body-relative occluder fields; they read with those at their defaults.
READABLE_SCHEMA_VERSIONS = (1, 2)
DEG = math.pi / 180.0

SHAPE_NAMES = ("gender", "age", "muscle", "weight", "height", "proportions")
# Selected local changes of the body model (anny: MakeHuman targets), 0.5 = neutral;
# backends without them ignore these values.
LOCAL_SHAPE_NAMES = ("belly", "head_size", "hip_width", "torso_width")
ALL_SHAPE_NAMES = SHAPE_NAMES + LOCAL_SHAPE_NAMES
BACKGROUND_KINDS = ("solid", "noise", "checker", "image")
# The Blender renderer's environment map seen as the background: set explicitly, never
# sampled (the search's background choices stay BACKGROUND_KINDS); pyrender refuses it.
HDRI_BACKGROUND = "hdri"
OCCLUDER_KINDS = ("none", "rectangle", "box", "pole")
# Body regions an occluder can be placed over (coarse groups of the DensePose parts).
OCCLUDER_PARTS = ("head", "torso", "left_arm", "right_arm", "left_leg", "right_leg")
TRUNCATION_SIDES = ("bottom", "top", "left", "right")
GROUND_KINDS = ("none", "floor")
# Environment maps shipped in the bpy wheel (bpy/4.5/datafiles/studiolights/world).
HDRIS = ("city", "courtyard", "forest", "interior", "night", "studio", "sunrise", "sunset")
LIGHT_DEFAULTS_BLENDER_ONLY = {"hdri": "auto", "hdri_rotation": 0.0, "hdri_strength": 1.0}
GROUND_PATTERNS = ("solid", "tiles", "noise")


@dataclass(frozen=True)
class CameraParams:
    """Pinhole camera orbiting the subject.

    azimuth / elevation / roll in radians, distance in metres from the look-at point
    (the body's centre), fov_y the vertical field of view in radians. offset_x / offset_y
    shift the subject in the image, as a fraction of the image width / height
    (0.5 puts the body centre on the image border).

    framing: when > 0, the person's larger image extent as a fraction of the image (their
    projected box height over the image height, or width over width, whichever is larger);
    `distance` is then derived from it, so a lying and a standing person fill the frame
    alike. truncation: fraction of the person's image box pushed outside the image on
    `truncation_side` (0 = whole person in view). The camera never goes below the floor:
    its elevation is raised where needed to keep it `MIN_CAMERA_HEIGHT` above the ground.
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
    framing: float = 0.0
    truncation: float = 0.0
    truncation_side: str = "bottom"


@dataclass(frozen=True)
class LightParams:
    """One directional key light plus ambient. Angles in radians relative to the
    camera's azimuth (0 = light comes from the camera side); intensity in pyrender
    units (W/m^2); ambient in [0, 1]."""

    azimuth: float = 30 * DEG
    elevation: float = 40 * DEG
    intensity: float = 3.5
    ambient: float = 0.3
    # Blender renderer only (simulator.blender; pyrender ignores them, and they are left
    # out of to_dict()/flat() at their defaults so pyrender scenes and their logs and
    # hashes are unchanged): the environment map lighting the scene and seen behind it,
    # one of HDRIS or "auto" (picked from a hash of the rest of the scene, a stream of its
    # own that leaves the sampling of every other parameter as it was); its rotation about
    # the vertical, radians relative to the camera's azimuth; its strength.
    hdri: str = "auto"
    hdri_rotation: float = 0.0
    hdri_strength: float = 1.0


@dataclass(frozen=True)
class BackgroundParams:
    """kind: solid | noise | checker | image, or hdri (Blender only: the environment map
    lighting the scene is also its background; the others are drawn by the same function
    under both renderers, Blender compositing its render over them). Colour as HSV in
    [0, 1]; texture_scale in [0, 1] (fine to coarse); image_index in [0, 1) picks a file
    from the render config's background folder (sorted by name)."""

    kind: str = "solid"
    hue: float = 0.58
    saturation: float = 0.15
    value: float = 0.75
    texture_scale: float = 0.5
    image_index: float = 0.0


@dataclass(frozen=True)
class GroundParams:
    """The floor the body rests on. kind: floor | none. The floor plane passes through the
    body's lowest point (the body stands, sits or lies on it, never sinks into it) and is
    drawn in the colour pass; it is not part of the person mask. Colour as HSV in [0, 1];
    pattern: solid | tiles | noise; tile_size in metres."""

    kind: str = "floor"
    hue: float = 0.08
    saturation: float = 0.2
    value: float = 0.55
    pattern: str = "tiles"
    tile_size: float = 0.6


@dataclass(frozen=True)
class OccluderParams:
    """Something between the camera and the person.

    kind: none | box | pole | rectangle. `box` (a panel in front of one body region: the
    lower `coverage` of its height, its width plus a margin; over a leg it reaches the
    image bottom like a crate on the ground) and `pole` (a post spanning the image height)
    are 3D objects placed relative to the body: they cover `coverage`
    (0..1) of the image extent of body region `part` (head, torso, left_arm, right_arm,
    left_leg, right_leg), vertically for a box, horizontally for a pole, halfway between
    the camera and the body's nearest point. The fraction of each region's pixels that is
    hidden is measured from the part map and recorded in `Sample.occlusion`.
    `rectangle` is a flat image-space patch: x / y its centre relative to the subject's
    centre as a fraction of the image size, width / height fractions of the image size
    (x, y, width and height apply to the rectangle only)."""

    kind: str = "none"
    part: str = "torso"
    coverage: float = 0.5
    x: float = 0.0
    y: float = 0.0
    width: float = 0.3
    height: float = 0.3
    hue: float = 0.0
    value: float = 0.5


# anny's age phenotype <-> age in years: the piecewise-linear "morphological age" mapping
# anny samples realistic bodies with (anny/data/shape_calibration/{boys,girls}.pth,
# `morphological_age_mapping`; a test checks these against the file). Adults of 18-64
# years are 0.77-0.83 of anny's [0, 1]: a dimension uniform in anny's age drew 74%
# children and teenagers and 7% adults, so `shape.age` is searched uniformly in years.
ANNY_AGE_ANCHORS = (0.0, 0.05, 0.215, 0.415, 0.67, 0.77, 0.83, 1.0)
AGE_YEARS_ANCHORS = (0.0, 1.0, 4.0, 11.0, 16.0, 18.0, 64.0, 110.0)
AGE_WARP = (ANNY_AGE_ANCHORS, AGE_YEARS_ANCHORS)


def age_years(anny_age) -> np.ndarray:
    """anny's age phenotype -> age in years."""
    return np.interp(anny_age, ANNY_AGE_ANCHORS, AGE_YEARS_ANCHORS)


def anny_age(years) -> np.ndarray:
    """Age in years -> anny's age phenotype."""
    return np.interp(years, AGE_YEARS_ANCHORS, ANNY_AGE_ANCHORS)


# The default body: every phenotype at its middle. Note: anny's age 0.5 is a 13-year-old
# (an adult default, anny_age(30) = 0.786, was tried and left for later: the IUV chart
# continuity test fails on that body, tests/generators/test_iuv.py).
DEFAULT_SHAPE: dict[str, float] = {k: 0.5 for k in ALL_SHAPE_NAMES}


@dataclass(frozen=True)
class SceneParams:
    """Everything that defines one scene. Frozen; `replace()` makes modified copies."""

    pose: Mapping[str, float] = field(default_factory=neutral_pose)
    shape: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SHAPE))
    skin_tone: float = 0.3
    camera: CameraParams = field(default_factory=CameraParams)
    light: LightParams = field(default_factory=LightParams)
    background: BackgroundParams = field(default_factory=BackgroundParams)
    occluder: OccluderParams = field(default_factory=OccluderParams)
    clothing: ClothingParams = field(default_factory=ClothingParams)
    ground: GroundParams = field(default_factory=GroundParams)
    # The pose prior's latent vector (standard-normal units) this pose was decoded from,
    # when it came from the prior (simulator.prior); empty for poses given as angles.
    pose_latent: tuple[float, ...] = ()
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
        object.__setattr__(self, "shape", {**DEFAULT_SHAPE, **{k: float(v) for k, v in self.shape.items()}})
        if self.background.kind not in BACKGROUND_KINDS + (HDRI_BACKGROUND,):
            raise ParamError(f"background.kind must be one of {BACKGROUND_KINDS + (HDRI_BACKGROUND,)}, "
                             f"got {self.background.kind!r}")
        if self.occluder.kind not in OCCLUDER_KINDS:
            raise ParamError(f"occluder.kind must be one of {OCCLUDER_KINDS}, got {self.occluder.kind!r}")
        if self.occluder.part not in OCCLUDER_PARTS:
            raise ParamError(f"occluder.part must be one of {OCCLUDER_PARTS}, got {self.occluder.part!r}")
        if self.camera.truncation_side not in TRUNCATION_SIDES:
            raise ParamError(
                f"camera.truncation_side must be one of {TRUNCATION_SIDES}, got {self.camera.truncation_side!r}"
            )
        if self.ground.kind not in GROUND_KINDS:
            raise ParamError(f"ground.kind must be one of {GROUND_KINDS}, got {self.ground.kind!r}")
        if self.light.hdri != "auto" and self.light.hdri not in HDRIS:
            raise ParamError(f"light.hdri must be auto or one of {HDRIS}, got {self.light.hdri!r}")
        if not (isinstance(self.light.hdri_strength, (int, float)) and 0.0 <= self.light.hdri_strength <= 100.0):
            raise ParamError(f"light.hdri_strength must be a number in [0, 100], got {self.light.hdri_strength!r}")
        if self.ground.pattern not in GROUND_PATTERNS:
            raise ParamError(f"ground.pattern must be one of {GROUND_PATTERNS}, got {self.ground.pattern!r}")
        object.__setattr__(self, "pose_latent", tuple(float(z) for z in self.pose_latent))
        object.__setattr__(self, "schema_version", SCHEMA_VERSION)

    # ---- flat view -------------------------------------------------------------------
    def flat(self) -> dict[str, Any]:
        """Flat {"group.name": value} view, the names `ParamSpace` dimensions use."""
        out: dict[str, Any] = {f"pose.{k}": v for k, v in self.pose.items()}
        out.update({f"shape.{k}": v for k, v in self.shape.items()})
        out["appearance.skin_tone"] = self.skin_tone
        for group in _GROUPS:
            for k, v in _group_dict(self, group).items():
                out[f"{group}.{k}"] = v
        return out

    def with_values(self, values: Mapping[str, Any], latent: Sequence[float] | None = None) -> "SceneParams":
        """A copy with flat "group.name" values replaced; unknown names raise ParamError.
        `latent` records the prior latent the pose came from (None keeps the current one)."""
        pose, shape = dict(self.pose), dict(self.shape)
        groups = {g: dataclasses.asdict(getattr(self, g)) for g in _GROUPS}
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
            ground=GroundParams(**groups["ground"]),
            pose_latent=latent if latent is not None else self.pose_latent,
        )

    # ---- JSON ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["light"] = _group_dict(self, "light")
        d["pose"] = dict(self.pose)
        d["shape"] = dict(self.shape)
        d["pose_latent"] = list(self.pose_latent)
        return d

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), **kw)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SceneParams":
        if not isinstance(d, Mapping):
            raise ParamError(f"scene parameters must be a JSON object, got {type(d).__name__}")
        version = d.get("schema_version", SCHEMA_VERSION)
        if version not in READABLE_SCHEMA_VERSIONS:
            raise ParamError(
                f"scene schema_version {version!r} is not supported (this version reads "
                f"{', '.join(map(str, READABLE_SCHEMA_VERSIONS))})"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ParamError(f"unknown scene field(s) {sorted(unknown)}; valid fields: {sorted(known)}")
        kwargs: dict[str, Any] = {}
        sub = {"camera": CameraParams, "light": LightParams, "background": BackgroundParams, "occluder": OccluderParams,
               "clothing": ClothingParams, "ground": GroundParams}
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
        if version == 1:
            # v1 scenes had no floor and no body-relative occluders: keep them as they were.
            kwargs.setdefault("ground", GroundParams(kind="none"))
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise ParamError(f"malformed scene parameters: {e}") from None

    @classmethod
    def from_json(cls, text: str) -> "SceneParams":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ParamError(f"malformed scene JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
        return cls.from_dict(d)

    def replace(self, **changes: Any) -> "SceneParams":
        return dataclasses.replace(self, **changes)


_GROUPS = ("camera", "light", "background", "occluder", "clothing", "ground")


def _group_dict(params: SceneParams, group: str) -> dict[str, Any]:
    """One group's fields; the Blender-only light fields only where they differ from
    their defaults (so pyrender scenes serialise and hash exactly as before)."""
    d = dataclasses.asdict(getattr(params, group))
    if group == "light":
        for k, default in LIGHT_DEFAULTS_BLENDER_ONLY.items():
            if d[k] == default:
                del d[k]
    return d


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
    [low, high]; categorical ones split [-1, 1] into equal bins, one per choice.

    warp: (physical anchors, display anchors), both increasing: the dimension is then
    linear in the display quantity (e.g. age in years) and maps to the physical value
    (anny's age phenotype) piecewise linearly; `low`, `high` and every value stay physical.
    """

    name: str
    low: float
    high: float
    unit: str
    choices: tuple[str, ...] | None = None
    description: str = ""
    # The group a dimension is selected by when it differs from its name's prefix: the raw
    # joint angles ("pose.l_knee_flexion") form the group "joints", the prior latent
    # dimensions ("pose.z01") the group "pose".
    group_name: str = ""
    warp: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    display_unit: str = ""

    def to_display(self, value):
        """Physical value(s) -> the display quantity the dimension is linear in."""
        return np.interp(value, self.warp[0], self.warp[1]) if self.warp else value

    def from_display(self, value):
        return np.interp(value, self.warp[1], self.warp[0]) if self.warp else value

    def physical_array(self, u: np.ndarray) -> np.ndarray:
        """Normalised (N,) -> physical (N,) for a continuous, non-latent dimension."""
        u = np.clip(np.asarray(u, dtype=np.float64), -1.0, 1.0)
        if self.warp:
            lo, hi = self.to_display(self.low), self.to_display(self.high)
            return self.from_display(lo + (u + 1.0) * 0.5 * (hi - lo))
        return self.low + (u + 1.0) * 0.5 * (self.high - self.low)

    @property
    def group(self) -> str:
        return self.group_name or self.name.split(".", 1)[0]

    @property
    def is_latent(self) -> bool:
        return self.name.startswith(LATENT_PREFIX)

    @property
    def is_posture(self) -> bool:
        """posture.tilt / posture.direction: not scene parameters of their own; they set the
        up direction the posture prior decodes the latent at (root pitch and roll)."""
        return self.name.startswith(POSTURE_PREFIX)

    def to_physical(self, u: float) -> Any:
        u = min(max(float(u), -1.0), 1.0)
        if self.is_latent:
            return float(u_to_latent(u, self.low, self.high))
        if self.choices:
            idx = min(int((u + 1.0) / 2.0 * len(self.choices)), len(self.choices) - 1)
            return self.choices[idx]
        if self.warp:
            return float(self.physical_array(np.array(u)))
        return self.low + (u + 1.0) * 0.5 * (self.high - self.low)

    def to_normalised(self, value: Any) -> float:
        if self.choices:
            if value not in self.choices:
                raise ParamError(f"{self.name} must be one of {self.choices}, got {value!r}")
            idx = self.choices.index(value)
            return -1.0 + (2 * idx + 1) / len(self.choices)
        if self.is_latent:
            return float(latent_to_u(value, self.low, self.high))
        if self.high == self.low:
            return 0.0
        if self.warp:
            lo, hi = self.to_display(self.low), self.to_display(self.high)
            return float(2.0 * (self.to_display(float(value)) - lo) / (hi - lo) - 1.0)
        return 2.0 * (float(value) - self.low) / (self.high - self.low) - 1.0

    def format(self, value: Any) -> str:
        if self.choices:
            return str(value)
        if self.warp:
            return f"{float(self.to_display(value)):.0f} {self.display_unit}".rstrip()
        if self.unit == "rad":
            return f"{math.degrees(value):.0f}°"
        if self.unit == "m":
            return f"{value:.2f} m"
        if self.unit == "sigma":
            return f"{value:+.2f}σ"
        return f"{value:.2f}"


LATENT_PREFIX = "pose.z"
POSTURE_PREFIX = "posture."
# The prior's latent dimensions span +-LATENT_SIGMA standard deviations. A uniform value
# u in [-1, 1] maps to z through the inverse normal CDF (truncated at +-LATENT_SIGMA), so
# uniform samples of the search space are samples of the prior itself and the box edges
# are its tails.
LATENT_SIGMA = 2.5
# Per-joint offsets added to a prior pose when the space has both "pose" and "joints".
JOINT_OFFSET = 20 * DEG


def _joint_dimensions() -> list[Dimension]:
    from simulator.joints import POSE_LIMITS

    return [
        Dimension(f"pose.{name}", lo, hi, "rad", description=desc, group_name="joints")
        for name, (lo, hi, desc) in POSE_LIMITS.items()
    ]


def _latent_dimensions() -> list[Dimension]:
    from simulator.prior import load_pose_prior

    L = load_pose_prior().latent_dim
    return [
        Dimension(f"{LATENT_PREFIX}{i + 1:02d}", -LATENT_SIGMA, LATENT_SIGMA, "sigma", group_name="pose",
                  description=f"pose prior latent {i + 1} of {L} (standard deviations)")
        for i in range(L)
    ]


def _posture_dimensions() -> list[Dimension]:
    return [
        Dimension("posture.tilt", 0.0, 180 * DEG, "rad",
                  description="the body's angle from upright: 0 standing, 90 lying, 180 upside down (with the "
                              "'pose' group: its latent is decoded by the posture prior at this tilt)"),
        Dimension("posture.direction", -180 * DEG, 180 * DEG, "rad",
                  description="which way the body tips: 0 backward (lying on the back), 90 to its right, "
                              "180 forward (face down), -90 to its left"),
    ]


def _display_value(d: Dimension, text: str, entry: str) -> float:
    """A number in the dimension's display unit (degrees, years, sigma, ...) -> physical."""
    try:
        v = float(text)
    except ValueError:
        raise ParamError(f"--space entry {entry!r}: {text.strip()!r} is not a number") from None
    if not math.isfinite(v):
        raise ParamError(f"--space entry {entry!r}: {text.strip()!r} is not a finite number")
    if d.unit == "rad":
        return math.radians(v)
    return float(d.from_display(v)) if d.warp else v


def parse_limit(entry: str, known: Mapping[str, Dimension]) -> "Dimension | Any":
    """One "name=..." entry of a space spec -> the narrowed Dimension, or the physical
    value the dimension is fixed at. Ranges and values are in the units `examiner space`
    shows (degrees for angles, years for age, sigma for pose latents) and must lie within
    the dimension's own range: a limit narrows the space, it never widens it."""
    name, _, spec = (x.strip() for x in entry.partition("="))
    d = known.get(name)
    if d is None:
        raise ParamError(f"--space entry {entry!r} names no dimension; run `examiner space` to list them")
    if not spec:
        raise ParamError(f"--space entry {entry!r} gives no range; write {name}=LOW:HIGH or {name}=VALUE")
    if d.choices:
        picked = [c.strip() for c in spec.split("|")]
        bad = [c for c in picked if c not in d.choices]
        if bad or len(set(picked)) != len(picked):
            raise ParamError(f"--space entry {entry!r}: {name} takes one or more of {'|'.join(d.choices)} "
                             f"(separated by '|'), each once")
        if len(picked) == 1:
            return picked[0]
        return dataclasses.replace(d, choices=tuple(c for c in d.choices if c in picked))
    shown = f"{d.format(d.low)} to {d.format(d.high)}"
    if ":" not in spec:
        if d.is_latent or d.is_posture:
            raise ParamError(f"--space entry {entry!r}: {name} can be narrowed ({name}=LOW:HIGH, within {shown}), "
                             "not fixed")
        v = _display_value(d, spec, entry)
        if not d.low - 1e-9 <= v <= d.high + 1e-9:
            raise ParamError(f"--space entry {entry!r}: the value is outside {name}'s range {shown}")
        return v
    lo_text, _, hi_text = spec.partition(":")
    lo, hi = _display_value(d, lo_text, entry), _display_value(d, hi_text, entry)
    if not lo < hi:
        raise ParamError(f"--space entry {entry!r}: the range must run from low to high ({name}=LOW:HIGH)")
    tol = 1e-9 + 1e-6 * (d.high - d.low)
    if lo < d.low - tol or hi > d.high + tol:
        raise ParamError(f"--space entry {entry!r} widens {name}; a limit stays within its range {shown}")
    return dataclasses.replace(d, low=max(lo, d.low), high=min(hi, d.high))


def _display_number(d: Dimension, value: float) -> str:
    """A physical value in the unit `parse_limit` reads (degrees, years, sigma, ...)."""
    v = math.degrees(value) if d.unit == "rad" else float(d.to_display(value)) if d.warp else float(value)
    text = f"{v:.{1 if d.unit == 'rad' or d.warp else 3}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def choices_in(d: Dimension, lo_u: float, hi_u: float) -> tuple[str, ...]:
    """The choices of a categorical dimension whose bins the normalised range overlaps."""
    n = len(d.choices)
    first = min(int((lo_u + 1.0) / 2.0 * n + 1e-9), n - 1)
    last = min(int((hi_u + 1.0) / 2.0 * n - 1e-9), n - 1)
    return tuple(d.choices[first:last + 1])


def limit_entry(d: Dimension, lo_u: float, hi_u: float) -> str:
    """The space-spec entry that keeps the normalised range [lo_u, hi_u] of `d`
    ("camera.truncation=0:0.19"; for a categorical dimension, the choices whose bins it
    overlaps: "camera.truncation_side=left|right", or the one choice)."""
    if d.choices:
        return f"{d.name}={'|'.join(choices_in(d, lo_u, hi_u))}"
    lo = d.low if lo_u <= -1.0 + 1e-12 else d.to_physical(lo_u)
    hi = d.high if hi_u >= 1.0 - 1e-12 else d.to_physical(hi_u)
    return f"{d.name}={_display_number(d, lo)}:{_display_number(d, hi)}"


def with_limits(spec: str, entries: Sequence[str]) -> str:
    """A space spec with "name=..." entries added, replacing any earlier limit on the
    same dimensions."""
    names = {e.partition("=")[0] for e in entries}
    kept = [g.strip() for g in spec.split(",") if g.strip() and g.strip().partition("=")[0].strip() not in names]
    return ",".join(kept + list(entries))


def u_to_latent(u: np.ndarray, low: float = -LATENT_SIGMA, high: float = LATENT_SIGMA) -> np.ndarray:
    """Normalised u in [-1, 1] -> latent z: the inverse CDF of the standard normal
    truncated to [low, high] (sigmas)."""
    from scipy.special import ndtr, ndtri

    a, b = ndtr(low), ndtr(high)
    return ndtri(a + (np.asarray(u, dtype=np.float64) + 1.0) * 0.5 * (b - a))


def latent_to_u(z: np.ndarray, low: float = -LATENT_SIGMA, high: float = LATENT_SIGMA) -> np.ndarray:
    from scipy.special import ndtr

    a, b = ndtr(low), ndtr(high)
    return (ndtr(np.asarray(z, dtype=np.float64)) - a) / (b - a) * 2.0 - 1.0


def default_dimensions() -> list[Dimension]:
    """All searchable dimensions with their default bounds (everyday-to-hard range)."""
    dims = _latent_dimensions() + _posture_dimensions() + _joint_dimensions()
    dims += [
        Dimension("shape.gender", 0.0, 1.0, "", description="0 male .. 1 female (anny's phenotype)"),
        Dimension("shape.age", float(anny_age(2.0)), float(anny_age(80.0)), "", warp=AGE_WARP, display_unit="years",
                  description="anny's age phenotype, searched uniformly in years (2 to 80): 0.215 = 4, "
                              "0.415 = 11, 0.77 = 18, 0.83 = 64 years"),
        Dimension("shape.muscle", 0.0, 1.0, ""),
        Dimension("shape.weight", 0.0, 1.0, "", description="0 skinny .. 1 corpulent"),
        Dimension("shape.height", 0.0, 1.0, "",
                  description="stature percentile for the body's age and sex: 0 = 1st, 0.5 = median, 1 = 99th"),
        Dimension("shape.proportions", 0.0, 1.0, ""),
        Dimension("shape.belly", 0.3, 1.0, "", description="0.5 neutral .. 1 pregnant-like belly"),
        Dimension("shape.head_size", 0.2, 0.8, "", description="head height, 0.5 neutral"),
        Dimension("shape.hip_width", 0.2, 0.8, "", description="0.5 neutral"),
        Dimension("shape.torso_width", 0.2, 0.8, "", description="0.5 neutral"),
        Dimension("appearance.skin_tone", 0.0, 1.0, "", description="0 light .. 1 dark"),
        Dimension("camera.azimuth", -180 * DEG, 180 * DEG, "rad", description="0 = in front of the subject"),
        Dimension("camera.elevation", -10 * DEG, 50 * DEG, "rad",
                  description="above the horizon; raised where needed to keep the camera above the floor"),
        Dimension("camera.framing", 0.3, 0.95, "", description="the person's image extent as a fraction of the image"),
        Dimension("camera.fov_y", 40 * DEG, 60 * DEG, "rad"),
        Dimension("camera.roll", -15 * DEG, 15 * DEG, "rad"),
        Dimension("camera.offset_x", -0.1, 0.1, "", description="fraction of image width"),
        Dimension("camera.offset_y", -0.1, 0.1, "", description="fraction of image height"),
        Dimension("camera.truncation", 0.0, 0.35, "", description="fraction of the person outside the image"),
        Dimension("camera.truncation_side", 0, 0, "", choices=TRUNCATION_SIDES),
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
        Dimension("occluder.kind", 0, 0, "", choices=("none", "box", "pole")),
        Dimension("occluder.part", 0, 0, "", choices=OCCLUDER_PARTS, description="the body region it covers"),
        Dimension("occluder.coverage", 0.2, 0.9, "", description="share of that region's image extent covered"),
        Dimension("occluder.hue", 0.0, 1.0, ""),
        Dimension("occluder.value", 0.05, 1.0, ""),
        # Clothing (simulator.garments; style values are fractions of each type's range).
        Dimension("ground.pattern", 0, 0, "", choices=GROUND_PATTERNS),
        Dimension("ground.hue", 0.0, 1.0, ""),
        Dimension("ground.saturation", 0.0, 0.6, ""),
        Dimension("ground.value", 0.1, 0.9, ""),
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
            if d.name not in base_flat and not d.is_latent and not d.is_posture:
                raise ParamError(f"dimension {d.name!r} is not a scene parameter")
        if any(d.is_posture for d in self.dimensions) and not any(d.is_latent for d in self.dimensions):
            raise ParamError("the posture group sets the tilt the pose prior's latent is decoded at; add the "
                             "'pose' group (e.g. --space pose,posture,camera)")

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
        `overrides` replaces bounds: {"camera.distance": (2.0, 8.0)}.

        An entry "name=..." narrows or fixes one dimension (`parse_limit`), in the units
        `examiner space` shows: "camera.truncation=0:0.19" (a range), "shape.age=18:80"
        (years), "camera.elevation=0:30" (degrees), "pose.z02=-1:2.5" (sigma),
        "camera.truncation_side=left|right" (some choices), "camera.truncation=0" or
        "occluder.kind=none" (fixed: the dimension leaves the space, the base scene takes
        the value). A dimension no group selected joins the space with the narrowed range."""
        if isinstance(groups, str):
            groups = [g.strip() for g in groups.split(",") if g.strip()]
        groups = list(groups)
        limits = [g for g in groups if "=" in g]
        groups = [g for g in groups if "=" not in g]
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
        if limits:
            known = {d.name: d for d in all_dims}
            by_name = {d.name: d for d in chosen}
            fixed: dict[str, Any] = {}
            seen: set[str] = set()
            for text in limits:
                name = text.partition("=")[0].strip()
                if name in seen:
                    raise ParamError(f"--space limits {name!r} twice; give one range or value per dimension")
                seen.add(name)
                limited = parse_limit(text, known)
                if isinstance(limited, Dimension):
                    by_name[name] = limited
                else:
                    by_name.pop(name, None)
                    fixed[name] = limited
            chosen = list(by_name.values())
            if not chosen:
                raise ParamError("every dimension of the space is fixed; leave at least one free (e.g. add 'pose')")
            base = (base or SceneParams()).with_values(fixed)
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

    @property
    def latent_index(self) -> np.ndarray:
        """Indices of the pose prior's latent dimensions (empty when the space has none)."""
        return np.array([i for i, d in enumerate(self.dimensions) if d.is_latent], dtype=int)

    def to_params(self, u: np.ndarray) -> SceneParams:
        """(D,) normalised vector in [-1, 1] -> SceneParams."""
        return self.to_params_batch(self._check_vector(u)[None])[0]

    def to_params_batch(self, U: np.ndarray) -> list[SceneParams]:
        """(B, D) normalised vectors -> SceneParams; prior poses are decoded in one batch.

        With prior latent dimensions, the pose is the prior's decoding of the latent; joint
        dimensions in the same space are then offsets (+-JOINT_OFFSET) added to it, clipped
        to the anatomical limits."""
        U = np.atleast_2d(np.asarray(U, dtype=np.float64))
        U = np.stack([self._check_vector(u) for u in U]) if len(U) else U.reshape(0, self.dim)
        li = self.latent_index
        decoded = Z = None
        if len(li):
            from simulator.joints import POSE_DOFS, POSE_LIMITS
            from simulator.prior import load_pose_prior

            Z = np.stack([u_to_latent(U[:, i], self.dimensions[i].low, self.dimensions[i].high) for i in li], 1)
            up = self._posture_up(U)
            if up is None:
                decoded = load_pose_prior().decode(Z)
            else:
                from simulator.prior import load_posture_prior

                decoded = load_posture_prior().decode(Z, up)
            lo = np.array([POSE_LIMITS[k][0] for k in POSE_DOFS])
            hi = np.array([POSE_LIMITS[k][1] for k in POSE_DOFS])
            dof_index = {f"pose.{k}": i for i, k in enumerate(POSE_DOFS)}
        out = []
        for b, u in enumerate(U):
            values: dict[str, Any] = {}
            if decoded is not None:
                pose = decoded[b].copy()
                for d, x in zip(self.dimensions, u):
                    if d.name in dof_index:  # an offset on the prior pose
                        pose[dof_index[d.name]] += float(x) * JOINT_OFFSET
                pose = np.clip(pose, lo, hi)
                values.update({f"pose.{k}": float(v) for k, v in zip(POSE_DOFS, pose)})
            for d, x in zip(self.dimensions, u):
                if d.is_latent or d.is_posture or (decoded is not None and d.name in values):
                    continue
                values[d.name] = d.to_physical(x)
            latent = tuple(float(z) for z in Z[b]) if Z is not None else None
            out.append(self.base.with_values(values, latent=latent))
        return out

    def _posture_up(self, U: np.ndarray) -> np.ndarray | None:
        """(B, 3) up directions of the posture dimensions (a missing one at 0), or None when
        the space has none."""
        cols = {d.name: i for i, d in enumerate(self.dimensions) if d.is_posture}
        if not cols:
            return None
        from simulator.prior import posture_up

        def degrees(name: str) -> np.ndarray:
            if name not in cols:
                return np.zeros(len(U))
            return np.degrees(self.dimensions[cols[name]].physical_array(U[:, cols[name]]))

        return posture_up(degrees("posture.tilt"), degrees("posture.direction"))

    def to_vector(self, params: SceneParams) -> np.ndarray:
        """SceneParams -> (D,) normalised vector (values outside the bounds map outside
        [-1, 1]). Latent dimensions come from the scene's recorded `pose_latent`, or, for a
        pose given as angles, from the prior's encoding of it (approximate)."""
        flat = params.flat()
        u = np.zeros(self.dim)
        li = self.latent_index
        if len(li):
            z = np.asarray(params.pose_latent, dtype=np.float64)
            if z.shape != (len(li),):
                from simulator.joints import POSE_DOFS
                from simulator.prior import load_pose_prior, load_posture_prior

                prior = load_posture_prior() if any(d.is_posture for d in self.dimensions) else load_pose_prior()
                z = prior.encode(np.array([[params.pose[k] for k in POSE_DOFS]]))[0]
            u[li] = [latent_to_u(zi, self.dimensions[i].low, self.dimensions[i].high) for zi, i in zip(z, li)]
        if any(d.is_posture for d in self.dimensions):
            from simulator.prior import posture_from_up, up_from_tilt

            tilt, direction = posture_from_up(up_from_tilt(np.array(params.pose["root_pitch"]),
                                                           np.array(params.pose["root_roll"])))
            posture = {"posture.tilt": math.radians(float(tilt)), "posture.direction": math.radians(float(direction))}
        for i, d in enumerate(self.dimensions):
            if d.is_posture:
                u[i] = d.to_normalised(posture[d.name])
                continue
            if d.is_latent:
                continue
            if len(li) and d.group == "joints":
                u[i] = 0.0  # offsets from the prior pose are not recoverable from the angles alone
                continue
            u[i] = d.to_normalised(flat[d.name])
        return u

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, D) uniform samples in [-1, 1]."""
        return rng.uniform(-1.0, 1.0, size=(n, self.dim))

    def describe(self, u: np.ndarray) -> dict[str, str]:
        u = self._check_vector(u)
        li = self.latent_index
        if len(li):
            return {d.name: (f"{math.degrees(float(x) * JOINT_OFFSET):+.0f}° offset" if d.group == "joints" else
                             d.format(d.to_physical(x)))
                    for d, x in zip(self.dimensions, u)}
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
        if d.choices or d.is_latent or d.is_posture:
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
        if d.name == "camera.framing":  # 0 = the camera distance decides
            lo, hi = (0.0, 0.0) if v == 0 else (0.05, 1.5)
        if d.name == "camera.truncation":
            lo, hi = 0.0, 0.9
        if d.name == "occluder.coverage":
            lo, hi = 0.0, 1.0
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

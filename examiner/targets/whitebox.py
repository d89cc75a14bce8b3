"""A white-box target for testing the examiner itself.

It reads each sample's ground truth and returns it almost exactly (Gaussian noise of
``noise_m`` metres per joint), except inside *planted regions*: boxes over named parameter
dimensions where every joint is displaced by ``error_m`` metres in a random direction. A
search that works finds the planted boxes.

Boxes are given in normalised coordinates in [-1, 1] of the dimensions' default bounds
(the same coordinates the search sees with ``ParamSpace.from_groups``), or of the
dimensions of a ``ParamSpace`` you pass. Noise is a pure function of (seed, scene), so
the same scene always gets the same prediction, in any batch order.

With ``halo > 0`` the error also rises *towards* each region, as a real model degrades
near a hard configuration: outside every region the joints are displaced by
``halo_error_m * exp(-(d / halo) ** 2)``, where d is the scene's distance to the nearest
region (L2 over that region's dimensions, normalised units). A region's own ``halo``
(``PlantedRegion(..., halo=h)``, Python only) replaces the target's for that region;
the displacement is then the largest over the regions.

Regions may name the pose prior's latent dimensions (``pose.z01`` .., the ``pose``
group): their value is the scene's recorded ``pose_latent`` (the latent the search
sampled; a pose given as angles is encoded by the prior, approximately, as
``ParamSpace.to_vector`` does), so a box over latent dimensions is a box of a
``pose,...`` search space. Keep ``halo_error_m`` well
below the failure threshold (the default 0.05 m gives a PA-MPJPE of ~40-50 mm at a
region's edge) so that only the regions themselves fail.

From Python::

    WhiteBoxTarget([PlantedRegion({"camera.azimuth": (0.5, 1.0)})], error_m=0.3)

From a spec string (regions separated by ';', dimensions within a region by ','):

    whitebox:camera.azimuth=0.5:1,pose.l_knee_flexion=-1:-0.5;light.ambient=-1:-0.8?error=0.3&noise=0.005&seed=0
    whitebox:camera.azimuth=0.5:1?halo=0.5&halo_error=0.05     (error rising towards the box)
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from examiner.targets.base import Prediction, TargetBatch, TargetError, TargetModel
from simulator.params import LATENT_PREFIX, Dimension, ParamSpace, SceneParams, default_dimensions


@dataclass(frozen=True)
class PlantedRegion:
    """A box {dimension name: (low, high)} in normalised [-1, 1] coordinates. A scene is
    inside when every named dimension lies within its interval (ends included)."""

    bounds: Mapping[str, tuple[float, float]]
    error_m: float | None = None  # None: the target's error_m
    halo: float | None = None  # None: the target's halo (width of the rising error, normalised units)

    def __post_init__(self) -> None:
        if not self.bounds:
            raise TargetError("a planted region needs at least one dimension bound")
        for name, (lo, hi) in self.bounds.items():
            if not lo <= hi:
                raise TargetError(f"planted region bound for {name!r} must satisfy low <= high, got ({lo}, {hi})")
        if self.halo is not None and not (math.isfinite(float(self.halo)) and float(self.halo) >= 0):
            raise TargetError(f"planted region halo must be a finite number >= 0, got {self.halo!r}")

    @classmethod
    def from_physical(
        cls, bounds: Mapping[str, tuple[float, float]], space: ParamSpace | None = None, error_m: float | None = None
    ) -> "PlantedRegion":
        """A region given in physical units (radians, metres, ...)."""
        dims = _dimension_table(space)
        norm = {}
        for name, (lo, hi) in bounds.items():
            d = _lookup(dims, name)
            a, b = d.to_normalised(lo), d.to_normalised(hi)
            norm[name] = (min(a, b), max(a, b))
        return cls(norm, error_m)


def _dimension_table(space: ParamSpace | None) -> dict[str, Dimension]:
    dims = space.dimensions if space is not None else default_dimensions()
    return {d.name: d for d in dims}


def _lookup(dims: Mapping[str, Dimension], name: str) -> Dimension:
    if name not in dims:
        raise TargetError(f"planted region names unknown dimension {name!r}; run `examiner space` to list valid names")
    return dims[name]


class WhiteBoxTarget(TargetModel):
    """Ground truth plus noise, with large errors inside planted regions."""

    needs_ground_truth = True

    def __init__(
        self,
        regions: Sequence[PlantedRegion] = (),
        error_m: float = 0.3,
        noise_m: float = 0.005,
        seed: int = 0,
        convention: str = "coco17",
        space: ParamSpace | None = None,
        name: str = "whitebox",
        halo: float = 0.0,
        halo_error_m: float = 0.05,
    ) -> None:
        self.regions = tuple(regions)
        for label, v in (("error", error_m), ("noise", noise_m), ("halo", halo), ("halo_error", halo_error_m)):
            if not math.isfinite(float(v)) or float(v) < 0:
                raise TargetError(f"white-box option {label} must be a finite number >= 0, got {v!r}")
        self.error_m = float(error_m)
        self.noise_m = float(noise_m)
        if halo < 0 or halo_error_m < 0:
            raise TargetError(f"white-box halo and halo_error must be >= 0, got {halo} and {halo_error_m}")
        self.halo = float(halo)
        self.halo_error_m = float(halo_error_m)
        self.seed = int(seed)
        self.convention = convention
        self.outputs = frozenset({"joints2d", "joints3d"})
        self.frame = "camera"
        self.max_batch = 256
        self.name = name
        self._dims = _dimension_table(space)
        for r in self.regions:
            for n in r.bounds:
                _lookup(self._dims, n)

    def normalised(self, params: SceneParams, names: Sequence[str]) -> dict[str, float]:
        flat = params.flat()
        z = self._latent(params) if any(self._dims[n].is_latent for n in names) else None
        return {n: float(self._dims[n].to_normalised(z[int(n[len(LATENT_PREFIX):]) - 1] if self._dims[n].is_latent
                                                     else flat[n])) for n in names}

    def _latent(self, params: SceneParams) -> np.ndarray:
        """The scene's pose prior latent: the recorded one, else the prior's encoding of the
        pose angles (approximate, as ParamSpace.to_vector)."""
        z = np.asarray(params.pose_latent, dtype=np.float64)
        n = sum(d.is_latent for d in self._dims.values())
        if z.shape != (n,):
            from simulator.joints import POSE_DOFS
            from simulator.prior import load_pose_prior

            z = load_pose_prior().encode(np.array([[params.pose[k] for k in POSE_DOFS]]))[0]
        return z

    def region_of(self, params: SceneParams) -> int | None:
        """Index of the first planted region containing the scene, or None."""
        for i, r in enumerate(self.regions):
            u = self.normalised(params, list(r.bounds))
            if all(lo - 1e-9 <= u[n] <= hi + 1e-9 for n, (lo, hi) in r.bounds.items()):
                return i
        return None

    def region_distances(self, params: SceneParams) -> list[float]:
        """Distance (normalised units) from the scene to each planted region: L2 over the
        region's own dimensions of how far the scene lies outside its box."""
        names = sorted({n for r in self.regions for n in r.bounds})
        u = self.normalised(params, names)
        return [float(np.sqrt(np.sum(np.square([max(lo - u[n], 0.0, u[n] - hi) for n, (lo, hi) in r.bounds.items()]))))
                for r in self.regions]

    def halo_distance(self, params: SceneParams) -> float:
        """Distance (normalised units) from the scene to the nearest planted region."""
        return min(self.region_distances(params), default=float("inf"))

    def halo_error(self, params: SceneParams) -> float:
        """Displacement (m) outside every region: the largest over the regions of
        halo_error_m * exp(-(d / halo) ** 2), each with its own halo or the target's."""
        err = 0.0
        for r, d in zip(self.regions, self.region_distances(params)):
            h = self.halo if r.halo is None else float(r.halo)
            if h > 0:
                err = max(err, self.halo_error_m * float(np.exp(-((d / h) ** 2))))
        return err

    def _rng(self, params: SceneParams) -> np.random.Generator:
        key = zlib.crc32(params.to_json(sort_keys=True).encode("utf-8"))
        return np.random.default_rng([self.seed, key])

    def predict(self, batch: TargetBatch) -> Prediction:
        if batch.ground_truth is None:
            raise TargetError("the white-box target needs ground truth in the batch (TargetBatch.ground_truth)")
        j3, j2 = [], []
        for sample, K in zip(batch.ground_truth, batch.K):
            if self.convention not in sample.keypoints:
                raise TargetError(
                    f"white-box convention {self.convention!r} is not in the sample's keypoints "
                    f"({sorted(sample.keypoints)}); pass convention=..."
                )
            kp = sample.keypoints[self.convention]
            gt3 = np.asarray(kp.xyz, dtype=np.float64)
            rng = self._rng(sample.params)
            delta = rng.normal(0.0, self.noise_m, size=gt3.shape)
            region = self.region_of(sample.params)
            err = 0.0
            if region is not None:
                err = self.regions[region].error_m or self.error_m
            elif self.regions and (self.halo > 0 or any(r.halo for r in self.regions)):
                err = self.halo_error(sample.params)
            if err > 0:
                direction = rng.normal(size=gt3.shape)
                direction /= np.linalg.norm(direction, axis=1, keepdims=True)
                delta = delta + err * direction
            p3 = gt3 + delta
            # Move the 2D keypoints by exactly the image displacement of the 3D change, so an
            # exact prediction stays pixel-exact whatever the renderer's pixel convention.
            p2 = np.asarray(kp.xy, dtype=np.float64) + _project(p3, K) - _project(gt3, K)
            j3.append(p3)
            j2.append(p2)
        return Prediction(
            convention=self.convention,
            joints3d=np.asarray(j3, np.float32),
            joints2d=np.asarray(j2, np.float32),
            frame="camera",
        )


def _project(xyz: np.ndarray, K: np.ndarray) -> np.ndarray:
    z = np.maximum(xyz[:, 2:3], 1e-6)
    uvw = (xyz / z) @ np.asarray(K, dtype=np.float64).T
    return uvw[:, :2]


def parse_regions(text: str) -> list[PlantedRegion]:
    """'dim=lo:hi,dim=lo:hi;dim=lo:hi' -> regions."""
    regions = []
    for chunk in filter(None, (c.strip() for c in text.split(";"))):
        bounds: dict[str, tuple[float, float]] = {}
        for item in filter(None, (i.strip() for i in chunk.split(","))):
            name, sep, rng = item.partition("=")
            lo, sep2, hi = rng.partition(":")
            try:
                if not (sep and sep2):
                    raise ValueError
                lo_f, hi_f = float(lo), float(hi)
                if not (math.isfinite(lo_f) and math.isfinite(hi_f)) or lo_f > hi_f:
                    raise ValueError
                bounds[name.strip()] = (lo_f, hi_f)
            except ValueError:
                raise TargetError(
                    f"bad planted region item {item!r}; write dimension=low:high with finite low <= high, e.g. camera.azimuth=0.5:1"
                ) from None
        regions.append(PlantedRegion(bounds))
    return regions


def make_whitebox(body: str, options: dict[str, str]) -> WhiteBoxTarget:
    kwargs: dict[str, object] = {}
    conv = {"error": ("error_m", float), "noise": ("noise_m", float), "seed": ("seed", int), "convention": ("convention", str),
            "halo": ("halo", float), "halo_error": ("halo_error_m", float)}
    for key, value in options.items():
        if key not in conv:
            raise TargetError(f"unknown whitebox option {key!r}; valid: {', '.join(conv)}")
        name, cast = conv[key]
        try:
            kwargs[name] = cast(value)
        except ValueError:
            raise TargetError(f"whitebox option {key}={value!r} is not a valid {cast.__name__}") from None
    return WhiteBoxTarget(parse_regions(body), **kwargs)  # type: ignore[arg-type]

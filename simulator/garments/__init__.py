"""Clothing for the simulator: TailorNet-style garments on the anny body.

    from simulator.garments import get_wardrobe
    g = get_wardrobe().dress("t-shirt", style=[0.5, 0.5, 0.3, 0.0], pose=pose, shape=shape)
    # pose (B, 34) radians, shape (B, 6) phenotypes or (B, 10) -> g.vertices (B, N, 3), g.faces, g.face_parts

In scenes: `SceneParams(clothing=ClothingParams(upper="t-shirt", lower="skirt"))`; the
renderer dresses the body and returns `Sample.clothing_mask`.

Modules: `spec` (types, style), `rig` (anny rest / skinning), `chains` (cylindrical
coordinates around trunk and limbs), `template` (templates on the body's topology),
`anchors` (style -> anchors), `geometry` (`GarmentGeometry`: anchors -> rest shape and
skinning), `model` (LF MLP + RBF-mixed pivot HF predictor), `collision` (penetration +
push-out), `dress` (the fast path), `fabric` (textures), `tailornet` (loader for
TailorNet's released weights and SMPL); offline, in `training/`: `drape` (PBD draping
simulation, the training data) and `train`. See docs/clothing.md.
Heavy modules load lazily.
"""

from simulator.garments.spec import (
    GARMENTS, LOWER_TYPES, STYLE_NAMES, UPPER_TYPES, GarmentError, GarmentSpec, available_garments, get_spec,
)


def get_wardrobe(weights_dir=None):
    from simulator.garments.dress import get_wardrobe as _get

    return _get(None if weights_dir is None else str(weights_dir))


__all__ = [
    "GARMENTS", "LOWER_TYPES", "STYLE_NAMES", "UPPER_TYPES", "GarmentError", "GarmentSpec",
    "available_garments", "get_spec", "get_wardrobe",
]

"""The Blender (Cycles) renderer: photoreal RGB with the pyrender ground truth.

`BlenderRenderer` renders each scene's ground truth (mask, depth, parts, keypoints,
visibility, boxes) with the pyrender `Renderer` at the camera the scene resolves to, then
sends the same geometry (posed body and garment vertices, camera intrinsics and pose,
key light, floor, occluder) to a Blender worker process (`client.BlenderClient`,
`worker.py`) that draws the RGB with Cycles: image-based lighting from the HDRIs shipped
in the bpy wheel, subsurface skin, textured garments and a floor with shadows.

bpy needs numpy < 2, so Blender lives in its own environment:
``examiner renderers install blender`` (`RECIPE`, installed by `simulator.envs`).
"""

from __future__ import annotations

from simulator.envs import EnvRecipe

BPY_VERSION = "4.5.*"

RECIPE = EnvRecipe(
    name="blender",
    python="3.11",
    first=(),
    then=(f"bpy=={BPY_VERSION}", "numpy<2"),
    check=(
        "import bpy, numpy; from pathlib import Path; "
        "p = Path(bpy.utils.system_resource('DATAFILES', path='studiolights/world')); "
        "assert (p / 'forest.exr').is_file(), p"
    ),
    description="Blender 4.5 as a Python module (bpy, Cycles), numpy<2 environment",
)

INSTALL_HINT = "examiner renderers install blender"


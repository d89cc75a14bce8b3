"""Offscreen rendering with pyrender and full ground truth.

One `Renderer` per process holds the GL context, the pyrender scene and its nodes; each
sample overwrites the body's vertex buffer in place and moves the camera, light and
occluder, so no scene, node or context is rebuilt between samples. The body is one mesh
whose vertices are duplicated along DensePose part borders and carry their part id as a
vertex colour; it is drawn twice per sample:

1. colour (RGBA, 4x MSAA, our light shader ignores the vertex colour), alpha-composited
   over the background;
2. segmentation (`RenderFlags.SEG`, no MSAA) with `shaders/vertex_colour.*`: each face
   writes its part id unblended, the 3D occluder label 0 - exact part labels, exact mask,
   depth.

The body mesh has two levels of detail (`simulator.lod`): the decimated one is drawn
when its surface deviation projects to at most `RenderConfig.lod_tolerance_px` pixels.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from simulator import appearance, camera as cam_math, floor, gl
from simulator.body_model import get_body_model
from simulator.joints import KEYPOINT_CONVENTIONS, SURFACE_KEYPOINTS
from simulator.errors import RenderError
from simulator.joints import POSE_DOFS
from simulator.params import ALL_SHAPE_NAMES, SceneParams
from simulator.plausibility import capsule_radii, check_penetration
from simulator.pyrender_patches import read_colour_only, shader_cache, single_sample_segmentation
from simulator.sample import OCCLUDED, OUT_OF_FRAME, VISIBLE, Keypoints, Sample

N_PARTS = 24
# DensePose part ids of each body region an occluder can cover (simulator.params.OCCLUDER_PARTS).
OCCLUDER_REGION_PARTS: dict[str, tuple[int, ...]] = {
    "head": (23, 24),
    "torso": (1, 2),
    "left_arm": (4, 15, 17, 19, 21),
    "right_arm": (3, 16, 18, 20, 22),
    "left_leg": (5, 8, 10, 12, 14),
    "right_leg": (6, 7, 9, 11, 13),
}
# Framing and camera placement look at every n-th body vertex (~1.4k of 13.7k).
_FRAMING_STRIDE = 25
# The floor shadow splats every n-th body vertex.
_SHADOW_STRIDE = 2


def occlusion_fractions(full_parts: np.ndarray, footprint: np.ndarray) -> dict[str, float | None]:
    """For each occluder region, the fraction of its pixels in `full_parts` (H, W) uint8
    (the part map rendered without the occluder) that `footprint` (H, W) bool covers;
    None for a region with no pixels in view."""
    out: dict[str, float | None] = {}
    for region, ids in OCCLUDER_REGION_PARTS.items():
        in_region = np.isin(full_parts, ids)
        n = int(in_region.sum())
        out[region] = round(float((in_region & footprint).sum()) / n, 4) if n else None
    return out


@dataclass(frozen=True)
class RenderConfig:
    """How scenes are rendered (not what is in them).

    body_model: registry name (anny | smpl | smplx); gl_backend: auto | egl | osmesa;
    background_dir: folder of images for background.kind == "image";
    surface_tolerance / joint_tolerance: metres a keypoint may lie behind the rendered
    surface and still count as visible, for skin keypoints (face, feet) and for points
    inside the body (COCO limb points, joint centres);
    check_plausibility: run the self-penetration check;
    shading: "fast" (our Lambert + Blinn-Phong colour shader, simulator/shaders/) or
    "pbr" (pyrender's metallic-roughness shader, about twice the cost on llvmpipe);
    detail: body mesh level of detail, "auto" (the decimated mesh when its deviation
    projects to at most lod_tolerance_px pixels, else the full one), "full" or "low"."""

    body_model: str = "anny"
    gl_backend: str = "auto"
    background_dir: str | None = None
    surface_tolerance: float = 0.04
    joint_tolerance: float = 0.12
    check_plausibility: bool = True
    shading: str = "fast"
    detail: str = "auto"
    lod_tolerance_px: float = 1.0
    schema_version: int = 1
    body_options: tuple = field(default_factory=tuple)
    # "pyrender" or "blender" (simulator.blender: Cycles RGB, ground truth from this
    # renderer's pass at the same camera); blender_samples / blender_threads: Cycles
    # samples per pixel (adaptive, denoised) and CPU threads of the Blender worker (0: all
    # cores this process may use; the pixels do not depend on it, see docs/blender.md).
    renderer: str = "pyrender"
    blender_samples: int = 8
    blender_threads: int = 0


def pose_vector(params: SceneParams) -> np.ndarray:
    return np.array([params.pose[k] for k in POSE_DOFS], dtype=np.float64)


def shape_vector(params: SceneParams, body_model: str = "anny") -> np.ndarray:
    """The body model's shape input: the scene's shape values in `ALL_SHAPE_NAMES` order.
    For anny (and the garments fitted to it), `height` (a stature percentile for the body's
    age and sex) becomes anny's height phenotype (simulator.stature); SMPL's mapping takes
    the percentile as it is (0.5 = the mean shape, docs/body_models.md)."""
    v = np.array([params.shape[k] for k in ALL_SHAPE_NAMES], dtype=np.float64)
    if body_model == "anny":
        from simulator.stature import height_phenotype

        i = ALL_SHAPE_NAMES.index
        v[i("height")] = height_phenotype(v[i("height")], v[i("age")], v[i("gender")])
    return v


class Renderer:
    """Renders `SceneParams` to `Sample`s. Not thread-safe; one per process."""

    def __init__(self, config: RenderConfig | None = None) -> None:
        from simulator.gl import select_backend

        self.config = config or RenderConfig()
        self.backend = select_backend(self.config.gl_backend)
        import pyrender  # after select_backend: pyrender reads PYOPENGL_PLATFORM on import

        self._pyrender = pyrender
        self.body = get_body_model(self.config.body_model, **dict(self.config.body_options))
        if self.config.detail not in ("auto", "full", "low"):
            raise RenderError(f"unknown detail {self.config.detail!r}; use auto, full or low")
        self._detail = self.config.detail
        self._meshes: dict[str, _BodyMesh] = {}
        self._mesh: _BodyMesh | None = None  # the level drawn for the current sample
        rest = self.body.forward(np.zeros((1, len(POSE_DOFS))), np.full((1, len(ALL_SHAPE_NAMES)), 0.5))
        self._radii = capsule_radii(rest.vertices[0], self.body.vertex_region, rest.joints[0])
        self._rest_vertices = rest.vertices[0]

        self.scene = pyrender.Scene(bg_color=[0.0, 0.0, 0.0, 0.0], ambient_light=[0.3, 0.3, 0.3])
        self._skin = pyrender.MetallicRoughnessMaterial(
            baseColorFactor=[0.8, 0.6, 0.5, 1.0], metallicFactor=0.0, roughnessFactor=0.85
        )
        self._camera_node = None
        self._light_node = self.scene.add(pyrender.DirectionalLight(color=np.ones(3), intensity=3.0), pose=np.eye(4))
        import trimesh

        box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
        self._occluder_material = pyrender.MetallicRoughnessMaterial(
            baseColorFactor=[0.5, 0.5, 0.5, 1.0], metallicFactor=0.0, roughnessFactor=0.7
        )
        self._occluder_node = self.scene.add(
            pyrender.Mesh.from_trimesh(box, material=self._occluder_material, smooth=False), pose=np.eye(4)
        )
        self._occluder_node.mesh.is_visible = False
        # Vertices of each body region an occluder can cover (simulator.params.OCCLUDER_PARTS).
        fp = np.asarray(self.body.face_parts)
        faces = np.asarray(self.body.faces)
        self._region_vertices = {
            region: np.unique(faces[np.isin(fp, ids)]) for region, ids in OCCLUDER_REGION_PARTS.items()
        }
        self._renderer = None
        self._size: tuple[int, int] | None = None
        self._garments = None  # simulator.garments.layer.GarmentLayer, made on first clothed scene
        # The geometry of the last rendered scene (world frame), for other renderers that
        # draw the same scene at the same camera (simulator.blender).
        self.last_scene: dict | None = None
        # True when another renderer (Blender) redraws this renderer's RGB: background.kind
        # "hdri" is then allowed (its placeholder colour is never seen).
        self.rgb_redrawn = False
        self._last_garments: list = []

    # ---- GL context --------------------------------------------------------------------
    def _ensure_renderer(self, width: int, height: int):
        if self._size != (width, height):
            if self._renderer is None:
                try:
                    self._renderer = self._pyrender.OffscreenRenderer(width, height)
                    _LIVE_GL.append(self._renderer)
                except Exception as e:  # the platform's own error types vary (EGL/OSMesa)
                    raise RenderError(
                        f"could not create a headless OpenGL context with {self.backend} ({e}); "
                        "install `libegl1 libegl-mesa0 libgl1-mesa-dri libgles2` or set PYOPENGL_PLATFORM=osmesa"
                    ) from None
                if self.config.shading not in ("fast", "pbr"):
                    raise RenderError(f"unknown shading {self.config.shading!r}; use fast or pbr")
                self._renderer._renderer._program_cache = shader_cache(fast=self.config.shading == "fast")
                single_sample_segmentation(self._renderer._renderer)
            else:
                self._renderer.viewport_width, self._renderer.viewport_height = width, height
            self._size = (width, height)
        return self._renderer

    def close(self) -> None:
        """Forget this renderer's GL context. The context itself lives until the process
        exits: pyrender's EGL `delete()` (also run by its `__del__`) terminates the
        process-wide EGL display and would kill every other renderer's context."""
        self._renderer = None
        self._size = None

    # ---- geometry ------------------------------------------------------------------------
    def _body_mesh(self, name: str) -> "_BodyMesh":
        mesh = self._meshes.get(name)
        if mesh is None:
            if name == "full":
                from simulator.lod import MeshLevel

                level = MeshLevel("full", self.body.faces, self.body.face_parts)
            else:
                from simulator.lod import build_levels

                level = build_levels(self._rest_vertices, self.body.faces, self.body.face_parts)[name]
            # Normals always come from the full surface: the decimated level keeps its
            # smooth shading and differs from the full one only along silhouettes.
            mesh = self._meshes[name] = _BodyMesh(level, len(self._rest_vertices), self.body.faces)
        return mesh

    def _pick_mesh(self, v: np.ndarray, K: np.ndarray, extr: np.ndarray) -> "_BodyMesh":
        """The level of detail for this view: "low" when its surface deviation, projected
        at the body's nearest depth, stays within `lod_tolerance_px` pixels."""
        if self._detail != "auto":
            return self._body_mesh(self._detail)
        low = self._body_mesh("low")
        nearest = float((v @ extr[2, :3]).min() + extr[2, 3])
        if nearest > 0.05 and low.level.pixels(float(max(K[0, 0], K[1, 1])), nearest) <= self.config.lod_tolerance_px:
            return low
        return self._body_mesh("full")

    def _set_body(self, v: np.ndarray, skin: np.ndarray) -> None:
        """Write the posed vertices into the current level's vertex buffer.

        A level's node is created the first time it is drawn; later calls overwrite its GL
        vertex buffer in place (glBufferSubData), so no VAO/VBO or scene node is created
        per sample. Levels not drawn now are hidden."""
        self._skin.baseColorFactor = np.array([*skin, 1.0])
        mesh = self._mesh
        data = mesh.vertex_data(v)
        for other in self._meshes.values():
            if other.node is not None:
                other.node.mesh.is_visible = other is mesh
        if mesh.node is None:
            prim = self._pyrender.Primitive(
                positions=data[:, :3], normals=data[:, 3:6], color_0=data[:, 6:], indices=mesh.faces,
                material=self._skin,
            )
            mesh.node = self.scene.add(self._pyrender.Mesh([prim]))
            return
        prim = mesh.node.mesh.primitives[0]
        if prim._vaid is None:  # not yet in the GL context: pyrender uploads on render
            prim.positions, prim.normals = data[:, :3], data[:, 3:6]
            return
        from OpenGL.GL import GL_ARRAY_BUFFER, glBindBuffer, glBufferSubData

        # Another renderer in this process may have made its own context current.
        self._renderer._platform.make_current()
        glBindBuffer(GL_ARRAY_BUFFER, prim._buffers[0])
        glBufferSubData(GL_ARRAY_BUFFER, 0, data.nbytes, data)

    @property
    def _part_nodes(self) -> list:
        """The body's scene nodes (one per level of detail created so far)."""
        return [m.node for m in self._meshes.values() if m.node is not None]

    def _show(self, colour_pass: bool) -> None:
        if self._garments is not None:
            self._garments.show(colour_pass)

    def _set_garments(self, params: SceneParams, body_rig: tuple[dict, int] | None = None) -> None:
        """Dress the body (simulator.garments); a bare scene costs nothing. body_rig:
        (BodyOutput.rig, row) of this scene's body evaluation, reused for the garment rig
        when it is the same body model."""
        clothing = params.clothing
        if self._garments is None:
            if not clothing.worn:
                return
            if self.body.name != "anny":
                raise RenderError(f"clothing is defined on the anny body model; use body_model='anny', not {self.body.name!r}")
            from simulator.garments import get_wardrobe
            from simulator.garments.layer import GarmentLayer

            self._garments = GarmentLayer(self.scene, self._pyrender, get_wardrobe())
        from simulator.garments.dress import dress_scene

        items = []
        if clothing.worn:
            wardrobe = self._garments.wardrobe
            posed = None
            if body_rig is not None and body_rig[0] is not None and wardrobe.rig.body is self.body:
                posed = wardrobe.rig.from_body_output(*body_rig)
            items = dress_scene(clothing, pose_vector(params), shape_vector(params), wardrobe, body=posed)
        self._last_garments = items
        self._garments.update(items)

    def _place_occluder(self, occ, v: np.ndarray, K: np.ndarray, extr: np.ndarray, cam_pose: np.ndarray,
                        H: int) -> None:
        """Put the 3D occluder (box or pole) over body region occ.part: a thin panel facing the
        camera halfway between the camera and the body's nearest point, covering
        occ.coverage of the region's image extent. A box covers the lower occ.coverage of the
        region's height and its width (plus a margin); it stops just below the region, so it
        hides that region and what lies in front of it, not the whole body below it (a box
        over a leg reaches down to the image bottom: it stands on the ground). A pole spans
        the image height and covers occ.coverage of the region's width."""
        xy, xyz = cam_math.project(v[self._region_vertices[occ.part]], K, extr)
        x0, y0 = xy.min(0)
        x1, y1 = xy.max(0)
        c = float(np.clip(occ.coverage, 0.0, 1.0))
        if occ.kind == "box":
            margin = 0.15 * (x1 - x0) + 2.0
            bottom = H + 2.0 if occ.part in ("left_leg", "right_leg") else y1 + 0.1 * (y1 - y0) + 2.0
            rect = (x0 - margin, y1 - c * (y1 - y0), x1 + margin, bottom)
        else:  # pole
            half = 0.5 * max(c * (x1 - x0), 3.0)
            mid = 0.5 * (x0 + x1)
            rect = (mid - half, -2.0, mid + half, H + 2.0)
        nearest = float((np.einsum("nj,j->n", v, extr[2, :3], optimize=False) + extr[2, 3]).min())
        depth = max(0.5 * nearest, 0.1)
        fx, fy = K[0, 0], K[1, 1]
        cx_px, cy_px = 0.5 * (rect[0] + rect[2]), 0.5 * (rect[1] + rect[3])
        ray = np.array([(cx_px - K[0, 2]) / fx * depth, (cy_px - K[1, 2]) / fy * depth, depth, 1.0])
        pose = cam_pose.copy()
        pose[:3, 3] = (np.linalg.inv(extr) @ ray)[:3]
        scale = np.diag([(rect[2] - rect[0]) / fx * depth, (rect[3] - rect[1]) / fy * depth, 0.01, 1.0])
        self.scene.set_pose(self._occluder_node, pose @ scale)

    # ---- one scene -------------------------------------------------------------------------
    def render_batch(self, params_list: Sequence[SceneParams]) -> list[Sample]:
        if not params_list:
            return []
        pose = np.stack([pose_vector(p) for p in params_list])
        shape = np.stack([shape_vector(p, self.body.name) for p in params_list])
        out = self.body.forward(pose, shape)
        return [
            self._render_one(p, out.vertices[i], out.joints[i], {k: v[i] for k, v in out.keypoints.items()}, (out.rig, i))
            for i, p in enumerate(params_list)
        ]

    def render(self, params: SceneParams) -> Sample:
        return self.render_batch([params])[0]

    def _render_one(self, params: SceneParams, v: np.ndarray, joints: np.ndarray, kps: dict,
                    body_rig: tuple[dict | None, int] | None = None) -> Sample:
        pyrender = self._pyrender
        cam = params.camera
        W, H = int(cam.width), int(cam.height)
        if W < 8 or H < 8 or W > 4096 or H > 4096:
            raise RenderError(f"image size {W}x{H} is outside 8..4096 pixels")
        floor_z = float(v[:, 2].min()) if params.ground.kind == "floor" else None
        target = np.round(0.5 * (v.min(0) + v.max(0)), 6)  # see resolve_camera's rounding
        cam = cam_math.resolve_camera(cam, v[::_FRAMING_STRIDE], floor_z, target)
        cam_pose = cam_math.camera_to_world_gl(cam, target)
        K = cam_math.intrinsics(cam)
        extr = cam_math.world_to_camera_cv(cam_pose)

        self._mesh = self._pick_mesh(v, K, extr)
        self._set_body(v, appearance.skin_rgb(params.skin_tone))
        self._last_garments = []
        self._set_garments(params, body_rig)
        if self._camera_node is not None:
            self.scene.remove_node(self._camera_node)
        far = cam.distance + 10.0
        self._camera_node = self.scene.add(
            pyrender.IntrinsicsCamera(K[0, 0], K[1, 1], K[0, 2], K[1, 2], znear=0.05, zfar=far), pose=cam_pose
        )
        # Light: direction relative to the camera's azimuth.
        light = params.light
        az, el = cam.azimuth + light.azimuth, light.elevation
        ldir = np.array([math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el)])
        self.scene.set_pose(self._light_node, cam_math.look_at_pose(target + 3.0 * ldir, target))
        self._light_node.light.intensity = float(light.intensity)
        self.scene.ambient_light = np.full(3, float(light.ambient))

        occ = params.occluder
        centre_px = np.array([W * (0.5 + cam.offset_x), H * (0.5 + cam.offset_y)])
        occ_centre = centre_px + np.array([occ.x * W, occ.y * H])
        occ_size = np.array([occ.width * W, occ.height * H])
        occ_rgb = appearance.hsv(occ.hue, 0.6, occ.value)
        solid_occluder = occ.kind in ("box", "pole")
        self._occluder_node.mesh.is_visible = solid_occluder
        if solid_occluder:
            self._place_occluder(occ, v, K, extr, cam_pose, H)
            self._occluder_material.baseColorFactor = np.array([*occ_rgb, 1.0])

        r = self._ensure_renderer(W, H)
        self._show(colour_pass=True)
        inner = r._renderer
        own_read = inner._read_main_framebuffer
        inner._read_main_framebuffer = types.MethodType(read_colour_only, inner)
        try:  # the colour pass needs no depth: skip its readback and conversion
            color, _ = r.render(self.scene, flags=pyrender.RenderFlags.RGBA)
        finally:
            inner._read_main_framebuffer = own_read  # the SEG pass's own read
        # Channel 0: DensePose part (garments: the part underneath); channel 1: clothing.
        seg_map = {self._mesh.node: (0, 0, 0)}  # drawn with its vertex colours (part ids)
        if self._garments is not None:
            seg_map.update(self._garments.seg_map())
        self._show(colour_pass=False)
        full_parts = footprint = None
        if solid_occluder:
            # First the part map without the occluder, to measure what it hides (the pass
            # the scene keeps comes last: the dense renderer reads its face ids from it).
            full_seg, _ = r.render(self.scene, flags=pyrender.RenderFlags.SEG, seg_node_map=seg_map)
            full_parts = np.ascontiguousarray(full_seg[..., 0])
            seg_map[self._occluder_node] = (0, 0, 0)  # drawn, hiding the body, labelled background
        seg, depth = r.render(self.scene, flags=pyrender.RenderFlags.SEG, seg_node_map=seg_map)
        parts = np.ascontiguousarray(seg[..., 0])
        if solid_occluder:
            footprint = (full_parts > 0) & (parts == 0)  # body pixels the occluder hides
        clothing_mask = seg[..., 1] > 0
        depth = depth.astype(np.float32)

        bg = appearance.background_image(params.background, W, H, self.config.background_dir,
                                         hdri_placeholder=self.rgb_redrawn)
        if color.shape[-1] == 4:
            alpha = color[..., 3:4].astype(np.float32) / 255.0
        else:  # OSMesa returns RGB only (and has no anti-aliasing): coverage from the SEG pass
            alpha = (depth > 0).astype(np.float32)[..., None]
        if floor_z is not None:
            # The floor lies behind the body from any camera above it: a background layer.
            smap = floor.shadow_map(v[::_SHADOW_STRIDE], floor_z, ldir)
            floor.floor_layer(bg, alpha[..., 0] < 0.999, params.ground,
                              floor.upward_light(light.intensity, light.elevation, light.ambient),
                              K, np.linalg.inv(extr), floor_z, target[:2], smap)
        rgb_f = color[..., :3].astype(np.float32) / 255.0 * alpha + bg * (1.0 - alpha)
        rect = None
        if occ.kind == "rectangle":
            x0, y0 = np.floor(occ_centre - occ_size / 2).astype(int)
            x1, y1 = np.ceil(occ_centre + occ_size / 2).astype(int)
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
            if x1 > x0 and y1 > y0:
                rect = (x0, y0, x1, y1)
                full_parts = parts.copy()
                footprint = np.zeros(parts.shape, dtype=bool)
                footprint[y0:y1, x0:x1] = True
                rgb_f[y0:y1, x0:x1] = occ_rgb
                parts[y0:y1, x0:x1] = 0
                clothing_mask[y0:y1, x0:x1] = False
                depth[y0:y1, x0:x1] = 0.0
        self.last_scene = {
            "vertices": v, "faces": self.body.faces, "garments": self._last_garments, "K": K,
            "camera_pose": cam_pose, "camera": cam, "target": target, "floor_z": floor_z, "light_dir": ldir,
            "skin_rgb": appearance.skin_rgb(params.skin_tone), "occluder_rgb": occ_rgb,
            "occluder_pose": self.scene.get_pose(self._occluder_node) if solid_occluder else None,
            "rect": rect,
        }
        rgb = np.clip(np.round(rgb_f * 255.0), 0, 255).astype(np.uint8)
        mask = parts > 0
        occlusion = occlusion_fractions(full_parts, footprint) if footprint is not None else {}

        keypoints = {}
        for conv, names in KEYPOINT_CONVENTIONS.items():
            xy, xyz = cam_math.project(kps[conv].astype(np.float64), K, extr)
            tol = np.array([
                self.config.surface_tolerance if n in SURFACE_KEYPOINTS else self.config.joint_tolerance
                for n in names
            ])
            keypoints[conv] = Keypoints(
                convention=conv,
                names=names,
                xy=xy.astype(np.float32),
                xyz=xyz.astype(np.float32),
                visibility=_visibility(xy, xyz[:, 2], depth, tol, rect),
            )
        ys, xs = np.nonzero(mask)
        bbox = (
            np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float32)
            if len(xs)
            else np.zeros(4, dtype=np.float32)
        )
        plaus = (
            check_penetration(joints, self._radii)
            if self.config.check_plausibility
            else {"plausible": True, "penetrating": [], "worst_ratio": None}
        )
        return Sample(
            rgb=rgb,
            mask=mask,
            depth=depth,
            parts=parts,
            keypoints=keypoints,
            K=K.astype(np.float32),
            extrinsics=extr.astype(np.float32),
            bbox=bbox,
            params=params,
            plausible=plaus["plausible"],
            plausibility=plaus,
            joints_world=joints,
            clothing_mask=clothing_mask,
            mesh_detail=self._mesh.level.name,
            occlusion=occlusion,
            camera=cam,
            ground_height=floor_z,
        )


class _BodyMesh:
    """GL-side data of one level of detail: vertices duplicated along part borders (so a
    vertex colour can carry the face's DensePose part), faces into them, and a sparse
    vertex <- face incidence over `normal_faces` for smooth vertex normals."""

    def __init__(self, level, n_vertices: int, normal_faces: np.ndarray) -> None:
        from scipy.sparse import csr_matrix

        self.level = level
        faces, parts = np.asarray(level.faces), np.asarray(level.face_parts)
        dup, local, labels, offset = [], [], [], 0
        for p in np.unique(parts):
            verts, inv = np.unique(faces[parts == p].reshape(-1), return_inverse=True)
            dup.append(verts)
            local.append(inv.reshape(-1, 3) + offset)
            labels.append(np.full(len(verts), p))
            offset += len(verts)
        self.dup = np.concatenate(dup)
        self.faces = np.concatenate(local).astype(np.uint32)
        # Interleaved like pyrender's buffer: position, normal, colour (part / 255, 0, 0, 1).
        self._data = np.zeros((len(self.dup), 10), dtype=np.float32)
        self._data[:, 6] = np.concatenate(labels) / 255.0
        self._data[:, 9] = 1.0
        F = len(normal_faces)
        self._normal_faces = normal_faces
        self._incidence = csr_matrix(
            (np.ones(3 * F, dtype=np.float32), (normal_faces.reshape(-1), np.repeat(np.arange(F), 3))),
            shape=(n_vertices, F),
        )
        self.node = None

    def normals(self, v: np.ndarray) -> np.ndarray:
        tri = v[self._normal_faces]
        vn = self._incidence @ np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        return (vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def vertex_data(self, v: np.ndarray) -> np.ndarray:
        """(n, 10) float32 interleaved vertex data for the posed vertices `v` (V, 3)."""
        self._data[:, :3] = v[self.dup]
        self._data[:, 3:6] = self.normals(v)[self.dup]
        return self._data


def _visibility(xy, z, depth, tol, rect) -> np.ndarray:
    H, W = depth.shape
    vis = np.full(len(xy), VISIBLE, dtype=np.int8)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < W) & (xy[:, 1] >= 0) & (xy[:, 1] < H) & (z > 0)
    vis[~inside] = OUT_OF_FRAME
    for j in np.flatnonzero(inside):
        px, py = int(xy[j, 0]), int(xy[j, 1])
        d = depth[py, px]
        if rect is not None and rect[0] <= px < rect[2] and rect[1] <= py < rect[3]:
            vis[j] = OCCLUDED
        elif d > 0 and z[j] > d + tol[j]:
            vis[j] = OCCLUDED
    return vis


# ---------------------------------------------------------------------------------------
# Module-level convenience: one renderer per process and configuration.
# ---------------------------------------------------------------------------------------
_RENDERERS: dict[RenderConfig, Renderer] = {}
# Every pyrender OffscreenRenderer this process made, kept alive until exit (see close()).
_LIVE_GL: list = []


gl.close_at_exit(_RENDERERS, close=lambda renderer: None)
gl.close_at_exit(_LIVE_GL, close=lambda gl_renderer: gl_renderer.delete())


RENDERERS = ("pyrender", "blender")


def check_renderer(name: str) -> str:
    """A renderer name that can be used now: pyrender, or blender when its environment is
    installed; otherwise a one-line RenderError naming the fix."""
    if name not in RENDERERS:
        raise RenderError(f"unknown renderer {name!r}; use {' or '.join(RENDERERS)}")
    if name == "blender":
        from simulator.blender.client import require_blender

        require_blender()
    return name


def get_renderer(config: RenderConfig | None = None) -> Renderer:
    config = config or RenderConfig()
    if config not in _RENDERERS:
        if config.renderer == "blender":
            from simulator.blender.client import BlenderRenderer

            _RENDERERS[config] = BlenderRenderer(config, Renderer)  # type: ignore[assignment]
        elif config.renderer == "pyrender":
            _RENDERERS[config] = Renderer(config)
        else:
            raise RenderError(f"unknown renderer {config.renderer!r}; use pyrender or blender")
    return _RENDERERS[config]


def render(params: SceneParams, config: RenderConfig | None = None) -> Sample:
    """Render one scene (reuses this process's renderer)."""
    return get_renderer(config).render(params)


def render_batch(params_list: Sequence[SceneParams], config: RenderConfig | None = None) -> list[Sample]:
    """Render many scenes; the body model runs once for the whole batch."""
    return get_renderer(config).render_batch(list(params_list))

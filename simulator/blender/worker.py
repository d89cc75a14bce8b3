"""Blender (Cycles) render worker. Runs inside the bpy environment
(``examiner renderers install blender``): imports only the standard library, numpy, bpy
and the project's ``simulator/worker_protocol.py``, loaded by file path.

The static scene (render settings, world, camera, sun, floor, occluder, compositor) is
built once at start-up; each ``render`` request moves the camera and lights and
overwrites vertex positions of the body and garment meshes. Meshes, their faces and UVs
and the fabric textures are created the first time a request carries them (the client
sends them once per worker process).

Request ``{"op": "render", ...}`` (see ``simulator/blender/client.py``), reply arrays
``rgb`` (H, W, 3) uint8 and ``mask`` (H, W) bool (pixels of the body and garments, from
Cycles' object-index pass); with ``"transparent": true`` the world is not seen (film
transparent; it still lights the scene) and ``alpha`` (H, W) uint8 comes too (``rgb``
is then straight, not premultiplied, colour).

Meshes whose topology changes from scene to scene (the anomaly generator's edited
figures: parts added, removed or capped) travel in a ``{"op": "mesh", "slot": S}``
message with arrays ``faces`` (F, 3) int32 and ``labels`` (F,) int32 (a part-instance id
per face, >= 0). The worker replaces the slot's object and gives it one material per
label whose pass index is label + 1. A ``render`` request with ``figures`` (a list of
``{"slot", "skin_rgb"}``) then only carries each slot's ``{slot}_vertices``: the fast
path, as for the body. Such a render also replies ``labels`` (H, W) int32, the label of
the surface seen at each pixel (-1: none), from Cycles' material-index pass.

Usage: python worker.py [--threads N]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import bpy

_spec = importlib.util.spec_from_file_location(
    "pe_worker_protocol", Path(__file__).resolve().parents[1] / "worker_protocol.py")
proto = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = proto  # its dataclasses look themselves up there
_spec.loader.exec_module(proto)

HDRIS = ("city", "courtyard", "forest", "interior", "night", "studio", "sunrise", "sunset")
PERSON_INDEX = 1
WORLD_MAP_RESOLUTION = 256
# PE_BLENDER_PROFILE=1: log render and read-back seconds per frame to the worker's stderr.
PROFILE = os.environ.get("PE_BLENDER_PROFILE") == "1"
# Half the floor's side (m) around the body: simulator.floor.FLOOR_RANGE_M, pyrender's.
FLOOR_RANGE_M = 40.0
# Tiles as pyrender's floor pattern (simulator.floor) draws them: grout lines this share
# of a tile wide, this dark; a shade per tile in [1 - TILE_SHADE, 1] (display-referred).
GROUT_WIDTH = 0.035
GROUT_DARKNESS = 0.6
TILE_SHADE = 0.1
# pyrender multiplies display (sRGB) values by the pattern's grey; in Cycles' linear
# space the same darkening is the grey to this power (sRGB's gamma, near enough).
DISPLAY_GAMMA = 2.2
# Mean luminance every environment map is scaled to (light.hdri_strength 1).
HDRI_MEAN = 0.5


def srgb_to_linear(c):
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def hdri_dir() -> Path:
    return Path(bpy.utils.system_resource("DATAFILES", path="studiolights/world"))


class Scene:
    def __init__(self, threads: int, scratch: str) -> None:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        self.scene = sc = bpy.context.scene
        self.tmp = scratch
        sc.render.engine = "CYCLES"
        cy = sc.cycles
        cy.device = "CPU"
        cy.use_animated_seed = False
        cy.use_adaptive_sampling = True
        cy.adaptive_threshold = 0.05
        cy.adaptive_min_samples = 0
        cy.use_denoising = True
        cy.denoiser = "OPENIMAGEDENOISE"
        cy.denoising_input_passes = "RGB_ALBEDO_NORMAL"
        # The accurate prefilter of the albedo/normal passes took ~1.5 s a frame at 256².
        cy.denoising_prefilter = "FAST"
        cy.denoising_quality = "BALANCED"
        cy.max_bounces = 4
        cy.diffuse_bounces = 2
        cy.glossy_bounces = 1
        cy.transmission_bounces = 0
        cy.volume_bounces = 0
        cy.transparent_max_bounces = 2
        cy.caustics_reflective = False
        cy.caustics_refractive = False
        cy.use_auto_tile = True
        cy.tile_size = 256
        sc.render.use_persistent_data = True
        sc.render.threads_mode = "FIXED"
        sc.render.threads = max(1, threads)
        sc.render.resolution_percentage = 100
        sc.render.pixel_aspect_x = sc.render.pixel_aspect_y = 1.0
        sc.render.film_transparent = False
        sc.view_settings.view_transform = "Standard"
        sc.view_settings.look = "None"
        sc.view_settings.exposure = 0.0
        sc.display_settings.display_device = "sRGB"
        sc.frame_set(1)

        # World: the HDRI, rotated about +Z, visible as the background.
        world = bpy.data.worlds.new("world")
        sc.world = world
        world.use_nodes = True
        # The importance map of the world is rebuilt whenever its shader changes (every
        # scene: the map turns with the camera); at the automatic resolution that took
        # 2.5 s a frame here, at 256 it is negligible and still finds the HDRI's sun.
        world.cycles.sampling_method = "MANUAL"
        world.cycles.sample_map_resolution = WORLD_MAP_RESOLUTION
        nt = world.node_tree
        nt.nodes.clear()
        coord = nt.nodes.new("ShaderNodeTexCoord")
        self.env_mapping = nt.nodes.new("ShaderNodeMapping")
        self.env_tex = nt.nodes.new("ShaderNodeTexEnvironment")
        self.env_bg = nt.nodes.new("ShaderNodeBackground")
        out = nt.nodes.new("ShaderNodeOutputWorld")
        nt.links.new(coord.outputs["Generated"], self.env_mapping.inputs["Vector"])
        nt.links.new(self.env_mapping.outputs["Vector"], self.env_tex.inputs["Vector"])
        nt.links.new(self.env_tex.outputs["Color"], self.env_bg.inputs["Color"])
        nt.links.new(self.env_bg.outputs["Background"], out.inputs["Surface"])
        self.hdri_images: dict[str, object] = {}

        cam_data = bpy.data.cameras.new("camera")
        self.camera = bpy.data.objects.new("camera", cam_data)
        sc.collection.objects.link(self.camera)
        sc.camera = self.camera

        sun_data = bpy.data.lights.new("sun", "SUN")
        sun_data.angle = math.radians(3.0)
        self.sun = bpy.data.objects.new("sun", sun_data)
        sc.collection.objects.link(self.sun)

        r = FLOOR_RANGE_M
        self.floor = self._object("floor", [(-r, -r, 0), (r, -r, 0), (r, r, 0), (-r, r, 0)], [(0, 1, 2, 3)])
        self.floor_mat = self._floor_material()
        self.floor.data.materials.append(self.floor_mat)

        cube_v = [(x, y, z) for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)]
        cube_f = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
        self.occluder = self._object("occluder", cube_v, cube_f)
        self.occluder_mat, self.occluder_bsdf = self._principled("occluder", roughness=0.7)
        self.occluder.data.materials.append(self.occluder_mat)

        self.skin_mat, self.skin_bsdf = self._principled("skin", roughness=0.5)
        b = self.skin_bsdf
        self.skin_mat.cycles.displacement_method = "BUMP"
        b.subsurface_method = "BURLEY"
        b.inputs["Subsurface Weight"].default_value = 0.25
        b.inputs["Subsurface Radius"].default_value = (1.0, 0.35, 0.2)
        b.inputs["Subsurface Scale"].default_value = 0.01
        self.body = None
        self.figures: dict[str, tuple[object, list, int]] = {}
        self.garments: dict[str, tuple[object, object]] = {}
        self.patterns: dict[str, object] = {}
        self._compositor()

    # ---- building blocks -------------------------------------------------------------
    def _object(self, name, verts, faces):
        mesh = bpy.data.meshes.new(name)
        mesh.from_pydata([tuple(map(float, v)) for v in verts], [], [tuple(map(int, f)) for f in faces])
        obj = bpy.data.objects.new(name, mesh)
        self.scene.collection.objects.link(obj)
        return obj

    def _principled(self, name, roughness):
        mat = bpy.data.materials.new(name)
        mat.use_nodes = True
        bsdf = mat.node_tree.nodes["Principled BSDF"]
        bsdf.inputs["Roughness"].default_value = roughness
        return mat, bsdf

    def _floor_material(self):
        mat, bsdf = self._principled("floor", roughness=0.9)
        # Little specular: at grazing views a rough dielectric floor mirrors the bright
        # horizon of the HDRI and looks washed out.
        bsdf.inputs["Specular IOR Level"].default_value = 0.1
        nt = mat.node_tree
        coord = nt.nodes.new("ShaderNodeTexCoord")
        tiles = self._tiles_grey(nt)
        self.floor_tint = nt.nodes.new("ShaderNodeMix")  # floor colour x tile grey
        self.floor_tint.data_type = "RGBA"
        self.floor_tint.blend_type = "MULTIPLY"
        self.floor_tint.inputs["Factor"].default_value = 1.0
        nt.links.new(tiles.outputs[0], self.floor_tint.inputs[7])
        self.floor_noise = nt.nodes.new("ShaderNodeTexNoise")
        self.floor_noise.inputs["Detail"].default_value = 4.0
        self.floor_mix = nt.nodes.new("ShaderNodeMix")
        self.floor_mix.data_type = "RGBA"
        self.floor_pick = nt.nodes.new("ShaderNodeMix")  # 0: tiles (or solid), 1: noise
        self.floor_pick.data_type = "RGBA"
        nt.links.new(coord.outputs["Object"], self.floor_noise.inputs["Vector"])
        nt.links.new(self.floor_noise.outputs["Fac"], self.floor_mix.inputs["Factor"])
        nt.links.new(self.floor_tint.outputs[2], self.floor_pick.inputs[6])
        nt.links.new(self.floor_mix.outputs[2], self.floor_pick.inputs[7])
        nt.links.new(self.floor_pick.outputs[2], bsdf.inputs["Base Color"])
        return mat

    def _tiles_grey(self, nt):
        """Nodes computing the tiles' grey at the shading point (a Math node's output):
        world x, y over the tile size; grout where min(frac u, frac v) < GROUT_WIDTH
        (darkened to GROUT_DARKNESS); a shade per tile from a hash of its integer cell
        (Cycles' white noise); the product to the power DISPLAY_GAMMA. Per scene:
        `floor_tile_scale` (1 / tile size), `floor_grout` and `floor_shade` (zero
        amplitudes give a solid floor)."""
        geo = nt.nodes.new("ShaderNodeNewGeometry")
        scale = self.floor_tile_scale = nt.nodes.new("ShaderNodeVectorMath")
        scale.operation = "MULTIPLY"
        nt.links.new(geo.outputs["Position"], scale.inputs[0])
        cell = nt.nodes.new("ShaderNodeVectorMath")
        cell.operation = "FLOOR"
        nt.links.new(scale.outputs[0], cell.inputs[0])
        frac = nt.nodes.new("ShaderNodeVectorMath")
        frac.operation = "FRACTION"
        nt.links.new(scale.outputs[0], frac.inputs[0])
        xyz = nt.nodes.new("ShaderNodeSeparateXYZ")
        nt.links.new(frac.outputs[0], xyz.inputs[0])

        def math(op, a, b=None, c=None):
            node = nt.nodes.new("ShaderNodeMath")
            node.operation = op
            for i, x in enumerate((a, b, c)):
                if x is None:
                    continue
                if isinstance(x, (int, float)):
                    node.inputs[i].default_value = float(x)
                else:
                    nt.links.new(x, node.inputs[i])
            return node

        edge = math("MINIMUM", xyz.outputs["X"], xyz.outputs["Y"])
        is_grout = math("LESS_THAN", edge.outputs[0], GROUT_WIDTH)
        self.floor_grout = math("MULTIPLY_ADD", is_grout.outputs[0], -(1.0 - GROUT_DARKNESS), 1.0)
        noise = nt.nodes.new("ShaderNodeTexWhiteNoise")
        noise.noise_dimensions = "3D"
        nt.links.new(cell.outputs[0], noise.inputs["Vector"])
        self.floor_shade = math("MULTIPLY_ADD", noise.outputs["Value"], TILE_SHADE, 1.0 - TILE_SHADE)
        grey = math("MULTIPLY", self.floor_grout.outputs[0], self.floor_shade.outputs[0])
        return math("POWER", grey.outputs[0], DISPLAY_GAMMA)

    def _compositor(self):
        sc = self.scene
        sc.view_layers[0].use_pass_object_index = True
        sc.use_nodes = True
        sc.render.use_compositing = True
        nt = sc.node_tree
        nt.nodes.clear()
        rl = nt.nodes.new("CompositorNodeRLayers")
        idm = nt.nodes.new("CompositorNodeIDMask")
        idm.index = PERSON_INDEX
        idm.use_antialiasing = False
        # Material index (figure part labels): a float EXR, no view transform; muted
        # unless the frame has figures.
        sc.view_layers[0].use_pass_material_index = True
        self.index_out = fi = nt.nodes.new("CompositorNodeOutputFile")
        fi.base_path = self.tmp
        fi.format.file_format = "OPEN_EXR"
        fi.format.color_mode = "BW"
        fi.format.color_depth = "32"
        fi.format.exr_codec = "NONE"
        fi.file_slots.clear()
        fi.file_slots.new("index_")
        nt.links.new(rl.outputs["IndexMA"], fi.inputs[0])
        fi.mute = True
        fo = nt.nodes.new("CompositorNodeOutputFile")
        fo.base_path = self.tmp
        fo.format.file_format = "PNG"
        fo.format.color_mode = "RGBA"
        fo.format.color_depth = "8"
        fo.file_slots.clear()
        fo.file_slots.new("rgb_")
        fo.file_slots.new("mask_")
        nt.links.new(rl.outputs["Image"], fo.inputs[0])
        nt.links.new(rl.outputs["IndexOB"], idm.inputs["ID value"])
        nt.links.new(idm.outputs["Alpha"], fo.inputs[1])
        comp = nt.nodes.new("CompositorNodeComposite")
        nt.links.new(rl.outputs["Image"], comp.inputs["Image"])

    def _read_png(self, stem: str, W: int, H: int, ext: str = "png") -> np.ndarray:
        path = os.path.join(self.tmp, f"{stem}{self.scene.frame_current:04d}.{ext}")
        img = bpy.data.images.load(path)
        try:
            px = np.empty(W * H * 4, dtype=np.float32)
            img.pixels.foreach_get(px)
        finally:
            bpy.data.images.remove(img)
            os.remove(path)
        return px.reshape(H, W, 4)[::-1]

    # ---- per-scene data ---------------------------------------------------------------
    def define_body(self, faces: np.ndarray, n_vertices: int) -> None:
        if self.body is not None:
            bpy.data.objects.remove(self.body)
        self.body = self._object("body", np.zeros((n_vertices, 3)), faces)
        self.body.data.polygons.foreach_set("use_smooth", np.ones(len(faces), dtype=bool))
        self.body.data.materials.append(self.skin_mat)
        self.body.pass_index = PERSON_INDEX

    def define_mesh(self, slot: str, faces: np.ndarray, labels: np.ndarray, n_vertices: int) -> dict:
        """Replace the object of `slot` by a mesh of these faces (its vertices come with each
        render), one skin material per distinct label (pass index label + 1)."""
        faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(labels) != len(faces):
            raise ValueError(f"mesh {slot!r}: {len(labels)} labels for {len(faces)} faces")
        if len(faces) and (faces.min() < 0 or faces.max() >= n_vertices):
            raise ValueError(f"mesh {slot!r}: face indices outside 0..{n_vertices - 1}")
        if len(labels) and labels.min() < 0:
            raise ValueError(f"mesh {slot!r}: labels must be >= 0")
        self.drop_mesh(slot)
        obj = self._object(f"figure_{slot}", np.zeros((n_vertices, 3)), faces)
        mesh = obj.data
        mesh.polygons.foreach_set("use_smooth", np.ones(len(faces), dtype=bool))
        uniq, slot_of_face = np.unique(labels, return_inverse=True)
        materials = []
        for lab in uniq:
            mat = self.skin_mat.copy()
            mat.name = f"skin_{slot}_{int(lab)}"
            mat.pass_index = int(lab) + 1
            mesh.materials.append(mat)
            materials.append(mat)
        mesh.polygons.foreach_set("material_index", slot_of_face.astype(np.int32))
        mesh.update()
        obj.pass_index = PERSON_INDEX
        obj.hide_render = True
        self.figures[slot] = (obj, materials, n_vertices)
        return {"slot": slot, "faces": int(len(faces)), "vertices": int(n_vertices), "labels": int(len(uniq))}

    def drop_mesh(self, slot: str) -> None:
        if slot in self.figures:
            obj, materials, _ = self.figures.pop(slot)
            mesh = obj.data
            bpy.data.objects.remove(obj)
            bpy.data.meshes.remove(mesh)
            for mat in materials:
                bpy.data.materials.remove(mat)

    def mesh(self, meta: dict, arrays: dict) -> tuple[dict, dict]:
        slot = str(meta["slot"])
        if meta.get("drop"):
            self.drop_mesh(slot)
            return {"slot": slot}, {}
        return self.define_mesh(slot, arrays["faces"], arrays["labels"], int(meta["n_vertices"])), {}

    def define_pattern(self, name: str, rgb: np.ndarray) -> None:
        h, w = rgb.shape[:2]
        img = self.patterns.get(name) or bpy.data.images.new(f"pattern_{name}", w, h)
        rgba = np.ones((h, w, 4), dtype=np.float32)
        rgba[..., :3] = rgb[::-1].astype(np.float32) / 255.0
        img.pixels.foreach_set(rgba.ravel())
        img.update()
        self.patterns[name] = img

    def define_garment(self, name: str, faces: np.ndarray, uv: np.ndarray) -> None:
        if name in self.garments:
            bpy.data.objects.remove(self.garments[name][0])
        obj = self._object(f"garment_{name}", np.zeros((len(uv), 3)), faces)
        mesh = obj.data
        mesh.polygons.foreach_set("use_smooth", np.ones(len(faces), dtype=bool))
        layer = mesh.uv_layers.new(name="uv")
        loops = np.empty(len(mesh.loops), dtype=np.int32)
        mesh.loops.foreach_get("vertex_index", loops)
        layer.data.foreach_set("uv", uv[loops].astype(np.float32).ravel())
        mat, bsdf = self._principled(f"fabric_{name}", roughness=0.9)
        bsdf.inputs["Sheen Weight"].default_value = 0.3
        nt = mat.node_tree
        tex = nt.nodes.new("ShaderNodeTexImage")
        mix = nt.nodes.new("ShaderNodeMix")
        mix.data_type = "RGBA"
        mix.blend_type = "MULTIPLY"
        mix.inputs["Factor"].default_value = 1.0
        nt.links.new(tex.outputs["Color"], mix.inputs[6])
        nt.links.new(mix.outputs[2], bsdf.inputs["Base Color"])
        mesh.materials.append(mat)
        obj.pass_index = PERSON_INDEX
        obj.hide_render = True
        self.garments[name] = (obj, (tex, mix))

    @staticmethod
    def _set_vertices(obj, v: np.ndarray) -> None:
        obj.data.vertices.foreach_set("co", np.ascontiguousarray(v, dtype=np.float32).ravel())
        obj.data.update()

    def hdri_image(self, name: str):
        """The map and its exposure factor: the shipped maps differ in brightness by an
        order of magnitude, so each is scaled to the same mean luminance (HDRI_MEAN,
        solid-angle weighted) before light.hdri_strength applies."""
        if name not in self.hdri_images:
            img = bpy.data.images.load(str(hdri_dir() / f"{name}.exr"), check_existing=True)
            w, h = img.size
            px = np.empty(w * h * 4, dtype=np.float32)
            img.pixels.foreach_get(px)
            lum = (px.reshape(h, w, 4)[..., :3] @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32))
            weight = np.cos((np.arange(h) + 0.5) / h * np.pi - np.pi / 2)[:, None]  # equirectangular rows
            mean = float((lum * weight).sum() / (weight.sum() * w))
            self.hdri_images[name] = (img, HDRI_MEAN / max(mean, 1e-6))
        return self.hdri_images[name]

    # ---- one frame --------------------------------------------------------------------
    def render(self, meta: dict, arrays: dict) -> tuple[dict, dict]:
        sc = self.scene
        if "body_faces" in arrays:
            self.define_body(arrays["body_faces"], len(arrays["body_vertices"]))
        for name in meta.get("patterns", []):
            self.define_pattern(name, arrays[f"pattern_{name}"])
        for i, g in enumerate(meta.get("garments", [])):
            if f"g{i}_faces" in arrays:
                self.define_garment(g["name"], arrays[f"g{i}_faces"], arrays[f"g{i}_uv"])
        figures = meta.get("figures")
        if figures is None and self.body is None:
            raise ValueError("no body mesh defined in this worker; send body_faces first")
        for f in figures or []:
            if f["slot"] not in self.figures:
                raise ValueError(f"no mesh in slot {f['slot']!r}; send a mesh message first")
        W, H = int(meta["width"]), int(meta["height"])
        sc.render.resolution_x, sc.render.resolution_y = W, H
        cy = sc.cycles
        cy.samples = int(meta["samples"])
        cy.seed = int(meta["seed"])
        cy.use_denoising = bool(meta.get("denoise", True))
        # transparent: the world is not seen (alpha 0 there) but still lights the scene;
        # the client composites the scene's procedural background behind the render.
        sc.render.film_transparent = bool(meta.get("transparent", False))

        # Camera: intrinsics K (square pixels) and the OpenGL camera-to-world pose.
        K = np.asarray(meta["K"], dtype=np.float64)
        cam = self.camera.data
        cam.clip_start, cam.clip_end = 0.05, 1000.0
        cam.sensor_width = cam.sensor_height = 36.0
        if W >= H:
            cam.sensor_fit = "HORIZONTAL"
            cam.lens = K[0, 0] * 36.0 / W
        else:
            cam.sensor_fit = "VERTICAL"
            cam.lens = K[1, 1] * 36.0 / H
        cam.shift_x = (0.5 * W - K[0, 2]) / max(W, H)
        cam.shift_y = (K[1, 2] - 0.5 * H) / max(W, H)
        self.camera.matrix_world = _matrix(meta["camera_pose"])

        # Lighting: the HDRI (map, rotation about +Z, strength) and the key light.
        image, exposure = self.hdri_image(meta["hdri"])
        self.env_tex.image = image
        self.env_mapping.inputs["Rotation"].default_value = (0.0, 0.0, float(meta["hdri_rotation"]))
        self.env_bg.inputs["Strength"].default_value = float(meta["hdri_strength"]) * exposure
        self.sun.matrix_world = _matrix(meta["sun_pose"])
        self.sun.data.energy = float(meta["sun_strength"])

        # Body and garments, or figures.
        if self.body is not None:
            self.body.hide_render = figures is not None
        if figures is None:
            self._set_vertices(self.body, arrays["body_vertices"])
            self.skin_bsdf.inputs["Base Color"].default_value = (*srgb_to_linear(meta["skin_rgb"]), 1.0)
            self.skin_bsdf.inputs["Subsurface Radius"].default_value = tuple(meta.get("skin_sss_radius", (1.0, 0.35, 0.2)))
        drawn = set()
        for f in figures or []:
            obj, materials, n_vertices = self.figures[f["slot"]]
            v = arrays[f"{f['slot']}_vertices"]
            if len(v) != n_vertices:
                raise ValueError(f"slot {f['slot']!r} holds a mesh of {n_vertices} vertices, got {len(v)}; "
                                 "send a mesh message when the topology changes")
            self._set_vertices(obj, v)
            for mat in materials:
                mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (*srgb_to_linear(f["skin_rgb"]), 1.0)
            obj.hide_render = False
            drawn.add(f["slot"])
        for slot, (obj, _, _) in self.figures.items():
            if slot not in drawn:
                obj.hide_render = True
        self.index_out.mute = figures is None
        shown = set()
        for i, g in enumerate(meta.get("garments", [])):
            obj, (tex, mix) = self.garments[g["name"]]
            self._set_vertices(obj, arrays[f"g{i}_vertices"])
            tex.image = self.patterns[g["pattern"]]
            mix.inputs[7].default_value = (*srgb_to_linear(g["rgb"]), 1.0)
            obj.hide_render = False
            shown.add(g["name"])
        for name, (obj, _) in self.garments.items():
            if name not in shown:
                obj.hide_render = True

        # Floor.
        fl = meta.get("floor")
        self.floor.hide_render = fl is None
        if fl is not None:
            self.floor.location = (float(fl["x"]), float(fl["y"]), float(fl["z"]))
            rgb = srgb_to_linear(fl["rgb"])
            pattern = fl["pattern"]
            tile = max(float(fl["tile_size"]), 1e-3)
            tiles = pattern == "tiles"
            self.floor_tint.inputs[6].default_value = (*rgb, 1.0)
            # z scaled to 0: the tile cells (and their shades) do not depend on the floor height.
            self.floor_tile_scale.inputs[1].default_value = (1.0 / tile, 1.0 / tile, 0.0)
            self.floor_grout.inputs[1].default_value = -(1.0 - GROUT_DARKNESS) if tiles else 0.0
            self.floor_shade.inputs[1].default_value = TILE_SHADE if tiles else 0.0
            self.floor_shade.inputs[2].default_value = 1.0 - TILE_SHADE if tiles else 1.0
            self.floor_noise.inputs["Scale"].default_value = 1.0 / max(0.6 * tile, 1e-3)
            self.floor_mix.inputs[6].default_value = (*(rgb * 0.1), 1.0)
            self.floor_mix.inputs[7].default_value = (*(rgb * 1.9), 1.0)
            self.floor_pick.inputs["Factor"].default_value = 1.0 if pattern == "noise" else 0.0

        # Occluder (box or pole).
        occ = meta.get("occluder")
        self.occluder.hide_render = occ is None
        if occ is not None:
            self.occluder.matrix_world = _matrix(occ["matrix"])
            self.occluder_bsdf.inputs["Base Color"].default_value = (*srgb_to_linear(occ["rgb"]), 1.0)

        t0 = time.perf_counter()
        bpy.ops.render.render(write_still=False)
        t1 = time.perf_counter()
        rgba = self._read_png("rgb_", W, H)
        mask = self._read_png("mask_", W, H)[..., 0] > 0.5
        out = {"rgb": np.clip(np.round(rgba[..., :3] * 255.0), 0, 255).astype(np.uint8), "mask": mask}
        if sc.render.film_transparent:
            out["alpha"] = np.clip(np.round(rgba[..., 3] * 255.0), 0, 255).astype(np.uint8)
        if figures is not None:
            index = self._read_png("index_", W, H, ext="exr")[..., 0]
            out["labels"] = np.round(index).astype(np.int32) - 1
        if PROFILE:
            print(f"pe-blender: render {t1 - t0:.2f}s read {time.perf_counter() - t1:.2f}s", file=sys.stderr)
        return {"width": W, "height": H}, out


def _matrix(m):
    from mathutils import Matrix

    return Matrix([list(map(float, row)) for row in m])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    state: dict = {}
    # The frames' scratch folder (each frame's files are removed once read), named in the
    # hello so that the client can remove it after killing this process.
    scratch = tempfile.mkdtemp(prefix="pe-blender-")

    def setup() -> None:
        state["scene"] = Scene(args.threads, scratch)

    try:
        proto.serve_ops(
            {"render": lambda meta, arrays: state["scene"].render(meta, arrays),
             "mesh": lambda meta, arrays: state["scene"].mesh(meta, arrays)},
            {"name": "blender", "blender_version": bpy.app.version_string, "hdris": list(HDRIS),
             "scratch": scratch},
            setup=setup,
        )
    finally:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])

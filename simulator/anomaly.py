"""Anatomical anomalies as documented mesh / skeleton operations, and a renderer for
scenes of several (possibly edited) figures with exact per-part-instance labels.

Anatomy: every vertex of the anny mesh gets one of seven part kinds (head, neck, body,
arm, hand, leg, foot) and a side, from the bone that carries most of its skinning weight
(neck01-03 -> neck; head, eyes -> head; root, pelvis, spine, clavicle, shoulder01 -> body;
upperarm / lowerarm -> arm; wrist, metacarpals, fingers -> hand; upperleg / lowerleg -> leg;
foot, toes -> foot). A face takes the kind of the majority of its corners. One person has
11 part instances: head, neck, body, left/right arm, hand, leg, foot.

Operations (all on posed world-frame vertices; each marks the instance it makes abnormal):

- `stretch`: lengthen a bone: vertices of the subtree below joint a move along the bone
  a -> b by (factor - 1) * |ab| * clip(t, 0, 1), t their position along the bone.
- `twist`: rotate the subtree about the bone axis by angle * clip(t, 0, 1) (a twisted
  bone: a candy-wrapper between a and b, the rest turned rigidly).
- `rotate`: rigidly rotate a vertex subset about a pivot (bend a joint beyond its limit,
  turn a foot or head backwards).
- `scale`: scale a subtree about its attachment point (giant or tiny part).
- `duplicate`: copy a set of faces (with their own vertices), transform the copy rigidly
  and add it as a new instance (extra limb, finger, toe, head).
- `remove`: delete a set of faces and close each hole with a fan around its centroid; the
  cap and the surface within `radius` of it become the abnormal instance (missing limb,
  finger, head).
- `move`: duplicate + remove (a misplaced part: head on the shoulder, arm on the hip).

Skeleton-level anomalies (joints bent beyond their anatomical limits, simulator.joints)
are produced by posing the body model with out-of-range angles before these operations.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from simulator import gl
from simulator.errors import AssetError, RenderError
from simulator.rotations import axis_angle_matrix

PART_KINDS = ("head", "neck", "body", "arm", "hand", "leg", "foot")
SIDES = ("left", "right")


def _kind_of_bone(label: str) -> str:
    name = label.rsplit(".", 1)[0]
    if name.startswith("neck"):
        return "neck"
    if name in ("head", "eye"):
        return "head"
    if name.startswith(("upperarm", "lowerarm")):
        return "arm"
    if name.startswith(("wrist", "finger", "metacarpal")):
        return "hand"
    if name.startswith(("upperleg", "lowerleg")):
        return "leg"
    if name.startswith(("foot", "toe")):
        return "foot"
    return "body"  # root, pelvis, spine, clavicle, shoulder01


def _side_of_bone(label: str) -> int:
    return {"L": 0, "R": 1}.get(label.rsplit(".", 1)[-1], -1) if "." in label else -1


@dataclass
class Anatomy:
    """Per-vertex / per-face labels of one body model.

    vertex_bone (V,) dominant bone index into bone_labels; vertex_kind (V,) index into
    PART_KINDS; vertex_side (V,) 0 left, 1 right, -1 none; face_kind, face_side (F,);
    face_instance (F,) index into `instances` ((kind, side) pairs, 11 per person)."""

    bone_labels: list[str]
    vertex_bone: np.ndarray
    vertex_kind: np.ndarray
    vertex_side: np.ndarray
    face_kind: np.ndarray
    face_side: np.ndarray
    face_instance: np.ndarray
    instances: list[tuple[str, int]]

    def bone_vertices(self, prefix: str, side: int | None = None) -> np.ndarray:
        """(V,) bool: vertices whose dominant bone name starts with `prefix` (and side)."""
        ok = np.array([b.startswith(prefix) and (side is None or _side_of_bone(b) == side) for b in self.bone_labels])
        return ok[self.vertex_bone]


@functools.lru_cache(maxsize=2)
def anatomy(body) -> Anatomy:
    """Anatomy of a body model that exposes its skeleton's skinning weights (anny)."""
    model = getattr(body, "model", None)
    labels = getattr(body, "bone_labels", None)
    if model is None or labels is None or not hasattr(model, "vertex_bone_weights"):
        raise AssetError(
            f"anomaly generation needs per-bone skinning weights, which the {getattr(body, 'name', '?')!r} "
            "body model does not expose; use the anny body model"
        )
    w = model.vertex_bone_weights.double().cpu().numpy()
    idx = model.vertex_bone_indices.cpu().numpy()
    V = len(w)
    acc = np.zeros((V, len(labels)))
    np.add.at(acc, (np.arange(V)[:, None].repeat(w.shape[1], 1), idx), w)
    vb = acc.argmax(1)
    bone_kind = np.array([PART_KINDS.index(_kind_of_bone(b)) for b in labels])
    bone_side = np.array([_side_of_bone(b) for b in labels])
    vk, vs = bone_kind[vb], bone_side[vb]
    faces = np.asarray(body.faces)
    fk = _majority(vk[faces])
    fs = _majority(vs[faces])
    instances: list[tuple[str, int]] = []
    for k in PART_KINDS:
        if k in ("head", "neck", "body"):
            instances.append((k, -1))
        else:
            instances += [(k, 0), (k, 1)]
    lookup = {inst: i for i, inst in enumerate(instances)}
    fi = np.array([lookup.get((PART_KINDS[k], s if PART_KINDS[k] not in ("head", "neck", "body") else -1), lookup[("body", -1)])
                   for k, s in zip(fk, fs)])
    return Anatomy(list(labels), vb, vk, vs, fk, fs, fi, instances)


def _majority(x: np.ndarray) -> np.ndarray:
    """(F, 3) -> (F,) the value at least two corners share (else the first corner's)."""
    return np.where((x[:, 1] == x[:, 2]) & (x[:, 0] != x[:, 1]), x[:, 1], x[:, 0])


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------


@dataclass
class Instance:
    """One labelled part instance: kind in PART_KINDS (or "figure"), side (-1 none),
    abnormal flag and the operation that made it so."""

    kind: str
    side: int = -1
    abnormal: bool = False
    op: str | None = None


@dataclass
class Figure:
    """A triangle mesh in world coordinates with part-instance labels.

    vertices (V, 3) float64 metres; faces (F, 3) int64; face_instance (F,) index into
    `instances`; joints: name -> (3,) position; skin: (3,) RGB albedo; ops: the operations
    applied, in order (for the dataset record)."""

    vertices: np.ndarray
    faces: np.ndarray
    face_instance: np.ndarray
    instances: list[Instance]
    joints: dict[str, np.ndarray]
    skin: np.ndarray = field(default_factory=lambda: np.array([0.8, 0.6, 0.5]))
    ops: list[dict] = field(default_factory=list)
    vertex_kind: np.ndarray | None = None
    vertex_side: np.ndarray | None = None
    vertex_bone: np.ndarray | None = None
    bone_labels: list[str] = field(default_factory=list)

    @classmethod
    def from_body(cls, anat: Anatomy, faces: np.ndarray, vertices: np.ndarray, joints: dict, skin) -> "Figure":
        return cls(
            vertices=np.asarray(vertices, dtype=np.float64).copy(),
            faces=np.asarray(faces, dtype=np.int64).copy(),
            face_instance=anat.face_instance.copy(),
            instances=[Instance(k, s) for k, s in anat.instances],
            joints={k: np.asarray(v, dtype=np.float64) for k, v in joints.items()},
            skin=np.asarray(skin, dtype=np.float64),
            vertex_kind=anat.vertex_kind.copy(),
            vertex_side=anat.vertex_side.copy(),
            vertex_bone=anat.vertex_bone.copy(),
            bone_labels=list(anat.bone_labels),
        )

    # ---- selections ---------------------------------------------------------------------
    def instance_index(self, kind: str, side: int = -1) -> int:
        for i, inst in enumerate(self.instances):
            if inst.kind == kind and inst.side == side and inst.op is None:
                return i
        raise KeyError((kind, side))

    def vertices_of(self, kinds, side: int | None = None) -> np.ndarray:
        """(V,) bool: vertices of the original mesh with these kinds (and side)."""
        kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        ok = np.isin(self.vertex_kind, [PART_KINDS.index(k) for k in kinds])
        if side is not None:
            ok &= self.vertex_side == side
        return ok

    def bone_vertices(self, prefix: str, side: int | None = None) -> np.ndarray:
        """(V,) bool: vertices whose dominant bone name starts with `prefix` (and side)."""
        ids = [i for i, b in enumerate(self.bone_labels)
               if b.startswith(prefix) and (side is None or _side_of_bone(b) == side)]
        return np.isin(self.vertex_bone, ids)

    def faces_of(self, kinds, side: int | None = None) -> np.ndarray:
        """(F,) bool: faces labelled with an original (unedited) instance of these kinds."""
        kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        ids = [i for i, inst in enumerate(self.instances)
               if inst.kind in kinds and inst.op is None and (side is None or inst.side == side)]
        return np.isin(self.face_instance, ids)

    def faces_with(self, vmask: np.ndarray) -> np.ndarray:
        """(F,) bool: faces whose corners all lie in vmask."""
        return vmask[self.faces].all(1)

    def mark(self, instance: int, op: str) -> None:
        self.instances[instance].abnormal = True
        self.instances[instance].op = op

    def attachment(self, vmask: np.ndarray) -> np.ndarray:
        """(3,) centroid of the vertices of vmask joined by an edge to a vertex outside it
        (where the part meets the rest of the body)."""
        f = self.faces
        e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
        cross = vmask[e[:, 0]] & ~vmask[e[:, 1]]
        ring = np.unique(e[cross, 0])
        if len(ring) == 0:
            return self.vertices[vmask].mean(0)
        return self.vertices[ring].mean(0)


# --------------------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------------------


def stretch(fig: Figure, vmask: np.ndarray, a: np.ndarray, b: np.ndarray, factor: float) -> None:
    d = b - a
    L = np.linalg.norm(d)
    d = d / L
    x = fig.vertices[vmask]
    t = np.clip((x - a) @ d / L, 0.0, 1.0)
    fig.vertices[vmask] = x + ((factor - 1.0) * L * t)[:, None] * d
    fig.ops.append({"op": "stretch", "factor": round(float(factor), 3)})


def twist(fig: Figure, vmask: np.ndarray, a: np.ndarray, b: np.ndarray, angle: float) -> None:
    d = b - a
    L = np.linalg.norm(d)
    d = d / L
    x = fig.vertices[vmask] - a
    t = np.clip(x @ d / L, 0.0, 1.0)
    out = np.empty_like(x)
    for i, (p, ti) in enumerate(zip(x, t)):
        out[i] = axis_angle_matrix(d, angle * ti) @ p
    fig.vertices[vmask] = out + a
    fig.ops.append({"op": "twist", "degrees": round(math.degrees(angle), 1)})


def rotate(fig: Figure, vmask: np.ndarray, pivot: np.ndarray, axis: np.ndarray, angle: float, name: str = "rotate") -> None:
    R = axis_angle_matrix(axis, angle)
    fig.vertices[vmask] = (fig.vertices[vmask] - pivot) @ R.T + pivot
    fig.ops.append({"op": name, "degrees": round(math.degrees(angle), 1)})


def scale(fig: Figure, vmask: np.ndarray, pivot: np.ndarray, s: float) -> None:
    fig.vertices[vmask] = (fig.vertices[vmask] - pivot) * s + pivot
    fig.ops.append({"op": "scale", "factor": round(float(s), 3)})


def duplicate(fig: Figure, fmask: np.ndarray, R: np.ndarray, pivot: np.ndarray, offset: np.ndarray,
              kind: str, side: int, op: str, instance: int | None = None) -> int:
    """Copy faces fmask: x' = pivot + R (x - pivot) + offset. The copy becomes a new
    abnormal instance (returned), or joins `instance` when given."""
    f = fig.faces[fmask]
    used, inv = np.unique(f.reshape(-1), return_inverse=True)
    x = (fig.vertices[used] - pivot) @ R.T + pivot + offset
    base = len(fig.vertices)
    fig.vertices = np.concatenate([fig.vertices, x])
    for name in ("vertex_kind", "vertex_side", "vertex_bone"):
        arr = getattr(fig, name)
        if arr is not None:
            setattr(fig, name, np.concatenate([arr, arr[used]]))
    fig.faces = np.concatenate([fig.faces, inv.reshape(-1, 3) + base])
    if instance is None:
        fig.instances.append(Instance(kind, side, True, op))
        inst = len(fig.instances) - 1
    else:
        inst = instance
    fig.face_instance = np.concatenate([fig.face_instance, np.full(len(f), inst)])
    fig.ops.append({"op": op, "kind": kind})
    return inst


def _boundary_loops(faces: np.ndarray) -> list[list[int]]:
    """Boundary loops (vertex ids) of a triangle set, following the faces' winding."""
    he = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    keys = set(map(tuple, he.tolist()))
    nxt: dict[int, list[int]] = {}
    for a, b in he.tolist():
        if (b, a) not in keys:
            nxt.setdefault(a, []).append(b)
    loops, seen = [], set()
    for start in list(nxt):
        if start in seen:
            continue
        loop, v = [], start
        while v not in seen and v in nxt:
            seen.add(v)
            loop.append(v)
            v = nxt[v][0]
        if len(loop) >= 3:
            loops.append(loop)
    return loops


def remove(fig: Figure, fmask: np.ndarray, kind: str, side: int, op: str, radius: float = 0.06,
           stump: bool = True) -> int | None:
    """Delete faces fmask and cap the holes they leave (a fan around each hole's centroid).

    stump=True: the caps plus the surface within `radius` of them become a new abnormal
    instance (a missing part's stump); returns it. stump=False: each cap joins the
    instance of the surface around its hole; returns None."""
    removed = fig.faces[fmask]
    keep = ~fmask
    fig.faces = fig.faces[keep]
    fig.face_instance = fig.face_instance[keep]
    # Holes: boundary loops of the kept mesh running along removed faces.
    touched = np.zeros(len(fig.vertices), dtype=bool)
    touched[removed.reshape(-1)] = True
    # An edge between two touched vertices has all its faces among the kept faces that
    # touch the removed region, so the search can stay there.
    near = touched[fig.faces].any(1)
    loops = [lp for lp in _boundary_loops(fig.faces[near]) if touched[lp].all()]
    inst = None
    if stump:
        fig.instances.append(Instance(kind, side, True, op))
        inst = len(fig.instances) - 1
    caps, cap_inst, centres = [], [], []
    for lp in loops:
        c = fig.vertices[lp].mean(0)
        ci = len(fig.vertices)
        fig.vertices = np.concatenate([fig.vertices, c[None]])
        for name in ("vertex_kind", "vertex_side", "vertex_bone"):
            arr = getattr(fig, name)
            if arr is not None:
                setattr(fig, name, np.concatenate([arr, arr[lp[:1]]]))
        # The loop runs along the kept faces' winding; the cap is wound the other way.
        caps += [[lp[(i + 1) % len(lp)], lp[i], ci] for i in range(len(lp))]
        if inst is None:
            around = fig.face_instance[np.isin(fig.faces, lp).any(1)]
            cap_inst.append(np.full(len(lp), np.bincount(around).argmax() if len(around) else 0))
        else:
            cap_inst.append(np.full(len(lp), inst))
        centres.append(c)
    if caps:
        fig.faces = np.concatenate([fig.faces, np.array(caps, dtype=np.int64)])
        fig.face_instance = np.concatenate([fig.face_instance, np.concatenate(cap_inst)])
    if inst is not None and centres and radius > 0:
        C = np.array(centres)
        fc = fig.vertices[fig.faces].mean(1)
        dist = np.min(np.linalg.norm(fc[:, None, :] - C[None], axis=2), axis=1)
        fig.face_instance[dist < radius] = inst
    fig.ops.append({"op": op, "kind": kind, "holes": len(loops)})
    return inst


def move(fig: Figure, fmask: np.ndarray, R: np.ndarray, pivot: np.ndarray, offset: np.ndarray,
         kind: str, side: int, op: str) -> int:
    """Misplace a part: a transformed copy replaces it (the abnormal instance returned);
    the original is removed and its holes capped as part of the surface around them."""
    inst = duplicate(fig, fmask, R, pivot, offset, kind, side, op)
    fmask = np.concatenate([fmask, np.zeros(len(fig.faces) - len(fmask), dtype=bool)])
    remove(fig, fmask, kind, side, op, stump=False)
    return inst


# --------------------------------------------------------------------------------------
# Rendering of figures
# --------------------------------------------------------------------------------------


def vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    tri = v[f]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    vn = np.zeros_like(v)
    for k in range(3):
        for c in range(3):
            vn[:, c] += np.bincount(f[:, k], weights=fn[:, c], minlength=len(v))
    return (vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)).astype(np.float32)


@dataclass
class CompositeFrame:
    """rgb (H, W, 3) uint8; instance (H, W) int32 global instance id (-1 background);
    figure (H, W) int32 figure index (-1 background); K (3, 3); extrinsics (4, 4)
    world -> OpenCV camera; camera_pose (4, 4) OpenGL camera -> world; light_dir (3,)
    unit vector towards the key light (world)."""

    rgb: np.ndarray
    instance: np.ndarray
    figure: np.ndarray
    K: np.ndarray
    extrinsics: np.ndarray
    camera_pose: np.ndarray | None = None
    light_dir: np.ndarray | None = None


def instance_offsets(figures: list[Figure]) -> list[int]:
    """Global instance id (CompositeFrame.instance) of each figure's instance 0: the ids
    run on across the figures of a frame."""
    return [int(x) for x in np.cumsum([0] + [len(f.instances) for f in figures])[:-1]]


class CompositeRenderer:
    """Renders lists of `Figure`s: a lit colour pass (4x MSAA) and an exact face-id pass
    (simulator.iuv) that labels every pixel with its part instance. One per process."""

    def __init__(self, gl_backend: str = "auto") -> None:
        from simulator.gl import select_backend

        self.backend = select_backend(gl_backend)
        import pyrender

        self._pyrender = pyrender
        self.scene = pyrender.Scene(bg_color=[0.0, 0.0, 0.0, 0.0], ambient_light=[0.3, 0.3, 0.3])
        self._light = self.scene.add(pyrender.DirectionalLight(color=np.ones(3), intensity=3.0), pose=np.eye(4))
        self._renderer = None
        self._size = None

    def _offscreen(self, W: int, H: int):
        if self._renderer is None:
            try:
                self._renderer = self._pyrender.OffscreenRenderer(W, H)
            except Exception as e:  # the platform's own error types vary
                raise RenderError(f"could not create a headless OpenGL context with {self.backend} ({e})") from None
            from simulator.face_ids import install_face_id_shader

            install_face_id_shader(self._renderer)
        elif self._size != (W, H):
            self._renderer.viewport_width, self._renderer.viewport_height = W, H
        self._size = (W, H)
        return self._renderer

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.delete()
            self._renderer = None

    def render(self, figures: list[Figure], camera, light, background, target: np.ndarray,
               background_dir: str | None = None) -> CompositeFrame:
        """camera: simulator.params.CameraParams (looking at `target`, world metres);
        light: LightParams; background: BackgroundParams."""
        from simulator import appearance
        from simulator import camera as cam_math
        from simulator.face_ids import decode_face_ids, encode_face_colors

        pyrender = self._pyrender
        W, H = int(camera.width), int(camera.height)
        cam_pose = cam_math.camera_to_world_gl(camera, target)
        K = cam_math.intrinsics(camera)
        extr = cam_math.world_to_camera_cv(cam_pose)
        nodes = []
        inst_offset = []
        tris, inst_of_face, fig_of_face = [], [], []
        off = 0
        for i, fig in enumerate(figures):
            v = fig.vertices.astype(np.float32)
            mat = pyrender.MetallicRoughnessMaterial(baseColorFactor=[*fig.skin, 1.0], metallicFactor=0.0,
                                                     roughnessFactor=0.85)
            prim = pyrender.Primitive(positions=v, normals=vertex_normals(fig.vertices, fig.faces),
                                      indices=fig.faces.astype(np.uint32), material=mat)
            nodes.append(self.scene.add(pyrender.Mesh([prim])))
            tris.append(v[fig.faces])
            inst_of_face.append(fig.face_instance + off)
            fig_of_face.append(np.full(len(fig.faces), i))
            inst_offset.append(off)
            off += len(fig.instances)
        tri = np.concatenate(tris)
        fid_prim = pyrender.Primitive(positions=tri.reshape(-1, 3), color_0=encode_face_colors(len(tri)),
                                      indices=np.arange(3 * len(tri), dtype=np.uint32).reshape(-1, 3))
        fid_node = self.scene.add(pyrender.Mesh([fid_prim]))
        cam_node = self.scene.add(
            pyrender.IntrinsicsCamera(K[0, 0], K[1, 1], K[0, 2], K[1, 2], znear=0.05, zfar=camera.distance + 20.0),
            pose=cam_pose,
        )
        az, el = camera.azimuth + light.azimuth, light.elevation
        ldir = np.array([math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el)])
        self.scene.set_pose(self._light, cam_math.look_at_pose(target + 3.0 * ldir, target))
        self._light.light.intensity = float(light.intensity)
        self.scene.ambient_light = np.full(3, float(light.ambient))
        try:
            r = self._offscreen(W, H)
            fid_node.mesh.is_visible = False
            color, _ = r.render(self.scene, flags=pyrender.RenderFlags.RGBA)
            fid_node.mesh.is_visible = True
            for n in nodes:
                n.mesh.is_visible = False
            seg, _ = r.render(self.scene, flags=pyrender.RenderFlags.SEG, seg_node_map={fid_node: (0, 0, 0)})
        finally:
            for n in (*nodes, fid_node, cam_node):
                self.scene.remove_node(n)
        fid = decode_face_ids(seg)
        inst_lut = np.concatenate([[-1], np.concatenate(inst_of_face)]).astype(np.int32)
        fig_lut = np.concatenate([[-1], np.concatenate(fig_of_face)]).astype(np.int32)
        bg = appearance.background_image(background, W, H, background_dir)
        alpha = color[..., 3:4].astype(np.float32) / 255.0
        rgb = color[..., :3].astype(np.float32) / 255.0 * alpha + bg * (1.0 - alpha)
        return CompositeFrame(
            rgb=np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8),
            instance=inst_lut[fid],
            figure=fig_lut[fid],
            K=K,
            extrinsics=extr,
            camera_pose=cam_pose,
            light_dir=ldir,
        )


_COMPOSITE: dict[str, CompositeRenderer] = {}


def get_composite_renderer(gl_backend: str = "auto") -> CompositeRenderer:
    """One per process and backend, kept until exit: pyrender's EGL platform terminates the
    process-wide EGL display when a context is deleted, which would break every other
    renderer in the process (and a garbage-collected renderer frees GL objects in whatever
    context is current)."""
    if gl_backend not in _COMPOSITE:
        _COMPOSITE[gl_backend] = CompositeRenderer(gl_backend)
    return _COMPOSITE[gl_backend]


gl.close_at_exit(_COMPOSITE)

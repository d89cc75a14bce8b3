"""Motion-capture readers and source-skeleton forward kinematics (offline; numpy).

Two sources (see ``<repo>/../shared/mocap/README.md``):
    - CMU ASF/AMC (Y up, inches / 0.45, degrees), rest pose a T-pose with the legs 20 degrees apart;
    - DeepMimic humanoid3d clips (JSON, Y up, metres, local quaternions), rest pose standing, arms down.

Every clip becomes a `SourceClip` in the body model's world convention (metres, +Z up, the
subject faces -Y, its left is +X): landmark positions (T, 3) and segment rotations (T, 3, 3)
measured from the anatomical neutral position (standing, arms at the sides, feet flat), which
is what the retargeting fits the anny angles to.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simulator.prior import tilt_from_up

CMU_UNIT_M = 0.0254 / 0.45  # ASF ":units length 0.45": lengths are inches / 0.45

# Source axes -> body-model axes (rows: body x = left, body y = back, body z = up).
_CMU_TO_BODY = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # CMU: +X left, +Y up, faces +Z
_DM_TO_BODY = np.array([[0, 0, -1.0], [-1.0, 0, 0], [0, 1.0, 0]])  # DeepMimic: -Z left, +Y up, faces +X


@dataclass
class SourceClip:
    """One motion in the body model's world frame (metres, +Z up, faces -Y, left +X).

    positions: {landmark: (T, 3)}; rotations: {segment: (T, 3, 3)} from the anatomical neutral;
    root: (T, 3, 3) pelvis rotation from neutral. Landmarks and segments a source lacks are absent."""

    clip_id: str
    source: str
    fps: float
    positions: dict[str, np.ndarray]
    rotations: dict[str, np.ndarray]
    root: np.ndarray
    leg_length: float  # metres, hip -> knee -> ankle of the source skeleton
    description: str = ""
    bone_lengths: dict[str, float] = field(default_factory=dict)
    frame_step: int = 1  # stored frame k is source frame k * frame_step

    @property
    def n_frames(self) -> int:
        return len(self.root)

    def subsample(self, step: int) -> "SourceClip":
        s = slice(None, None, step)
        return SourceClip(
            self.clip_id, self.source, self.fps / step,
            {k: v[s] for k, v in self.positions.items()}, {k: v[s] for k, v in self.rotations.items()},
            self.root[s], self.leg_length, self.description, self.bone_lengths, self.frame_step * step,
        )


def _euler_xyz(deg: np.ndarray) -> np.ndarray:
    """(..., 3) degrees -> (..., 3, 3) R = Rz Ry Rx (ASF 'XYZ' order: x applied first)."""
    a = np.deg2rad(deg)
    cx, cy, cz = np.cos(a[..., 0]), np.cos(a[..., 1]), np.cos(a[..., 2])
    sx, sy, sz = np.sin(a[..., 0]), np.sin(a[..., 1]), np.sin(a[..., 2])
    one, zero = np.ones_like(cx), np.zeros_like(cx)
    Rx = np.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1).reshape(*cx.shape, 3, 3)
    Ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(*cx.shape, 3, 3)
    Rz = np.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1).reshape(*cx.shape, 3, 3)
    return Rz @ Ry @ Rx


# ---------------------------------------------------------------------------------------
# CMU ASF / AMC
# ---------------------------------------------------------------------------------------


def parse_asf(path: Path) -> dict:
    """-> {"bones": {name: {direction, length, axis (deg), dof [..]}}, "children": {name: [...]}}."""
    text = Path(path).read_text()
    bones: dict[str, dict] = {"root": {"direction": np.zeros(3), "length": 0.0, "axis": np.zeros(3), "dof": []}}
    for block in re.findall(r"begin(.*?)end", text.split(":bonedata", 1)[1].split(":hierarchy", 1)[0], re.S):
        b: dict = {"dof": []}
        for line in block.strip().splitlines():
            tok = line.split()
            if not tok:
                continue
            if tok[0] == "name":
                name = tok[1]
            elif tok[0] == "direction":
                b["direction"] = np.array([float(t) for t in tok[1:4]])
            elif tok[0] == "length":
                b["length"] = float(tok[1])
            elif tok[0] == "axis":
                b["axis"] = np.array([float(t) for t in tok[1:4]])
            elif tok[0] == "dof":
                b["dof"] = tok[1:]
        bones[name] = b
    children: dict[str, list[str]] = {}
    hier = text.split(":hierarchy", 1)[1]
    for line in re.search(r"begin(.*?)end", hier, re.S).group(1).strip().splitlines():
        tok = line.split()
        if tok:
            children[tok[0]] = tok[1:]
    return {"bones": bones, "children": children}


def parse_amc(path: Path) -> dict[str, np.ndarray]:
    """-> {bone: (T, n_dof) values as written (root: TX TY TZ RX RY RZ)}."""
    frames: list[dict[str, list[float]]] = []
    for line in Path(path).read_text().splitlines():
        if not line or line[0] in "#:":
            continue
        tok = line.split()
        if len(tok) == 1 and tok[0].isdigit():
            frames.append({})
        elif frames:
            frames[-1][tok[0]] = [float(t) for t in tok[1:]]
    return {k: np.array([f[k] for f in frames]) for k in frames[0]}


def cmu_fk(asf: dict, amc: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """-> (bone tail positions {bone: (T, 3)} metres, bone world rotations from rest {bone: (T, 3, 3)}), CMU axes."""
    bones, children = asf["bones"], asf["children"]
    root = amc["root"]
    T = len(root)
    pos = {"root": root[:, :3] * CMU_UNIT_M}
    rot = {"root": _euler_xyz(root[:, 3:6])}
    stack = list(children.get("root", []))
    parent = {c: "root" for c in stack}
    while stack:
        name = stack.pop()
        b = bones[name]
        C = _euler_xyz(b["axis"])
        ang = np.zeros((T, 3))
        if name in amc:
            for j, d in enumerate(b["dof"]):
                ang[:, "xyz".index(d[1])] = amc[name][:, j]
        M = C @ _euler_xyz(ang) @ C.T
        R = rot[parent[name]] @ M
        rot[name] = R
        pos[name] = pos[parent[name]] + b["length"] * CMU_UNIT_M * (R @ b["direction"])
        for c in children.get(name, []):
            parent[c] = name
            stack.append(c)
    return pos, rot


def _to_body(M: np.ndarray, vecs: dict[str, np.ndarray], rots: dict[str, np.ndarray]):
    return {k: v @ M.T for k, v in vecs.items()}, {k: M @ r @ M.T for k, r in rots.items()}


def load_cmu_clip(asf: dict, amc_path: Path, description: str = "") -> SourceClip:
    pos, rot = cmu_fk(asf, parse_amc(amc_path))
    landmarks = {
        "root": "root", "neck_base": "thorax", "head": "upperneck",
        **{f"{s}_{k}": f"{s}{b}" for s in "lr" for k, b in (
            ("hip", "hipjoint"), ("knee", "femur"), ("ankle", "tibia"), ("toe", "foot"),
            ("shoulder", "clavicle"), ("elbow", "humerus"), ("wrist", "radius"), ("hand", "hand"),
        )},
    }
    positions = {k: pos[b] for k, b in landmarks.items()}
    # The rest skeleton stands with each leg 20 degrees out (femur direction); a foot's
    # rotation from neutral is its rotation from rest composed with that rest offset.
    leg_out = {s: _euler_xyz(np.array([0.0, 0.0, sgn * 20.0])) for s, sgn in (("l", 1.0), ("r", -1.0))}
    rotations = {
        "chest": rot["thorax"],
        "head": rot["head"],
        "l_foot": rot["lfoot"] @ leg_out["l"],
        "r_foot": rot["rfoot"] @ leg_out["r"],
    }
    positions, rotations = _to_body(_CMU_TO_BODY, positions, rotations)
    root = _CMU_TO_BODY @ rot["root"] @ _CMU_TO_BODY.T
    b = asf["bones"]
    lengths = {n: b[n]["length"] * CMU_UNIT_M for n in ("lfemur", "ltibia", "lhumerus", "lradius", "lowerback", "upperback", "thorax")}
    return SourceClip(
        clip_id=f"cmu_{Path(amc_path).stem}", source="cmu", fps=120.0, positions=positions,
        rotations=rotations, root=root, leg_length=lengths["lfemur"] + lengths["ltibia"],
        description=description, bone_lengths=lengths,
    )


# ---------------------------------------------------------------------------------------
# DeepMimic
# ---------------------------------------------------------------------------------------

_DM_LAYOUT = (  # (joint, number of values) after duration, root_pos, root_rot
    ("chest", 4), ("neck", 4), ("right_hip", 4), ("right_knee", 1), ("right_ankle", 4),
    ("right_shoulder", 4), ("right_elbow", 1), ("left_hip", 4), ("left_knee", 1), ("left_ankle", 4),
    ("left_shoulder", 4), ("left_elbow", 1),
)


def _quat_wxyz(q: np.ndarray) -> np.ndarray:
    """(T, 4) w, x, y, z -> (T, 3, 3)."""
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], -1).reshape(-1, 3, 3)


def _rz(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(-1, 3, 3)


def load_deepmimic_clip(character: dict, clip_path: Path) -> SourceClip:
    joints = {j["Name"]: j for j in character["Skeleton"]["Joints"]}
    frames = np.array(json.loads(Path(clip_path).read_text())["Frames"], dtype=np.float64)
    T = len(frames)
    local = {"root": _quat_wxyz(frames[:, 4:8])}
    col = 8
    for name, n in _DM_LAYOUT:
        v = frames[:, col:col + n]
        local[name] = _quat_wxyz(v) if n == 4 else _rz(v[:, 0])  # revolute joints turn about their z
        col += n
    pos = {"root": frames[:, 1:4]}
    rot = {"root": local["root"]}
    order = sorted((j for j in joints.values() if j["Parent"] >= 0), key=lambda j: j["ID"])
    names = {j["ID"]: j["Name"] for j in joints.values()}
    for j in order:
        p = names[j["Parent"]]
        attach = np.array([j["AttachX"], j["AttachY"], j["AttachZ"]])
        pos[j["Name"]] = pos[p] + rot[p] @ attach
        rot[j["Name"]] = rot[p] @ local[j["Name"]] if j["Name"] in local else rot[p]
    landmarks = {
        "root": "root", "neck_base": "neck",
        **{f"{s}_{k}": f"{side}_{k2}" for s, side in (("l", "left"), ("r", "right")) for k, k2 in (
            ("hip", "hip"), ("knee", "knee"), ("ankle", "ankle"), ("shoulder", "shoulder"),
            ("elbow", "elbow"), ("wrist", "wrist"),
        )},
    }
    positions = {k: pos[b] for k, b in landmarks.items()}
    rotations = {"chest": rot["chest"], "head": rot["neck"], "l_foot": rot["left_ankle"], "r_foot": rot["right_ankle"]}
    positions, rotations = _to_body(_DM_TO_BODY, positions, rotations)
    root = _DM_TO_BODY @ rot["root"] @ _DM_TO_BODY.T
    dur = float(np.median(frames[:-1, 0])) if T > 1 else 1 / 30
    a = lambda n: float(np.linalg.norm([joints[n]["AttachX"], joints[n]["AttachY"], joints[n]["AttachZ"]]))  # noqa: E731
    lengths = {"thigh": a("left_knee"), "shin": a("left_ankle"), "upper_arm": a("left_elbow"), "forearm": a("left_wrist")}
    return SourceClip(
        clip_id=f"deepmimic_{Path(clip_path).stem.replace('humanoid3d_', '')}", source="deepmimic",
        fps=1.0 / dur, positions=positions, rotations=rotations, root=root,
        leg_length=lengths["thigh"] + lengths["shin"], description=Path(clip_path).stem.replace("humanoid3d_", ""),
        bone_lengths=lengths,
    )


def load_all(mocap_dir: Path, workdir: Path, cmu_step: int = 4) -> list[SourceClip]:
    """Every clip, CMU subsampled 120 -> 30 fps (`cmu_step`). CMU is extracted into `workdir`."""
    import tarfile

    mocap_dir, workdir = Path(mocap_dir), Path(workdir)
    clips: list[SourceClip] = []
    if not (workdir / "cmu").is_dir():
        with tarfile.open(mocap_dir / "cmu.tar.xz") as tar:
            tar.extractall(workdir, filter="data")
    for subject_dir in sorted((workdir / "cmu").iterdir()):
        asf = parse_asf(next(subject_dir.glob("*.asf")))
        for amc in sorted(subject_dir.glob("*.amc")):
            clips.append(load_cmu_clip(asf, amc, CMU_SUBJECTS.get(subject_dir.name, "")).subsample(cmu_step))
    dm = mocap_dir / "deepmimic"
    character = json.loads((dm / "humanoid3d_character.json").read_text())
    for path in sorted(dm.glob("humanoid3d_*.txt")):
        clips.append(load_deepmimic_clip(character, path))
    return clips


CMU_SUBJECTS = {
    "01": "subject 1, playground (climbing, swinging, hanging, jumping)",
    "02": "subject 2, walking, running, jumping, everyday motions",
    "03": "subject 3, walking on uneven terrain, stepping over obstacles",
}


def body_up_tilt(root: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, 3, 3) pelvis rotations -> (root_pitch, root_roll) radians with the heading removed,
    and the world up direction in the body frame (T, 3).

    The body model's root is Rz(yaw) Rx(pitch) Ry(roll); world up seen from the body is
    u = (-cos p sin r, sin p, cos p cos r), so pitch covers [-pi, pi] and roll [-pi/2, pi/2]."""
    u = np.einsum("tji,j->ti", root, np.array([0.0, 0.0, 1.0]))
    return (*tilt_from_up(u), u)



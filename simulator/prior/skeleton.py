"""A light, batched, differentiable forward kinematics of the anny skeleton (offline; torch).

Only bone heads and bone rotations, no skinning: what retargeting needs to fit the 34
anatomical angles to a source skeleton many thousand times. Driven by the body model's
own angle -> bone-delta mapping (`AnnyBody.pose_deltas`), so it cannot drift from the
renderer's. In anny's 'local-ref' parameterisation a bone's world rotation relative to
its reference pose is G_c = G_parent D_c and its head is h_c = h_parent + G_parent (q_c - q_parent),
q being the heads of the reference skeleton (identity deltas).
"""

from __future__ import annotations

import numpy as np

# Landmarks (bone heads) the retargeting and the benchmarks use.
LANDMARK_BONES = {
    "root": "root",
    "l_hip": "upperleg01.L", "r_hip": "upperleg01.R",
    "l_knee": "lowerleg01.L", "r_knee": "lowerleg01.R",
    "l_ankle": "foot.L", "r_ankle": "foot.R",
    "l_toe": "toe1-1.L", "r_toe": "toe1-1.R",
    "neck_base": "neck01", "head": "head",
    "l_shoulder": "upperarm01.L", "r_shoulder": "upperarm01.R",
    "l_elbow": "lowerarm01.L", "r_elbow": "lowerarm01.R",
    "l_wrist": "wrist.L", "r_wrist": "wrist.R",
    "l_hand": "finger3-1.L", "r_hand": "finger3-1.R",
}
# Bones whose rotation the retargeting matches (trunk, head, feet).
ROTATION_BONES = {"chest": "spine01", "head": "head", "l_foot": "foot.L", "r_foot": "foot.R"}


class AnnySkeleton:
    """Forward kinematics of the anny skeleton for one body shape (default: all phenotypes 0.5).

    `forward(pose)`: pose (B, 34) torch tensor, radians, `simulator.joints.POSE_DOFS` order ->
    (heads {name: (B, 3)} metres, world frame with the root bone head at the origin,
    rotations {name: (B, 3, 3)} each bone's rotation from its anatomical-neutral orientation).
    """

    def __init__(self, body=None, shape: np.ndarray | None = None) -> None:
        import torch

        from simulator.body_model import get_body_model

        self.body = body if body is not None else get_body_model("anny")
        self.dtype = self.body._dtype  # the mapping's constants carry the body's dtype
        model = self.body.model
        n_phen = len(model.phenotype_labels)
        phen = np.full((1, n_phen), 0.5) if shape is None else np.atleast_2d(shape)[:, :n_phen]
        with torch.no_grad():
            rest = model(None, torch.as_tensor(phen, dtype=self.body._dtype))
        q = rest["bone_poses"][0, :, :3, 3].to(self.dtype)
        parents = list(model.bone_parents)
        labels = self.body.bone_labels
        index = {n: i for i, n in enumerate(labels)}
        wanted = {index[b] for b in list(LANDMARK_BONES.values()) + list(ROTATION_BONES.values())}
        keep: set[int] = set()
        for i in wanted:  # the chains from the root to every bone we read
            while i not in keep and i >= 0:
                keep.add(i)
                i = parents[i] if i != 0 else -1
        self.bones = sorted(keep, key=lambda i: self._depth(parents, i))
        self.parents = parents
        self.index = index
        self.q = q
        self._pose_zero = torch.zeros(1, 34, dtype=self.dtype)
        with torch.no_grad():
            _, G0 = self._fk(self._pose_zero)
        self._neutral_inv = {k: G0[k][0].T.clone() for k in G0}

    @staticmethod
    def _depth(parents, i) -> int:
        d = 0
        while i != 0:
            i, d = parents[i], d + 1
        return d

    def _fk(self, pose):
        import torch

        deltas = self.body.pose_deltas(pose)[:, :, :3, :3]
        B = pose.shape[0]
        G: dict[int, torch.Tensor] = {}
        H: dict[int, torch.Tensor] = {}
        for i in self.bones:
            if i == 0:
                G[0] = deltas[:, 0]
                H[0] = torch.zeros(B, 3, dtype=pose.dtype)
                continue
            p = self.parents[i]
            G[i] = G[p] @ deltas[:, i]
            H[i] = H[p] + G[p] @ (self.q[i] - self.q[p])
        heads = {k: H[self.index[b]] for k, b in LANDMARK_BONES.items()}
        rots = {k: G[self.index[b]] for k, b in ROTATION_BONES.items()}
        return heads, rots

    def forward(self, pose):
        heads, rots = self._fk(pose)
        return heads, {k: r @ self._neutral_inv[k] for k, r in rots.items()}

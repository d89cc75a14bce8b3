"""ONNX models through onnxruntime, described by a small YAML sidecar.

The sidecar is ``model.yaml`` beside ``model.onnx`` (or ``model.onnx.yaml``, or the file
given as ``onnx:model.onnx?config=my.yaml``). Every key but ``convention`` (or
``joint_names``) and one output has a default::

    convention: coco17            # or joint_names: [...] and joint_map: {label: name}
    frame: root_relative          # frame of joints3d: root_relative | camera
    max_batch: 16                 # 1 if the model has a fixed batch dimension
    input:
      name: image                 # default: the model's first input
      layout: NCHW                # NCHW | NHWC
      size: [256, 256]            # H, W; default: from the model's input shape
      crop: box                   # box: crop around the person box; full: whole image
      box_scale: 1.2              # crop side / box side
      scale: 0.00392156862745098  # multiply after uint8 -> float (1/255)
      mean: [0.0, 0.0, 0.0]       # then subtract mean, divide by std, per RGB channel
      std: [1.0, 1.0, 1.0]
      channels: RGB               # RGB | BGR
      intrinsics: null            # name of an optional (B, 3, 3) input fed the crop's K
    outputs:
      joints3d: {name: joints3d, units: m}      # units: m | mm
      joints2d: {name: joints2d, space: crop_px} # crop_px | crop_norm (0..1) | crop_ndc (-1..1) | image_px
      confidence: {name: conf}                  # optional
      vertices: {name: verts, units: m}         # optional
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from examiner.conventions import get_convention, user_convention
from examiner.targets.base import Prediction, TargetBatch, TargetError, TargetModel
from examiner.targets.preprocess import crop_and_resize, crop_intrinsics, crop_region, crop_to_image

_SPACES = ("crop_px", "crop_norm", "crop_ndc", "image_px")


def _load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise TargetError(f"ONNX sidecar {path} {what}; give the model's YAML file with ?config=PATH")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise TargetError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise TargetError(f"{path}: the ONNX sidecar must be a YAML mapping")
    return data


def find_sidecar(model_path: Path) -> Path:
    for cand in (model_path.with_suffix(".yaml"), model_path.with_suffix(".yml"), Path(str(model_path) + ".yaml")):
        if cand.is_file():
            return cand
    raise TargetError(
        f"no sidecar for {model_path.name}: write {model_path.with_suffix('.yaml').name} beside it "
        "(see docs/targets.md, 'ONNX models') or pass ?config=PATH"
    )


class OnnxTarget(TargetModel):
    """An ONNX model run by onnxruntime on the CPU."""

    def __init__(self, model_path: str | Path, config: dict[str, Any] | str | Path | None = None, threads: int = 0) -> None:
        model_path = Path(model_path)
        if not model_path.is_file():
            what = "is a folder, not a model file" if model_path.is_dir() else "not found"
            raise TargetError(f"ONNX model {model_path} {what}; check the path in onnx:PATH")
        if config is None:
            config = find_sidecar(model_path)
        if isinstance(config, (str, Path)):
            config = _load_yaml(Path(config))
        self.config = config
        self.name = model_path.stem
        try:
            import onnxruntime as ort
        except ImportError:
            raise TargetError("onnxruntime is not installed; pip install onnxruntime") from None
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(model_path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise TargetError(f"onnxruntime cannot load {model_path.name}: {str(e).splitlines()[0][:200]}") from None
        self._configure(config)

    def _configure(self, cfg: dict[str, Any]) -> None:
        if "joint_names" in cfg:
            self.convention = user_convention(cfg.get("convention", f"{self.name}-joints"), cfg["joint_names"], cfg.get("joint_map")).name
        elif "convention" in cfg:
            self.convention = get_convention(cfg["convention"]).name
        else:
            raise TargetError(f"ONNX sidecar for {self.name} needs 'convention' (e.g. coco17) or 'joint_names'")
        self.frame = cfg.get("frame", "root_relative")
        self.max_batch = int(cfg.get("max_batch", 16))
        inp = dict(cfg.get("input") or {})
        model_inputs = {i.name: i for i in self.session.get_inputs()}
        self.input_name = inp.get("name", self.session.get_inputs()[0].name)
        if self.input_name not in model_inputs:
            raise TargetError(f"ONNX model {self.name} has no input {self.input_name!r}; inputs: {sorted(model_inputs)}")
        self.layout = inp.get("layout", "NCHW")
        if self.layout not in ("NCHW", "NHWC"):
            raise TargetError(f"input.layout must be NCHW or NHWC, got {self.layout!r}")
        shape = model_inputs[self.input_name].shape
        if "size" in inp:
            self.size = (int(inp["size"][0]), int(inp["size"][1]))
        else:
            hw = shape[2:4] if self.layout == "NCHW" else shape[1:3]
            if not all(isinstance(v, int) for v in hw):
                raise TargetError(f"ONNX model {self.name} has a dynamic image size; set input.size: [H, W] in the sidecar")
            self.size = (int(hw[0]), int(hw[1]))
        if isinstance(shape[0], int) and shape[0] == 1:
            self.max_batch = 1
        self.crop = inp.get("crop", "box")
        if self.crop not in ("box", "full"):
            raise TargetError(f"input.crop must be box or full, got {self.crop!r}")
        self.box_scale = float(inp.get("box_scale", 1.2))
        self.pixel_scale = float(inp.get("scale", 1.0 / 255.0))
        self.mean = np.asarray(inp.get("mean", [0.0, 0.0, 0.0]), np.float32)
        self.std = np.asarray(inp.get("std", [1.0, 1.0, 1.0]), np.float32)
        self.bgr = str(inp.get("channels", "RGB")).upper() == "BGR"
        self.dtype = np.dtype(inp.get("dtype", "float32"))
        self.intrinsics_input = inp.get("intrinsics")
        if self.intrinsics_input and self.intrinsics_input not in model_inputs:
            raise TargetError(f"input.intrinsics names {self.intrinsics_input!r}, which the model does not have")
        outs = dict(cfg.get("outputs") or {})
        model_outputs = [o.name for o in self.session.get_outputs()]
        self.output_map: dict[str, dict[str, Any]] = {}
        for key, entry in outs.items():
            if key not in ("joints3d", "joints2d", "confidence", "vertices"):
                raise TargetError(f"unknown sidecar output {key!r}; valid: joints3d, joints2d, confidence, vertices")
            entry = {"name": entry} if isinstance(entry, str) else dict(entry)
            if entry.get("name", key) not in model_outputs:
                raise TargetError(f"sidecar output {key} names {entry.get('name', key)!r}; the model outputs {model_outputs}")
            entry.setdefault("name", key)
            if key == "joints2d" and entry.setdefault("space", "crop_px") not in _SPACES:
                raise TargetError(f"outputs.joints2d.space must be one of {_SPACES}")
            self.output_map[key] = entry
        if not {"joints3d", "joints2d"} & set(self.output_map):
            raise TargetError(f"ONNX sidecar for {self.name} must map outputs.joints3d and/or outputs.joints2d")
        self.outputs = frozenset(self.output_map)

    def _regions(self, batch: TargetBatch) -> np.ndarray:
        h, w = batch.image_size
        if self.crop == "full":
            return np.tile(np.array([0.0, 0.0, w, h]), (len(batch), 1))
        return np.stack([crop_region(b, self.size, self.box_scale) for b in batch.boxes])

    def preprocess(self, batch: TargetBatch) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """-> (onnx feeds, regions (B, 4) xyxy px)."""
        regions = self._regions(batch)
        crops = np.stack([crop_and_resize(img, r, self.size) for img, r in zip(batch.images, regions)])
        if self.bgr:
            crops = crops[..., ::-1]
        x = (crops * self.pixel_scale - self.mean) / self.std
        if self.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        feeds = {self.input_name: np.ascontiguousarray(x, dtype=self.dtype)}
        if self.intrinsics_input:
            feeds[self.intrinsics_input] = np.stack([crop_intrinsics(k, r, self.size) for k, r in zip(batch.K, regions)])
        return feeds, regions

    def predict(self, batch: TargetBatch) -> Prediction:
        feeds, regions = self.preprocess(batch)
        names = [e["name"] for e in self.output_map.values()]
        values = dict(zip(names, self.session.run(names, feeds)))
        out: dict[str, np.ndarray] = {}
        for key, entry in self.output_map.items():
            arr = np.asarray(values[entry["name"]], dtype=np.float64)
            if key in ("joints3d", "vertices") and entry.get("units", "m") == "mm":
                arr = arr / 1000.0
            if key == "joints2d":
                arr = self._to_image(arr, entry["space"], regions)
            out[key] = arr.astype(np.float32)
        return Prediction(
            convention=self.convention,
            joints3d=out.get("joints3d"),
            joints2d=out.get("joints2d"),
            frame=self.frame,
            vertices=out.get("vertices"),
            confidence=out.get("confidence"),
        )

    def _to_image(self, pts: np.ndarray, space: str, regions: np.ndarray) -> np.ndarray:
        if space == "image_px" or pts.ndim != 3:
            return pts
        h, w = self.size
        if space == "crop_norm":
            pts = pts * np.array([w, h])
        elif space == "crop_ndc":
            pts = (pts + 1.0) * 0.5 * np.array([w, h])
        return np.stack([crop_to_image(p, r, self.size) for p, r in zip(pts, regions)])


def make_onnx(body: str, options: dict[str, str]) -> OnnxTarget:
    config = options.pop("config", None)
    try:
        threads = int(options.pop("threads", "0"))
    except ValueError:
        raise TargetError("onnx option threads must be a whole number (0: onnxruntime's default)") from None
    if threads < 0:
        raise TargetError(f"onnx option threads must be 0 or more, got {threads}")
    if options:
        raise TargetError(f"unknown onnx option(s) {sorted(options)}; valid: config, threads")
    return OnnxTarget(body, config=config, threads=threads)

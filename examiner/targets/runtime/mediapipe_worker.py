"""MediaPipe BlazePose (full, model_complexity=1) as a PoseExaminer worker.

Runs inside the environment made by ``examiner targets install mediapipe`` (numpy<2):

    ENV/bin/python mediapipe_worker.py [--crop box|full] [--box-scale 1.25]

Outputs the 33 BlazePose landmarks: joints2d in pixels of the input image, joints3d the
world landmarks (metres, origin between the hips, x right, y down, z away from the
camera: the OpenCV camera axes), confidence the landmark visibility. A frame where the
detector finds nobody gets errors[i] = "no_detection".
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import pe_worker

NUM = 33


def square_crop(image: np.ndarray, box: np.ndarray, scale: float) -> tuple[np.ndarray, float, float]:
    """A square crop centred on the box, side = scale * longest box side, zero-padded where
    it leaves the image. Returns (crop, x0, y0): crop pixel (u, v) is image pixel (u+x0, v+y0)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = [float(v) for v in box]
    side = max(x2 - x1, y2 - y1, 8.0) * scale
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = int(round(side))
    crop = np.zeros((s, s, 3), dtype=np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + s, w), min(y0 + s, h)
    if sx1 > sx0 and sy1 > sy0:
        crop[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return crop, float(x0), float(y0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--crop", choices=("box", "full"), default="box")
    ap.add_argument("--box-scale", type=float, default=1.25)
    ap.add_argument("--model-complexity", type=int, default=1)
    ap.add_argument("--min-detection-confidence", type=float, default=0.5)
    args = ap.parse_args()
    if args.model_complexity != 1:
        print(
            f"model_complexity={args.model_complexity} downloads weights at run time; only 1 (full) is supported",
            file=sys.stderr,
        )
        sys.exit(2)

    def setup():
        import mediapipe as mp

        return mp.solutions.pose.Pose(
            static_image_mode=True,
            model_complexity=1,
            enable_segmentation=False,
            min_detection_confidence=args.min_detection_confidence,
        )

    def predict(pose, images, K, boxes):
        b = images.shape[0]
        j2 = np.full((b, NUM, 2), np.nan, np.float32)
        j3 = np.full((b, NUM, 3), np.nan, np.float32)
        conf = np.zeros((b, NUM), np.float32)
        errors = []
        for i in range(b):
            if args.crop == "box":
                img, x0, y0 = square_crop(images[i], boxes[i], args.box_scale)
            else:
                img, x0, y0 = np.ascontiguousarray(images[i]), 0.0, 0.0
            res = pose.process(img)
            if res.pose_landmarks is None or res.pose_world_landmarks is None:
                errors.append("no_detection")
                continue
            hh, ww = img.shape[:2]
            lm = res.pose_landmarks.landmark
            j2[i, :, 0] = [p.x * ww + x0 for p in lm]
            j2[i, :, 1] = [p.y * hh + y0 for p in lm]
            conf[i] = [p.visibility for p in lm]
            j3[i] = [(p.x, p.y, p.z) for p in res.pose_world_landmarks.landmark]
            errors.append("")
        return {"joints2d": j2, "joints3d": j3, "confidence": conf, "errors": np.array(errors, dtype=str)}

    pe_worker.serve(
        predict,
        convention="blazepose33",
        outputs=("joints2d", "joints3d", "confidence"),
        frame="root_relative",
        max_batch=32,
        name="mediapipe",
        setup=setup,
    )


if __name__ == "__main__":
    main()

"""One streaming pass over a video: everything keyframe selection and motion side information
need, without keeping the frames (memory ~1 kB per frame, whatever the resolution)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np

from semantic.keyframes import MODEL_THUMB, THUMB, detect_cuts
from semantic.video_io import VideoError, VideoInfo

MOTION_STRIDE = 2  # optical flow between frames this far apart
MOTION_WIDTH = 160  # the side information's motion: flow on a grey copy this wide, scaled back to full size


@dataclass
class Analysis:
    info: VideoInfo
    change: np.ndarray  # (T,) content change from the previous frame, 0..1
    model_thumbs: np.ndarray  # (T, MODEL_THUMB, MODEL_THUMB) float32 grey in [0, 1]
    motion: np.ndarray  # (T,) optical-flow magnitude, pixels per frame at full resolution
    pan: np.ndarray  # (T, 2) dominant (median) flow dx, dy, pixels per frame at full resolution

    @property
    def cuts(self) -> list[int]:
        return detect_cuts(self.change)

    def interval_motion(self, keyframes: list[int]) -> list[float]:
        """Mean motion (px/frame) over each keyframe interval."""
        pairs = zip(keyframes[:-1], keyframes[1:], strict=True)
        return [float(self.motion[a : max(b, a + 1)].mean()) for a, b in pairs]

    def interval_pan(self, keyframes: list[int]) -> list[tuple[float, float]]:
        """Mean dominant motion (dx, dy px/frame; x right, y down) over each keyframe interval."""
        pairs = zip(keyframes[:-1], keyframes[1:], strict=True)
        return [tuple(float(v) for v in self.pan[a : max(b, a + 1)].mean(axis=0)) for a, b in pairs]


def analyse(frames: Iterable[np.ndarray], fps: Fraction) -> Analysis:
    change, thumbs, motion, pan = [], [], [], []
    previous_thumb = None
    greys: list[np.ndarray] = []
    width = height = 0
    for frame in frames:
        height, width = frame.shape[:2]
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        thumb = cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        change.append(0.0 if previous_thumb is None else float(np.abs(thumb - previous_thumb).mean()))
        previous_thumb = thumb
        thumbs.append(cv2.resize(grey, (MODEL_THUMB, MODEL_THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)
                      / 255.0)
        flow_w = min(MOTION_WIDTH, width)
        small = cv2.resize(grey, (flow_w, max(8, round(height * flow_w / width))), interpolation=cv2.INTER_AREA)
        greys = (greys + [small])[-(MOTION_STRIDE + 1):]
        motion.append(0.0)
        pan.append((0.0, 0.0))
        t = len(motion) - 1
        if t >= MOTION_STRIDE and t % MOTION_STRIDE == 0:
            flow = cv2.calcOpticalFlowFarneback(greys[0], greys[-1], None, 0.5, 3, 15, 3, 5, 1.2, 0)
            scale = (width / flow_w) / MOTION_STRIDE
            per_frame = float(np.linalg.norm(flow, axis=2).mean()) * scale
            motion[t - MOTION_STRIDE + 1 : t + 1] = [per_frame] * MOTION_STRIDE
            # The median flow is what most of the picture does: the camera's pan and tilt.
            dominant = (float(np.median(flow[..., 0])) * scale, float(np.median(flow[..., 1])) * scale)
            pan[t - MOTION_STRIDE + 1 : t + 1] = [dominant] * MOTION_STRIDE
    if not thumbs:
        raise VideoError("video has no frames")
    return Analysis(VideoInfo(width, height, Fraction(fps), len(thumbs)), np.array(change), np.stack(thumbs),
                    np.array(motion), np.array(pan, dtype=float).reshape(-1, 2))

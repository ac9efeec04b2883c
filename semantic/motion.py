"""Motion side information: mean optical-flow magnitude (pixels per frame) per keyframe interval."""

from __future__ import annotations

import cv2
import numpy as np

FLOW_WIDTH = 160  # flow on a small grey copy; magnitudes are scaled back to full resolution


def _small_grey(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    width = min(FLOW_WIDTH, w)
    height = max(8, round(h * width / w))
    return cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (width, height), interpolation=cv2.INTER_AREA)


def interval_motion(frames: np.ndarray, keyframes: list[int], stride: int = 2) -> list[float]:
    """Per interval [k_i, k_{i+1}]: mean Farneback flow magnitude between frames ``stride`` apart."""
    w = frames.shape[2]
    scale = w / min(FLOW_WIDTH, w)
    out = []
    for a, b in zip(keyframes[:-1], keyframes[1:], strict=True):
        mags = []
        for t in range(a, b, stride):
            u = min(t + stride, b)
            flow = cv2.calcOpticalFlowFarneback(
                _small_grey(frames[t]), _small_grey(frames[u]), None, 0.5, 3, 15, 3, 5, 1.2, 0
            )
            mags.append(float(np.linalg.norm(flow, axis=2).mean()) * scale / (u - t))
        out.append(float(np.mean(mags)) if mags else 0.0)
    return out

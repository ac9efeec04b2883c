"""Descriptions of keyframe intervals, by backend name (CompressAI-style registry):

- ``none``: no text is sent.
- ``tags`` (CPU, no weights): a few words from image statistics and the motion side
  information ("bright green scene, camera pans left, fast motion"); deterministic.
- ``mllm:<HF id or local path>``: a vision-language model captions the interval from its two
  keyframes (greedy decoding, so the same input gives the same words).

The text travels compressed in one TEXT segment per interval (``semantic.text_codec``); the
generative decoder uses it as its prompt, ``lgvsc inspect`` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from semantic.vlm import VisionLanguageModel

CAPTION_REQUEST = "Describe what happens from the first to the second image in one short sentence."
MAX_WORDS = 24


class DescribeError(ValueError):
    pass


@dataclass(frozen=True)
class IntervalView:
    """What a describer sees of one keyframe interval."""

    first: np.ndarray  # RGB uint8 keyframe opening the interval
    last: np.ndarray  # RGB uint8 keyframe closing it
    motion: float  # mean optical-flow magnitude, px/frame
    pan: tuple[float, float]  # dominant motion dx, dy, px/frame (x right, y down)


class Describer(Protocol):
    name: str

    def describe(self, intervals: list[IntervalView]) -> list[str]: ...


def motion_phrase(motion: float, pan: tuple[float, float] | None = None) -> str:
    """Words for the motion side information (shared by ``tags`` and the generative prompt)."""
    speed = "static" if motion < 0.3 else "slow motion" if motion < 1.5 else "moderate motion" if motion < 5 else \
        "fast motion"
    if pan is None or motion < 0.3:
        return speed
    dx, dy = pan
    if max(abs(dx), abs(dy)) < max(0.5, 0.3 * motion):
        return speed  # the picture moves but not as a whole: objects, not the camera
    # Content moving left means the camera turns right.
    if abs(dx) >= abs(dy):
        camera = "camera pans right" if dx < 0 else "camera pans left"
    else:
        camera = "camera tilts down" if dy < 0 else "camera tilts up"
    return f"{camera}, {speed}"


COLOURS = {"red": 0, "orange": 15, "yellow": 30, "green": 60, "cyan": 90, "blue": 120, "purple": 145, "pink": 165}


def _colour_words(image: np.ndarray) -> str:
    hsv = cv2.cvtColor(cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2HSV)
    value = float(hsv[..., 2].mean()) / 255
    light = "dark" if value < 0.3 else "bright" if value > 0.65 else "dim" if value < 0.45 else ""
    saturated = hsv[..., 1] > 60
    if saturated.mean() < 0.2:
        colour = "grey"
    else:
        hue = np.median(hsv[..., 0][saturated])
        colour = min(COLOURS, key=lambda name: min(abs(hue - COLOURS[name]), 180 - abs(hue - COLOURS[name])))
    return " ".join(w for w in (light, colour, "scene") if w)


class TagDescriber:
    name = "tags"

    def describe(self, intervals: list[IntervalView]) -> list[str]:
        return [f"{_colour_words(v.first)}, {motion_phrase(v.motion, v.pan)}" for v in intervals]


class MllmDescriber:
    """Captions from a vision-language model (AutoProcessor + AutoModelForImageTextToText)."""

    def __init__(self, model_id: str, device: str | None = None, max_new_tokens: int = 32) -> None:
        self.name = f"mllm:{model_id}"
        self.vlm = VisionLanguageModel.load(model_id, device)
        self.max_new_tokens = max_new_tokens

    def describe(self, intervals: list[IntervalView]) -> list[str]:
        import torch

        prompt = self.vlm.prompt(2, CAPTION_REQUEST)
        tokenizer = self.vlm.processor.tokenizer
        captions = []
        for view in intervals:
            inputs = self.vlm.inputs([view.first, view.last], [prompt])
            with torch.no_grad():
                out = self.vlm.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                              pad_token_id=tokenizer.pad_token_id)
            text = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
            captions.append(" ".join(text.split()[:MAX_WORDS]))
        return captions


def get_describer(name: str) -> Describer | None:
    """The backend for ``name``; None for ``none``."""
    if name == "none":
        return None
    if name == "tags":
        return TagDescriber()
    if name.startswith("mllm:") and len(name) > 5:
        return MllmDescriber(name[5:])
    raise DescribeError(f"unknown description backend {name!r}; known: none, tags, mllm:<HF id or local path>")

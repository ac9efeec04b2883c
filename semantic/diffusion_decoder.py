"""``diffusers:<HF id or local path>``: regenerate each keyframe interval with a video diffusion
pipeline loaded by ``DiffusionPipeline.from_pretrained``.

Any image-to-video pipeline works (its ``__call__`` takes ``image``); one that also takes
``last_image`` (first-last-frame-to-video, e.g. Wan FLF2V / Wan 2.2 I2V) is conditioned on both
keyframes of the interval, as LGVSC's decoder is. The prompt is the interval's description plus
the motion side information in words; the model sees the keyframes at a resolution its VAE and
patching accept (long side capped by ``max_side``).

Any length: an interval longer than the model's clip (``max_frames``) is generated as a chain of
clips, each starting from the last frame of the one before, the final one ending on the next
keyframe. Each clip is resampled in time to exactly the frames it stands for and resized to the
stream's size, then streamed out, so memory is one clip, whatever the video's length. The
keyframes themselves are the received images (the model's copies of them are dropped).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from semantic.describe import motion_phrase


class DiffusionDecoderError(ValueError):
    pass


@dataclass(frozen=True)
class DiffusionSettings:
    steps: int = 30
    guidance: float = 5.0
    max_side: int = 832  # generation size: long side at most this, rounded to the model's granularity
    max_frames: int = 81  # frames per generated clip (what the model was trained on)
    seed: int = 0
    negative_prompt: str = "blurry, distorted, flickering, low quality, still picture"
    trust_remote_code: bool = False  # a repository's own pipeline code runs only when the user asks


def _round_down(value: int, multiple: int) -> int:
    return max(multiple, value // multiple * multiple)


class DiffusionTween:
    """Frames strictly between two keyframes, generated (a ``Tween`` for the decoder's renderer)."""

    def __init__(self, model_id: str, settings: DiffusionSettings | None = None, device: str | None = None) -> None:
        import torch
        from diffusers import DiffusionPipeline

        self.name = f"diffusers:{model_id}"
        self.settings = settings or DiffusionSettings()
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        try:
            pipe = DiffusionPipeline.from_pretrained(model_id, dtype=dtype,
                                                     trust_remote_code=self.settings.trust_remote_code)
        except (OSError, ValueError) as exc:
            raise DiffusionDecoderError(f"cannot load diffusion pipeline {model_id!r}: {exc}") from None
        self.params = set(inspect.signature(pipe.__call__).parameters)
        if "image" not in self.params:
            raise DiffusionDecoderError(f"{model_id}: {type(pipe).__name__} is not an image-to-video pipeline")
        self.pipe = pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.first_last = "last_image" in self.params
        self.temporal = int(getattr(pipe, "vae_scale_factor_temporal", 1) or 1)
        patch = getattr(getattr(getattr(pipe, "transformer", None), "config", None), "patch_size", None) or (1, 1, 1)
        patch = patch if isinstance(patch, (tuple, list)) else (1, patch, patch)
        self.spatial = int(getattr(pipe, "vae_scale_factor_spatial", getattr(pipe, "vae_scale_factor", 8))) * int(
            patch[-1])

    # -- geometry ----------------------------------------------------------------------------
    def generation_size(self, width: int, height: int) -> tuple[int, int]:
        scale = min(1.0, self.settings.max_side / max(width, height))
        return (_round_down(round(width * scale), self.spatial), _round_down(round(height * scale), self.spatial))

    def clip_frames(self, wanted: int) -> int:
        """Frames to ask for: at least ``wanted`` where the VAE allows (k * temporal + 1)."""
        k = -(-(max(wanted, 2) - 1) // self.temporal)
        return min(k * self.temporal + 1, self.max_clip)

    @property
    def max_clip(self) -> int:
        return (self.settings.max_frames - 1) // self.temporal * self.temporal + 1

    # -- generation --------------------------------------------------------------------------
    def _generate(self, first: np.ndarray, last: np.ndarray | None, frames: int, prompt: str,
                  size: tuple[int, int], seed: int) -> np.ndarray:
        import torch

        w, h = size
        kwargs = {"image": Image.fromarray(cv2.resize(first, size, interpolation=cv2.INTER_AREA)), "prompt": prompt,
                  "negative_prompt": self.settings.negative_prompt, "height": h, "width": w,
                  "num_frames": self.clip_frames(frames), "num_inference_steps": self.settings.steps,
                  "guidance_scale": self.settings.guidance, "output_type": "np",
                  "generator": torch.Generator(device="cpu").manual_seed(seed)}
        if last is not None and self.first_last:
            kwargs["last_image"] = Image.fromarray(cv2.resize(last, size, interpolation=cv2.INTER_AREA))
        with torch.no_grad():
            out = self.pipe(**{k: v for k, v in kwargs.items() if k in self.params})
        clip = np.asarray(out.frames[0], dtype=np.float32)
        if clip.ndim != 4 or clip.shape[-1] != 3:  # (F, C, H, W) from some pipelines
            clip = np.moveaxis(clip, 1, -1)
        return np.clip(clip * 255 + 0.5, 0, 255).astype(np.uint8)

    def span(self, first: np.ndarray, last: np.ndarray, length: int, prompt: str, seed: int) -> Iterator[np.ndarray]:
        """``length`` frames from ``first`` to ``last`` inclusive, at the keyframes' size."""
        h, w = first.shape[:2]
        size = self.generation_size(w, h)
        pieces = max(1, -(-(length - 1) // (self.max_clip - 1)))
        bounds = np.linspace(0, length - 1, pieces + 1).round().astype(int)
        start = first
        for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            final = i == pieces - 1
            clip = self._generate(start, last if final else None, hi - lo + 1, prompt, size, seed + i)
            # Resample in time to the hi - lo + 1 frames this piece stands for.
            picks = np.linspace(0, len(clip) - 1, hi - lo + 1).round().astype(int)
            frames = [cv2.resize(clip[j], (w, h), interpolation=cv2.INTER_CUBIC) for j in picks]
            yield from frames if i == 0 else frames[1:]  # a piece's first frame is the previous one's last
            start = frames[-1]


def prompt_for(description: str | None, motion: float | None, pan: tuple[float, float] | None) -> str:
    parts = [description.strip()] if description else []
    if motion is not None:
        parts.append(motion_phrase(motion, pan))
    return ", ".join(parts) or "a video"

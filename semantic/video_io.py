"""Read any FFmpeg input into RGB frames and write frames back, keeping size, rate and count."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


class VideoError(ValueError):
    pass


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: Fraction
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames / float(self.fps) if self.fps else 0.0

    @property
    def source_values(self) -> int:
        """n of the CBR: H * W * 3 * T real source values."""
        return self.width * self.height * 3 * self.frames


@dataclass
class Video:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    fps: Fraction

    @property
    def info(self) -> VideoInfo:
        t, h, w, _ = self.frames.shape
        return VideoInfo(w, h, self.fps, t)


def _stream_fps(stream: av.video.stream.VideoStream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and rate > 0:
            return Fraction(rate).limit_denominator(100000)
    return Fraction(25)


def read_video(path: str | Path, max_frames: int | None = None) -> Video:
    """Decode every frame (or the first ``max_frames``) of any FFmpeg-readable file as RGB."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"no such video file: {path}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            fps = _stream_fps(stream)
            frames = []
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except av.FFmpegError as exc:
        raise VideoError(f"cannot decode {path}: {exc}") from None
    if not frames:
        raise VideoError(f"{path} has no decodable frames")
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:  # resolution changes mid-stream: keep the first size
        h, w = frames[0].shape[:2]
        frames = [f if f.shape == frames[0].shape else _resize(f, w, h) for f in frames]
    return Video(np.stack(frames), fps)


def _resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def write_video(path: str | Path, frames: np.ndarray, fps: Fraction, crf: int = 18) -> None:
    """H.264 at near-visually-lossless quality; exactly len(frames) frames at ``fps``.

    yuv420p needs even sizes; odd sizes go yuv444p so no pixel is cropped or invented.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t, h, w, _ = frames.shape
    fps = Fraction(fps).limit_denominator(100000)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        stream.codec_context.time_base = 1 / fps
        for i in range(t):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[i]), format="rgb24")
            frame.pts = i
            frame.time_base = 1 / fps
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)

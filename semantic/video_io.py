"""Read any FFmpeg input into RGB frames and write frames back, keeping size, rate and count."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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


def iter_frames(path: str | Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Decode frame by frame as RGB (memory independent of length); a size change mid-stream is
    scaled back to the first frame's size."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"no such video file: {path}")
    size = None
    count = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                rgb = frame.to_ndarray(format="rgb24")
                if size is None:
                    size = rgb.shape
                elif rgb.shape != size:
                    rgb = _resize(rgb, size[1], size[0])
                yield rgb
                count += 1
                if max_frames is not None and count >= max_frames:
                    return
    except av.FFmpegError as exc:
        raise VideoError(f"cannot decode {path}: {exc}") from None
    if count == 0:
        raise VideoError(f"{path} has no decodable frames")


def probe_fps(path: str | Path) -> Fraction:
    if not Path(path).is_file():
        raise VideoError(f"no such video file: {path}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path} has no video stream")
            return _stream_fps(container.streams.video[0])
    except av.FFmpegError as exc:
        raise VideoError(f"cannot decode {path}: {exc}") from None


def probe_frame_count(path: str | Path) -> int | None:
    """The frame count the container declares (None when it does not say): for progress only,
    never trusted for output lengths (those come from decoding)."""
    try:
        with av.open(str(path)) as container:
            frames = container.streams.video[0].frames if container.streams.video else 0
    except (av.FFmpegError, OSError):
        return None
    return int(frames) or None


def read_video(path: str | Path, max_frames: int | None = None) -> Video:
    """Decode every frame (or the first ``max_frames``) into memory; for long videos use
    ``iter_frames`` (the encoder and decoder stream)."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"no such video file: {path}")
    fps = probe_fps(path)
    return Video(np.stack(list(iter_frames(path, max_frames))), fps)


def _resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def upscale(frame: np.ndarray, width: int, height: int, out: np.ndarray | None = None) -> np.ndarray:
    """A picture decoded at a reduced coded size, scaled to the stream's size: bicubic, FFmpeg's
    default scaler. Every scheme's decoder (LGVSC's track and the separation baselines) uses it.
    (Shrinking, as an evaluation copy does, averages instead: bicubic would alias.) ``out``: a
    (height, width, 3) buffer to scale into, for callers that scale many pictures in turn."""
    import cv2

    if frame.shape[1::-1] == (width, height):
        return frame
    shrinking = width * height < frame.shape[0] * frame.shape[1]
    return cv2.resize(frame, (width, height), dst=out, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: Fraction, crf: int = 18) -> int:
    """H.264 at near-visually-lossless quality, every frame of ``frames`` (any iterable, so a
    decoder can stream) at ``fps``; returns the frame count.

    yuv420p needs even sizes; odd sizes go yuv444p so no pixel is cropped or invented.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fps = Fraction(fps).limit_denominator(100000)
    count = 0
    with av.open(str(path), mode="w") as container:
        stream = None
        for frame_rgb in frames:
            if stream is None:
                h, w = frame_rgb.shape[:2]
                stream = container.add_stream("libx264", rate=fps)
                stream.width, stream.height = w, h
                stream.pix_fmt = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
                stream.options = {"crf": str(crf), "preset": "veryfast"}
                stream.codec_context.time_base = 1 / fps
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_rgb), format="rgb24")
            frame.pts = count
            frame.time_base = 1 / fps
            for packet in stream.encode(frame):
                container.mux(packet)
            count += 1
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    return count

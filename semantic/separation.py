"""The separation baseline LGVSC is measured against: H.264 / H.265 (libx264 / libx265 through
PyAV) at the byte budget the same on-air symbols carry, decoded with FFmpeg's error
concealment.

The stream is raw Annex B (start codes, no container): after a lost stretch the decoder
resynchronizes at the next NAL unit, as a broadcast receiver would. The encoder searches
resolution and CRF for the best PSNR that fits the budget (the paper fixed QP 51 and GOP 400;
a search is fairer to the baseline). Decoding yields exactly the source frame count, which the
receiver knows from the session (duration and rate): missing frames repeat the last good one,
mid-grey before any; an undecodable stream is all grey, never an exception.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import cv2
import numpy as np

from semantic.encoder import FrameSource
from semantic.metrics import psnr_frames

SCHEMES = {"h264": ("libx264", "h264"), "h265": ("libx265", "hevc")}
SCALES = (1.0, 0.75, 0.5, 0.35, 0.25, 0.18, 0.12, 0.08)
CRF_RANGE = (18, 51)
ENCODER_THREADS = 2  # the search encodes dozens of times; the flowgraphs sit idle meanwhile
GOP = 400  # as the LGVSC paper's low-rate setting: one intra frame for most clips


class SeparationError(ValueError):
    pass


@dataclass(frozen=True)
class CodedVideo:
    data: bytes
    scheme: str
    width: int  # coded size (the output is scaled back to the source size)
    height: int
    crf: int
    frames: int  # source frames the decoder must return
    fps: Fraction  # source rate
    source_size: tuple[int, int]  # (width, height)
    stride: int = 1  # every stride-th source frame was coded


def _even(value: float) -> int:  # at least one macroblock
    return max(16, int(round(value / 2)) * 2)


def encode(frames: list[np.ndarray], fps: Fraction, scheme: str, crf: int, size: tuple[int, int]) -> bytes:
    """One encode at ``crf`` and coded ``size`` (libx264's bytes vary slightly between runs, by
    a few bytes in a few kB)."""
    codec, fmt = _scheme(scheme)
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = ENCODER_THREADS
        params = (f"log-level=error:pools={ENCODER_THREADS}:frame-threads={ENCODER_THREADS}:info=0"
                  if codec == "libx265" else f"threads={ENCODER_THREADS}:lookahead-threads=1:sliced-threads=0")
        stream.options = {"crf": str(crf), "g": str(GOP), "threads": str(ENCODER_THREADS), "preset": "medium",
                          f"{codec[3:]}-params": params}
        for frame in frames:
            small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if frame.shape[1::-1] != size else frame
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(small), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return strip_sei(buf.getvalue(), scheme)


def strip_sei(stream: bytes, scheme: str) -> bytes:
    """Drop SEI NAL units: x264 writes its whole option string (~600 bytes) into one, a cost a
    fair baseline should not pay on a link of a few kB."""
    starts = [i for i in range(len(stream) - 3) if stream[i : i + 3] == b"\x00\x00\x01"]
    keep = []
    for n, start in enumerate(starts):
        begin = start - 1 if start > 0 and stream[start - 1] == 0 else start  # 4-byte start codes
        end = (starts[n + 1] - (1 if stream[starts[n + 1] - 1] == 0 else 0)) if n + 1 < len(starts) else len(stream)
        header = stream[start + 3] if start + 3 < len(stream) else 0
        kind = header & 0x1F if scheme == "h264" else (header >> 1) & 0x3F
        if kind not in ((6,) if scheme == "h264" else (39, 40)):
            keep.append(stream[begin:end])
    return b"".join(keep) if starts else stream


def _scheme(scheme: str) -> tuple[str, str]:
    if scheme not in SCHEMES:
        raise SeparationError(f"unknown separation scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    return SCHEMES[scheme]


def encode_to_budget(source: FrameSource, scheme: str, byte_budget: int) -> CodedVideo:
    """The best-PSNR (frame stride, resolution, CRF) whose stream fits ``byte_budget`` bytes.

    Every coded frame costs headers whatever its size (about 20 bytes for a P frame), so small
    budgets also drop frames: the search tries strides 1, 2, 4, ... and per stride the largest
    resolutions that fit, each at the smallest CRF that fits, keeping the best measured PSNR."""
    frames = list(source.open())
    if not frames:
        raise SeparationError("video has no frames")
    reference = np.stack(frames)
    h, w = frames[0].shape[:2]
    best: tuple[float, CodedVideo] | None = None
    # Per scale, a lower bound on the stream size at CRF 51 for the current stride: half the
    # frames never make less than half the stream (the intra frame stays, P frames grow).
    floor: dict[float, int] = {}
    for stride in strides(len(frames)):
        kept, rate = frames[::stride], source.fps / stride
        floor = {scale: size // 2 for scale, size in floor.items()}
        tried = 0
        for scale in SCALES:
            if floor.get(scale, 0) > byte_budget:
                continue  # cannot fit: spare the encode
            size = (_even(w * scale), _even(h * scale))
            coarsest = floor[scale] = len(encode(kept, rate, scheme, CRF_RANGE[1], size))
            if coarsest > byte_budget:
                continue  # even the coarsest quantizer does not fit at this size
            crf = _smallest_crf(kept, rate, scheme, size, byte_budget, coarsest)
            coded = CodedVideo(encode(kept, rate, scheme, crf, size), scheme, size[0], size[1], crf, len(frames),
                               source.fps, (w, h), stride)
            quality = float(np.mean(psnr_frames(reference, np.stack(list(decode(coded.data, coded))))))
            if best is None or quality > best[0]:
                best = (quality, coded)
            tried += 1
            if tried == 2:  # the two largest sizes that fit: smaller ones only lose detail
                break
        if best is not None and best[1].stride < stride:
            break  # a larger stride lost: more frames dropped only gets worse
    if best is None:
        raise SeparationError(f"{scheme} cannot fit {len(frames)} frames in {byte_budget} bytes in any setting")
    return best[1]


def strides(frames: int) -> list[int]:
    """Keep every k-th frame (repeated at the receiver) when bytes are short: k = 1, 2, 4, ...
    up to a single frame for the whole video, the last resort at the smallest budgets."""
    out = [1]
    while out[-1] < frames:
        out.append(min(2 * out[-1], frames))
    return out


def _smallest_crf(frames: list[np.ndarray], fps: Fraction, scheme: str, size: tuple[int, int], budget: int,
                  size_at_max: int) -> int:
    """The smallest CRF whose stream fits ``budget``, given that CRF_RANGE[1] fits with
    ``size_at_max`` bytes. The stream roughly halves every 6 CRF steps, so the search starts at
    that prediction and gallops away from it until the answer is bracketed, then bisects:
    2-3 encodes where a plain bisection of 18..51 takes 5-6 (each one a full encode)."""
    lo, hi = CRF_RANGE  # the answer lies in [lo, hi]; hi fits
    probe = round(hi - 6 * float(np.log2(max(budget, 1) / max(size_at_max, 1))))
    step, fit_seen, fail_seen = 1, False, False
    while lo < hi:
        if fit_seen and fail_seen:
            probe = (lo + hi) // 2
        probe = min(max(probe, lo), hi - 1)
        if len(encode(frames, fps, scheme, probe, size)) <= budget:
            hi, fit_seen, probe = probe, True, probe - step
        else:
            lo, fail_seen, probe = probe + 1, True, probe + step
        step *= 2
    return lo


def decode(data: bytes, coded: CodedVideo) -> Iterator[np.ndarray]:
    """Exactly ``coded.frames`` frames at the source size, whatever arrived of ``data``."""
    _, fmt = _scheme(coded.scheme)
    w, h = coded.source_size
    count, last = 0, None
    try:
        with av.open(io.BytesIO(data), format=fmt) as container:
            for packet in container.demux(video=0):
                try:
                    decoded = packet.decode()
                except av.FFmpegError:
                    continue  # a damaged NAL unit: concealment covers what it can, the rest holds
                for frame in decoded:
                    image = frame.to_ndarray(format="rgb24")
                    last = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR) if image.shape[1::-1] != (w, h) \
                        else image
                    for _ in range(min(coded.stride, coded.frames - count)):  # held for its dropped frames
                        count += 1
                        yield last
                    if count == coded.frames:
                        return
    except (av.FFmpegError, OSError, ValueError):
        pass  # nothing more to decode: the player freezes on the last frame
    filler = last if last is not None else np.full((h, w, 3), 128, dtype=np.uint8)
    for _ in range(count, coded.frames):
        yield filler

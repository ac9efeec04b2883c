"""The separation baseline LGVSC is measured against: H.264 / H.265 (libx264 / libx265 through
PyAV) at the byte budget the same on-air symbols carry, decoded with FFmpeg's error
concealment.

The stream is raw Annex B (start codes, no container): after a lost stretch the decoder
resynchronizes at the next NAL unit, as a broadcast receiver would. The encoder searches
resolution and CRF for the best PSNR that fits the budget (the paper fixed QP 51 and GOP 400;
a search is fairer to the baseline). Decoding yields exactly the source frame count, which the
receiver knows from the session (duration and rate): missing frames repeat the last good one,
mid-grey before any; an undecodable stream is all grey, never an exception.

The search runs in a child process: a native fault in an encoder (libx265 once corrupted the
heap at small sizes, see ``X265_CUTREE_MIN_WIDTH``) then ends that process with an
``EncoderCrash``, not the caller's process, and cannot leave its heap damaged.
"""

from __future__ import annotations

import base64
import io
import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

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
# libx265's cu-tree (lookahead) propagates costs over a half-resolution grid of 8x8 blocks, a row
# at a time, with mbtree_propagate_cost. Its AVX/AVX2 code always does a first group of 4 blocks
# and then a tail computed as if the row were longer (the SSE2 code: groups of 2), so a row of
# fewer than 4 blocks (coded width <= 48, as x265 pads it to 8) writes past heap buffers sized
# for the row: "free(): invalid next size (fast)", or silent damage. x265 validates only "at
# least one CTU" and even sizes. Narrower pictures are coded without cu-tree (it only moves
# bits between the frames of a GOP); wider ones keep the preset's settings.
X265_CUTREE_MIN_WIDTH = 50


class SeparationError(ValueError):
    pass


class EncoderCrash(RuntimeError):  # not a SeparationError: a crash is a failure, not "nothing fits"
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
        params = _x265_params(size[0]) if codec == "libx265" else \
            f"threads={ENCODER_THREADS}:lookahead-threads=1:sliced-threads=0"
        stream.options = {"crf": str(crf), "g": str(GOP), "threads": str(ENCODER_THREADS), "preset": "medium",
                          f"{codec[3:]}-params": params}
        for frame in frames:
            small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if frame.shape[1::-1] != size else frame
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(small), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return strip_sei(buf.getvalue(), scheme)


def _x265_params(width: int) -> str:
    params = f"log-level=error:pools={ENCODER_THREADS}:frame-threads={ENCODER_THREADS}:info=0"
    return params if width >= X265_CUTREE_MIN_WIDTH else f"{params}:cutree=0"  # see X265_CUTREE_MIN_WIDTH


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
    resolutions that fit, each at the smallest CRF that fits, keeping the best measured PSNR.
    It runs in a child process (about a second more): an encoder that dies raises
    ``EncoderCrash`` here instead of ending the caller."""
    _scheme(scheme)
    frames = list(source.open())
    if not frames:
        raise SeparationError("video has no frames")
    with tempfile.TemporaryDirectory(prefix="separation-") as tmp:
        job, result = Path(tmp, "frames.npy"), Path(tmp, "result.json")
        np.save(job, np.stack(frames))
        del frames
        args = [str(job), str(source.fps), scheme, str(byte_budget), str(result)]
        proc = subprocess.run([sys.executable, "-c", _CHILD, _PACKAGE_ROOT, *args], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        if proc.returncode != 0 or not result.is_file():
            raise EncoderCrash(f"{SCHEMES[scheme][0]} search for {byte_budget} bytes {_death(proc)}")
        outcome = json.loads(result.read_text())
    if "error" in outcome:
        raise SeparationError(outcome["error"])
    return _coded_from_json(outcome["coded"])


# The child imports this very file, not whatever ``semantic`` its working directory holds.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])
_CHILD = "import sys; sys.path.insert(0, sys.argv[1]); from semantic.separation import _search_main; " \
         "_search_main(sys.argv[2:])"


def _search_main(argv: list[str]) -> None:
    """The child's side of ``encode_to_budget``: frames from a .npy file, the outcome as JSON."""
    job, fps, scheme, budget, result = argv
    frames = list(np.load(job, mmap_mode="r"))
    try:
        outcome = {"coded": _coded_to_json(_search(frames, Fraction(fps), scheme, int(budget)))}
    except SeparationError as exc:
        outcome = {"error": str(exc)}
    Path(result).write_text(json.dumps(outcome))


def _coded_to_json(coded: CodedVideo) -> dict:
    return {**{k: getattr(coded, k) for k in ("scheme", "width", "height", "crf", "frames", "stride")},
            "data": base64.b64encode(coded.data).decode("ascii"), "fps": str(coded.fps),
            "source_size": list(coded.source_size)}


def _coded_from_json(fields: dict) -> CodedVideo:
    return CodedVideo(base64.b64decode(fields["data"]), fields["scheme"], fields["width"], fields["height"],
                      fields["crf"], fields["frames"], Fraction(fields["fps"]), tuple(fields["source_size"]),
                      fields["stride"])


def _death(proc: subprocess.CompletedProcess) -> str:
    """How the child ended, for a one-line error: the signal, and its last words on stderr."""
    code = proc.returncode
    if code < 0:
        how = f"died of {signal.Signals(-code).name}" if -code in signal.valid_signals() else f"died of signal {-code}"
    else:
        how = f"exited with status {code}"
    lines = [line for line in proc.stderr.decode(errors="replace").splitlines() if line.strip()]
    return f"{how}: {lines[-1].strip()}" if lines else how


def _search(frames: list[np.ndarray], fps: Fraction, scheme: str, byte_budget: int) -> CodedVideo:
    reference = np.stack(frames)
    h, w = frames[0].shape[:2]
    best: tuple[float, CodedVideo] | None = None
    # Per scale, a lower bound on the stream size at CRF 51 for the current stride: half the
    # frames never make less than half the stream (the intra frame stays, P frames grow).
    floor: dict[float, int] = {}
    for stride in strides(len(frames)):
        kept, rate = frames[::stride], fps / stride
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
                               fps, (w, h), stride)
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

"""The separation baseline LGVSC is measured against: H.264 / H.265 / AV1 (libx264 / libx265 /
libsvtav1 through PyAV, AV1 decoded by libdav1d) at the byte budget the same on-air symbols
carry, decoded with FFmpeg's error concealment.

The stream is raw (H.264/H.265 Annex B with start codes; AV1 as a low-overhead OBU stream), no
container: after a lost stretch the decoder resynchronizes at the next NAL unit or temporal
unit it can parse, as a broadcast receiver would. The encoder searches
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
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from semantic.crf_search import refine_crf, smallest_fitting_crf, with_crf
from semantic.encoder import FrameSource
from semantic.metrics import mean_psnr
from semantic.video_io import upscale


@dataclass(frozen=True)
class Codec:
    """How one scheme is encoded and carried."""

    encoder: str  # FFmpeg encoder
    raw_format: str  # FFmpeg (de)muxer of the bare elementary stream
    crf_range: tuple[int, int]  # best .. coarsest quantizer the search uses
    preset: str
    decoder: str  # what FFmpeg decodes it with (reports name it)
    min_width: int = 16  # narrower pictures are coded at this width (the decoder scales back)


SCHEMES: dict[str, Codec] = {
    "h264": Codec("libx264", "h264", (18, 51), "medium", "h264"),
    "h265": Codec("libx265", "hevc", (18, 51), "medium", "hevc"),
    # SVT-AV1 preset 8: the fast end of its presets (the search encodes dozens of times); CRF runs
    # to 63 in AV1. SVT-AV1 4.1 reads memory it does not own at coded widths of 24 pixels or
    # less (a segfault under glibc's checking allocator, at any height and frame count; 26 and
    # up are clean): narrower pictures are coded 32 pixels wide.
    "av1": Codec("libsvtav1", "obu", (18, 63), "8", "libdav1d", min_width=32),
}
SCALES = (1.0, 0.75, 0.5, 0.35, 0.25, 0.18, 0.12, 0.08)
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
    crf: float
    frames: int  # source frames the decoder must return
    fps: Fraction  # source rate
    source_size: tuple[int, int]  # (width, height)
    stride: int = 1  # every stride-th source frame was coded


def _even(value: float) -> int:  # at least one macroblock
    return max(16, int(round(value / 2)) * 2)


def encode(frames: list[np.ndarray], fps: Fraction, scheme: str, crf: float, size: tuple[int, int]) -> bytes:
    """One encode at ``crf`` and coded ``size`` (libx264's bytes vary slightly between runs, by
    a few bytes in a few kB)."""
    codec = _scheme(scheme)
    size = coded_size(scheme, size)
    buf = io.BytesIO()
    with av.open(buf, "w", format=codec.raw_format) as out:
        stream = out.add_stream(codec.encoder, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = ENCODER_THREADS
        stream.options = with_crf({"g": str(GOP), "threads": str(ENCODER_THREADS), "preset": codec.preset,
                                   **_encoder_params(codec.encoder, size[0])}, codec.encoder, crf)
        for frame in frames:
            small = _scaled(frame, size)
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(small), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return strip_sei(buf.getvalue(), scheme)


def coded_size(scheme: str, size: tuple[int, int]) -> tuple[int, int]:
    """The size ``encode`` really codes for ``size``: within what the encoder supports."""
    return max(size[0], _scheme(scheme).min_width), size[1]


def _encoder_params(encoder: str, width: int) -> dict[str, str]:
    """The encoder's private options: its threads, and quiet logs."""
    if encoder == "libx265":
        # One frame thread: with two, a search on bikes once hung for good, every x265 thread
        # waiting on a condition, one in RateControl::rateControlEnd (a race: 900 encodes of the
        # same sizes did not repeat it). Same speed and bytes here (WPP still uses both cores).
        params = f"log-level=error:pools={ENCODER_THREADS}:frame-threads=1:info=0"
        return {"x265-params": params if width >= X265_CUTREE_MIN_WIDTH else f"{params}:cutree=0"}
    if encoder == "libsvtav1":
        return {"svtav1-params": f"lp={ENCODER_THREADS}"}
    return {"x264-params": f"threads={ENCODER_THREADS}:lookahead-threads=1:sliced-threads=0"}


def strip_sei(stream: bytes, scheme: str) -> bytes:
    """Drop SEI NAL units: x264 writes its whole option string (~600 bytes) into one, a cost a
    fair baseline should not pay on a link of a few kB. AV1 has no start codes (a byte pattern
    that looks like one is payload): its stream passes unchanged."""
    if scheme not in ("h264", "h265"):
        return stream
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


def _scheme(scheme: str) -> Codec:
    if scheme not in SCHEMES:
        raise SeparationError(f"unknown separation scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    return SCHEMES[scheme]


# A whole search takes seconds to a minute (bigbuckbunny, 132 frames of 1280x720: 35 s, some 3e-7 s
# per source pixel-frame; 64 s before 2026-12-03): ten times the old figure, and never under
# SEARCH_TIMEOUT_S, it is hung.
SEARCH_TIMEOUT_S = 300.0
SEARCH_S_PER_PIXEL_FRAME = 5e-6
# SVT-AV1 4.1 now and then deadlocks inside an encode (every thread waiting on a futex; seen twice
# in some 400 searches, at CRF 63): a race, so a hung search is run once more before it counts
# as a crash. A crash (a signal, an error) is not retried: it repeats.
HANG_RETRIES = 1


def search_timeout_s(frames: int, width: int, height: int) -> float:
    """How long a search of this video may run before it counts as hung."""
    return max(SEARCH_TIMEOUT_S, SEARCH_S_PER_PIXEL_FRAME * frames * width * height)


def encode_to_budget(source: FrameSource, scheme: str, byte_budget: int,
                     timeout_s: float | None = None) -> CodedVideo:
    """The best-PSNR (frame stride, resolution, CRF) whose stream fits ``byte_budget`` bytes.

    Every coded frame costs headers whatever its size (about 20 bytes for a P frame), so small
    budgets also drop frames: the search tries strides 1, 2, 4, ... and per stride the largest
    resolutions that fit, each at the smallest CRF that fits, keeping the best measured PSNR.
    It runs in a child process (about a second more): an encoder that dies, or hangs past
    ``timeout_s`` (default ``search_timeout_s``) twice, raises ``EncoderCrash`` here instead of
    ending or stalling the caller."""
    _scheme(scheme)
    frames = list(source.open())
    if not frames:
        raise SeparationError("video has no frames")
    timeout_s = timeout_s or search_timeout_s(len(frames), frames[0].shape[1], frames[0].shape[0])
    with tempfile.TemporaryDirectory(prefix="separation-") as tmp:
        job, result = Path(tmp, "frames.npy"), Path(tmp, "result.json")
        np.save(job, np.stack(frames))
        del frames
        args = [str(job), str(source.fps), scheme, str(byte_budget), str(result)]
        proc = _run_search([sys.executable, "-c", _CHILD, _PACKAGE_ROOT, *args], timeout_s)
        if proc is None:
            raise EncoderCrash(f"{SCHEMES[scheme].encoder} search for {byte_budget} bytes hung {HANG_RETRIES + 1} "
                               f"times: no result after {timeout_s:g} s") from None
        if proc.returncode != 0 or not result.is_file():
            raise EncoderCrash(f"{SCHEMES[scheme].encoder} search for {byte_budget} bytes {_death(proc)}")
        outcome = json.loads(result.read_text())
    if "error" in outcome:
        raise SeparationError(outcome["error"])
    return _coded_from_json(outcome["coded"])


def _run_search(command: list[str], timeout_s: float) -> subprocess.CompletedProcess | None:
    """The search child run to its end, once more if it hangs (None: it hung every time)."""
    for _ in range(HANG_RETRIES + 1):
        try:
            return subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, check=False, timeout=timeout_s)
        except subprocess.TimeoutExpired:  # the child is killed
            continue
    return None


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
            size = coded_size(scheme, (_even(w * scale), _even(h * scale)))
            small = at_size(kept, size)  # scaled once for all the encodes at this size
            coarsest = encode(small, rate, scheme, SCHEMES[scheme].crf_range[1], size)
            floor[scale] = len(coarsest)
            if len(coarsest) > byte_budget:
                continue  # even the coarsest quantizer does not fit at this size
            def stream(crf: int, size: tuple[int, int] = size, small: list = small, rate: Fraction = rate
                       ) -> tuple[int, bytes]:
                data = encode(small, rate, scheme, crf, size)
                return len(data), data

            # The stream the search coded is the one sent: encoding again at the same CRF costs
            # a whole encode, and libx264's bytes vary by a few between runs.
            crf, data = smallest_fitting_crf(stream, SCHEMES[scheme].crf_range, byte_budget, (len(coarsest), coarsest))
            coded = CodedVideo(data, scheme, size[0], size[1], crf, len(frames), fps, (w, h), stride)
            quality = stream_psnr(frames, coded)
            if best is None or quality > best[0]:
                best = (quality, coded)
            tried += 1
            if tried == 2:  # the two largest sizes that fit: smaller ones only lose detail
                break
        if best is not None and best[1].stride < stride:
            break  # a larger stride lost: more frames dropped only gets worse
    if best is None:
        raise SeparationError(f"{scheme} cannot fit {len(frames)} frames in {byte_budget} bytes in any setting")
    return _refined(frames, best[1], byte_budget)


def _refined(frames: list[np.ndarray], coded: CodedVideo, byte_budget: int) -> CodedVideo:
    """The chosen setting at the finest CRF that still fits (``refine_crf``), as LGVSC's track gets."""
    size = (coded.width, coded.height)
    kept, rate = at_size(frames[:: coded.stride], size), coded.fps / coded.stride

    def stream(crf: float) -> tuple[int, bytes]:
        data = encode(kept, rate, coded.scheme, crf, size)
        return len(data), data

    crf, data = refine_crf(stream, coded.crf, SCHEMES[coded.scheme].crf_range, byte_budget, coded.data)
    return coded if crf == coded.crf else replace(coded, data=data, crf=crf)


def at_size(frames: list[np.ndarray], size: tuple[int, int]) -> list[np.ndarray]:
    """``frames`` scaled to ``size`` (width, height) as ``encode`` scales them."""
    if not frames or frames[0].shape[1::-1] == size:
        return frames
    return [_scaled(frame, size) for frame in frames]


def _scaled(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if frame.shape[1::-1] != size else frame


def stream_psnr(frames: list[np.ndarray], coded: CodedVideo) -> float:
    """Mean per-frame PSNR of ``coded`` decoded against ``frames``, one frame at a time (a 720p
    video held twice, stacked, is 0.7 GB)."""
    return mean_psnr(zip(frames, decode(coded.data, coded), strict=True))


def strides(frames: int) -> list[int]:
    """Keep every k-th frame (repeated at the receiver) when bytes are short: k = 1, 2, 4, ...
    up to a single frame for the whole video, the last resort at the smallest budgets."""
    out = [1]
    while out[-1] < frames:
        out.append(min(2 * out[-1], frames))
    return out


def decode(data: bytes, coded: CodedVideo) -> Iterator[np.ndarray]:
    """Exactly ``coded.frames`` frames at the source size, whatever arrived of ``data``."""
    fmt = _scheme(coded.scheme).raw_format
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
                    last = upscale(frame.to_ndarray(format="rgb24"), w, h)
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

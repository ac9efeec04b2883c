"""Held-out clips nobody tuned to, built by FFmpeg from its own synthetic sources and from
photographs (stills of the bundled videos), with the events that trip a video coder placed on
purpose: hard cuts, fades, pans, zooms, rotation and moving objects; sizes from 16x16 to
1920x1080 (odd ones too), 1 to 1000 frames, 5 to 60 fps (NTSC and other fractional rates), in
several containers and codecs.

    python -m tools.heldout_corpus out/heldout            # every clip, ~1 min on 2 cores
    python -m tools.heldout_corpus out/heldout --only photo_pan_cut tiny_16x16

Writes ``NAME.<ext>`` per clip and ``corpus.json`` with each clip's ground truth (size, rate,
frame count, cut frames, what moves). Nothing in the project is tuned to these clips: they exist
to check claims and robustness on content the thresholds never saw.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lgvsc.sample_videos import sample_video

# Stills the photographic scenes are cut from: (sample video, frame index).
PHOTOS = {"street": ("bikes", 40), "meadow": ("bigbuckbunny", 60), "forest": ("bigbuckbunny", 110),
          "car": ("carphone_pristine", 50), "riders": ("bikes", 180)}


@dataclass(frozen=True)
class Segment:
    """One shot: an FFmpeg filter chain that makes ``frames`` frames at the clip's size and rate.
    ``{w}``, ``{h}``, ``{r}`` and ``{n}`` (frames) are filled in; ``photo`` names a still input."""

    frames: int
    chain: str
    photo: str | None = None
    motion: str = ""


@dataclass(frozen=True)
class Clip:
    name: str
    width: int
    height: int
    fps: str  # as FFmpeg writes a rate: "25", "30000/1001"
    segments: tuple[Segment, ...]
    container: str = "mp4"  # mp4 (H.264), mkv (FFV1, lossless, any size), webm (VP9)
    fades: tuple[int, ...] = ()  # gradual transitions: not cuts

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.segments)

    @property
    def cuts(self) -> list[int]:
        """First frame of every shot after the first (hard cuts, by construction)."""
        out, t = [], 0
        for seg in self.segments[:-1]:
            t += seg.frames
            out.append(t)
        return out

    def truth(self) -> dict:
        return {"name": self.name, "width": self.width, "height": self.height, "fps": self.fps,
                "frames": self.frames, "cuts": self.cuts, "fades": list(self.fades), "container": self.container,
                "shots": [{"frames": s.frames, "photo": s.photo, "motion": s.motion} for s in self.segments]}


def _pan(direction: str = "right", zoom: float = 1.6) -> str:
    """Crop window moving across a still scaled ``zoom`` times the frame: a camera pan."""
    x = "(iw-ow)*n/{n}" if direction == "right" else "(iw-ow)*(1-n/{n})"
    return f"scale=ceil({{w}}*{zoom}/2)*2:ceil({{h}}*{zoom}/2)*2,crop={{w}}:{{h}}:{x}:(ih-oh)/2"


def _zoom(end: float = 1.8) -> str:
    """A smooth zoom into the still's centre (zoompan at 4x supersampling avoids its jitter)."""
    return (f"scale=ceil({{w}}*4/2)*2:ceil({{h}}*4/2)*2,zoompan=z='1+({end}-1)*on/{{n}}':d={{n}}:"
            f"x='iw/2-iw/zoom/2':y='ih/2-ih/zoom/2':s={{w}}x{{h}}:fps={{r}}")


def _objects(count: int = 2) -> str:
    """Solid boxes crossing the picture on different paths: moving objects over a static camera."""
    boxes = []
    for k in range(count):
        size = f"max(2\\,floor({{w}}/{6 + 3 * k}))"
        x = f"mod({{w}}*t*{0.35 + 0.2 * k}\\,{{w}})"
        y = f"{{h}}*(0.3+0.4*{k % 2})+{{h}}/8*sin(t*{2 + k})"
        colour = ("yellow", "red", "cyan")[k % 3]
        boxes.append(f"drawbox=x='{x}':y='{y}':w={size}:h={size}:color={colour}:t=fill")
    return ",".join(boxes)


CLIPS: tuple[Clip, ...] = (
    Clip("tiny_16x16", 16, 16, "25", (Segment(50, "testsrc2=size={w}x{h}:rate={r}", motion="test pattern"),)),
    Clip("odd_33x17_life", 33, 17, "7", (Segment(30, "life=size={w}x{h}:rate={r}:mold=10:ratio=0.2:seed=7",
                                                 motion="cellular automaton"),), container="mkv"),
    Clip("qcif_mandelbrot_zoom", 176, 144, "15", (Segment(60, "mandelbrot=size={w}x{h}:rate={r}",
                                                          motion="fractal zoom"),)),
    Clip("photo_pan_cut", 320, 240, "24", (Segment(72, _pan("right"), "street", "pan right"),
                                           Segment(72, _zoom(), "meadow", "zoom in"))),
    Clip("zoom_rotate_objects", 480, 272, "30000/1001",
         (Segment(150, _zoom(1.5) + ",rotate=a='0.25*sin(t)':fillcolor=black," + _objects(3), "forest",
                  "zoom, rotation, three moving boxes"),)),
    Clip("odd_639x359_objects", 639, 359, "25/2", (Segment(40, _objects(2), "riders", "static camera, two boxes"),),
         container="mkv"),
    Clip("hd720_two_cuts", 1280, 720, "60",
         (Segment(30, "gradients=size={w}x{h}:rate={r}:speed=0.05", motion="moving gradient"),
          Segment(30, "testsrc2=size={w}x{h}:rate={r}", motion="test pattern"),
          Segment(30, _pan("left"), "car", "pan left"))),
    Clip("fullhd_pan", 1920, 1080, "24000/1001", (Segment(24, _pan("right", 1.3), "meadow", "pan right"),)),
    Clip("one_frame", 320, 180, "30", (Segment(1, "scale={w}:{h}", "street", "still"),)),
    Clip("two_frames", 64, 48, "5", (Segment(2, _pan("right"), "car", "pan"),)),
    Clip("long_1000_frames", 96, 64, "60",
         tuple(Segment(250, _pan(d) + "," + _objects(1), p, f"pan {d}, one box")
               for d, p in (("right", "street"), ("left", "meadow"), ("right", "car"), ("left", "forest")))),
    Clip("vga_fades", 640, 480, "25",
         (Segment(100, _pan("right", 1.3) + ",fade=t=in:st=0:d=1,fade=t=out:st=3:d=1", "riders",
                  "fade in, pan, fade out"),), fades=(0, 75)),
    Clip("slow_5fps", 200, 150, "5", (Segment(50, "cellauto=size={w}x{h}:rate={r}:rule=110:scroll=1",
                                              motion="scrolling automaton"),), container="webm"),
    Clip("portrait_181x321", 181, 321, "30000/1001", (Segment(90, _zoom(1.4) + "," + _objects(1), "car",
                                                              "zoom in, one box"),), container="mkv"),
)


@dataclass
class Corpus:
    directory: Path
    clips: dict[str, Path] = field(default_factory=dict)
    truth: dict[str, dict] = field(default_factory=dict)


def _ffmpeg(*args: str) -> None:
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise RuntimeError(f"ffmpeg failed ({' '.join(cmd)}): {done.stderr.strip()[-500:]}")


def _still(directory: Path, name: str) -> Path:
    path = directory / "photos" / f"{name}.png"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        video, frame = PHOTOS[name]
        _ffmpeg("-i", str(sample_video(video)), "-vf", f"select=eq(n\\,{frame})", "-frames:v", "1", str(path))
    return path


def _codec_args(container: str, width: int, height: int) -> list[str]:
    if container == "mkv":
        return ["-c:v", "ffv1", "-pix_fmt", "yuv444p" if width % 2 or height % 2 else "yuv420p"]
    if container == "webm":
        return ["-c:v", "libvpx-vp9", "-crf", "20", "-b:v", "0", "-deadline", "realtime", "-cpu-used", "8",
                "-pix_fmt", "yuv420p"]
    return ["-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv420p"]


def build_clip(clip: Clip, directory: Path) -> Path:
    """Render ``clip`` (each shot from its source, concatenated with hard cuts)."""
    out = directory / f"{clip.name}.{clip.container}"
    inputs: list[str] = []
    chains: list[str] = []
    photos = 0
    for i, seg in enumerate(clip.segments):
        fill = {"w": clip.width, "h": clip.height, "r": clip.fps, "n": max(seg.frames - 1, 1)}
        src = ""
        if seg.photo is not None:  # a still looped at the clip's rate, then moved by the chain
            inputs += ["-loop", "1", "-framerate", clip.fps, "-i", str(_still(directory, seg.photo))]
            src, photos = f"[{photos}:v]", photos + 1
        # every shot: exact size, rate and frame count, square pixels, one pixel format
        tail = (f"scale={clip.width}:{clip.height},setsar=1,fps={clip.fps},trim=end_frame={seg.frames},"
                f"setpts=N/({clip.fps})/TB,format=yuv444p")
        chains.append(f"{src}{seg.chain.format(**fill)},{tail}[s{i}]")
    joined = "".join(f"[s{i}]" for i in range(len(clip.segments)))
    graph = ";".join(chains) + f";{joined}concat=n={len(clip.segments)}:v=1:a=0[v]"
    _ffmpeg(*inputs, "-filter_complex", graph, "-map", "[v]", "-frames:v", str(clip.frames), "-r", clip.fps,
            *_codec_args(clip.container, clip.width, clip.height), str(out))
    return out


def build_corpus(directory: Path, only: list[str] | None = None) -> Corpus:
    """Build (or reuse, when present) the clips; ``corpus.json`` lists their ground truth."""
    directory.mkdir(parents=True, exist_ok=True)
    unknown = set(only or []) - {c.name for c in CLIPS}
    if unknown:
        raise ValueError(f"unknown clip(s) {', '.join(sorted(unknown))}; known: {', '.join(c.name for c in CLIPS)}")
    corpus = Corpus(directory)
    for clip in CLIPS:
        if only and clip.name not in only:
            continue
        path = directory / f"{clip.name}.{clip.container}"
        if not path.is_file():
            build_clip(clip, directory)
        corpus.clips[clip.name], corpus.truth[clip.name] = path, clip.truth()
    (directory / "corpus.json").write_text(json.dumps(corpus.truth, indent=2))
    return corpus


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("directory", type=Path)
    ap.add_argument("--only", nargs="+", help="build only these clips")
    args = ap.parse_args(argv)
    try:
        corpus = build_corpus(args.directory, args.only)
    except (ValueError, RuntimeError) as exc:
        print(f"heldout_corpus: {exc}", file=sys.stderr)
        return 2
    for name, path in corpus.clips.items():
        t = corpus.truth[name]
        print(f"{path}: {t['width']}x{t['height']} @ {t['fps']} fps, {t['frames']} frames, cuts {t['cuts']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


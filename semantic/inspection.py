"""`lgvsc inspect`: every element of a bitstream, human-readable or as JSON. The stream's
explicit, interpretable intermediate representation, read with the same parsers the decoder uses."""

from __future__ import annotations

from semantic.bitstream import (
    TIMING_KINDS,
    BitstreamError,
    KeyframeImage,
    ParsedStream,
    Segment,
    SegmentType,
    StreamHeader,
    first_segment,
    parse_stream,
    timing_of,
    unpack_layout,
    unpack_motion,
    unpack_pan,
    unpack_psss,
)
from semantic.describe import motion_phrase
from semantic.text_codec import decompress_text
from semantic.track import base_units, is_intra, track_units


def inspect_stream(data: bytes) -> dict:
    """Every element of ``data`` as a JSON-ready dict; damaged parts are reported, never raised."""
    parsed = parse_stream(data)
    h = parsed.header
    out: dict = {"bytes": len(data), "header_ok": h is not None, "corrupt_regions": parsed.corrupt_regions}
    if h is not None:
        out.update(width=h.width, height=h.height, fps=float(h.fps), fps_exact=f"{h.fps.numerator}/{h.fps.denominator}",
                   frames=h.frames, duration_s=h.frames / float(h.fps), backends=h.backends,
                   keyframes_declared=h.keyframes)
    out["segments"] = [{"type": seg.type.name.lower(), "index": seg.index, "bytes": len(seg.payload), "crc_ok": True}
                       for seg in parsed.segments]
    out.update(_side_info(parsed.segments, h))
    plan = out.get("timing", {}).get("keyframe_frames", [])
    out["keyframes"] = _image_keyframes(parsed, h) + _track_keyframes(parsed, plan, h)
    if (base := _base_layer(parsed, plan)) is not None:
        out["base_layer"] = base
    return out


def inspect_file(data: bytes, name: str) -> dict:
    """``inspect_stream`` of a file that should hold a stream: BitstreamError naming ``name`` when
    it holds neither a stream header nor a segment."""
    info = inspect_stream(data)
    if not info["header_ok"] and not info["segments"]:
        raise BitstreamError(f"{name} is not an LGVSC bitstream (no stream header, no segment)")
    return info


def _side_info(segments: list[Segment], header: StreamHeader | None) -> dict:
    """Timing, colour layout, PSSS, motion and descriptions: the segments the decoder reads."""
    out: dict = {}
    if (seg := first_segment(segments, *TIMING_KINDS)) is not None:
        try:
            frames, cuts = timing_of(seg, header.frames if header else None)
            out["timing"] = {"keyframe_frames": frames, "shot_cuts": cuts}
        except BitstreamError as exc:
            out["timing"] = {"error": str(exc)}
    if (seg := first_segment(segments, SegmentType.LAYOUT)) is not None:
        try:
            y, cb, cr = unpack_layout(seg.payload)
            out["colour_layout"] = {"luma": list(y), "cb": list(cb), "cr": list(cr)}
        except BitstreamError as exc:
            out["colour_layout"] = {"error": str(exc)}
    if (seg := first_segment(segments, SegmentType.PSSS)) is not None:
        out["psss_vs_previous"] = [round(p, 3) for p in unpack_psss(seg.payload)]
    if (seg := first_segment(segments, SegmentType.MOTION)) is not None:
        out["motion_px_per_frame"] = [round(v, 2) for v in unpack_motion(seg.payload)]
    if (seg := first_segment(segments, SegmentType.PAN)) is not None:
        out["pan_px_per_frame"] = [[round(dx, 2), round(dy, 2)] for dx, dy in unpack_pan(seg.payload)]
    texts = [(seg.index, decompress_text(seg.payload)) for seg in segments if seg.type == SegmentType.TEXT]
    if texts:
        out["text"] = [{"interval": i, "text": "<damaged>" if text is None else text} for i, text in texts]
    return out


def _image_keyframes(parsed: ParsedStream, header: StreamHeader | None) -> list[dict]:
    """The intra-coded keyframes; one too short to say which frame it is stays among the segments only."""
    out = []
    for seg in parsed.of_type(SegmentType.KEYFRAME_IMAGE):
        try:
            kf = KeyframeImage.unpack(seg.payload)
        except BitstreamError:
            continue
        time_s = kf.frame / float(header.fps) if header else None
        out.append({"index": seg.index, "frame": kf.frame, "bytes": len(kf.data),
                    "coded_size": f"{kf.width}x{kf.height}", "time_s": time_s})
    return out


def _track_keyframes(parsed: ParsedStream, plan: list[int], header: StreamHeader | None) -> list[dict]:
    """The keyframe track's units in order: which are intra (recovery points) and which are
    predicted from the keyframes decoded since the last intra one."""
    units = track_units(parsed.segments)
    out, chain = [], None
    for i in sorted(units):
        intra = is_intra(units[i])
        chain = i if intra else (chain if chain is not None and i - 1 in units else None)
        frame = plan[i] if i < len(plan) else None
        out.append({"index": i, "frame": frame, "bytes": len(units[i]), "coding": "intra" if intra else "predicted",
                    "chain_from": chain, "time_s": frame / float(header.fps) if header and frame is not None else None})
    return out


def _base_layer(parsed: ParsedStream, plan: list[int]) -> dict | None:
    """A layered stream's base layer: which keyframes it codes again, coarser, and its size."""
    stride, units = base_units(parsed.segments)
    if not units:
        return None
    ordinals = [i * stride for i in sorted(units)]
    return {"stride": stride, "keyframe_indices": ordinals,
            "frames": [plan[o] if o < len(plan) else None for o in ordinals],
            "bytes": sum(len(seg.payload) for seg in parsed.of_type(SegmentType.BASE_TRACK)),
            "intra": [i * stride for i in sorted(units) if is_intra(units[i])]}


def format_inspection(info: dict) -> str:
    """``inspect_stream``'s result as the text `lgvsc inspect` prints."""
    lines: list[str] = []
    add = lines.append
    if not info["header_ok"]:
        add("stream header: LOST (no intact copy)")
    else:
        add(f"LGVSC stream: {info['width']}x{info['height']} @ {info['fps_exact']} fps, {info['frames']} frames "
              f"({info['duration_s']:.2f} s), {info['bytes']} bytes")
        add("backends: " + ", ".join(f"{k}={v}" for k, v in info["backends"].items()))
    timing = info.get("timing", {})
    if "keyframe_frames" in timing:
        add(f"keyframes at frames {timing['keyframe_frames']}; shot cuts at {timing['shot_cuts'] or 'none'}")
    motion = info.get("motion_px_per_frame", [])
    pan = info.get("pan_px_per_frame", [])
    psss = info.get("psss_vs_previous", [])
    for kf in info["keyframes"]:
        t = f"{kf['time_s']:7.2f} s" if kf["time_s"] is not None else "      ?"
        i = kf["index"]
        m = f", motion to next {motion[i]:.1f} px/frame" if i < len(motion) else ""
        m += f" ({motion_phrase(motion[i], tuple(pan[i]))})" if i < min(len(motion), len(pan)) else ""
        p = f", PSSS vs previous {psss[kf['index']]:.2f}" if kf["index"] < len(psss) and kf["index"] else ""
        frame = f"{kf['frame']:5d}" if kf["frame"] is not None else "    ?"
        add(f"  keyframe {kf['index']:3d}: frame {frame} at {t}, {_coding(kf)}, {kf['bytes']} bytes{p}{m}")
    if (base := info.get("base_layer")) is not None:
        add(f"base layer (robust MCS): {len(base['frames'])} keyframes coded again, coarser, one in "
            f"{base['stride']} of the track's, at frames {base['frames']}, {base['bytes']} bytes; "
            f"intra at keyframes {base['intra']}")
    if "colour_layout" in info:
        add(f"colour layout (shown where no keyframe arrived): {info['colour_layout']}")
    for text in info.get("text", []):
        add(f"  text for interval {text['interval']} (keyframe {text['interval']} to {text['interval'] + 1}): "
              f"{text['text']}")
    add(f"segments: {len(info['segments'])} intact, {info['corrupt_regions']} damaged/missing stretch(es)")
    return "\n".join(lines)


def _coding(keyframe: dict) -> str:
    if "coded_size" in keyframe:
        return f"intra image {keyframe['coded_size']}"
    if keyframe["coding"] == "intra":
        return "AV1 intra (recovery point)"
    chain = keyframe["chain_from"]
    source = f"keyframes {chain}..{keyframe['index'] - 1}" if chain is not None else "a missing keyframe"
    return f"AV1 predicted from {source}"

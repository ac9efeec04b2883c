"""A contact sheet of a bitstream's keyframes: each tile captioned with frame, time, bytes, PSSS and the
description of the interval it opens."""

from __future__ import annotations

import textwrap
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from semantic.bitstream import (
    TIMING_KINDS,
    BitstreamError,
    KeyframeImage,
    ParsedStream,
    SegmentType,
    StreamHeader,
    first_segment,
    parse_stream,
    timing_of,
    unpack_psss,
)
from semantic.image_codec import decode_image
from semantic.text_codec import decompress_text
from semantic.track import decode_track, is_intra, track_units

TILE_WIDTH = 240
CAPTION = 30
LINE = 12  # pixels per caption line (PIL's default font)
TEXT_LINES, TEXT_WIDTH = 3, 38  # description lines under a tile, characters per line


MAX_TRACK_TILES = 48  # a track may hold a keyframe per frame: the sheet shows this many, evenly spread


def _track_tiles(parsed: ParsedStream, header: StreamHeader, tile_h: int, p_prev: list[float]) -> list:
    """Tiles of the keyframe track's decoded units (what the decoder shows), captioned with
    their coding: intra (a recovery point) or predicted."""
    chunks = parsed.of_type(SegmentType.TRACK)
    timing = first_segment(parsed.segments, *TIMING_KINDS)
    if not chunks or timing is None:
        return []
    try:
        plan = timing_of(timing, header.frames)[0]
    except BitstreamError:
        return []
    units = track_units(chunks)
    track = decode_track(units, header.width, header.height, len(plan))
    shown = sorted(i for i in track.images if i < len(plan))
    if len(shown) > MAX_TRACK_TILES:
        shown = [shown[round(k * (len(shown) - 1) / (MAX_TRACK_TILES - 1))] for k in range(MAX_TRACK_TILES)]
    tiles = []
    for i in shown:
        coded = track.images[i]
        image = cv2.resize(coded, (TILE_WIDTH, tile_h), interpolation=cv2.INTER_CUBIC)
        kind = "AV1 intra" if is_intra(units[i]) else "AV1 predicted"
        caption = (f"#{i} frame {plan[i]}  {plan[i] / float(header.fps):.2f} s\n{len(units[i])} B {kind}, "
                   f"{coded.shape[1]}x{coded.shape[0]}")
        if 0 < i < len(p_prev):
            caption += f", PSSS {p_prev[i]:.2f}"
        tiles.append((image, caption))
    return tiles


def contact_sheet(data: bytes, path: Path, columns: int = 4) -> int:
    """Write the sheet to ``path`` (PNG); returns the number of keyframes drawn."""
    parsed = parse_stream(data)
    header = parsed.header
    if header is None:
        raise BitstreamError("bitstream has no intact stream header")
    psss = first_segment(parsed.segments, SegmentType.PSSS)
    p_prev = unpack_psss(psss.payload) if psss else []
    texts = {seg.index: decompress_text(seg.payload) or "" for seg in parsed.of_type(SegmentType.TEXT)}
    caption_h = CAPTION + (TEXT_LINES * LINE if texts else 0)
    tile_h = max(16, round(TILE_WIDTH * header.height / header.width))
    tiles = []
    for seg in sorted(parsed.of_type(SegmentType.KEYFRAME_IMAGE), key=lambda s: s.index):
        try:
            keyframe = KeyframeImage.unpack(seg.payload)
            image = decode_image(keyframe.data, TILE_WIDTH, tile_h)
        except (BitstreamError, ValueError):
            continue  # unusable keyframes are left out, as the decoder leaves them
        frame, w, h = keyframe.frame, keyframe.width, keyframe.height
        caption = f"#{seg.index} frame {frame}  {frame / float(header.fps):.2f} s\n{len(keyframe.data)} B, {w}x{h}"
        if seg.index < len(p_prev) and seg.index:
            caption += f", PSSS {p_prev[seg.index]:.2f}"
        if texts.get(seg.index):  # the description of the interval this keyframe opens
            caption += "\n" + "\n".join(textwrap.wrap(texts[seg.index], TEXT_WIDTH)[:TEXT_LINES])
        tiles.append((image, caption))
    tiles += _track_tiles(parsed, header, tile_h, p_prev)
    rows = max(1, -(-len(tiles) // columns))
    sheet = Image.new("RGB", (columns * TILE_WIDTH, rows * (tile_h + caption_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (image, caption) in enumerate(tiles):
        x, y = (i % columns) * TILE_WIDTH, (i // columns) * (tile_h + caption_h)
        sheet.paste(Image.fromarray(np.asarray(image)), (x, y))
        draw.multiline_text((x + 4, y + tile_h + 2), caption, fill="black", spacing=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return len(tiles)

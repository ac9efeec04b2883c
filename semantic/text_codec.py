"""Short descriptions <-> bytes: raw DEFLATE with a preset dictionary of common caption words.

A one-sentence caption is 40-120 characters, too short for DEFLATE to find repeats in itself;
a fixed dictionary of words captions use lets it copy them instead (about 40 % smaller on
typical captions). Both ends hold the same dictionary; a change of it is a format change.
"""

from __future__ import annotations

import zlib

DICTIONARY = (
    " a an the of in on at to with and or from by is are was were it its this that there their"
    " camera shot scene view video frame close-up wide aerial moving moves slowly quickly fast slow"
    " left right up down forward backward across through along around toward away pans tilts zooms"
    " static still person people man woman child group crowd animal dog cat bird rabbit tree trees"
    " grass field forest road street city building house room wall sky clouds water river sea"
    " beach mountain hill snow sun light dark night day bright green blue red white black yellow"
    " brown grey car bike bicycle riding rider cyclist walking running standing sitting looking"
    " playing holding background foreground large small big"
).encode("ascii")
MAX_TEXT_BYTES = 1024  # decoded length cap: a damaged segment never inflates without bound
WBITS = -15  # raw DEFLATE: no zlib header, the segment's CRC32 already guards it


def compress_text(text: str) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, WBITS, zdict=DICTIONARY)
    return packer.compress(text.encode("utf-8")) + packer.flush()


def decompress_text(data: bytes) -> str | None:
    """The text, or None when ``data`` is not a valid compressed description."""
    try:
        unpacker = zlib.decompressobj(WBITS, zdict=DICTIONARY)
        raw = unpacker.decompress(data, MAX_TEXT_BYTES)
        if unpacker.unconsumed_tail or not unpacker.eof:
            return None
        return raw.decode("utf-8")
    except (zlib.error, UnicodeDecodeError):
        return None

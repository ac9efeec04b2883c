"""Quasi-cyclic LDPC codes (IEEE 802.11n), systematic encoder and normalized min-sum decoder.

Plain numpy, no GNU Radio: the GR blocks in ``gr_blocks`` only wrap these classes.
LLR convention: ``llr = log P(bit=0) / P(bit=1)`` (positive means 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

# IEEE 802.11n-2009 Table 20-14, n = 1944, rate 1/2, Z = 81 (-1: zero block, s: identity shifted by s).
_BASE_1944_R12 = """
57 -1 -1 -1 50 -1 11 -1 50 -1 79 -1 1 0 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1
3 -1 28 -1 0 -1 -1 -1 55 7 -1 -1 -1 0 0 -1 -1 -1 -1 -1 -1 -1 -1 -1
30 -1 -1 -1 24 37 -1 -1 56 14 -1 -1 -1 -1 0 0 -1 -1 -1 -1 -1 -1 -1 -1
62 53 -1 -1 53 -1 -1 3 35 -1 -1 -1 -1 -1 -1 0 0 -1 -1 -1 -1 -1 -1 -1
40 -1 -1 20 66 -1 -1 22 28 -1 -1 -1 -1 -1 -1 -1 0 0 -1 -1 -1 -1 -1 -1
0 -1 -1 -1 8 -1 42 -1 50 -1 -1 8 -1 -1 -1 -1 -1 0 0 -1 -1 -1 -1 -1
69 79 79 -1 -1 -1 56 -1 52 -1 -1 -1 0 -1 -1 -1 -1 -1 0 0 -1 -1 -1 -1
65 -1 -1 -1 38 57 -1 -1 72 -1 27 -1 -1 -1 -1 -1 -1 -1 -1 0 0 -1 -1 -1
64 -1 -1 -1 14 52 -1 -1 30 -1 -1 32 -1 -1 -1 -1 -1 -1 -1 -1 0 0 -1 -1
-1 45 -1 70 0 -1 -1 -1 77 9 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 0 0 -1
2 56 -1 57 35 -1 -1 -1 -1 -1 12 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 0 0
24 -1 61 -1 60 -1 -1 27 51 -1 -1 16 1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 0
"""

BASE_MATRICES: dict[str, tuple[str, int]] = {"802.11n-1944-1/2": (_BASE_1944_R12, 81)}


def parse_base_matrix(text: str) -> np.ndarray:
    return np.array([[int(v) for v in line.split()] for line in text.strip().splitlines()], dtype=np.int64)


def expand_qc(base: np.ndarray, z: int) -> tuple[np.ndarray, np.ndarray]:
    """Edges (row, col) of the parity-check matrix expanded from a QC base matrix."""
    rows, cols = [], []
    for r, c in zip(*np.nonzero(base >= 0), strict=True):
        shift = base[r, c]
        i = np.arange(z)
        rows.append(r * z + i)
        cols.append(c * z + (i + shift) % z)
    return np.concatenate(rows), np.concatenate(cols)


def _gf2_solve_parity(h: np.ndarray, k: int) -> np.ndarray:
    """P with p = P u (mod 2) for H = [Hs | Hp], by Gauss-Jordan elimination of Hp (packed bits)."""
    m = h.shape[0]
    aug = np.concatenate([h[:, k:], h[:, :k]], axis=1).astype(np.uint8)  # [Hp | Hs]
    packed = np.packbits(aug, axis=1)
    for col in range(m):
        byte, bit = divmod(col, 8)
        column = (packed[col:, byte] >> (7 - bit)) & 1
        candidates = np.flatnonzero(column)
        if candidates.size == 0:
            raise ValueError("parity part of H is singular; code needs a column permutation")
        pivot = col + candidates[0]
        if pivot != col:
            packed[[col, pivot]] = packed[[pivot, col]]
        rows = np.flatnonzero((packed[:, byte] >> (7 - bit)) & 1)
        rows = rows[rows != col]
        packed[rows] ^= packed[col]
    # Now [I | Hp^-1 Hs]: parity = Hp^-1 Hs u.
    return np.unpackbits(packed, axis=1)[:, m : m + k]


@dataclass(frozen=True)
class DecodeResult:
    bits: np.ndarray  # (batch, k) info bits
    iterations: np.ndarray  # (batch,) iterations used
    valid: np.ndarray  # (batch,) all parity checks satisfied


class LdpcCode:
    """A binary LDPC code with a systematic encoder (codeword = [info | parity])."""

    def __init__(self, check_rows: np.ndarray, var_cols: np.ndarray, n: int, m: int, name: str = "") -> None:
        self.name, self.n, self.m, self.k = name, n, m, n - m
        h = np.zeros((m, n), dtype=np.uint8)
        h[check_rows, var_cols] = 1
        self.h = h
        self.parity_map = _gf2_solve_parity(h, self.k)  # (m, k)
        # Messages live in a check-major padded layout (m, dc_max) flattened; slot m*dc_max is a
        # sentinel that always holds 0, so variable sums need no scatter.
        chk_edges = _padded_groups(check_rows, m)
        self._dc = chk_edges.shape[1]
        pad = chk_edges == check_rows.size
        self._slot_pad = pad.reshape(-1)
        self._slot_var = np.where(pad, 0, var_cols[np.minimum(chk_edges, check_rows.size - 1)]).reshape(-1)
        slots = np.flatnonzero(~self._slot_pad)
        var_slots = _padded_groups(self._slot_var[slots], n)
        sentinel = self._slot_pad.size
        self._var_gather = np.where(var_slots == slots.size, sentinel, slots[np.minimum(var_slots, slots.size - 1)])

    @property
    def rate(self) -> float:
        return self.k / self.n

    def encode(self, info: np.ndarray) -> np.ndarray:
        """(batch, k) bits -> (batch, n) systematic codewords."""
        info = np.atleast_2d(info).astype(np.uint8)
        parity = (info.astype(np.int32) @ self.parity_map.T.astype(np.int32)) & 1
        return np.concatenate([info, parity.astype(np.uint8)], axis=1)

    def syndrome_ok(self, codewords: np.ndarray) -> np.ndarray:
        cw = np.atleast_2d(codewords).astype(np.int32)
        return ~np.any((cw @ self.h.T.astype(np.int32)) & 1, axis=1)

    def decode(self, llr: np.ndarray, max_iter: int = 50, alpha: float = 0.75) -> DecodeResult:
        """Normalized min-sum, flooding schedule, vectorized over the batch, early stop.

        Only codewords whose checks still fail are processed in later iterations.
        """
        llr = np.atleast_2d(np.asarray(llr, dtype=np.float32))
        batch = llr.shape[0]
        c2v = np.zeros((batch, self._slot_pad.size + 1), dtype=np.float32)
        iterations = np.full(batch, max_iter)
        hard = (llr < 0).astype(np.uint8)
        active = np.arange(batch)
        for it in range(max_iter + 1):
            total = llr[active] + c2v[active][:, self._var_gather].sum(axis=2)
            bits = (total < 0).astype(np.uint8)
            hard[active] = bits
            ok = self._checks_ok(bits)
            iterations[active[ok]] = it
            keep = ~ok
            if it == max_iter or not keep.any():
                break
            active, total = active[keep], total[keep]
            v2c = total[:, self._slot_var] - c2v[active, :-1]
            c2v[active, :-1] = self._check_update(v2c, alpha)
        valid = self.syndrome_ok(hard) if active.size else np.ones(batch, dtype=bool)
        return DecodeResult(hard[:, : self.k], iterations, valid)

    def _checks_ok(self, bits: np.ndarray) -> np.ndarray:
        slot_bits = np.where(self._slot_pad, 0, bits[:, self._slot_var]).reshape(bits.shape[0], self.m, self._dc)
        return ~np.any(np.bitwise_xor.reduce(slot_bits, axis=2), axis=1)

    def _check_update(self, v2c: np.ndarray, alpha: float) -> np.ndarray:
        batch = v2c.shape[0]
        v2c = np.where(self._slot_pad, np.float32(np.inf), v2c).reshape(batch, self.m, self._dc)
        mags = np.abs(v2c)
        neg = v2c < 0
        sign_all = np.bitwise_xor.reduce(neg, axis=2, keepdims=True)
        idx_min = np.argmin(mags, axis=2)[..., None]
        min1 = np.take_along_axis(mags, idx_min, axis=2)
        np.put_along_axis(mags, idx_min, np.float32(np.inf), axis=2)
        min2 = mags.min(axis=2, keepdims=True)
        is_min = np.arange(self._dc) == idx_min
        out = np.float32(alpha) * np.where(is_min, min2, min1)
        out = np.where(sign_all ^ neg, -out, out)
        return np.where(self._slot_pad, np.float32(0), out.reshape(batch, -1))


def _padded_groups(keys: np.ndarray, count: int) -> np.ndarray:
    """For each key value, the indices having it, padded with the sentinel len(keys)."""
    order = np.argsort(keys, kind="stable")
    degrees = np.bincount(keys, minlength=count)
    out = np.full((count, degrees.max()), keys.size, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(degrees)[:-1]])
    for d in range(degrees.max()):
        has = degrees > d
        out[has, d] = order[starts[has] + d]
    return out


@cache
def get_code(name: str) -> LdpcCode:
    """Build (once per process) a registered code by name, e.g. ``802.11n-1944-1/2``."""
    if name not in BASE_MATRICES:
        raise KeyError(f"unknown LDPC code {name!r}; known: {', '.join(BASE_MATRICES)}")
    text, z = BASE_MATRICES[name]
    base = parse_base_matrix(text)
    rows, cols = expand_qc(base, z)
    return LdpcCode(rows, cols, base.shape[1] * z, base.shape[0] * z, name)

"""Quasi-cyclic LDPC codes (IEEE 802.11n), systematic encoder and normalized min-sum decoder.

Plain numpy, no GNU Radio: the GR blocks in ``gr_blocks`` only wrap these classes.
LLR convention: ``llr = log P(bit=0) / P(bit=1)`` (positive means 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

try:  # compiled kernel; the vectorized numpy reference serves where numba is missing
    from lgvsc_phy.ldpc_kernels import layered_min_sum, layered_min_sum_lanes
except ImportError:  # GNU Radio Companion's system Python may lack numba
    layered_min_sum = layered_min_sum_lanes = None

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

# IEEE 802.11n-2009 Table 20-15/16/17 (n = 1944, Z = 81), rates 2/3, 3/4, 5/6.
_BASE_1944_R23 = """
61 75 4 63 56 -1 -1 -1 -1 -1 -1 8 -1 2 17 25 1 0 -1 -1 -1 -1 -1 -1
56 74 77 20 -1 -1 -1 64 24 4 67 -1 7 -1 -1 -1 -1 0 0 -1 -1 -1 -1 -1
28 21 68 10 7 14 65 -1 -1 -1 23 -1 -1 -1 75 -1 -1 -1 0 0 -1 -1 -1 -1
48 38 43 78 76 -1 -1 -1 -1 5 36 -1 15 72 -1 -1 -1 -1 -1 0 0 -1 -1 -1
40 2 53 25 -1 52 62 -1 20 -1 -1 44 -1 -1 -1 -1 0 -1 -1 -1 0 0 -1 -1
69 23 64 10 22 -1 21 -1 -1 -1 -1 -1 68 23 29 -1 -1 -1 -1 -1 -1 0 0 -1
12 0 68 20 55 61 -1 40 -1 -1 -1 52 -1 -1 -1 44 -1 -1 -1 -1 -1 -1 0 0
58 8 34 64 78 -1 -1 11 78 24 -1 -1 -1 -1 -1 58 1 -1 -1 -1 -1 -1 -1 0
"""

_BASE_1944_R34 = """
48 29 28 39 9 61 -1 -1 -1 63 45 80 -1 -1 -1 37 32 22 1 0 -1 -1 -1 -1
4 49 42 48 11 30 -1 -1 -1 49 17 41 37 15 -1 54 -1 -1 -1 0 0 -1 -1 -1
35 76 78 51 37 35 21 -1 17 64 -1 -1 -1 59 7 -1 -1 32 -1 -1 0 0 -1 -1
9 65 44 9 54 56 73 34 42 -1 -1 -1 35 -1 -1 -1 46 39 0 -1 -1 0 0 -1
3 62 7 80 68 26 -1 80 55 -1 36 -1 26 -1 9 -1 72 -1 -1 -1 -1 -1 0 0
26 75 33 21 69 59 3 38 -1 -1 -1 35 -1 62 36 26 -1 -1 1 -1 -1 -1 -1 0
"""

_BASE_1944_R56 = """
13 48 80 66 4 74 7 30 76 52 37 60 -1 49 73 31 74 73 23 -1 1 0 -1 -1
69 63 74 56 64 77 57 65 6 16 51 -1 64 -1 68 9 48 62 54 27 -1 0 0 -1
51 15 0 80 24 25 42 54 44 71 71 9 67 35 -1 58 -1 29 -1 53 0 -1 0 0
16 29 36 41 44 56 59 37 50 24 -1 65 4 65 52 -1 4 -1 73 52 1 -1 -1 0
"""

BASE_MATRICES: dict[str, tuple[str, int]] = {
    "802.11n-1944-1/2": (_BASE_1944_R12, 81),
    "802.11n-1944-2/3": (_BASE_1944_R23, 81),
    "802.11n-1944-3/4": (_BASE_1944_R34, 81),
    "802.11n-1944-5/6": (_BASE_1944_R56, 81),
}


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
    """A quasi-cyclic LDPC code: systematic encoder (codeword = [info | parity]) and a layered
    normalized min-sum decoder that runs each base-matrix row (a layer of Z checks) as one
    vectorized step over all checks of the layer and all codewords of the batch."""

    LANES = 32  # codewords decoded side by side by the compiled kernel

    def __init__(self, base: np.ndarray, z: int, name: str = "") -> None:
        self.name, self.base, self.z = name, base, z
        self.n, self.m = base.shape[1] * z, base.shape[0] * z
        self.k = self.n - self.m
        rows, cols = expand_qc(base, z)
        h = np.zeros((self.m, self.n), dtype=np.uint8)
        h[rows, cols] = 1
        self.h = h
        self.parity_map = _gf2_solve_parity(h, self.k)  # (m, k)
        # Column j of P as packed 64-bit words: encoding XORs the columns of the info bits set,
        # ~15 us a codeword from 120 KB, where a float matrix product streamed 3.8 MB.
        words = -(-self.m // 64)
        columns = np.zeros((self.k, words * 64), dtype=np.uint8)
        columns[:, : self.m] = self.parity_map.T
        self._parity_columns = np.packbits(columns, axis=1, bitorder="little").view(np.uint64)
        i = np.arange(z)
        # Layer r: variable index of check (r, i) on its j-th block is c_j * Z + (i + s_j) mod Z.
        self.layers = [
            np.stack([c * z + (i + base[r, c]) % z for c in np.flatnonzero(base[r] >= 0)])
            for r in range(base.shape[0])
        ]
        deg = max(len(layer) for layer in self.layers)
        padded = np.full((base.shape[0], deg, z), self.n, dtype=np.int64)  # n: an always-zero column
        for r, layer in enumerate(self.layers):
            padded[r, : len(layer)] = layer
        self._check_gather = padded.transpose(0, 2, 1).reshape(self.m, deg)
        # CSR layout of H for the compiled kernel: check rows in order, each with its variables.
        order = np.lexsort((cols, rows))
        self._edge_var = cols[order].astype(np.int64)
        self._check_ptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=self.m))]).astype(np.int64)

    @property
    def rate(self) -> float:
        return self.k / self.n

    def encode(self, info: np.ndarray) -> np.ndarray:
        """(batch, k) bits -> (batch, n) systematic codewords."""
        info = np.atleast_2d(info).astype(np.uint8)
        parity = np.zeros((info.shape[0], self._parity_columns.shape[1]), dtype=np.uint64)
        for row, bits in zip(parity, info, strict=True):
            np.bitwise_xor.reduce(self._parity_columns[bits.astype(bool)], axis=0, out=row)
        unpacked = np.unpackbits(parity.view(np.uint8), axis=1, bitorder="little")[:, : self.m]
        return np.concatenate([info, unpacked], axis=1)

    def syndrome_ok(self, codewords: np.ndarray) -> np.ndarray:
        bits = np.atleast_2d(codewords).astype(np.uint8)
        padded = np.concatenate([bits, np.zeros((bits.shape[0], 1), np.uint8)], axis=1)
        return ~np.any(np.bitwise_xor.reduce(padded[:, self._check_gather], axis=2), axis=1)

    def decode(self, llr: np.ndarray, max_iter: int = 50, alpha: float = 0.8) -> DecodeResult:
        """Row-layered normalized min-sum, compiled (numba); the numpy reference if numba is absent.

        Batches of ``LANES / 2`` or more codewords run ``LANES`` side by side (SIMD across
        codewords, about 5x faster per codeword); smaller ones one codeword at a time.
        """
        if layered_min_sum is None:
            return self.decode_reference(llr, max_iter, alpha)
        llr = np.ascontiguousarray(np.atleast_2d(np.asarray(llr, dtype=np.float32)))
        batch = llr.shape[0]
        post = np.empty_like(llr)
        iterations = np.empty(batch, dtype=np.int64)
        if batch >= self.LANES // 2:
            layered_min_sum_lanes(llr, self._check_ptr, self._edge_var, int(max_iter), float(alpha), post, iterations,
                                  self.LANES)
        else:
            layered_min_sum(llr, self._check_ptr, self._edge_var, int(max_iter), float(alpha), post, iterations)
        hard = (post < 0).astype(np.uint8)
        # The kernels stop a codeword as soon as its checks hold: only those that ran out of
        # iterations need a syndrome check here.
        valid = iterations < max_iter
        if not valid.all():
            valid[~valid] = self.syndrome_ok(hard[~valid])
        return DecodeResult(hard[:, : self.k], iterations, valid)

    def decode_reference(self, llr: np.ndarray, max_iter: int = 50, alpha: float = 0.8) -> DecodeResult:
        """Layered normalized min-sum in vectorized numpy, with per-codeword early stop.

        A layer updates the posteriors right away, so later layers of the same iteration use
        them: about half the iterations of a flooding schedule. Posteriors are kept variable-
        major, (n, batch), so a layer's reductions over its blocks are element-wise operations
        on contiguous (Z, batch) slabs. Codewords whose parity checks hold leave the batch.
        """
        llr = np.atleast_2d(np.asarray(llr, dtype=np.float32))
        batch = llr.shape[0]
        post = np.ascontiguousarray(llr.T)  # (n, batch)
        done = np.empty_like(post)
        iterations = np.full(batch, max_iter)
        r_msgs = [np.zeros((len(layer), self.z, batch), dtype=np.float32) for layer in self.layers]
        active = np.arange(batch)
        a, inf = np.float32(alpha), np.float32(np.inf)
        for it in range(max_iter + 1):
            ok = self._checks_ok_t(post)
            if ok.any():
                done[:, active[ok]] = post[:, ok]
                iterations[active[ok]] = it
                keep = ~ok
                active, post = active[keep], np.ascontiguousarray(post[:, keep])
                r_msgs = [r[:, :, keep] for r in r_msgs]
            if it == max_iter or active.size == 0:
                break
            for layer, r_old in zip(self.layers, r_msgs, strict=True):
                t = post[layer] - r_old  # (deg, Z, b) variable-to-check messages
                mags = np.abs(t)
                min1 = mags.min(axis=0)
                is_first = mags == min1
                min2 = np.where(is_first, inf, mags).min(axis=0)
                sign = np.where(t < 0, -a, a)
                sign_all = np.prod(np.where(t < 0, np.float32(-1), np.float32(1)), axis=0)
                r_new = sign * sign_all * np.where(is_first, min2, min1)
                r_old[...] = r_new
                post[layer] = t + r_new
        if active.size:
            done[:, active] = post
        hard = (done.T < 0).astype(np.uint8)
        return DecodeResult(hard[:, : self.k], iterations, self.syndrome_ok(hard))

    def _checks_ok_t(self, post_t: np.ndarray) -> np.ndarray:
        """Per codeword: all parity checks hold on the hard decisions of (n, batch) posteriors."""
        bits = np.concatenate([post_t < 0, np.zeros((1, post_t.shape[1]), bool)], axis=0)
        return ~np.any(np.logical_xor.reduce(bits[self._check_gather], axis=1), axis=0)

    def to_alist(self) -> str:
        """The parity-check matrix in MacKay's alist format (what GNU Radio's fec.ldpc_* read)."""
        col_rows = [np.flatnonzero(self.h[:, c]) + 1 for c in range(self.n)]
        row_cols = [np.flatnonzero(self.h[r]) + 1 for r in range(self.m)]
        max_c, max_r = max(map(len, col_rows)), max(map(len, row_cols))
        pad = lambda v, width: " ".join(map(str, list(v) + [0] * (width - len(v))))  # noqa: E731
        lines = [f"{self.n} {self.m}", f"{max_c} {max_r}", " ".join(str(len(v)) for v in col_rows),
                 " ".join(str(len(v)) for v in row_cols)]
        lines += [pad(v, max_c) for v in col_rows] + [pad(v, max_r) for v in row_cols]
        return "\n".join(lines) + "\n"


@cache
def get_code(name: str) -> LdpcCode:
    """Build (once per process) a registered code by name, e.g. ``802.11n-1944-1/2``."""
    if name not in BASE_MATRICES:
        raise KeyError(f"unknown LDPC code {name!r}; known: {', '.join(BASE_MATRICES)}")
    text, z = BASE_MATRICES[name]
    return LdpcCode(parse_base_matrix(text), z, name)

"""Compiled LDPC decoding kernel (numba): row-layered normalized min-sum, one codeword at a time.

Processing check rows one by one is the layered schedule at its finest: every check sees the
posteriors its predecessors just updated. ``LdpcCode.decode_reference`` is the vectorized numpy
version of the same algorithm (per base-matrix layer); the tests hold the two to the same
results.
"""

from __future__ import annotations

import numpy as np
from numba import njit

BIG = np.float32(3e38)  # "no minimum yet": fastmath assumes no infinities


@njit(cache=True, nogil=True, fastmath=True)
def layered_min_sum(llr: np.ndarray, check_ptr: np.ndarray, edge_var: np.ndarray, max_iter: int,
                    alpha: float, post: np.ndarray, iterations: np.ndarray) -> None:
    """Decode each row of ``llr`` (batch, n) into ``post``; iterations used go to ``iterations``.

    ``check_ptr`` (m + 1) and ``edge_var`` (E) are the CSR layout of H: check c connects to
    variables ``edge_var[check_ptr[c]:check_ptr[c + 1]]``.
    """
    batch, n = llr.shape
    m = check_ptr.size - 1
    r_msg = np.zeros(edge_var.size, dtype=np.float32)
    t = np.empty(64, dtype=np.float32)
    a = np.float32(alpha)
    for b in range(batch):
        p = post[b]
        p[:] = llr[b]
        r_msg[:] = 0
        iterations[b] = max_iter
        for it in range(max_iter + 1):
            ok = True
            for c in range(m):  # syndrome of the current hard decisions
                parity = 0
                for e in range(check_ptr[c], check_ptr[c + 1]):
                    if p[edge_var[e]] < 0:
                        parity ^= 1
                if parity:
                    ok = False
                    break
            if ok:
                iterations[b] = it
                break
            if it == max_iter:
                break
            for c in range(m):
                lo, hi = check_ptr[c], check_ptr[c + 1]
                min1 = BIG
                min2 = BIG
                first = -1
                negative = 0
                for e in range(lo, hi):
                    v = p[edge_var[e]] - r_msg[e]
                    t[e - lo] = v
                    mag = abs(v)
                    if v < 0:
                        negative ^= 1
                    if mag < min1:
                        min2 = min1
                        min1 = mag
                        first = e
                    elif mag < min2:
                        min2 = mag
                for e in range(lo, hi):
                    v = t[e - lo]
                    mag = min2 if e == first else min1
                    sign = negative ^ (1 if v < 0 else 0)
                    r = a * mag
                    if sign:
                        r = -r
                    r_msg[e] = r
                    p[edge_var[e]] = v + r


@njit(cache=True, nogil=True, fastmath=True)
def layered_min_sum_lanes(llr: np.ndarray, check_ptr: np.ndarray, edge_var: np.ndarray, max_iter: int,
                          alpha: float, post_out: np.ndarray, iterations: np.ndarray, lanes: int) -> None:
    """The same decoder over ``lanes`` codewords side by side, so every check update is a loop
    over lanes that the compiler turns into SIMD (it does from 32 lanes on).

    Lanes are refilled as they finish: when a codeword's checks hold (or it hits ``max_iter``)
    its posteriors go out and the next codeword of ``llr`` (batch, n) takes its lane, so the
    batch costs the mean number of iterations, not the worst.
    """
    batch, n = llr.shape
    m = check_ptr.size - 1
    post = np.zeros((n, lanes), dtype=np.float32)
    r_msg = np.zeros((edge_var.size, lanes), dtype=np.float32)
    t = np.empty((64, lanes), dtype=np.float32)
    min1 = np.empty(lanes, dtype=np.float32)
    min2 = np.empty(lanes, dtype=np.float32)
    first = np.empty(lanes, dtype=np.int64)
    negative = np.empty(lanes, dtype=np.bool_)
    failed = np.empty(lanes, dtype=np.bool_)
    parity = np.empty(lanes, dtype=np.bool_)
    owner = np.full(lanes, -1, dtype=np.int64)  # codeword in each lane, -1 when idle
    age = np.zeros(lanes, dtype=np.int64)  # iterations done by the lane's codeword
    a = np.float32(alpha)
    next_cw = 0
    for b in range(lanes):  # initial fill
        if next_cw < batch:
            owner[b] = next_cw
            for v in range(n):
                post[v, b] = llr[next_cw, v]
            next_cw += 1
    busy = min(lanes, batch)
    while busy > 0:
        failed[:] = False
        for c in range(m):
            parity[:] = False
            for e in range(check_ptr[c], check_ptr[c + 1]):
                v = edge_var[e]
                for b in range(lanes):
                    parity[b] ^= post[v, b] < 0
            for b in range(lanes):
                failed[b] |= parity[b]
        for b in range(lanes):  # retire finished codewords, refill their lanes
            cw = owner[b]
            if cw < 0 or (failed[b] and age[b] < max_iter):
                continue
            iterations[cw] = age[b]
            for v in range(n):
                post_out[cw, v] = post[v, b]
            owner[b] = -1
            busy -= 1
            if next_cw < batch:
                owner[b] = next_cw
                age[b] = 0
                for v in range(n):
                    post[v, b] = llr[next_cw, v]
                for e in range(edge_var.size):
                    r_msg[e, b] = 0
                next_cw += 1
                busy += 1
        if busy == 0:
            break
        for c in range(m):
            lo, hi = check_ptr[c], check_ptr[c + 1]
            for b in range(lanes):
                min1[b] = BIG
                min2[b] = BIG
                negative[b] = False
            for e in range(lo, hi):
                var = edge_var[e]
                k = e - lo
                for b in range(lanes):
                    v = post[var, b] - r_msg[e, b]
                    t[k, b] = v
                    mag = abs(v)
                    negative[b] ^= v < 0
                    small = mag < min1[b]
                    min2[b] = min1[b] if small else min(min2[b], mag)
                    first[b] = e if small else first[b]
                    min1[b] = mag if small else min1[b]
            for e in range(lo, hi):
                var = edge_var[e]
                k = e - lo
                for b in range(lanes):
                    v = t[k, b]
                    r = a * (min2[b] if first[b] == e else min1[b])
                    r = -r if negative[b] ^ (v < 0) else r
                    r_msg[e, b] = r
                    post[var, b] = v + r
        for b in range(lanes):
            age[b] += 1

"""Compiled (numba) inner loops of the OFDM receiver, with the numpy versions they must match.

The receiver is a Python block sharing its process's GIL with the LDPC decoder: every
microsecond of numpy call overhead per burst is throughput lost by the whole chain. These
loops run once per sample or per OFDM symbol, release the GIL, and are held to the numpy
reference in tests/test_ofdm_kernels.py.
"""

from __future__ import annotations

import numpy as np

try:
    from numba import njit
except ImportError:  # GNU Radio Companion's system Python may lack numba: numpy below
    njit = None


def schmidl_cox_numpy(r: np.ndarray, half: int) -> tuple[np.ndarray, np.ndarray]:
    """Timing metric |P|^2 / E^2 and the half-symbol correlation P at every start d, with
    P(d) = sum_{i<half} conj(r[d+i]) r[d+i+half] and E(d) = 1/2 sum_{i<2 half} |r[d+i]|^2."""
    if r.size < 2 * half + 1:
        return np.zeros(0), np.zeros(0, dtype=complex)
    r = r.astype(np.complex128)
    c_p = np.concatenate([[0], np.cumsum(np.conj(r[:-half]) * r[half:])])
    c_e = np.concatenate([[0], np.cumsum(np.abs(r) ** 2)])
    m = r.size - 2 * half
    p = c_p[half : half + m] - c_p[:m]
    e = 0.5 * (c_e[2 * half : 2 * half + m] - c_e[:m])
    return np.abs(p) ** 2 / np.maximum(e, 1e-12) ** 2, p


def _schmidl_cox_loop(r: np.ndarray, half: int) -> tuple[np.ndarray, np.ndarray]:
    """The same sums, slid one sample at a time (float64 running sums)."""
    m = r.size - 2 * half
    if m <= 0:
        return np.zeros(0), np.zeros(0, dtype=np.complex128)
    metric = np.empty(m)
    corr = np.empty(m, dtype=np.complex128)
    p = 0j
    e = 0.0
    for i in range(half):
        p += np.conj(np.complex128(r[i])) * r[i + half]
    for i in range(2 * half):
        e += r[i].real * r[i].real + r[i].imag * r[i].imag
    for d in range(m):
        corr[d] = p
        ee = max(0.5 * e, 1e-12)
        metric[d] = (p.real * p.real + p.imag * p.imag) / (ee * ee)
        if d + 1 < m:
            a, b, c = np.complex128(r[d]), np.complex128(r[d + half]), np.complex128(r[d + 2 * half])
            p += np.conj(b) * c - np.conj(a) * b
            e += c.real * c.real + c.imag * c.imag - a.real * a.real - a.imag * a.imag
    return metric, corr


def moving_average_numpy(x: np.ndarray, width: int) -> np.ndarray:
    if x.size < width:
        return np.zeros(0)
    c = np.concatenate([[0.0], np.cumsum(x)])
    return (c[width:] - c[:-width]) / width


def _moving_average_loop(x: np.ndarray, width: int) -> np.ndarray:
    if x.size < width:
        return np.zeros(0)
    out = np.empty(x.size - width + 1)
    s = 0.0
    for i in range(width):
        s += x[i]
    for j in range(out.size):
        out[j] = s / width
        if j + width < x.size:
            s += x[j + width] - x[j]
    return out


def derotated_windows_numpy(buf: np.ndarray, starts: np.ndarray, n: int, cfo: float) -> np.ndarray:
    """(len(starts), n) FFT windows ``buf[s : s + n]``, each sample i times exp(-2 pi j cfo i / n)
    (i absolute in ``buf``): the carrier offset removed before the FFT."""
    idx = starts[:, None] + np.arange(n)[None, :]
    return buf[idx] * np.exp(-2j * np.pi * cfo * idx / n)


def _derotated_windows_loop(buf: np.ndarray, starts: np.ndarray, n: int, cfo: float) -> np.ndarray:
    out = np.empty((starts.size, n), dtype=np.complex128)
    w = -2.0 * np.pi * cfo / n
    step = np.complex128(np.cos(w) + 1j * np.sin(w))
    for row in range(starts.size):
        s = starts[row]
        rot = np.complex128(np.cos(w * s) + 1j * np.sin(w * s))  # exact at each window start
        for k in range(n):
            out[row, k] = buf[s + k] * rot
            rot *= step
    return out


def pilot_phase_numpy(pil: np.ndarray, anchor_weight: float) -> np.ndarray:
    """Per-symbol common phase from the pilot sums ``pil`` (one complex per OFDM symbol).

    What drifts over a burst is residual CFO: a phase line in the symbol index. The slope is
    found coarse to fine from the pilots' lag-1, 4 and 16 correlations (each removing the
    ambiguity of the next), the offset from the de-rotated pilot sum, then both are refined by
    a weighted line fit of the now small residual phases. Nothing noisy is ever unwrapped: one
    bad unwrap at 0 dB flips half a burst. Under 4 symbols (the header) there is no slope: one
    phase, with the preamble (where the channel was measured) as ``anchor_weight`` symbols of
    extra pilot.
    """
    t = np.arange(len(pil), dtype=float)
    if len(pil) < 4:
        anchor = float(np.mean(np.abs(pil))) * anchor_weight
        return np.full(len(pil), np.angle(np.sum(pil) + anchor))
    slope = float(np.angle(np.sum(pil[1:] * np.conj(pil[:-1]))))
    for lag in (4, 16):
        if len(pil) > 2 * lag:
            z = np.sum(pil[lag:] * np.conj(pil[:-lag])) * np.exp(-1j * lag * slope)
            slope += float(np.angle(z)) / lag
    offset = float(np.angle(np.sum(pil * np.exp(-1j * slope * t))))
    residual = np.angle(pil * np.exp(-1j * (offset + slope * t)))
    # Weighted least-squares line through the residual phases, weights |pilot sum|.
    w = np.abs(pil) + 1e-12
    w = w / w.sum()
    mx, my = float(w @ t), float(w @ residual)
    var = float(w @ (t - mx) ** 2)
    fine_slope = float(w @ ((t - mx) * (residual - my))) / var if var > 0 else 0.0
    return offset + my - fine_slope * mx + (slope + fine_slope) * t


def _lag_sum_loop(pil: np.ndarray, lag: int) -> complex:
    z = 0j
    for i in range(lag, pil.size):
        z += pil[i] * np.conj(pil[i - lag])
    return z


_lag_sum = njit(cache=True, nogil=True)(_lag_sum_loop) if njit is not None else _lag_sum_loop


def _pilot_phase_loop(pil: np.ndarray, anchor_weight: float) -> np.ndarray:
    count = pil.size
    out = np.empty(count)
    if count < 4:
        total, mag = 0j, 0.0
        for i in range(count):
            total += pil[i]
            mag += abs(pil[i])
        out[:] = np.angle(total + mag / max(count, 1) * anchor_weight)
        return out
    slope = np.angle(_lag_sum(pil, 1))
    for lag in (4, 16):
        if count > 2 * lag:
            slope += np.angle(_lag_sum(pil, lag) * np.exp(-1j * lag * slope)) / lag
    z = 0j
    for i in range(count):
        z += pil[i] * np.exp(-1j * slope * i)
    offset = np.angle(z)
    wsum, mx, my = 0.0, 0.0, 0.0
    residual = np.empty(count)
    weight = np.empty(count)
    for i in range(count):
        residual[i] = np.angle(pil[i] * np.exp(-1j * (offset + slope * i)))
        weight[i] = abs(pil[i]) + 1e-12
        wsum += weight[i]
    for i in range(count):
        mx += weight[i] / wsum * i
        my += weight[i] / wsum * residual[i]
    var, cov = 0.0, 0.0
    for i in range(count):
        var += weight[i] / wsum * (i - mx) ** 2
        cov += weight[i] / wsum * (i - mx) * (residual[i] - my)
    fine_slope = cov / var if var > 0 else 0.0
    for i in range(count):
        out[i] = offset + my - fine_slope * mx + (slope + fine_slope) * i
    return out


def preamble_search_numpy(buf: np.ndarray, lo: int, hi: int, cfo: float, n: int,
                          preamble: np.ndarray) -> tuple[int, float, float]:
    """Best start of ``preamble`` in ``buf[lo:hi]`` once the carrier offset ``cfo`` is removed:
    ``(offset from lo, correlation power, segment energy there)``. The power adds the squared
    correlations with each half (one OFDM symbol each), so a residual CFO that turns the phase
    between them cannot cancel the peak; the energy is of the ``len(preamble)`` samples at the
    best offset. (-1, 0, 0) when the segment is shorter than the preamble."""
    seg = buf[lo:hi] * np.exp(-2j * np.pi * cfo * np.arange(lo, hi) / n)
    if seg.size < preamble.size:
        return -1, 0.0, 0.0
    half = preamble.size // 2
    c1 = np.abs(np.correlate(seg[:-half], preamble[:half], mode="valid")) ** 2
    c2 = np.abs(np.correlate(seg[half:], preamble[half:], mode="valid")) ** 2
    corr = c1 + c2
    best = int(np.argmax(corr))
    return best, float(corr[best]), float(np.sum(np.abs(seg[best : best + preamble.size]) ** 2))


def _preamble_search_loop(buf: np.ndarray, lo: int, hi: int, cfo: float, n: int,
                          preamble: np.ndarray) -> tuple[int, float, float]:
    """The same search in one pass: a false alarm of the burst detector costs this call only."""
    m, size = hi - lo, preamble.size
    if m < size:
        return -1, 0.0, 0.0
    half = size // 2
    # Real and imaginary parts apart, in float32: the inner products vectorize.
    re = np.empty(m, dtype=np.float32)
    im = np.empty(m, dtype=np.float32)
    w = -2.0 * np.pi * cfo / n
    rot = np.exp(1j * w * lo)
    step = np.exp(1j * w)
    for k in range(m):
        v = buf[lo + k] * rot
        re[k], im[k] = v.real, v.imag
        rot *= step
        if k % 64 == 63:  # keep the recursion exact
            rot = np.exp(1j * w * (lo + k + 1))
    pr = preamble.real.astype(np.float32)
    pi = -preamble.imag.astype(np.float32)  # conjugated
    best, best_power = 0, -1.0
    for j in range(m - size + 1):
        ar = np.float32(0.0)
        ai = np.float32(0.0)
        br = np.float32(0.0)
        bi = np.float32(0.0)
        for i in range(half):
            ar += re[j + i] * pr[i] - im[j + i] * pi[i]
            ai += re[j + i] * pi[i] + im[j + i] * pr[i]
            br += re[j + half + i] * pr[half + i] - im[j + half + i] * pi[half + i]
            bi += re[j + half + i] * pi[half + i] + im[j + half + i] * pr[half + i]
        power = float(ar) ** 2 + float(ai) ** 2 + float(br) ** 2 + float(bi) ** 2
        if power > best_power:
            best, best_power = j, power
    energy = 0.0
    for i in range(size):
        energy += float(re[best + i]) ** 2 + float(im[best + i]) ** 2
    return best, best_power, energy


def rotate_carriers_numpy(spectra: np.ndarray, angle: np.ndarray) -> None:
    """In place: carrier k (centred: -n/2 .. n/2 - 1) of symbol t times exp(j angle[t] k), a
    phase linear in the carrier index (undoing a timing shift of that symbol)."""
    k = np.arange(spectra.shape[1]) - spectra.shape[1] // 2
    spectra *= np.exp(1j * np.outer(angle, k))


def _rotate_carriers_loop(spectra: np.ndarray, angle: np.ndarray) -> None:
    n = spectra.shape[1]
    for t in range(spectra.shape[0]):
        if angle[t] == 0.0:
            continue
        step = np.exp(1j * angle[t])
        rot = np.exp(-1j * angle[t] * (n // 2))
        for c in range(n):
            spectra[t, c] *= rot
            rot *= step


if njit is not None:
    schmidl_cox = njit(cache=True, nogil=True)(_schmidl_cox_loop)
    moving_average = njit(cache=True, nogil=True)(_moving_average_loop)
    derotated_windows = njit(cache=True, nogil=True)(_derotated_windows_loop)
    pilot_phase = njit(cache=True, nogil=True)(_pilot_phase_loop)
    preamble_search = njit(cache=True, nogil=True, fastmath=True)(_preamble_search_loop)
    rotate_carriers = njit(cache=True, nogil=True)(_rotate_carriers_loop)
else:
    schmidl_cox, moving_average = schmidl_cox_numpy, moving_average_numpy
    derotated_windows, pilot_phase = derotated_windows_numpy, pilot_phase_numpy
    preamble_search, rotate_carriers = preamble_search_numpy, rotate_carriers_numpy


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel for the types the receiver passes, so
    the first burst of a stream is not held up by the compiler."""
    buf = np.zeros(256, dtype=np.complex64)
    metric, _ = schmidl_cox(buf, 32)
    moving_average(metric, 8)
    derotated_windows(buf, np.arange(2, dtype=np.int64) * 80, 64, 0.1)
    pilot_phase(np.ones(8, dtype=np.complex128), 1.0)
    pilot_phase(np.ones(3, dtype=np.complex128), 1.0)
    preamble_search(buf, 0, 200, 0.1, 64, np.ones(160, dtype=np.complex128))
    rotate_carriers(np.ones((2, 64), dtype=np.complex128), np.zeros(2))

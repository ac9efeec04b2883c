"""Compiled (numba) inner loops of the OFDM receiver, with the numpy versions they must match.

The receiver is a Python block sharing its process's GIL with the LDPC decoder: every
microsecond of numpy call overhead per burst is throughput lost by the whole chain. These
loops run once per sample or per OFDM symbol, release the GIL, and are held to the numpy
reference in tests/test_ofdm_kernels.py.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def centred_windows_numpy(buf: np.ndarray, starts: np.ndarray, n: int, cfo: float) -> np.ndarray:
    """``derotated_windows`` with sample k of each window times (-1)^k: their FFT comes out in
    centred carrier order (-n/2 .. n/2 - 1), the shift done before the transform for free."""
    return derotated_windows_numpy(buf, starts, n, cfo) * np.where(np.arange(n) % 2, -1.0, 1.0)


def _centred_windows_loop(buf: np.ndarray, starts: np.ndarray, n: int, cfo: float) -> np.ndarray:
    out = derotated_windows(buf, starts, n, cfo)
    for row in range(starts.size):
        for k in range(1, n, 2):
            out[row, k] = -out[row, k]
    return out


def dc_step_numpy(chunk: np.ndarray, level: complex, alpha: float) -> tuple[complex, np.ndarray]:
    """One step of a DC tracker: ``level`` moved by ``alpha`` toward the chunk's mean (summed in
    complex128), then ``chunk - level`` in complex64."""
    level += alpha * (complex(np.mean(chunk, dtype=np.complex128)) - level)
    return level, chunk - np.complex64(level)


def _dc_step_loop(chunk: np.ndarray, level: complex, alpha: float) -> tuple[complex, np.ndarray]:
    total = 0j
    for i in range(chunk.size):
        total += chunk[i]
    level += alpha * (total / chunk.size - level)
    out = np.empty(chunk.size, dtype=np.complex64)
    lev = np.complex64(level)
    for i in range(chunk.size):
        out[i] = chunk[i] - lev
    return level, out


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


def equalize_numpy(spectra: np.ndarray, pilot_idx: np.ndarray, pilot_ref: np.ndarray, data_idx: np.ndarray,
                   chan_data: np.ndarray, anchor_weight: float) -> np.ndarray:
    """Zero-forced data carriers ``(symbols, len(data_idx))`` of ``spectra``, each symbol turned
    back by its common phase: ``pilot_phase`` of the pilot sums against ``pilot_ref`` (the
    conjugated channel times the known pilot, per pilot carrier)."""
    pil = (spectra[:, pilot_idx] * pilot_ref).sum(axis=1)
    phase = pilot_phase_numpy(pil, anchor_weight)
    return spectra[:, data_idx] * np.exp(-1j * phase)[:, None] / chan_data


def _equalize_loop(spectra: np.ndarray, pilot_idx: np.ndarray, pilot_ref: np.ndarray, data_idx: np.ndarray,
                   chan_data: np.ndarray, anchor_weight: float) -> np.ndarray:
    count = spectra.shape[0]
    pil = np.zeros(count, dtype=np.complex128)
    for t in range(count):
        for i in range(pilot_idx.size):
            pil[t] += spectra[t, pilot_idx[i]] * pilot_ref[i]
    phase = pilot_phase(pil, anchor_weight)
    out = np.empty((count, data_idx.size), dtype=np.complex128)
    for t in range(count):
        rot = np.exp(-1j * phase[t])
        for c in range(data_idx.size):
            out[t, c] = spectra[t, data_idx[c]] * rot / chan_data[c]
    return out


def clock_residual_numpy(spectra: np.ndarray, pilot_idx: np.ndarray, pilot_ref: np.ndarray,
                         pilot_carriers: np.ndarray, per_offset: np.ndarray, offset: float,
                         weight: np.ndarray) -> tuple[float, float]:
    """The sample clock offset left in ``spectra`` once ``offset`` is undone, and its precision:
    a weighted least-squares fit of the phase slope across pilot carriers (``weight``: each
    pilot's precision), each symbol's common phase removed first (see
    ``OfdmBurstReceiver._clock_residual``)."""
    slope = -np.outer(per_offset, pilot_carriers)  # phase per unit offset, (symbols, pilots)
    z = spectra[:, pilot_idx] * pilot_ref
    z *= np.exp(-1j * offset * slope)
    resid = np.angle(z * np.conj(np.sum(z, axis=1, keepdims=True)))
    precision = float(np.sum(weight * slope**2))
    if precision <= 0:
        return 0.0, 0.0
    return float(np.sum(weight * slope * resid)) / precision, precision


def _clock_residual_loop(spectra: np.ndarray, pilot_idx: np.ndarray, pilot_ref: np.ndarray,
                         pilot_carriers: np.ndarray, per_offset: np.ndarray, offset: float,
                         weight: np.ndarray) -> tuple[float, float]:
    npil = pilot_idx.size
    z = np.empty(npil, dtype=np.complex128)
    precision, moment = 0.0, 0.0
    for t in range(spectra.shape[0]):
        total = 0j
        for i in range(npil):
            slope = -per_offset[t] * pilot_carriers[i]
            z[i] = spectra[t, pilot_idx[i]] * pilot_ref[i] * np.exp(-1j * offset * slope)
            total += z[i]
        for i in range(npil):
            slope = -per_offset[t] * pilot_carriers[i]
            precision += weight[i] * slope * slope
            moment += weight[i] * slope * np.angle(z[i] * np.conj(total))
    if precision <= 0:
        return 0.0, 0.0
    return moment / precision, precision


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


def sparse_tap_fit_numpy(design_h: np.ndarray, gram: np.ndarray, pinv: np.ndarray, y: np.ndarray, full_dof: int,
                         significant: float, max_taps: int) -> tuple[np.ndarray, float]:
    """Orthogonal matching pursuit of ``y ~ design @ taps`` on the precomputed Gram matrix
    (``design_h`` is the design's conjugate transpose, ``pinv`` its pseudo-inverse): taps are added
    while the strongest normalized correlation with the residual exceeds ``significant`` times
    the full fit's noise variance, refitted jointly at each step. Returns the taps (mostly zero)
    and the residual's noise variance (see ``SparseTapFit``)."""
    corr = design_h @ y
    energy_y = float(np.vdot(y, y).real)
    column_energy = np.real(np.diag(gram))
    rows = y.size
    # ||y - P y||^2 = ||y||^2 - y^H P y for the orthogonal projector P onto the design.
    full_noise = max((energy_y - float(np.vdot(corr, pinv @ y).real)) / full_dof, 1e-12)
    chosen: list[int] = []
    coef = np.zeros(0, dtype=complex)
    resid_corr = corr
    for _ in range(max_taps):
        score = (resid_corr.real**2 + resid_corr.imag**2) / column_energy
        score[chosen] = 0
        best = int(np.argmax(score))
        if chosen and score[best] < significant * full_noise:
            break
        chosen.append(best)
        coef = np.linalg.solve(gram[np.ix_(chosen, chosen)], corr[chosen])
        resid_corr = corr - gram[:, chosen] @ coef
    taps = np.zeros(column_energy.size, dtype=complex)
    taps[chosen] = coef
    resid = energy_y - float(np.vdot(coef, corr[chosen]).real)
    return taps, max(resid / max(rows - len(chosen), 1), 1e-12)


def _solve_small(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a x = b`` by Gaussian elimination with partial pivoting (a few taps: no LAPACK call)."""
    m = b.size
    a, x = a.copy(), b.copy()
    for col in range(m):
        piv = col
        for r in range(col + 1, m):
            if abs(a[r, col]) > abs(a[piv, col]):
                piv = r
        if piv != col:
            for c in range(m):
                a[col, c], a[piv, c] = a[piv, c], a[col, c]
            x[col], x[piv] = x[piv], x[col]
        for r in range(col + 1, m):
            f = a[r, col] / a[col, col]
            for c in range(col, m):
                a[r, c] -= f * a[col, c]
            x[r] -= f * x[col]
    for r in range(m - 1, -1, -1):
        acc = x[r]
        for c in range(r + 1, m):
            acc -= a[r, c] * x[c]
        x[r] = acc / a[r, r]
    return x


def _sparse_tap_fit_loop(design_h: np.ndarray, gram: np.ndarray, pinv: np.ndarray, y: np.ndarray, full_dof: int,
                         significant: float, max_taps: int) -> tuple[np.ndarray, float]:
    """``sparse_tap_fit_numpy`` in loops: one call instead of some forty numpy calls per fit."""
    ntaps, rows = design_h.shape
    corr = np.zeros(ntaps, dtype=np.complex128)
    projected = 0.0
    for t in range(ntaps):
        c = 0j
        p = 0j
        for r in range(rows):
            c += design_h[t, r] * y[r]
            p += pinv[t, r] * y[r]
        corr[t] = c
        projected += (c.conjugate() * p).real
    energy_y = 0.0
    for r in range(rows):
        energy_y += y[r].real ** 2 + y[r].imag ** 2
    full_noise = max((energy_y - projected) / full_dof, 1e-12)
    chosen = np.zeros(max_taps, dtype=np.int64)
    used = np.zeros(ntaps, dtype=np.bool_)
    count = 0
    coef = np.zeros(0, dtype=np.complex128)
    resid_corr = corr.copy()
    for _ in range(max_taps):
        best, top = 0, -1.0
        for t in range(ntaps):
            score = 0.0 if used[t] else (resid_corr[t].real ** 2 + resid_corr[t].imag ** 2) / gram[t, t].real
            if score > top:
                best, top = t, score
        if count > 0 and top < significant * full_noise:
            break
        chosen[count], used[best] = best, True
        count += 1
        sub = np.empty((count, count), dtype=np.complex128)
        rhs = np.empty(count, dtype=np.complex128)
        for i in range(count):
            rhs[i] = corr[chosen[i]]
            for j in range(count):
                sub[i, j] = gram[chosen[i], chosen[j]]
        coef = _solve_small(sub, rhs)
        for t in range(ntaps):
            acc = corr[t]
            for i in range(count):
                acc -= gram[t, chosen[i]] * coef[i]
            resid_corr[t] = acc
    taps = np.zeros(ntaps, dtype=np.complex128)
    explained = 0.0
    for i in range(count):
        taps[chosen[i]] = coef[i]
        explained += (coef[i].conjugate() * corr[chosen[i]]).real
    return taps, max((energy_y - explained) / max(rows - count, 1), 1e-12)


def integer_cfo_numpy(buf: np.ndarray, peak: int, cfo: float, n: int, cp: int, preamble: np.ndarray,
                      search: int) -> int:
    """The integer g (``|g| <= search``) for which ``cfo + 2 g`` subcarrier spacings is the
    carrier offset, given the fractional ``cfo`` (the half-symbol correlation's phase, which
    repeats every 2 spacings). Each hypothesis is tried as ``preamble_search`` does, on starts
    near the metric's ``peak`` (the plateau's start lies within a CP before it): the known
    preamble, 160 samples, correlates coherently only at the right offset (a wrong one leaves
    2 or more spacings of rotation across it). A coherent test: Schmidl and Cox's carrier-pair
    test on the second symbol mistook the offset on ~3 % of bpsk-1/2 bursts at its threshold."""
    best, top = 0, -1.0
    lo, hi = max(0, peak - 2 * cp), min(buf.size, peak + cp + preamble.size)
    for g in range(-search, search + 1):
        start, power, energy = preamble_search_numpy(buf, lo, hi, cfo + 2 * g, n, preamble)
        score = power / energy if start >= 0 and energy > 0 else 0.0
        if score > top:
            best, top = g, score
    return best


def _integer_cfo_loop(buf: np.ndarray, peak: int, cfo: float, n: int, cp: int, preamble: np.ndarray,
                      search: int) -> int:
    """``integer_cfo_numpy``; calls the compiled ``preamble_search``."""
    best, top = 0, -1.0
    lo, hi = max(0, peak - 2 * cp), min(buf.size, peak + cp + preamble.size)
    for g in range(-search, search + 1):
        start, power, energy = preamble_search(buf, lo, hi, cfo + 2 * g, n, preamble)
        score = power / energy if start >= 0 and energy > 0 else 0.0
        if score > top:
            best, top = g, score
    return best


# What ``screen`` found: no candidate left in the buffer, one that needs more samples first, or one
# whose preamble correlation passed (the caller decodes its header).
SCREEN_NONE, SCREEN_WAIT, SCREEN_FOUND = 0, 1, 2


@dataclass(frozen=True)
class ScreenSetup:
    """The burst detector's fixed quantities (``OfdmBurstReceiver``'s frame layout and preamble)."""

    preamble: np.ndarray  # complex128, both preamble symbols with their CPs
    preamble_energy: float
    fft_len: int
    symbol_len: int
    cp_len: int
    need: int  # samples past a detection before its preamble and header can be analysed
    header_span: int  # samples from a burst's start to the end of its header
    min_correlation: float  # normalized preamble correlation that confirms a detection
    cfo_search: int  # integer CFO hypotheses g = -cfo_search .. cfo_search (2g spacings each)
    second_look_gate: float  # smoothed metric an unconfirmed detection needs for a second look at its peak


def screen_numpy(buf: np.ndarray, metric: np.ndarray, corr: np.ndarray, smooth: np.ndarray, rel: int,
                 strict_split: int, strict_threshold: float, threshold: float,
                 setup: ScreenSetup) -> tuple[int, int, int, float, int]:
    """The burst detector's search from buffer index ``rel``, up to the first detection whose
    preamble correlation passes: ``(kind, d, start, cfo, false_alarms)``.

    A detection is where the smoothed Schmidl-Cox metric ``smooth`` exceeds ``threshold``, or
    ``strict_threshold`` before ``strict_split`` (inside the last burst). At each: coarse CFO from
    the half-symbol correlation ``corr`` around the metric's peak, fine timing by
    ``preamble_search``, then the check that the correlation with the known preamble stands above
    what noise gives; a detection that fails it is a false alarm, and the search resumes where the
    metric next falls to ``threshold``. ``kind``: SCREEN_NONE (nothing left), SCREEN_WAIT (at
    ``d``, the preamble and header are not all in), SCREEN_FOUND (``start`` and coarse ``cfo`` of
    the burst detected at ``d``). On noise a false alarm comes every ~100 samples: in Python each
    cost some 30 us, the receiver's largest cost with no signal. A detection whose preamble does not
    correlate at that CFO, and whose smoothed metric reaches ``second_look_gate``, is tried once more at
    the CFO of the metric's peak (with ``cfo_search``, plus the integer offset ``integer_cfo`` picks).
    """
    sym, cp, n = setup.symbol_len, setup.cp_len, setup.fft_len
    above, below = np.flatnonzero(smooth > threshold), np.flatnonzero(smooth <= threshold)
    false_alarms = 0
    while True:
        split = min(max(strict_split, rel), smooth.size)
        inside = np.flatnonzero(smooth[rel:split] > strict_threshold) if split > rel else above[:0]
        later = above[above >= split]
        if inside.size:
            d = rel + int(inside[0])
        elif later.size:
            d = int(later[0])
        else:
            return SCREEN_NONE, -1, -1, 0.0, false_alarms
        if d + setup.need > buf.size:
            return SCREEN_WAIT, d, -1, 0.0, false_alarms
        _, cfo = _coarse_cfo_numpy(metric, corr, d, min(d + cp + n // 2, metric.size), cp)
        lo, hi = max(0, d - sym - cp), min(buf.size, d + 2 * sym + setup.preamble.size)
        best, power, energy = preamble_search_numpy(buf, lo, hi, cfo, n, setup.preamble)
        confirmed = best >= 0 and power >= setup.min_correlation * energy * setup.preamble_energy / 2
        # A second look where the metric stands high enough to be a preamble and not noise: the
        # CFO read at the plateau's peak, up to a symbol past the crossing. At low SNR noise lifts
        # the metric over the threshold a symbol or more before the preamble, and the CFO read
        # there is noise's (2 of 600 bpsk bursts lost so at 1 dB). Past +-1 spacing the preamble
        # does not correlate at all: there the integer offsets are tested at the peak too.
        wide = min(d + sym + cp + n // 2, metric.size)
        if not confirmed and smooth[d:wide].max() >= setup.second_look_gate:
            peak, cfo = _coarse_cfo_numpy(metric, corr, d, wide, cp)
            if setup.cfo_search:
                cfo += 2 * integer_cfo_numpy(buf, peak, cfo, n, cp, setup.preamble, setup.cfo_search)
            best, power, energy = preamble_search_numpy(buf, lo, hi, cfo, n, setup.preamble)
        if best >= 0:
            if lo + best + setup.header_span > buf.size:
                return SCREEN_WAIT, d, -1, 0.0, false_alarms
            if power >= setup.min_correlation * energy * setup.preamble_energy / 2:
                return SCREEN_FOUND, d, lo + best, cfo, false_alarms
            false_alarms += 1
        after = below[below >= d]
        rel = int(after[0]) if after.size else smooth.size


def _coarse_cfo_numpy(metric: np.ndarray, corr: np.ndarray, lo: int, hi: int, cp: int) -> tuple[int, float]:
    """The metric's peak in ``lo:hi`` and the CFO there, in subcarrier spacings modulo 2: the
    half-symbol correlation's phase summed over a CP around the peak (the odd-carrier preamble's
    halves are negated: pi removed)."""
    peak = lo + int(np.argmax(metric[lo:hi]))
    return peak, float(np.angle(-corr[max(0, peak - cp // 2) : peak + cp // 2 + 1].sum()) / np.pi)


def _coarse_cfo(metric: np.ndarray, corr: np.ndarray, lo: int, hi: int, cp: int) -> tuple[int, float]:
    """``_coarse_cfo_numpy`` in loops."""
    peak, top = lo, metric[lo]
    for i in range(lo + 1, hi):
        if metric[i] > top:
            peak, top = i, metric[i]
    acc = 0j
    for i in range(max(0, peak - cp // 2), min(peak + cp // 2 + 1, corr.size)):
        acc += corr[i]
    return peak, np.angle(-acc) / np.pi


def _screen_loop(buf: np.ndarray, metric: np.ndarray, corr: np.ndarray, smooth: np.ndarray, rel: int,
                 strict_split: int, strict_threshold: float, threshold: float, preamble: np.ndarray,
                 preamble_energy: float, n: int, sym: int, cp: int, need: int, header_span: int,
                 min_correlation: float, cfo_search: int, second_look_gate: float) -> tuple[int, int, int, float, int]:
    """``screen_numpy``'s search, one sample at a time; calls the compiled ``preamble_search``."""
    false_alarms = 0
    while True:
        split = min(max(strict_split, rel), smooth.size)
        d = -1
        for i in range(rel, split):
            if smooth[i] > strict_threshold:
                d = i
                break
        if d < 0:
            for i in range(max(split, 0), smooth.size):
                if smooth[i] > threshold:
                    d = i
                    break
        if d < 0:
            return SCREEN_NONE, -1, -1, 0.0, false_alarms
        if d + need > buf.size:
            return SCREEN_WAIT, d, -1, 0.0, false_alarms
        _, cfo = _coarse_cfo(metric, corr, d, min(d + cp + n // 2, metric.size), cp)
        lo, hi = max(0, d - sym - cp), min(buf.size, d + 2 * sym + preamble.size)
        best, power, energy = preamble_search(buf, lo, hi, cfo, n, preamble)
        confirmed = best >= 0 and power >= min_correlation * energy * preamble_energy / 2
        wide = min(d + sym + cp + n // 2, metric.size)
        if not confirmed and smooth[d:wide].max() >= second_look_gate:
            peak, cfo = _coarse_cfo(metric, corr, d, wide, cp)
            if cfo_search > 0:
                cfo += 2 * integer_cfo(buf, peak, cfo, n, cp, preamble, cfo_search)
            best, power, energy = preamble_search(buf, lo, hi, cfo, n, preamble)
        if best >= 0:
            if lo + best + header_span > buf.size:
                return SCREEN_WAIT, d, -1, 0.0, false_alarms
            if power >= min_correlation * energy * preamble_energy / 2:
                return SCREEN_FOUND, d, lo + best, cfo, false_alarms
            false_alarms += 1
        rel = smooth.size
        for i in range(d, smooth.size):
            if smooth[i] <= threshold:
                rel = i
                break


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
    integer_cfo = njit(cache=True, nogil=True)(_integer_cfo_loop)
    _coarse_cfo = njit(cache=True, nogil=True)(_coarse_cfo)
    _screen_kernel = njit(cache=True, nogil=True)(_screen_loop)
    centred_windows = njit(cache=True, nogil=True)(_centred_windows_loop)
    dc_step = njit(cache=True, nogil=True)(_dc_step_loop)
    equalize = njit(cache=True, nogil=True)(_equalize_loop)
    clock_residual = njit(cache=True, nogil=True)(_clock_residual_loop)
    _solve_small = njit(cache=True, nogil=True)(_solve_small)
    sparse_tap_fit = njit(cache=True, nogil=True)(_sparse_tap_fit_loop)

    def screen(buf: np.ndarray, metric: np.ndarray, corr: np.ndarray, smooth: np.ndarray, rel: int,
               strict_split: int, strict_threshold: float, threshold: float,
               setup: ScreenSetup) -> tuple[int, int, int, float, int]:
        """``screen_numpy``, compiled."""
        return _screen_kernel(buf, metric, corr, smooth, rel, strict_split, strict_threshold, threshold,
                              setup.preamble, setup.preamble_energy, setup.fft_len, setup.symbol_len,
                              setup.cp_len, setup.need, setup.header_span, setup.min_correlation,
                              setup.cfo_search, setup.second_look_gate)
else:
    schmidl_cox, moving_average = schmidl_cox_numpy, moving_average_numpy
    derotated_windows, pilot_phase = derotated_windows_numpy, pilot_phase_numpy
    preamble_search, rotate_carriers = preamble_search_numpy, rotate_carriers_numpy
    screen, sparse_tap_fit, integer_cfo = screen_numpy, sparse_tap_fit_numpy, integer_cfo_numpy
    equalize, clock_residual = equalize_numpy, clock_residual_numpy
    centred_windows, dc_step = centred_windows_numpy, dc_step_numpy


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel for the types the receiver passes, so
    the first burst of a stream is not held up by the compiler."""
    buf = np.zeros(256, dtype=np.complex64)
    metric, _ = schmidl_cox(buf, 32)
    moving_average(metric, 8)
    derotated_windows(buf, np.arange(2, dtype=np.int64) * 80, 64, 0.1)
    centred_windows(buf, np.arange(2, dtype=np.int64) * 80, 64, 0.1)
    dc_step(buf, 0j, 0.5)
    pilot_phase(np.ones(8, dtype=np.complex128), 1.0)
    pilot_phase(np.ones(3, dtype=np.complex128), 1.0)
    preamble_search(buf, 0, 200, 0.1, 64, np.ones(160, dtype=np.complex128))
    rotate_carriers(np.ones((2, 64), dtype=np.complex128), np.zeros(2))
    smooth = moving_average(metric, 8)
    eye = np.eye(4, dtype=np.complex128)
    idx, ref = np.arange(2, dtype=np.int64), np.ones(2, dtype=np.complex128)
    for count in (3, 8):
        spectra = np.ones((count, 4), dtype=np.complex128)
        equalize(spectra, idx, ref, idx, ref, 1.0)
        clock_residual(spectra, idx, ref, np.ones(2), np.ones(count), 0.0, np.ones(2))
    sparse_tap_fit(eye, eye, eye, np.ones(4, dtype=np.complex128), 1, 6.0, 2)
    integer_cfo(buf, 100, 0.1, 64, 16, np.ones(160, dtype=np.complex128), 2)
    screen(buf, metric, np.zeros(metric.size, dtype=np.complex128), smooth, 0, 0, 1.0, 1.0,
           ScreenSetup(np.ones(160, dtype=np.complex128), 160.0, 64, 80, 16, 560, 400, 0.15, 2, 0.1))

"""LDPC: the code is valid and systematic, and the decoder really corrects channel errors."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from lgvsc_phy.constellation import QPSK
from lgvsc_phy.ldpc import get_code


def test_codewords_satisfy_parity_checks_and_are_systematic() -> None:
    code = get_code("802.11n-1944-1/2")
    rng = np.random.default_rng(1)
    info = rng.integers(0, 2, (8, code.k), dtype=np.uint8)
    cw = code.encode(info)
    assert cw.shape == (8, code.n) and code.rate == 0.5
    assert code.syndrome_ok(cw).all()
    assert np.array_equal(cw[:, : code.k], info)


def test_decoder_corrects_errors_at_2db() -> None:
    code = get_code("802.11n-1944-1/2")
    rng = np.random.default_rng(2)
    info = rng.integers(0, 2, (10, code.k), dtype=np.uint8)
    symbols = QPSK.map(code.encode(info).reshape(-1))
    esn0 = 10 ** (2.0 / 10)
    noise_var = 1 / esn0
    rx = symbols + np.sqrt(noise_var / 2) * (rng.standard_normal(symbols.size) + 1j * rng.standard_normal(symbols.size))
    llr = QPSK.llr(rx, noise_var).reshape(10, code.n)
    raw_errors = np.count_nonzero((llr[:, : code.k] < 0) != info)
    assert raw_errors > 100  # the channel really caused errors
    result = code.decode(llr, 50)
    assert np.array_equal(result.bits, info)
    assert result.valid.all()


def _noisy_llr(code, snr_db: float, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    rng = np.random.default_rng(seed)
    info = rng.integers(0, 2, (count, code.k), dtype=np.uint8)
    symbols = QPSK.map(code.encode(info).reshape(-1))
    noise_var = 10 ** (-snr_db / 10)
    rx = symbols + np.sqrt(noise_var / 2) * (rng.standard_normal(symbols.size) + 1j * rng.standard_normal(symbols.size))
    return info, QPSK.llr(rx, noise_var).reshape(count, code.n)


@pytest.mark.parametrize("rate,snr_db", [("1/2", 2.0), ("2/3", 4.5), ("3/4", 5.5), ("5/6", 7.0)])
def test_every_rate_is_valid_and_decodes(rate: str, snr_db: float) -> None:
    code = get_code(f"802.11n-1944-{rate}")
    assert abs(code.rate - float(Fraction(rate))) < 1e-9 and code.n == 1944
    info, llr = _noisy_llr(code, snr_db, 40, 3)
    assert code.syndrome_ok(code.encode(info)).all()
    assert np.count_nonzero((llr[:, : code.k] < 0) != info) > 50
    result = code.decode(llr)
    assert np.mean(np.any(result.bits != info, axis=1)) <= 0.05


@pytest.mark.parametrize("count", [3, 40])  # one-by-one and side-by-side kernels
def test_compiled_decoder_matches_numpy_reference(count: int) -> None:
    code = get_code("802.11n-1944-1/2")
    _, llr = _noisy_llr(code, 1.8, count, 4)
    fast, ref = code.decode(llr, 30), code.decode_reference(llr, 30)
    assert np.array_equal(fast.iterations, ref.iterations)
    assert np.array_equal(fast.bits, ref.bits) and np.array_equal(fast.valid, ref.valid)


def test_alist_export_round_trips() -> None:
    code = get_code("802.11n-1944-3/4")
    lines = code.to_alist().splitlines()
    n, m = map(int, lines[0].split())
    assert (n, m) == (code.n, code.m)
    h = np.zeros((m, n), dtype=np.uint8)
    for col, line in enumerate(lines[4 : 4 + n]):
        for row in map(int, line.split()):
            if row:
                h[row - 1, col] = 1
    assert np.array_equal(h, code.h)


def _commpy_design(h: np.ndarray) -> str:
    """The parity-check matrix in commpy's design-file dialect (tabs, no padding)."""
    cols = [np.flatnonzero(h[:, c]) + 1 for c in range(h.shape[1])]
    rows = [np.flatnonzero(h[r]) + 1 for r in range(h.shape[0])]
    lines = [f"{h.shape[1]} {h.shape[0]}", f"{max(map(len, cols))} {max(map(len, rows))}",
             " ".join(str(len(c)) for c in cols) + " ", " ".join(str(len(r)) for r in rows) + " "]
    lines += ["\t".join(map(str, c)) for c in cols] + ["\t".join(map(str, r)) for r in rows]
    return "\n".join(lines) + "\n"


def test_decoder_agrees_with_commpy(tmp_path) -> None:  # noqa: ANN001
    """Same LLRs into commpy's ldpc_bp_decode (min-sum, flooding) and ours: same decisions."""
    ldpc = pytest.importorskip("commpy.channelcoding.ldpc")
    code = get_code("802.11n-1944-1/2")
    (tmp_path / "code.txt").write_text(_commpy_design(code.h))
    params = ldpc.get_ldpc_code_params(str(tmp_path / "code.txt"), compute_matrix=True)
    info, llr = _noisy_llr(code, 2.5, 8, 6)
    assert np.count_nonzero((llr < 0) != code.encode(info)) > 500
    theirs, _ = ldpc.ldpc_bp_decode(llr.reshape(-1), params, "MSA", 50)
    ours = code.decode(llr, 50)
    assert np.array_equal(np.asarray(theirs).T[:, : code.k], ours.bits)
    assert np.array_equal(ours.bits, info)

"""LDPC: the code is valid and systematic, and the decoder really corrects channel errors."""

from __future__ import annotations

import numpy as np

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

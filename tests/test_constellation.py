"""Constellations: unit energy, Gray labelling, and the soft demapper against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from lgvsc_phy.constellation import CONSTELLATIONS, Constellation


@pytest.mark.parametrize("name", sorted(CONSTELLATIONS))
def test_unit_energy_and_gray_neighbours(name: str) -> None:
    c = CONSTELLATIONS[name]
    pts = np.asarray(c.points)
    assert np.mean(np.abs(pts) ** 2) == pytest.approx(1.0)
    nearest = np.min(np.abs(pts[:, None] - pts[None, :]) + np.eye(len(pts)) * 9, axis=1)
    for v, p in enumerate(pts):  # every nearest neighbour differs in exactly one bit
        for u in np.flatnonzero(np.isclose(np.abs(pts - p), nearest[v])):
            assert bin(u ^ v).count("1") == 1


@pytest.mark.parametrize("name", sorted(CONSTELLATIONS))
def test_llr_is_the_two_dimensional_max_log(name: str) -> None:
    """The per-axis demapper of square constellations equals the max-log over all M points."""
    c = CONSTELLATIONS[name]
    assert c.axes is not None
    rng = np.random.default_rng(7)
    y = (rng.standard_normal(500) + 1j * rng.standard_normal(500)).astype(np.complex64)
    nv = (rng.random(500) + 0.05).astype(np.float32)
    pts = np.asarray(c.points)
    dist = np.abs(y[:, None] - pts[None, :]) ** 2
    values = np.arange(len(pts))
    brute = np.stack([(dist[:, (values >> i) & 1 == 1].min(axis=1) - dist[:, (values >> i) & 1 == 0].min(axis=1)) / nv
                      for i in range(c.bits_per_symbol)], axis=1).reshape(-1)
    np.testing.assert_allclose(c.llr(y, nv), brute, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(c.llr_numpy(y, nv), brute, rtol=1e-4, atol=1e-4)  # the reference too


@pytest.mark.parametrize("name", sorted(CONSTELLATIONS))
def test_compiled_llr_matches_numpy_with_one_noise_variance(name: str) -> None:
    c = CONSTELLATIONS[name]
    rng = np.random.default_rng(8)
    y = (rng.standard_normal(300) + 1j * rng.standard_normal(300)).astype(np.complex64)
    got = c.llr(y, 0.2)
    assert got.dtype == np.float32 and got.shape == (300 * c.bits_per_symbol,)
    np.testing.assert_allclose(got, c.llr_numpy(y, 0.2), rtol=1e-4, atol=1e-4)
    assert c.llr(y[:0], 0.2).size == 0


@pytest.mark.parametrize("name", ["qpsk", "16qam", "8psk"])
def test_llr_order_deinterleaves_in_the_same_pass(name: str) -> None:
    """``order`` puts bit i's LLR at out[order[i]]: the receiver's deinterleaver, compiled or not."""
    c = CONSTELLATIONS.get(name) or Constellation("8psk", tuple(np.exp(2j * np.pi * np.arange(8) / 8)))
    rng = np.random.default_rng(9)
    y = (rng.standard_normal(200) + 1j * rng.standard_normal(200)).astype(np.complex64)
    order = rng.permutation(200 * c.bits_per_symbol)
    plain = c.llr(y, 0.3)
    expected = np.empty_like(plain)
    expected[order] = plain
    np.testing.assert_array_equal(c.llr(y, 0.3, order), expected)


def test_non_separable_constellation_uses_all_points() -> None:
    psk8 = Constellation("8psk", tuple(np.exp(2j * np.pi * np.arange(8) / 8)))
    assert psk8.axes is None
    for demap in (psk8.llr, psk8.llr_numpy):
        llr = demap(np.array([1.0 + 0j], dtype=np.complex64), 0.1)
        assert llr.shape == (3,) and np.all(llr > 0)  # the point for value 0 is sent: all bits 0

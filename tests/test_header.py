"""The PHY header's fields and CRC: the table-driven CRC against the bit-serial reference."""

from __future__ import annotations

import numpy as np
import pytest

from lgvsc_phy.header import (
    _OUT_SIGN,
    INFO_BITS,
    PhyHeader,
    _bits,
    _viterbi,
    _viterbi_numpy,
    conv_encode,
    conv_encode_numpy,
    crc16_ccitt,
    word_crc16,
)


def test_word_crc16_matches_the_bit_loop() -> None:
    words = np.random.default_rng(0).integers(0, 2**32, 300, dtype=np.uint64).tolist() + [0, 2**32 - 1]
    for word in words:
        assert word_crc16(word) == crc16_ccitt(_bits(word, 32))


def test_crc_is_the_standard_ccitt_false() -> None:
    """CRC-16/CCITT-FALSE's check value: "123456789" gives 0x29B1."""
    bits = np.unpackbits(np.frombuffer(b"123456789", dtype=np.uint8))
    assert crc16_ccitt(bits) == 0x29B1


@pytest.mark.parametrize("header", [PhyHeader(0, 1, 0), PhyHeader(15, 4095, 65535), PhyHeader(7, 1234, 42)])
def test_header_round_trips_and_a_flipped_bit_fails(header: PhyHeader) -> None:
    bits = header.bits()
    assert bits.size == INFO_BITS
    assert PhyHeader.from_bits(bits) == header
    for i in range(INFO_BITS):
        flipped = bits.copy()
        flipped[i] ^= 1
        assert PhyHeader.from_bits(flipped) is None


def test_compiled_encoder_and_viterbi_match_their_numpy_references() -> None:
    rng = np.random.default_rng(11)
    for size in (7, 48, 100):
        info = rng.integers(0, 2, size)
        np.testing.assert_array_equal(conv_encode(info), conv_encode_numpy(info))
    coded = conv_encode(rng.integers(0, 2, 60))
    llr = (1.0 - 2.0 * coded) * 2.0 + rng.standard_normal(coded.size) * 1.5  # noisy: errors to correct
    got, want = _viterbi(llr, _OUT_SIGN, 60), _viterbi_numpy(llr, _OUT_SIGN, 60)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)  # the final state metrics
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[2], want[2])

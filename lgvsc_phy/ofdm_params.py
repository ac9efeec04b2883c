"""OFDM numerology shared by the flowgraphs and the symbol accounting.

One source of truth: the .grc files read these values through ``OfdmParams.default()`` so the
symbol cost of a PDU can be computed without running anything and always matches what is sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

_SYNC_SEED = 42


def _active(occupied: tuple[int, ...], pilots: tuple[int, ...]) -> set[int]:
    return set(occupied) | set(pilots)


def _carriers_802_11() -> tuple[int, ...]:
    """48 data carriers of the 802.11a layout (DC and edges empty, pilots at +-7, +-21)."""
    return tuple(
        list(range(-26, -21)) + list(range(-20, -7)) + list(range(-6, 0))
        + list(range(1, 7)) + list(range(8, 21)) + list(range(22, 27))
    )


@dataclass(frozen=True)
class OfdmParams:
    """OFDM frame layout: FFT size, cyclic prefix, carrier allocation, preamble, padding."""

    fft_len: int = 64
    cp_len: int = 16
    occupied_carriers: tuple[int, ...] = field(default_factory=_carriers_802_11)
    pilot_carriers: tuple[int, ...] = (-21, -7, 7, 21)
    pilot_symbols: tuple[complex, ...] = (1, 1, 1, -1)
    sync_symbols: int = 2  # Schmidl-Cox preamble (sync word 1 and 2)
    header_symbols: int = 3  # BPSK header: MCS, length, sequence, CRC16, rate-1/3 convolutional code
    # Zeros after each burst: flush the channel filter and the receiver's delay line so the
    # last burst of a transmission is decoded. Counted as on-air symbols (the channel is busy).
    post_padding: int = 160

    @classmethod
    def default(cls) -> OfdmParams:
        return cls()

    @property
    def symbol_len(self) -> int:
        return self.fft_len + self.cp_len

    @property
    def data_carriers(self) -> int:
        return len(self.occupied_carriers)

    @property
    def used_carriers(self) -> int:
        return len(self.occupied_carriers) + len(self.pilot_carriers)

    # GNU Radio wants tuples of tuples (one entry per OFDM symbol in a repeating pattern).
    @property
    def gr_occupied(self) -> tuple[tuple[int, ...]]:
        return (self.occupied_carriers,)

    @property
    def gr_pilot_carriers(self) -> tuple[tuple[int, ...]]:
        return (self.pilot_carriers,)

    @property
    def gr_pilot_symbols(self) -> tuple[tuple[complex, ...]]:
        return (self.pilot_symbols,)

    def sync_word1(self) -> list[complex]:
        """Schmidl-Cox symbol: BPSK on odd active carriers only, so it repeats in time."""
        rng = np.random.default_rng(_SYNC_SEED)
        active = _active(self.occupied_carriers, self.pilot_carriers)
        word = [
            complex(np.sqrt(2) * (1 - 2 * rng.integers(2))) if (k in active and k % 2) else 0j
            for k in range(-self.fft_len // 2, self.fft_len // 2)
        ]
        return word  # DC-centred order, as the carrier allocator and shifted IFFT expect

    def sync_word2(self) -> list[complex]:
        """Full BPSK symbol on all active carriers: integer CFO and channel estimate."""
        rng = np.random.default_rng(_SYNC_SEED + 1)
        active = _active(self.occupied_carriers, self.pilot_carriers)
        word = [
            complex(1 - 2 * rng.integers(2)) if k in active else 0j
            for k in range(-self.fft_len // 2, self.fft_len // 2)
        ]
        return word

    def sync_words(self) -> tuple[list[complex], list[complex]]:
        return (self.sync_word1(), self.sync_word2())

    def tx_scale(self) -> float:
        """Gain after GNU Radio's unnormalized IFFT giving unit mean power on data symbols.

        With unit-energy constellations on ``used_carriers`` carriers, an unnormalized IFFT yields
        mean sample power ``used_carriers``; dividing by its root makes it 1.
        """
        return float(1.0 / np.sqrt(self.used_carriers))

    def noise_voltage(self, esn0_db: float) -> float:
        """Time-domain noise std for a given Es/N0 per data subcarrier (unit tx power).

        After the receiver's N-point FFT, signal power per used carrier is N^2/used and noise power
        is N*sigma^2, so Es/N0 = N / (used * sigma^2).
        """
        esn0 = 10.0 ** (esn0_db / 10.0)
        return float(np.sqrt(self.fft_len / (self.used_carriers * esn0)))

    def burst_samples(self, payload_symbols: int) -> int:
        """Complex samples the transmitter emits for a burst carrying ``payload_symbols`` QAM symbols."""
        data_ofdm = -(-payload_symbols // self.data_carriers)
        ofdm_symbols = self.sync_symbols + self.header_symbols + data_ofdm
        return ofdm_symbols * self.symbol_len + self.post_padding


# Module-level forms of the default layout's figures, for .grc expressions. GRC's generated
# callbacks prefix a variable with ``self.`` only where its name stands alone, so a parameter
# such as ``ofdm.noise_voltage(snr_db)`` left ``ofdm`` undefined in ``set_snr_db``; an imported
# function leaves only its arguments to rewrite. Named apart from the flowgraphs' block and
# variable ids (``tx_scale``, ``noise_voltage``): GRC rejects an id that an import also binds.


def ofdm_noise_voltage(esn0_db: float) -> float:
    """Noise amplitude for Es/N0 (dB) per data subcarrier: ``OfdmParams.default().noise_voltage``."""
    return OfdmParams.default().noise_voltage(esn0_db)


def ofdm_tx_scale() -> float:
    """Gain giving unit mean power on data symbols: ``OfdmParams.default().tx_scale()``."""
    return OfdmParams.default().tx_scale()


def cfo_phase_increment(cfo: float) -> float:
    """Phase step per sample (rad) of a carrier offset of ``cfo`` subcarrier spacings."""
    return 2.0 * math.pi * cfo / OfdmParams.default().fft_len

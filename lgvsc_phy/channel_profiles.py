"""Channel profiles for channel.grc, by name: a static tapped delay line (with an optional
fractional sample timing offset) and whether GNU Radio's Rayleigh/Rician fading model follows it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Profile:
    delays: tuple[int, ...]  # samples, all inside the 16-sample cyclic prefix
    powers_db: tuple[float, ...]
    fading: str = "none"  # none | rayleigh | rician (flat, Doppler from the channel's parameter)


PROFILES: dict[str, Profile] = {
    "awgn": Profile((0,), (0.0,)),
    "multipath": Profile((0, 3, 7, 12), (0.0, -3.0, -6.0, -10.0)),
    "rayleigh": Profile((0,), (0.0,), "rayleigh"),
    "rician": Profile((0,), (0.0,), "rician"),
}
FRACTIONAL_TAPS = 8  # half-length of the windowed-sinc fractional delay filter


def names() -> tuple[str, ...]:
    return tuple(PROFILES)


class ChannelError(ValueError):
    pass


def profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ChannelError(f"unknown channel profile {name!r}; known: {', '.join(PROFILES)}")
    return PROFILES[name]


def fractional_delay(delay: float, half: int = FRACTIONAL_TAPS) -> np.ndarray:
    """Hann-windowed sinc delaying by ``half + delay`` samples (0 <= delay < 1), unit DC gain."""
    n = np.arange(2 * half + 1) - half - delay
    h = np.sinc(n) * (0.5 + 0.5 * np.cos(np.pi * n / (half + 1)))
    return h / h.sum()


def taps(name: str, timing_offset: float = 0.0) -> list[complex]:
    """Unit-energy tapped delay line (fixed phases, so runs repeat). A non-zero
    ``timing_offset`` (fraction of a sample, 0..1) shifts the sampling instant: the line is
    convolved with a fractional-delay filter, which adds a constant ``FRACTIONAL_TAPS`` of
    integer delay the receiver's timing absorbs."""
    p = profile(name)
    h = np.zeros(max(p.delays) + 1, dtype=complex)
    phases = np.exp(1j * np.linspace(0.3, 2.5, len(p.delays)))
    h[list(p.delays)] = 10 ** (np.asarray(p.powers_db) / 20) * phases
    if timing_offset:
        if not 0 <= timing_offset < 1:
            raise ChannelError(f"timing offset {timing_offset} is not a fraction of a sample in [0, 1)")
        h = np.convolve(h, fractional_delay(timing_offset))
    h /= np.sqrt(np.sum(np.abs(h) ** 2))
    return [complex(x) for x in h]


def fading_on(name: str) -> float:
    return 0.0 if profile(name).fading == "none" else 1.0


def rician(name: str) -> bool:
    return profile(name).fading == "rician"

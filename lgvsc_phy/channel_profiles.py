"""Channel impulse responses for the channel flowgraph, by name."""

from __future__ import annotations

import numpy as np

# Static multipath inside the cyclic prefix (16 samples): delays in samples, powers in dB.
_PROFILES: dict[str, tuple[tuple[int, ...], tuple[float, ...]]] = {
    "awgn": ((0,), (0.0,)),
    "multipath": ((0, 3, 7, 12), (0.0, -3.0, -6.0, -10.0)),
}


def names() -> tuple[str, ...]:
    return tuple(_PROFILES)


def taps(profile: str) -> list[complex]:
    """Unit-energy tapped delay line for ``profile`` (fixed phases, so runs are repeatable)."""
    if profile not in _PROFILES:
        raise ValueError(f"unknown channel profile {profile!r}; known: {', '.join(_PROFILES)}")
    delays, powers_db = _PROFILES[profile]
    h = np.zeros(max(delays) + 1, dtype=complex)
    phases = np.exp(1j * np.linspace(0.3, 2.5, len(delays)))
    h[list(delays)] = 10 ** (np.asarray(powers_db) / 20) * phases
    h /= np.sqrt(np.sum(np.abs(h) ** 2))
    return [complex(x) for x in h]

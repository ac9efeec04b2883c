"""tools.bench_realtime: the real rx.grc fed at a live rate decodes, its CPU is measured, overflows show."""

from __future__ import annotations

import dataclasses
import math

import pytest

from lgvsc_phy.link import free_base_port
from tools.bench_realtime import (
    Capture,
    RealtimeConfig,
    idle_capture,
    measure_rate,
    rate_key,
    receiver_block_cpu,
    record_capture,
)

pytestmark = pytest.mark.flowgraph


@pytest.fixture(scope="module")
def config() -> RealtimeConfig:
    return RealtimeConfig(seconds=1.5, warmup_s=0.5, capture_pdus=8, quiet_s=0.5, base_port=free_base_port())


@pytest.fixture(scope="module")
def capture(config: RealtimeConfig) -> Capture:
    return record_capture(config)


def test_rate_keys() -> None:
    assert [rate_key(r) for r in (1e6, 2e6, 5e6, 2.5e6, 1e7)] == ["1e6", "2e6", "5e6", "2.5e6", "1e7"]


def test_capture_is_whole_bursts(capture: Capture, config: RealtimeConfig) -> None:
    assert capture.bursts == config.capture_pdus
    assert capture.samples.dtype.name == "complex64" and capture.samples.size > 1000 * capture.bursts


def test_rx_decodes_at_live_rate(capture: Capture, config: RealtimeConfig) -> None:
    r = measure_rate(capture, 1e6, config)
    assert math.isfinite(r.rx_cpu_s_per_s) and r.rx_cpu_s_per_s > 0
    assert r.fed_s == pytest.approx(config.seconds, rel=0.05)
    assert r.pdus_expected > 0 and r.pdus >= 0.8 * r.pdus_expected, r
    assert r.crc_fail == 0, r
    block = receiver_block_cpu(dataclasses.asdict(r))  # the receiver block's own thread does most of the work
    assert 0.5 * r.rx_cpu_s_per_s < block <= sum(r.rx_threads_cpu_s_per_s.values()) <= 1.05 * r.rx_cpu_s_per_s, r


def test_overflows_when_rx_cannot_keep_up(capture: Capture, config: RealtimeConfig) -> None:
    """40 MS/s is far beyond what the rx decodes; with a one-chunk feeder queue chunks must drop."""
    fast = dataclasses.replace(config, seconds=1.0, warmup_s=0.2, buffer_ms=0.01)
    r = measure_rate(capture, 40e6, fast)
    assert r.overflow_chunks > 0 and r.overflow_samples == r.overflow_chunks * fast.chunk, r
    assert r.pdus < r.pdus_expected, r


def test_idle_channel_decodes_nothing(capture: Capture, config: RealtimeConfig) -> None:
    noise = idle_capture(capture, config.snr_db)
    assert noise.bursts == 0 and noise.samples.size == capture.samples.size
    r = measure_rate(noise, 1e6, dataclasses.replace(config, seconds=1.0))
    assert r.pdus == 0 and r.pdus_expected == 0
    assert math.isfinite(r.rx_cpu_s_per_s) and r.rx_cpu_s_per_s > 0

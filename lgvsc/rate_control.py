"""Rate control: from an on-air CBR target and the channel's SNR, the MCS, the protection of the
stream's critical prefix and the semantic byte budget, so that every symbol the transmitter
emits for the video, preambles to padding, comes to within 10 % of the target (below it
unless whole bursts make that impossible).

The budget cannot be set in one go: the critical prefix (header, timing, motion, text) travels on
a more robust MCS and its size is known only after encoding, and the image coder lands a little
under its byte shares. So the video is analysed once and its keyframes coded at up to
``MAX_ATTEMPTS`` budgets, each corrected by the on-air cost the last one really had.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from lgvsc_phy.framing import OVERHEAD_BYTES
from lgvsc_phy.link import Link
from lgvsc_phy.mcs import Mcs, auto_mcs, get_mcs
from lgvsc_phy.protection import Protection, Tier, robust_mcs_for
from lgvsc_phy.runner import FlowgraphError
from semantic.analysis import Analysis, analyse
from semantic.encoder import EncodedVideo, EncoderConfig, EncoderError, FrameSource, encode_source

MAX_ATTEMPTS = 4
HIGH_ATTEMPTS = 3  # then up to this many aiming at (LOW, HIGH] x target
LOW, HIGH = 0.9, 1.1  # the on-air cost must land in [LOW, HIGH] x target; at most the target if it can
CRITICAL_GUESS = 200  # bytes of the critical prefix before the first encode tells
MAX_PROTECTION_SHARE = 0.1  # protect the prefix only while that leaves the video >= 90 % of its bytes


@dataclass(frozen=True)
class Layering:
    """A layered stream for receivers the transmitter does not hear from (broadcast, stale
    feedback): the critical prefix on the most robust MCS, a base layer (``semantic.base_layer``)
    on an MCS ``base_margin_db`` below the rate MCS's threshold, taking ``base_share`` of the
    on-air budget, and the keyframe track on the rate MCS."""

    base_share: float = 0.25
    base_margin_db: float = 3.0

    def base_mcs(self, rate: Mcs) -> Mcs:
        return robust_mcs_for(rate, self.base_margin_db)

    def applies_to(self, rate: Mcs) -> bool:
        """Whether a base layer can be more robust than the track at all."""
        return self.base_mcs(rate) != rate


LAYER_CHOICES = ("auto", "1", "2")


def layering_for(layers: str, feedback: bool, base_share: float = Layering.base_share) -> Layering | None:
    """``--layers``: "2" layered, "1" one layer, "auto" layered exactly when the transmitter has
    no feedback (a design SNR, a broadcast): there the receiver's SNR may be anything."""
    if layers not in LAYER_CHOICES:
        raise ValueError(f"--layers is one of {', '.join(LAYER_CHOICES)}, not {layers!r}")
    if layers == "2" or (layers == "auto" and not feedback):
        return Layering(base_share=checked_base_share(base_share))
    return None


def checked_base_share(value: float) -> float:
    if not 0 < value < 1:
        raise ValueError(f"the base layer's share is a fraction of the on-air budget in (0, 1), not {value:g}")
    return value


PREFIX_MARGIN_DB = 99.0  # a layered stream's prefix: the most robust MCS there is
# Below this a base layer is a thumbnail or two (an AV1 keyframe at 32x16 pixels takes 30-60
# bytes): it would take its share of the budget from the track for little over the colour layout.
MIN_BASE_BYTES = 200


@dataclass
class RatePlan:
    encoded: EncodedVideo
    protection: Protection
    on_air_target: float  # samples
    on_air_planned: int  # samples the transmitter will emit for this stream
    attempts: int


def choose_mcs(name: str, snr_db: float) -> Mcs:
    return auto_mcs(snr_db) if name == "auto" else get_mcs(name)


PROBE_MCS = "bpsk-1/2"  # the probe must arrive wherever anything can
PROBE_STREAM_ID = 0xFFFE  # never a video's stream id: the video's reassembly ignores it


@dataclass(frozen=True)
class Probe:
    esnr_db: float | None  # effective SNR the rx measured (None: the probe was lost)
    snr_db: float | None  # mean SNR over the used carriers
    samples: int  # what the probe cost on the air


def probe_link(link: Link, check: Callable[[], None] | None = None) -> Probe:
    """One short burst on the most robust MCS; the receiver's channel fit gives the effective
    SNR over the data carriers (``ofdm.effective_snr_db``), which accounts for frequency-
    selective fading, unlike a plain SNR: 64qam-5/6 fails at 20 dB on our multipath profile
    (effective SNR 18.6 dB) where 64qam-3/4 gets through."""
    mcs = get_mcs(PROBE_MCS)
    data = os.urandom(mcs.codec().max_payload(1) - OVERHEAD_BYTES)  # one codeword is enough to measure
    res = link.transfer(data, Protection.uniform(mcs), stream_id=PROBE_STREAM_ID, idle_timeout_s=1.0,
                        deadline_s=15.0, check=check)
    if res.fault:  # nothing of the video was sent yet: nothing to keep
        raise FlowgraphError(res.fault)
    esnr = [float(m["esnr_db"]) for m in res.meta if "esnr_db" in m]
    snr = [float(m["snr_db"]) for m in res.meta if "snr_db" in m]
    return Probe(float(np.median(esnr)) if esnr else None, float(np.median(snr)) if snr else None, res.tx_samples)


def adapt_link(link: Link, check: Callable[[], None] | None = None) -> tuple[Probe, Mcs]:
    """Probe, then the fastest MCS the measured effective SNR allows (the most robust if lost)."""
    probe = probe_link(link, check)
    return probe, auto_mcs(probe.esnr_db if probe.esnr_db is not None else float("-inf"))


def link_mcs(link: Link, mcs: str, design_snr_db: float | None, probe: bool, known_snr_db: float | None,
             check: Callable[[], None] | None = None) -> tuple[Probe | None, Mcs]:
    """The transmitter's MCS, and the probe it took (None if none).

    A named MCS is used as named. ``auto``: with a design SNR, the MCS for it and nothing else (a
    broadcast, or a link whose feedback is down: the transmitter never learns the channel's SNR);
    else from a probe burst's effective SNR, as link adaptation does; without a probe, from
    ``known_snr_db`` (a transmitter told the channel's SNR, the separated chain's best case)."""
    if mcs != "auto":
        return None, get_mcs(mcs)
    if design_snr_db is not None:
        return None, auto_mcs(design_snr_db)
    if probe:
        return adapt_link(link, check)
    return None, auto_mcs(known_snr_db if known_snr_db is not None else float("-inf"))


def stream_bytes_near(protection: Protection, on_air_target: float) -> int:
    """The byte budget a non-adaptive stream (the separation baselines) gets under the rule
    ``plan_stream`` follows: on air at most the target, unless whole bursts leave that below
    LOW x target, then up to HIGH x target."""
    below = protection.stream_bytes_for(on_air_target)
    if protection.cost(below)[2] >= LOW * on_air_target:
        return below
    return max(below, protection.stream_bytes_for(HIGH * on_air_target))


def plan_stream(source: FrameSource, cbr: float, mcs: Mcs, config: EncoderConfig | None = None,
                protect: bool = True, layering: Layering | None = None) -> RatePlan:
    """Encode ``source`` so that its on-air cost (with protection) lands in [LOW, 1] x target,
    or (LOW, HIGH] x target where whole bursts allow nothing closer below.

    When the budget is too small to protect the prefix and still carry the video, or protecting
    it would cost the video more than ``MAX_PROTECTION_SHARE`` of its bytes (the robust MCS needs
    bursts of its own, a large share of a tiny budget), the prefix goes unprotected: the rate MCS
    already has a margin over the measured SNR. Measured on bikes at CBR 1e-4 and qpsk-2/3,
    protection left 590 of 990 bytes and cost 2.9 dB; at 1e-3 it costs 9 % and 0.24 dB."""
    config = config or EncoderConfig()
    analysis = analyse(source.open(), source.fps)
    if layering is not None and layering.applies_to(mcs):
        try:
            return _plan_layered(source, analysis, cbr, mcs, config, layering)
        except EncoderError:
            pass  # too small a budget for layers: one layer
    if protect:
        try:
            plan = _plan(source, analysis, cbr, mcs, config, lambda critical, _: Protection.for_rate(mcs, critical))
            unprotected = Protection.uniform(mcs).stream_bytes_for(plan.on_air_target)
            # What protection costs is the budget it takes, not what the encoder happened to
            # leave unused (the keyframe track's sizes move in steps).
            if plan.protection.stream_bytes_for(plan.on_air_target) >= (1 - MAX_PROTECTION_SHARE) * unprotected:
                return plan
        except EncoderError:
            pass
    return _plan(source, analysis, cbr, mcs, config, lambda *_: Protection.uniform(mcs))


def _plan_layered(source: FrameSource, analysis: Analysis, cbr: float, mcs: Mcs, config: EncoderConfig,
                  layering: Layering) -> RatePlan:
    base_mcs, prefix_mcs = layering.base_mcs(mcs), robust_mcs_for(mcs, PREFIX_MARGIN_DB)
    target = cbr * analysis.info.source_values
    base_bytes = base_mcs.stream_bytes_for(layering.base_share * target)
    if base_bytes < MIN_BASE_BYTES:
        raise EncoderError(f"a base layer of {base_bytes} bytes is too small to be worth its share")

    def protection_for(critical: int, base: int) -> Protection:
        return Protection(mcs, prefix_mcs, critical, (Tier(critical + base, base_mcs),))

    plan = _plan(source, analysis, cbr, mcs, replace(config, base_bytes=base_bytes), protection_for)
    if not plan.encoded.base_layer_bytes:
        raise EncoderError(f"no base layer fits {base_bytes} bytes")
    return plan


def _keep_structure(config: EncoderConfig, encoded: EncodedVideo) -> EncoderConfig:
    """Later attempts only correct the byte count: the keyframe track keeps the keyframe count
    the first attempt's rate-distortion search chose (a budget a few % off does not move it)."""
    if config.keyframes is not None or encoded.header.backends.get("img") != "track-av1" or not encoded.plan.frames:
        return config
    return replace(config, keyframes=len(encoded.plan.frames))


ProtectionFor = Callable[[int, int], Protection]  # (critical prefix, base layer bytes) -> protection


def _plan(source: FrameSource, analysis: Analysis, cbr: float, mcs: Mcs, config: EncoderConfig,
          protection_for: ProtectionFor) -> RatePlan:
    target = cbr * analysis.info.source_values
    budget = protection_for(CRITICAL_GUESS, config.base_bytes or 0).stream_bytes_for(target)
    best: RatePlan | None = None
    free = config  # the structure as the caller left it: the last resort searches it again
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            encoded = encode_source(source, replace(config, byte_budget=budget, budget_for=None), analysis)
        except EncoderError:
            if config is free:
                raise
            config = free  # the pinned keyframe count no longer fits: search the structure again
            encoded = encode_source(source, replace(config, byte_budget=budget, budget_for=None), analysis)
        config = _keep_structure(free, encoded)
        protection = protection_for(encoded.critical_bytes, encoded.base_layer_bytes)
        used = protection.cost(len(encoded.data))[2]
        plan = RatePlan(encoded, protection, target, used, attempt)
        if used <= target and (best is None or used > best.on_air_planned):
            best = plan
        if LOW * target <= used <= target:
            break
        # Scale the budget by how far off the cost was (squeezed a little when over the target).
        scale = (target / used) * (0.98 if used > target else 1.0)
        budget = max(1, int(budget * min(scale, 1.5)))
    if best is None or best.on_air_planned < LOW * target:
        # Bursts carry whole LDPC codewords: at small budgets the next burst may overshoot the
        # target. Up to HIGH x target is within the tolerance, and better than falling short;
        # the keyframe track's sizes move in steps (a CRF step, a resolution step), so this too
        # is corrected by the cost it really had, a few times, each free to choose another keyframe
        # count (the one the first attempt chose may have no size in the window).
        budget = protection.stream_bytes_for(HIGH * target)
        for attempt in range(MAX_ATTEMPTS + 1, MAX_ATTEMPTS + 1 + HIGH_ATTEMPTS):
            encoded = encode_source(source, replace(free, byte_budget=budget, budget_for=None), analysis)
            protection = protection_for(encoded.critical_bytes, encoded.base_layer_bytes)
            used = protection.cost(len(encoded.data))[2]
            if used <= HIGH * target and (best is None or used > best.on_air_planned):
                best = RatePlan(encoded, protection, target, used, attempt)
            if LOW * target <= used <= HIGH * target:
                break
            budget = max(1, int(budget * min((HIGH * target / used) * (0.97 if used > HIGH * target else 1.0), 1.5)))
    return best or plan

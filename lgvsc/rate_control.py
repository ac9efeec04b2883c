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
from lgvsc_phy.mcs import THRESHOLD_DB, Mcs, auto_mcs, get_mcs
from lgvsc_phy.protection import Protection, Tier, robust_mcs_for
from lgvsc_phy.runner import FlowgraphError
from semantic.analysis import Analysis, analyse
from semantic.decoder import decode_bitstream
from semantic.encoder import EncodedVideo, EncoderConfig, EncoderError, FrameSource, encode_source
from semantic.metrics import mean_psnr

MAX_ATTEMPTS = 4
HIGH_ATTEMPTS = 3  # then up to this many aiming at (LOW, HIGH] x target
LOW, HIGH = 0.9, 1.1  # the on-air cost must land in [LOW, HIGH] x target; at most the target if it can
FILL = 0.97  # below this x target an attempt is kept but the budget tried again, larger (attempts allowing)
CRITICAL_GUESS = 200  # bytes of the critical prefix before the first encode tells
MAX_PROTECTION_SHARE = 0.1  # protect the prefix only while that leaves the video >= 90 % of its bytes
# ... or >= 98 % on a settled link: a static channel whose SNR the transmitter measured, the MCS
# chosen with a margin over it and no loss expected. There the prefix's PDU is as safe as any
# other, and a robust burst of its own (6.6 % of a 5 kB stream at 64qam-5/6) buys only insurance.
SETTLED_PROTECTION_SHARE = 0.02


# --base-share auto: the shares the rate control may try (from START_SHARE), and the receiver SNRs
# (design SNR + these, 1 dB apart, weighed alike) over which it scores them. Each share tried
# costs one rate-controlled encode and two decodes; the search tries MAX_FIT_ENCODES (all of
# BASE_SHARES where none keeps NO_CLIFF).
BASE_SHARES = (0.12, 0.18, 0.25, 0.33)
START_SHARE = 0.25
FIT_SPAN_DB = (-6, 10)
MAX_FIT_ENCODES = 4  # the halving between a share that missed NO_CLIFF and one that kept it stops here
MIN_SHARE_STEP = 0.02  # or when the two are this close
NO_CLIFF = 0.8  # a share keeps the base layer alone at >= this x the PSNR of all layers, if any can


@dataclass(frozen=True)
class Layering:
    """A layered stream for receivers the transmitter does not hear from (broadcast, stale
    feedback): the critical prefix on the most robust MCS, a base layer (``semantic.base_layer``)
    on an MCS ``base_margin_db`` below the rate MCS's threshold, taking ``base_share`` of the
    on-air budget, and the keyframe track on the rate MCS.

    ``base_share`` None: fitted per video (``fit_base_share``) for receivers around
    ``design_snr_db`` (the rate MCS's threshold when there is none)."""

    base_share: float | None = None
    base_margin_db: float = 3.0
    design_snr_db: float | None = None

    def base_mcs(self, rate: Mcs) -> Mcs:
        return robust_mcs_for(rate, self.base_margin_db)

    def applies_to(self, rate: Mcs) -> bool:
        """Whether a base layer can be more robust than the track at all."""
        return self.base_mcs(rate) != rate


LAYER_CHOICES = ("auto", "1", "2")


def layering_for(layers: str, feedback: bool, base_share: float | None = None,
                 design_snr_db: float | None = None) -> Layering | None:
    """``--layers``: "2" layered, "1" one layer, "auto" layered exactly when the transmitter has
    no feedback (a design SNR, a broadcast): there the receiver's SNR may be anything.
    ``base_share`` None: fitted per video."""
    if layers not in LAYER_CHOICES:
        raise ValueError(f"--layers is one of {', '.join(LAYER_CHOICES)}, not {layers!r}")
    if layers == "2" or (layers == "auto" and not feedback):
        share = None if base_share is None else checked_base_share(base_share)
        return Layering(base_share=share, design_snr_db=design_snr_db)
    return None


def checked_base_share(value: float) -> float:
    if not 0 < value < 1:
        raise ValueError(f"the base layer's share is a fraction of the on-air budget in (0, 1), not {value:g}")
    return value


def parse_base_share(text: str) -> float | None:
    """``--base-share``: "auto" (None: fitted per video) or a fraction of the on-air budget."""
    return None if text.strip().lower() == "auto" else checked_base_share(float(text))


PREFIX_MARGIN_DB = 99.0  # a layered stream's prefix: the most robust MCS there is
# Below this a base layer is a thumbnail or two (an AV1 keyframe at 32x16 pixels takes 30-60
# bytes): it would take its share of the budget from the track for little over the colour layout.
MIN_BASE_BYTES = 200


@dataclass(frozen=True)
class ShareScore:
    """One candidate base share as ``fit_base_share`` measured it, PSNR in dB."""

    share: float
    full_psnr_db: float  # every layer arrived
    base_psnr_db: float  # the prefix and the base layer only (a receiver below the rate MCS)
    expected_psnr_db: float  # mean over the fit's receiver SNRs that get more than the prefix

    @property
    def no_cliff(self) -> bool:
        return self.base_psnr_db >= NO_CLIFF * self.full_psnr_db

    def as_dict(self) -> dict:
        return {"share": self.share, "full_psnr_db": self.full_psnr_db, "base_psnr_db": self.base_psnr_db,
                "expected_psnr_db": self.expected_psnr_db, "no_cliff": self.no_cliff}


@dataclass
class RatePlan:
    encoded: EncodedVideo
    protection: Protection
    on_air_target: float  # samples
    on_air_planned: int  # samples the transmitter will emit for this stream
    attempts: int
    base_share: float | None = None  # of the on-air budget, given to the base layer (None: one layer)
    base_share_scores: list[ShareScore] | None = None  # the candidates --base-share auto weighed


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


def protection_share(settled_link: bool) -> float:
    """The most of the video's bytes that protecting the critical prefix may take."""
    return SETTLED_PROTECTION_SHARE if settled_link else MAX_PROTECTION_SHARE


def plan_stream(source: FrameSource, cbr: float, mcs: Mcs, config: EncoderConfig | None = None,
                protect: bool = True, layering: Layering | None = None,
                max_protection_share: float = MAX_PROTECTION_SHARE) -> RatePlan:
    """Encode ``source`` so that its on-air cost (with protection) lands in [LOW, 1] x target,
    or (LOW, HIGH] x target where whole bursts allow nothing closer below.

    When the budget is too small to protect the prefix and still carry the video, or protecting
    it would cost the video more than ``max_protection_share`` of its bytes (the robust MCS needs
    bursts of its own, a large share of a tiny budget), the prefix goes unprotected: the rate MCS
    already has a margin over the measured SNR. Measured on bikes at CBR 1e-4 and qpsk-2/3,
    protection left 590 of 990 bytes and cost 2.9 dB; at 1e-3 it costs 9 % and 0.24 dB."""
    config = config or EncoderConfig()
    analysis = analyse(source.open(), source.fps)
    if layering is not None and layering.applies_to(mcs):
        try:
            if layering.base_share is None:
                return fit_base_share(source, analysis, cbr, mcs, config, layering)
            return _plan_layered(source, analysis, cbr, mcs, config, layering)
        except EncoderError:
            pass  # too small a budget for layers: one layer
    if protect:
        try:
            plan = _plan(source, analysis, cbr, mcs, config, lambda critical, _: Protection.for_rate(mcs, critical))
            unprotected = Protection.uniform(mcs).stream_bytes_for(plan.on_air_target)
            # What protection costs is the budget it takes, not what the encoder happened to
            # leave unused (the keyframe track's sizes move in steps).
            if plan.protection.stream_bytes_for(plan.on_air_target) >= (1 - max_protection_share) * unprotected:
                return plan
        except EncoderError:
            pass
    return _plan(source, analysis, cbr, mcs, config, lambda *_: Protection.uniform(mcs))


def fit_base_share(source: FrameSource, analysis: Analysis, cbr: float, mcs: Mcs, config: EncoderConfig,
                   layering: Layering, shares: tuple[float, ...] = BASE_SHARES,
                   start: float = START_SHARE) -> RatePlan:
    """The layered stream at a few base shares, each decoded as a receiver above the rate MCS's
    threshold would (every layer) and as one between the base MCS's and the rate MCS's (prefix and
    base layer), and scored by the mean PSNR over receiver SNRs ``FIT_SPAN_DB`` around the design
    SNR, 1 dB apart (below the base MCS's threshold only the prefix arrives, alike for every
    share: those SNRs are left out). The best score among the shares that keep ``NO_CLIFF`` wins,
    the best score of all if none does.

    The base layer's PSNR over the track's grows with the share and the track's PSNR, most of the
    score, falls with it, so the search walks ``shares`` from ``start``: down while ``NO_CLIFF``
    holds, or up until it does; then halves the gap between the largest share that missed it and
    the smallest that kept it, up to ``MAX_FIT_ENCODES`` shares tried. Only where no share keeps
    it are all of ``shares`` tried. The track's and the base layer's sizes move in steps (a CRF, a
    resolution), so neighbouring shares may code alike."""
    design = layering.design_snr_db if layering.design_snr_db is not None else THRESHOLD_DB[mcs.name]
    snrs = np.arange(design + FIT_SPAN_DB[0], design + FIT_SPAN_DB[1] + 0.5, 1.0)
    full_from, base_from = THRESHOLD_DB[mcs.name], THRESHOLD_DB[layering.base_mcs(mcs).name]
    n_full, n_base = int(np.sum(snrs >= full_from)), int(np.sum((snrs >= base_from) & (snrs < full_from)))
    tried: dict[float, tuple[ShareScore, RatePlan] | None] = {}

    def attempt(share: float) -> ShareScore | None:
        if share not in tried:
            try:
                plan = _plan_layered(source, analysis, cbr, mcs, config, replace(layering, base_share=share))
            except EncoderError:
                tried[share] = None  # too small a base layer at this share
                return None
            data, head = plan.encoded.data, plan.protection.protected_bytes
            full = stream_psnr(source, data)
            base = stream_psnr(source, data[:head] + bytes(len(data) - head))  # the track's PDUs lost
            expected = (n_full * full + n_base * base) / max(1, n_full + n_base)
            tried[share] = (ShareScore(share, full, base, expected), plan)
        entry = tried[share]
        return None if entry is None else entry[0]

    grid = sorted(set(shares) | {start})
    first = attempt(start)
    below, above = grid[: grid.index(start)][::-1], grid[grid.index(start) + 1:]
    missed = kept = None  # the largest share that missed NO_CLIFF, the smallest that kept it
    if first is not None and first.no_cliff:
        kept = start
        for share in below:
            score = attempt(share)
            if score is not None and not score.no_cliff:
                missed = share
                break
            if score is not None:
                kept = share
    else:
        missed = start if first is not None else None
        for share in above:
            score = attempt(share)
            if score is not None and score.no_cliff:
                kept = share
                break
            if score is not None:
                missed = share
        if kept is None:  # NO_CLIFF is out of reach: the best score of every share
            for share in below:
                attempt(share)
    while kept is not None and missed is not None and kept - missed > MIN_SHARE_STEP and len(tried) < MAX_FIT_ENCODES:
        middle = round((missed + kept) / 2, 3)
        score = attempt(middle)
        if score is None:
            break
        if score.no_cliff:
            kept = middle
        else:
            missed = middle
    done = sorted((entry for entry in tried.values() if entry is not None), key=lambda e: e[0].share)
    if not done:
        raise EncoderError("no base share leaves a base layer worth its bytes")
    pool = [e for e in done if e[0].no_cliff] or done
    score, plan = max(pool, key=lambda e: (e[0].expected_psnr_db, -e[0].share))
    return replace(plan, base_share=score.share, base_share_scores=[e[0] for e in done])


def stream_psnr(source: FrameSource, data: bytes) -> float:
    """Mean per-frame PSNR of ``data`` decoded (interpolation, as the loopback's default decoder)
    against the source, streamed."""
    return mean_psnr(zip(source.open(), decode_bitstream(data).iter_frames(), strict=False))


def _plan_layered(source: FrameSource, analysis: Analysis, cbr: float, mcs: Mcs, config: EncoderConfig,
                  layering: Layering) -> RatePlan:
    if layering.base_share is None:
        raise ValueError("a layered plan at one share needs the share")
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
    return replace(plan, base_share=layering.base_share)


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
        if FILL * target <= used <= target:
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

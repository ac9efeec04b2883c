"""The channel's parameters, each named once: the config dataclass, the command-line options, the
channel flowgraph's arguments and the report fields all come from ``CHANNEL_PARAMS``.

The flowgraph names and defaults are channel.grc's parameter blocks (tests/test_channel_spec.py
reads the .grc files, so the two cannot drift apart).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, make_dataclass

from lgvsc_phy import channel_profiles, impairments
from lgvsc_phy.ofdm_params import OfdmParams


@dataclass(frozen=True)
class ChannelParam:
    name: str  # attribute of ChannelConfig, and dest of its command-line option
    type: type
    default: float | int | str
    unit: str  # "" for none
    help: str
    flowgraph_arg: str  # channel.grc's parameter id
    report_field: str
    choices: tuple[str, ...] | None = None
    fading: tuple[str, ...] = ()  # reported only for these fading models (rayleigh, rician); () always

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def applies_to(self, profile: str) -> bool:
        return not self.fading or channel_profiles.profile(profile).fading in self.fading


CHANNEL_PARAMS: tuple[ChannelParam, ...] = (
    ChannelParam("snr_db", float, 10.0, "dB", "Es/N0 per data subcarrier on the tx power", "snr_db", "snr_db"),
    ChannelParam("channel", str, "awgn", "", "awgn; multipath (static, inside the CP); rayleigh / rician (flat "
                 "fading with Doppler)", "profile", "channel", choices=channel_profiles.names()),
    ChannelParam("cfo", float, 0.0, "subcarrier spacings", "carrier frequency offset", "cfo", "cfo"),
    ChannelParam("timing_offset", float, 0.0, "samples", "sample timing offset, in [0, 1)",
                 "timing_offset", "timing_offset"),
    ChannelParam("doppler", float, 1e-5, "fD*Ts", "normalized Doppler", "doppler", "doppler",
                 fading=("rayleigh", "rician")),
    ChannelParam("k_factor", float, 4.0, "", "K factor", "k_factor", "k_factor", fading=("rician",)),
    ChannelParam("phase_noise", float, 0.0, "rad", "phase noise magnitude", "phase_noise", "phase_noise"),
    ChannelParam("seed", int, 1, "", "channel noise seed", "seed", "seed"),
    # Front-end impairments (lgvsc_phy.impairments): each default is its "off" value, under which
    # the stage is a plain copy and the samples are bit-identical to a channel without it.
    ChannelParam("sfo_ppm", float, 0.0, "ppm", "sample clock offset of the rx against the tx (positive: rx "
                 "clock fast, more samples); 0 off", "sfo_ppm", "sfo_ppm"),
    ChannelParam("iq_imbalance_db", float, 0.0, "dB", "rx IQ gain imbalance (GNU Radio iqbal_gen); 0 off",
                 "iq_imbalance_db", "iq_imbalance_db"),
    ChannelParam("iq_phase_deg", float, 0.0, "degrees", "rx IQ phase imbalance; 0 off", "iq_phase_deg",
                 "iq_phase_deg"),
    ChannelParam("dc_offset_dbc", float, impairments.DC_OFF_DBC, "dBc", "rx DC offset below the unit-power "
                 f"signal; {impairments.DC_OFF_DBC:g} or less off", "dc_offset_dbc", "dc_offset_dbc"),
    ChannelParam("pa_backoff_db", float, impairments.PA_OFF, "dB", "tx PA input back-off from Rapp saturation; "
                 "0 off (linear PA)", "pa_backoff_db", "pa_backoff_db"),
    ChannelParam("pa_smoothness", float, 2.0, "", "Rapp smoothness p of the PA (large: hard limiter)",
                 "pa_smoothness", "pa_smoothness"),
    ChannelParam("adc_bits", int, impairments.ADC_OFF, "bits", "rx ADC resolution, full scale "
                 f"{impairments.ADC_HEADROOM_DB:g} dB above the signal RMS; 0 off", "adc_bits", "adc_bits"),
    ChannelParam("drop_rate", float, 0.0, "gaps per sample", f"random gaps of {impairments.GAP_SAMPLES} samples "
                 "lost (as rx overflows leave them); 0 off", "drop_rate", "drop_rate"),
)

# A pair of Ettus B200/B210 radios, each on its own TCXO (no shared 10 MHz / GPSDO), at 2.45 GHz,
# 1 MS/s. Where each figure comes from:
#   cfo, sfo_ppm: the B200/B210 spec sheet (Ettus Research) gives the TCXO's frequency accuracy as
#     +-2 ppm; two radios differ by up to 4 ppm, and LO and sample clock derive from the same TCXO,
#     so CFO and SFO carry the same 4 ppm. CFO = 4e-6 * 2.45 GHz = 9.8 kHz; in subcarrier spacings
#     (1 MS/s / 64 = 15.625 kHz) 0.627. (20 ppm, the 802.11 per-device tolerance, would be 49 kHz
#     = 3.14 spacings: beyond the half-symbol correlation's +-1 spacing, so the receiver needs its
#     integer-offset test then, ``cfo_range`` 5 in lgvsc_phy/ofdm.py.)
#   iq_imbalance_db, iq_phase_deg: the UHD manual's B2x0 RF performance table gives SSB / LO
#     suppression -35 / -50 dBc (AD9361 after its quadrature calibration). A tx image and an rx
#     image of -35 dB each add up to about -29 dB at worst (in phase); 0.25 dB and 3 degrees give
#     an image of -30.5 dB (impairments.image_rejection_db).
#   dc_offset_dbc: the data sheets specify only the tx LO leakage (-50 dBc), not the rx's residual
#     DC after the AD9361's DC tracking; -30 dBc is a pessimistic figure, 20 dB worse than the tx
#     spec (an rx DC that tracking has not yet removed). It lands on the unused DC subcarrier.
#   pa_backoff_db, pa_smoothness: the spec sheet gives the output power (> 10 dBm) but no
#     compression curve; 6 dB input back-off from saturation with p = 2 is a common operating
#     point for OFDM on a solid-state PA: a choice, not a measurement.
#   adc_bits: the AD9361 data sheet: 12-bit ADCs (full scale 12 dB above the RMS, as an AGC sets it).
#   drop_rate: a host that keeps up drops nothing; 1e-6 (one gap a second at 1 MS/s, each losing
#     impairments.GAP_SAMPLES samples, about one USB transport frame) stands for a loaded host:
#     a stress figure, not a measurement.
B2X0_PPM, B2X0_CARRIER_HZ, B2X0_SAMPLE_RATE = 4.0, 2.45e9, 1e6


def ppm_to_cfo(ppm: float, carrier_hz: float = B2X0_CARRIER_HZ, sample_rate: float = B2X0_SAMPLE_RATE) -> float:
    """A frequency error of ``ppm`` at ``carrier_hz`` in subcarrier spacings (sample_rate / fft_len)."""
    return ppm * 1e-6 * carrier_hz / (sample_rate / OfdmParams.default().fft_len)


IMPAIRMENT_PROFILES: dict[str, dict[str, float | int]] = {
    "none": {},
    "b2x0": {"cfo": round(ppm_to_cfo(B2X0_PPM), 4), "sfo_ppm": B2X0_PPM, "iq_imbalance_db": 0.25,
             "iq_phase_deg": 3.0, "dc_offset_dbc": -30.0, "pa_backoff_db": 6.0, "pa_smoothness": 2.0,
             "adc_bits": 12, "drop_rate": 1e-6},
}

# Keyword-only: classes that extend it (the loopback's config and options) keep their own positional fields.
ChannelConfig = make_dataclass(
    "ChannelConfig", [(p.name, p.type, field(default=p.default)) for p in CHANNEL_PARAMS], frozen=True, kw_only=True)
ChannelConfig.__module__ = __name__  # where pickle (Ray) finds it
ChannelConfig.__doc__ = "What the channel flowgraph does to the IQ between tx and rx (see CHANNEL_PARAMS)."


_GIVEN = "_channel_options_given"  # the namespace's set of channel options given on the command line


class _StoreChannelOption(argparse.Action):
    """Stores the value and notes that the option was given, so ``--impairments`` leaves it alone."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        given = set(getattr(namespace, _GIVEN, ()))
        setattr(namespace, _GIVEN, given | {self.dest})


class _ImpairmentProfile(argparse.Action):
    """``--impairments NAME``: the profile's values for every channel option not given explicitly
    (before or after it)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        given = getattr(namespace, _GIVEN, set())
        for name, value in IMPAIRMENT_PROFILES[str(values)].items():
            if name not in given:
                setattr(namespace, name, value)


def add_channel_options(parser: argparse.ArgumentParser, required: Iterable[str] = ()) -> None:
    """``--snr-db``, ``--channel``, ...: one option per parameter, those in ``required`` without a
    default; and ``--impairments NAME``, a named set of front-end impairments (IMPAIRMENT_PROFILES)
    that options given explicitly override."""
    required = set(required)
    for p in CHANNEL_PARAMS:
        only = f", {'/'.join(p.fading)} only" if p.fading else ""
        unit = f" ({p.unit})" if p.unit else ""
        default = {"required": True} if p.name in required else {"default": p.default}
        parser.add_argument(p.option, dest=p.name, type=p.type, choices=p.choices, help=p.help + only + unit,
                            action=_StoreChannelOption, **default)
    parser.add_argument("--impairments", dest="impairments", choices=sorted(IMPAIRMENT_PROFILES), default="none",
                        action=_ImpairmentProfile,
                        help="front-end impairments of a named radio pair (b2x0: two B200/B210 on their own "
                             "TCXOs; see README); explicit options override its values")


def channel_settings(source: object) -> dict[str, object]:
    """The channel parameters of ``source`` (a ChannelConfig, an object extending it, parsed
    arguments): as keywords for a ChannelConfig or a class extending it."""
    return {p.name: getattr(source, p.name) for p in CHANNEL_PARAMS}


def flowgraph_args(config: object) -> list[str]:
    """channel.grc's command line for ``config``."""
    return grc_argv({p.flowgraph_arg: getattr(config, p.name) for p in CHANNEL_PARAMS})


def report_fields(config: object) -> dict[str, object]:
    """The report's channel fields; a parameter the profile ignores (Doppler on AWGN) is None."""
    return {p.report_field: getattr(config, p.name) if p.applies_to(config.channel) else None for p in CHANNEL_PARAMS}


def report_field_names() -> list[str]:
    return [p.report_field for p in CHANNEL_PARAMS]


def grc_argv(values: Mapping[str, object]) -> list[str]:
    """A grcc-generated flowgraph's options: parameter ``snr_db`` is ``--snr-db``."""
    return [f"--{name.replace('_', '-')}={value}" for name, value in values.items()]

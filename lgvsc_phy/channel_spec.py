"""The channel's parameters, each named once: the config dataclass, the command-line options, the
channel flowgraph's arguments and the report fields all come from ``CHANNEL_PARAMS``.

The flowgraph names and defaults are channel.grc's parameter blocks (tests/test_channel_spec.py
reads the .grc files, so the two cannot drift apart).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, make_dataclass

from lgvsc_phy import channel_profiles


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
)

# Keyword-only: classes that extend it (the loopback's config and options) keep their own positional fields.
ChannelConfig = make_dataclass(
    "ChannelConfig", [(p.name, p.type, field(default=p.default)) for p in CHANNEL_PARAMS], frozen=True, kw_only=True)
ChannelConfig.__module__ = __name__  # where pickle (Ray) finds it
ChannelConfig.__doc__ = "What the channel flowgraph does to the IQ between tx and rx (see CHANNEL_PARAMS)."


def add_channel_options(parser: argparse.ArgumentParser, required: Iterable[str] = ()) -> None:
    """``--snr-db``, ``--channel``, ...: one option per parameter, those in ``required`` without a default."""
    required = set(required)
    for p in CHANNEL_PARAMS:
        only = f", {'/'.join(p.fading)} only" if p.fading else ""
        unit = f" ({p.unit})" if p.unit else ""
        default = {"required": True} if p.name in required else {"default": p.default}
        parser.add_argument(p.option, dest=p.name, type=p.type, choices=p.choices, help=p.help + only + unit,
                            **default)


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

"""The channel specification and the port table against the .grc files they drive: a parameter
renamed, retyped or given another default on one side fails here, not in a loopback run."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
import yaml

from lgvsc.cli import build_parser
from lgvsc_phy.channel_spec import CHANNEL_PARAMS, ChannelConfig, channel_settings, flowgraph_args, report_fields
from lgvsc_phy.link import LinkAddresses
from lgvsc_phy.ports import DEFAULT_BASE_PORT, LOOPBACK_SOCKETS, PORT_SPAN, Port, socket_addresses
from lgvsc_phy.runner import GRC_DIR, compile_flowgraph

GRC_TYPES = {"eng_float": float, "real": float, "intx": int, "int": int, "str": str}


def grc_blocks(grc: str, kinds: tuple[str, ...]) -> dict[str, dict]:
    """The .grc's blocks of the given kinds, by id: their parameters as GRC stores them."""
    flowgraph = yaml.safe_load((GRC_DIR / grc).read_text())
    return {b["name"]: b["parameters"] for b in flowgraph["blocks"] if b["id"] in kinds}


def grc_value(text: str) -> object:
    """A block's value as GRC stores it: ``10``, ``1e-5``, ``'"awgn"'`` (a variable) or ``awgn``
    (a str parameter)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def test_spec_is_exactly_the_channel_flowgraphs_parameters() -> None:
    params = grc_blocks("channel.grc", ("parameter",))
    sockets = LOOPBACK_SOCKETS["channel"]
    assert {p.flowgraph_arg for p in CHANNEL_PARAMS} == set(params) - set(sockets)
    for p in CHANNEL_PARAMS:
        block = params[p.flowgraph_arg]
        assert GRC_TYPES[block["type"]] is p.type, p.name
        assert p.type(grc_value(block["value"])) == p.default, p.name


def test_loopback_gui_knobs_start_at_the_spec_defaults() -> None:
    knobs = grc_blocks("loopback.grc", ("parameter", "variable", "variable_qtgui_range"))
    shared = [p for p in CHANNEL_PARAMS if p.flowgraph_arg in knobs]
    assert "snr_db" in {p.flowgraph_arg for p in shared}  # the GUI is built around its SNR slider
    for p in shared:
        assert p.type(grc_value(knobs[p.flowgraph_arg]["value"])) == p.default, p.name


@pytest.mark.parametrize("flowgraph", sorted(LOOPBACK_SOCKETS))
def test_socket_defaults_of_the_grc_files_are_the_port_table_at_the_default_base(flowgraph: str) -> None:
    params = grc_blocks(f"{flowgraph}.grc", ("parameter",))
    for name, address in socket_addresses(flowgraph, DEFAULT_BASE_PORT).items():
        assert params[name]["value"] == address, (flowgraph, name)


def test_the_chain_and_the_link_meet_on_the_same_ports() -> None:
    base = 41000
    tx, channel, rx = (socket_addresses(name, base) for name in ("tx", "channel", "rx"))
    assert tx["iq_out"] == channel["iq_in"] and channel["iq_out"] == rx["iq_in"]
    link = LinkAddresses.from_base_port(base)
    assert (link.pdu_in, link.tx_stats) == (tx["pdu_in"], tx["stats_out"])
    assert (link.pdu_out, link.rx_stats) == (rx["pdu_out"], rx["stats_out"])
    used = {int(a.rsplit(":", 1)[1]) for addrs in (tx, channel, rx) for a in addrs.values()}
    assert used == set(range(base, base + PORT_SPAN))
    assert Port.RELAY_IQ.address(base) == channel["iq_out"]  # send / receive run no channel flowgraph


@pytest.mark.flowgraph  # compiles channel.grc with grcc
def test_the_channel_flowgraph_parses_the_spec_arguments_into_its_parameters(tmp_path: Path) -> None:
    """The argv the runner builds, through the generated script's own argument parser."""
    script = compile_flowgraph(GRC_DIR / "channel.grc")
    spec = importlib.util.spec_from_file_location("channel_spec_under_test", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = ChannelConfig(snr_db=7.5, channel="rician", cfo=0.125, timing_offset=0.25, doppler=3e-5, k_factor=6.0,
                           phase_noise=0.01, seed=9, sfo_ppm=4.0, iq_imbalance_db=0.25, iq_phase_deg=3.0,
                           dc_offset_dbc=-30.0, pa_backoff_db=6.0, pa_smoothness=3.0, adc_bits=12, drop_rate=1e-6)
    options = module.argument_parser().parse_args(flowgraph_args(config))
    for p in CHANNEL_PARAMS:
        assert p.type(getattr(options, p.flowgraph_arg)) == getattr(config, p.name), p.name


def test_loopback_command_line_gives_every_channel_parameter() -> None:
    argv = ["loopback", "in.mp4", "-o", "out.mp4", "--snr-db", "3", "--channel", "rician", "--k-factor", "6",
            "--timing-offset", "0.5", "--seed", "4"]
    args = build_parser().parse_args(argv)
    config = ChannelConfig(**channel_settings(args))
    assert config == ChannelConfig(snr_db=3.0, channel="rician", k_factor=6.0, timing_offset=0.5, seed=4)
    with pytest.raises(SystemExit):  # --snr-db stays required
        build_parser().parse_args(argv[:4])
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--channel", "moon"])


def test_report_fields_leave_out_what_the_profile_ignores() -> None:
    awgn, rician = report_fields(ChannelConfig()), report_fields(ChannelConfig(channel="rician", k_factor=2.0))
    assert list(awgn) == [p.report_field for p in CHANNEL_PARAMS]
    assert awgn["doppler"] is None and awgn["k_factor"] is None and awgn["snr_db"] == 10.0
    assert rician["doppler"] == 1e-5 and rician["k_factor"] == 2.0
    assert report_fields(ChannelConfig(channel="rayleigh"))["k_factor"] is None

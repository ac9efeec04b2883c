"""A transmitter that plans for a design SNR and never learns the channel's (broadcast, no
feedback): the MCS comes from the design SNR alone, and the receiver gets what the channel lets
through."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lgvsc.loopback import LoopbackOptions, planned_loss, settled_link
from lgvsc.rate_control import Probe, link_mcs
from lgvsc_phy.channel_spec import ChannelConfig
from lgvsc_phy.mcs import THRESHOLD_DB, auto_mcs, get_mcs
from lgvsc_phy.theory import fading_outage
from semantic.video_io import read_video
from tools.sweep import COLUMNS, Grid, PointSettings, point_row

ROOT = Path(__file__).resolve().parent.parent


def test_a_design_snr_picks_the_mcs_without_touching_the_link() -> None:
    # link=None: any probe or other use of the link would raise
    assert link_mcs(None, "auto", 10.0, True, 0.0) == (None, auto_mcs(10.0))
    assert link_mcs(None, "auto", 3.0, True, 25.0) == (None, auto_mcs(3.0))
    assert link_mcs(None, "qpsk-3/4", 25.0, True, 0.0) == (None, get_mcs("qpsk-3/4"))  # a named MCS stays
    assert link_mcs(None, "auto", None, False, 20.0) == (None, auto_mcs(20.0))  # told the channel's SNR
    assert auto_mcs(3.0) != auto_mcs(20.0)


def test_a_fading_link_plans_the_track_for_its_outage() -> None:
    qpsk = get_mcs("qpsk-2/3")
    probe = Probe(5.8, 5.8, 3840)

    def opts(**kw: object) -> LoopbackOptions:
        return LoopbackOptions(Path("in.mp4"), Path("out.mp4"), snr_db=12.0, **kw)

    assert planned_loss(opts(channel="awgn"), qpsk, probe) == 0.0  # a static channel: a clean link
    assert planned_loss(opts(channel="multipath"), qpsk, probe) == 0.0
    rayleigh = planned_loss(opts(channel="rayleigh"), qpsk, probe)  # from the probe's SNR, not the channel's
    assert rayleigh == pytest.approx(fading_outage("rayleigh", THRESHOLD_DB["qpsk-2/3"], 5.8)) and 0.4 < rayleigh < 0.5
    assert planned_loss(opts(channel="rician", k_factor=10.0), qpsk, probe) < rayleigh
    designed = planned_loss(opts(channel="rayleigh", design_snr_db=10.0), qpsk, None)
    assert designed == pytest.approx(fading_outage("rayleigh", THRESHOLD_DB["qpsk-2/3"], 10.0))
    assert planned_loss(opts(channel="rayleigh"), qpsk, Probe(None, None, 3840)) == 1.0  # the probe was lost
    assert planned_loss(opts(channel="rayleigh", expected_loss=0.0), qpsk, probe) == 0.0  # as given
    assert settled_link(opts(channel="awgn")) and not settled_link(opts(channel="awgn", expected_loss=0.1))


def test_the_sweep_has_a_design_snr_axis_and_column(tmp_path: Path) -> None:
    grid = Grid(["/v/a.mp4"], ["lgvsc", "h264"], [4.0, 10.0], [1e-3], ["awgn"], design_snr_db=[None, 10.0])
    points = grid.points()
    assert len(points) == 8 and len({p.key for p in points}) == 8
    planned = [p for p in points if p.design_snr_db == 10.0]
    assert len(planned) == 4 and all(p.key.endswith("_design10") for p in planned)
    probed = next(p for p in points if p.design_snr_db is None)
    assert "design" not in probed.key  # results.csv written before the axis existed still resume
    row = point_row(planned[0], PointSettings(str(tmp_path)))
    assert "design_snr_db" in COLUMNS and row["design_snr_db"] == 10.0


@pytest.mark.flowgraph
def test_loopback_planned_for_10_db_received_at_4_db(bikes: Path, tmp_path: Path, base_port: int) -> None:
    """The MCS is the design SNR's, no probe is sent, and the video still has every frame."""
    out, report, page = tmp_path / "o.mp4", tmp_path / "r.json", tmp_path / "r.html"
    r = subprocess.run([sys.executable, "-m", "lgvsc.cli", "loopback", str(bikes), "-o", str(out), "--snr-db", "4",
                        "--design-snr-db", "10", "--cbr", "1e-3", "--max-frames", "60", "--report", str(report),
                        "--html", str(page), "--base-port", str(base_port)],
                       cwd=ROOT, capture_output=True, text=True, timeout=500)
    assert r.returncode in (0, 4), r.stderr  # 4: degraded (PDUs lost), what arrived was written
    rep = json.loads(report.read_text())
    assert rep["design_snr_db"] == 10 and rep["snr_db"] == 4
    assert rep["mcs"] == auto_mcs(10.0).name and rep["probe"] is None
    assert rep["frames_out"] == read_video(out).info.frames == 60
    assert "planned for 10 dB" in r.stdout
    # no feedback: layered; at 4 dB the track's 16qam-1/2 PDUs are lost and the base layer, on an
    # MCS more than 3 dB below, gives keyframes (one layer would leave only the colour layout)
    assert rep["layers"] == 2 and rep["base_mcs"] == "qpsk-2/3" and rep["keyframes_from_base"]
    assert set(rep["keyframes_from_base"]) <= set(rep["keyframes_sent"]) and not rep["header_lost"]
    # what each burst saw, beside what was lost: a value for every PDU that arrived, None for the lost
    snr = rep["pdu_snr_db"]
    assert len(snr) == rep["pdus_sent"] and {i for i, v in enumerate(snr) if v is None} == set(rep["lost_pdus"])
    assert all(-5 < v < 15 for v in snr if v is not None)  # the receiver's estimates around the channel's 4 dB
    html = page.read_text()  # the page draws a bar per PDU, red where lost
    assert html.count('class="lost"') == len(rep["lost_pdus"]) and html.count('class="received"') == len(snr) - len(
        rep["lost_pdus"])


def test_the_sweep_has_a_doppler_axis_that_reaches_the_channel() -> None:
    grid = Grid(["/v/a.mp4"], ["lgvsc"], [10.0], [1e-3], ["rayleigh"], doppler=[None, 1e-4, 1e-2])
    points = grid.points()
    assert [p.doppler for p in points] == [None, 1e-4, 1e-2]
    assert points[0].channel_config().doppler == ChannelConfig().doppler  # the channel's default
    assert points[2].channel_config().doppler == 1e-2 and points[2].key.endswith("_fd0.01")
    assert "_fd" not in points[0].key

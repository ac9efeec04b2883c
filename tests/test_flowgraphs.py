"""Every .grc compiles with grcc; the tx flowgraph emits exactly what the reference modulator does."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
import zmq

from lgvsc_phy.mcs import get_mcs
from lgvsc_phy.ofdm import OfdmBurstReceiver, OfdmModulator
from lgvsc_phy.pmt_codec import encode_pdu
from lgvsc_phy.runner import (
    GRC_DIR,
    FlowgraphProcess,
    compile_flowgraph,
    compile_hier_blocks,
    flowgraph_sources,
    hier_block_sources,
)
from lgvsc_phy.stream_time import split_zmq_message

GRC_FILES = flowgraph_sources()
OFDM_TX = GRC_DIR / "lgvsc_ofdm_tx.grc"
# Block kinds a flowgraph may use for its own purposes too (loopback.grc streams decoded PDUs).
GENERIC_BLOCKS = {"pad_source", "pad_sink", "parameter", "variable", "import", "pdu_pdu_to_tagged_stream",
                  "blocks_multiply_const_vxx"}


def read_grc(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_there_are_flowgraphs() -> None:
    assert {p.name for p in GRC_FILES} >= {"tx.grc", "channel.grc", "rx.grc", "loopback.grc"}
    assert hier_block_sources() == [OFDM_TX]  # a block, not a flowgraph to run


@pytest.mark.parametrize("name", ["tx.grc", "tx_usrp.grc", "loopback.grc"])
def test_tx_chain_is_the_hier_block(name: str) -> None:
    """The OFDM transmitter exists once, in lgvsc_ofdm_tx.grc: its users hold the block, no copy
    of its stages, frame layout or power scaling."""
    hier = read_grc(OFDM_TX)
    blocks = read_grc(GRC_DIR / name)["blocks"]
    assert [b["id"] for b in blocks].count(hier["options"]["parameters"]["id"]) == 1
    stages = {b["id"] for b in hier["blocks"]} - GENERIC_BLOCKS
    assert {"lgvsc_burst_mapper", "digital_ofdm_carrier_allocator_cvc", "fft_vxx"} <= stages
    assert not stages & {b["id"] for b in blocks}
    layout = {b["name"] for b in hier["blocks"] if b["id"] == "variable"}
    assert "fft_len" in layout and not layout & {b["name"] for b in blocks}
    assert not [b["name"] for b in blocks if "ofdm_tx_scale" in str(b["parameters"])]


@pytest.mark.parametrize("grc", sorted(GRC_DIR.glob("*.grc")), ids=lambda p: p.name)
def test_no_two_blocks_share_a_place(grc: Path) -> None:
    """In GRC's canvas a block on top of another hides it."""
    data = read_grc(grc)
    places = [tuple(b["states"]["coordinate"]) for b in [data["options"], *data["blocks"]]]
    assert len(set(places)) == len(places)


# What GRC 3.10 draws for a block (gnuradio/grc/gui/canvas/block.py, create_labels, and param.py,
# format_block_surface_markup): the title (bold Sans 8) over one line per parameter whose hide is
# not 'all'/'part', plus the ID line when View > Show Block IDs is on; a line reads "Label: value",
# in Sans 7.5, the value cut to max(27 - len(label), 3) characters (an option's name is not cut),
# and, with "show parameter expressions" on, an expression that evaluates to something else reads
# "expression=value", each side cut. 7 px padding all round, at least 16 + 32 px per port high,
# rounded to the 8 px grid. Ports stick out at the sides, 4 px plus their label. The comment (GRC
# shows comments by default) hangs 7 px below the block, a 13 px line per line of text.
# (A block's own comment box is not checked against the block.)
# Calibrated on GRC's own canvas classes under Xvfb, every block of every flowgraph here: 16 px a
# line over 24 px; a title or port character 5..7.5 px, a parameter character 4..6.3 px, a
# comment character 4..6.5 px. The estimate takes the wide ends, so it is never under GRC's box
# (10..40 % over on width), and a gap GRC shows between two boxes may be called an overlap here.
TITLE_PX, PARAM_PX, COMMENT_PX, PORT_PX = 8.0, 6.6, 7.0, 7.0  # px per character
LINE_PX, BLOCK_PAD, PORT_STEP, GRID = 16, 24, 32, 8


def _grid_up(px: float) -> int:
    return int(-(-px // GRID) * GRID)


def _shown_text(param) -> str:  # noqa: ANN001 - a GRC core Param
    """The widest "Label: value" GRC may draw for ``param`` on the block."""
    value = str(param.get_value())
    limit = max(27 - len(param.name), 3)
    if param.options and value in param.options:
        return f"{param.name}: {param.options[value]}"
    try:
        shown = str(param.get_evaluated())
    except Exception:  # noqa: BLE001 - GRC shows the expression in red: as wide as this
        shown = value
    text = shown[:limit] if shown == value else f"{value[:limit]}={shown[:limit]}"
    return f"{param.name}: {text}".replace("\n", " ")


def block_boxes(block) -> list[tuple[float, float, float, float]]:  # noqa: ANN001 - a GRC core Block
    """(x0, y0, x1, y1) boxes GRC draws for ``block``: the block with its ports, then its comment."""
    x, y = block.states["coordinate"]
    lines = [_shown_text(p) for p in block.params.values() if p.hide not in ("all", "part")]
    lines.append(f"ID: {block.name}")
    width = max([len(block.label) * TITLE_PX, *(len(line) * PARAM_PX for line in lines)]) + 14
    ports = max(len(block.active_sinks), len(block.active_sources))
    height = max(BLOCK_PAD + LINE_PX * len(lines), 16 + PORT_STEP * ports)
    width, height = _grid_up(width), _grid_up(height)
    if block.states.get("rotation", 0) in (90, 270):
        width, height = height, width

    def stick_out(ports: list) -> float:
        return max([0, *(max(10.0, 4 + len(p.name) * PORT_PX) for p in ports)])

    boxes = [(x - stick_out(block.active_sinks), y, x + width + stick_out(block.active_sources), y + height)]
    if block.comment:  # from the block's top: GRC's block may be shorter than the estimate
        text = block.comment.splitlines()
        boxes.append((x, y, x + max(len(t) for t in text) * COMMENT_PX, y + height + 7 + 14 * len(text)))
    return boxes


@pytest.fixture(scope="module")
def grc_platform(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - a GRC core Platform
    """GRC's own model of the blocks (which parameters and ports a block shows), with this
    checkout's blocks and hier blocks, not the per-user library's."""
    core = pytest.importorskip("gnuradio.grc.core.platform")
    from gnuradio import gr

    hier = tmp_path_factory.mktemp("hier")
    compile_hier_blocks(hier)
    saved = {k: os.environ.get(k) for k in ("GRC_BLOCKS_PATH", "GRC_HIER_PATH")}
    os.environ["GRC_BLOCKS_PATH"] = os.pathsep.join([str(GRC_DIR / "blocks"), str(hier)])
    os.environ["GRC_HIER_PATH"] = str(hier)
    try:
        platform = core.Platform(version=gr.version(), prefs=gr.prefs(),
                                 version_parts=(gr.major_version(), gr.api_version(), gr.minor_version()))
        platform.build_library()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return platform


def overlaps(grc: Path, platform) -> list[str]:  # noqa: ANN001 - a GRC core Platform
    flowgraph = platform.make_flow_graph(str(grc))
    flowgraph.rewrite()
    flowgraph.validate()  # evaluates the parameters, as GRC does before it draws them
    blocks = list(flowgraph.blocks)  # the Options block too; disabled blocks are drawn as well
    unknown = [b.name for b in blocks if b.is_dummy_block]
    assert not unknown, f"GRC does not know these blocks of {grc.name}: {unknown}"
    drawn = [(b.name, i, box) for b in blocks for i, box in enumerate(block_boxes(b))]
    found = []
    for n, (name_a, part_a, a) in enumerate(drawn):
        for name_b, part_b, b in drawn[n + 1:]:
            if name_a == name_b:
                continue
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                what = ("", " comment")
                found.append(f"{name_a}{what[part_a]} {a} overlaps {name_b}{what[part_b]} {b}")
    return found


@pytest.mark.flowgraph
@pytest.mark.parametrize("grc", sorted(GRC_DIR.glob("*.grc")), ids=lambda p: p.name)
def test_no_two_blocks_overlap(grc: Path, grc_platform) -> None:  # noqa: ANN001
    """No block, its ports or its comment drawn over another's, by a conservative estimate of
    the boxes GRC draws (see block_boxes)."""
    assert overlaps(grc, grc_platform) == []


@pytest.mark.flowgraph
def test_overlap_estimate_catches_a_real_overlap(tmp_path: Path, grc_platform) -> None:  # noqa: ANN001
    """Two blocks 100 px apart overlap in GRC when the first is wider than that (a parameter block
    is 96..168 px wide): the check must see it, and see nothing once they are moved apart."""
    grc = GRC_DIR / "rx.grc"
    data = read_grc(grc)
    params = [b for b in data["blocks"] if b["id"] == "parameter"]
    params[1]["states"]["coordinate"] = [params[0]["states"]["coordinate"][0] + 100,
                                         params[0]["states"]["coordinate"][1]]
    bad = tmp_path / "rx.grc"
    bad.write_text(yaml.safe_dump(data))
    assert any(params[0]["name"] in o and params[1]["name"] in o for o in overlaps(bad, grc_platform))


USRP_SHORT_IDS = {"usrp_args": "a", "freq": "f", "gain": "g", "rate": "s"}
RADIO_SETUP = {"subdev": "", "clock_source": "internal", "time_source": "internal", "lo_offset": "0"}


@pytest.mark.parametrize("name", ["tx_usrp.grc", "rx_usrp.grc", "rx_usrp_gui.grc"])
def test_usrp_flowgraphs_take_short_options_and_radio_setup(name: str) -> None:
    """-a -f -g -s as on UHD's own tools; subdevice, clock and time source and LO offset reach the radio."""
    blocks = {b["name"]: b for b in read_grc(GRC_DIR / name)["blocks"]}
    params = {n: b["parameters"] for n, b in blocks.items() if b["id"] == "parameter"}
    assert {n: p["short_id"] for n, p in params.items() if p["short_id"]} == USRP_SHORT_IDS
    assert {n: str(params[n]["value"]) for n in RADIO_SETUP} == RADIO_SETUP
    (radio,) = [b["parameters"] for b in blocks.values() if b["id"] in ("uhd_usrp_source", "uhd_usrp_sink")]
    wired = (radio["clock_source0"], radio["time_source0"], radio["sd_spec0"])
    assert wired == ("clock_source", "time_source", "subdev")
    assert radio["center_freq0"].startswith("uhd.tune_request(") and radio["center_freq0"].endswith(", lo_offset)")


def test_gui_receiver_is_the_usrp_receiver() -> None:
    """rx_usrp_gui.grc: rx_usrp.grc's parameters and receive chain, plus spectrum, constellation,
    SNR / PER / goodput labels and gain and frequency sliders that drive the radio."""
    rx, gui = read_grc(GRC_DIR / "rx_usrp.grc"), read_grc(GRC_DIR / "rx_usrp_gui.grc")
    assert gui["options"]["parameters"]["generate_options"] == "qt_gui"

    def params(data: dict) -> dict:
        return {b["name"]: {k: str(v) for k, v in b["parameters"].items() if k != "comment"}
                for b in data["blocks"] if b["id"] == "parameter"}

    assert params(gui) == params(rx)
    rx_blocks = {b["name"]: b for b in rx["blocks"]}
    gui_blocks = {b["name"]: b for b in gui["blocks"]}
    for name, block in rx_blocks.items():
        if block["id"] in ("parameter", "snippet"):
            continue
        assert gui_blocks[name]["id"] == block["id"]
        skip = {"comment", "alias", "affinity", "minoutbuf", "maxoutbuf"}  # GRC drops buffers of message blocks
        ours = {k: str(v) for k, v in gui_blocks[name]["parameters"].items() if k not in skip}
        theirs = {k: str(v) for k, v in block["parameters"].items() if k not in skip}
        if block["id"] == "uhd_usrp_source":  # the sliders drive the radio
            assert ours.pop("center_freq0") == "uhd.tune_request(rf_freq, lo_offset)" and ours.pop("gain0") == "rf_gain"
            theirs.pop("center_freq0"), theirs.pop("gain0")
        # rx_usrp.grc lists only some parameters, and has "auto"/'' where GRC reads the enums
        # sync, dc_offs_enb0 and iq_imbal_enb0 as their defaults (the generated code is the same)
        theirs = {k: v for k, v in theirs.items() if k not in ("sync", "dc_offs_enb0", "iq_imbal_enb0")}
        assert {k: ours.get(k) for k in theirs} == theirs, name
    assert {tuple(c) for c in rx["connections"]} <= {tuple(c) for c in gui["connections"]}
    kinds = {b["id"] for b in gui["blocks"]}
    assert {"qtgui_freq_sink_x", "qtgui_const_sink_x"} <= kinds
    sliders = {b["name"]: b["parameters"]["value"] for b in gui["blocks"] if b["id"] == "variable_qtgui_range"}
    assert sliders == {"rf_freq": "freq", "rf_gain": "gain"}
    labels = {b["name"] for b in gui["blocks"] if b["id"] == "variable_qtgui_label"}
    setters = {b["parameters"]["target"] for b in gui["blocks"] if b["id"] == "blocks_msgpair_to_var"}
    assert labels == setters == {"snr_est", "per", "goodput"}


@pytest.mark.flowgraph
def test_gui_receiver_script_starts(tmp_path: Path) -> None:
    """The generated GUI receiver runs under the system Python (as GRC runs it) as far as --help:
    no USRP here to go further."""
    python = Path("/usr/bin/python3")
    if not python.exists():
        pytest.skip("no /usr/bin/python3")
    script = compile_flowgraph(GRC_DIR / "rx_usrp_gui.grc", tmp_path)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(GRC_DIR.parent))
    out = subprocess.run([str(python), str(script), "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    for option in ("-a USRP_ARGS", "-f FREQ", "-g GAIN", "-s RATE", "--subdev", "--clock-source", "--time-source",
                   "--lo-offset"):
        assert option in out.stdout


@pytest.mark.flowgraph
def test_hier_blocks_install_into_a_library(tmp_path: Path) -> None:
    """What an installer puts into GRC's hier-block library: the module and its block YAML,
    no temporary directory left, the documentation naming the installed module."""
    written = compile_hier_blocks(tmp_path)
    assert sorted(p.name for p in written) == ["lgvsc_ofdm_tx.block.yml", "lgvsc_ofdm_tx.py"]
    assert sorted(tmp_path.iterdir()) == sorted(written)
    block = yaml.safe_load((tmp_path / "lgvsc_ofdm_tx.block.yml").read_text())
    assert block["id"] == "lgvsc_ofdm_tx" and str(tmp_path / "lgvsc_ofdm_tx.py") in block["documentation"]
    assert compile_hier_blocks(tmp_path) == written  # installs again over its own files
    with pytest.raises(ValueError, match="hier block"):
        compile_flowgraph(OFDM_TX, tmp_path)


@pytest.mark.flowgraph
def test_editing_the_hier_block_recompiles_its_users(tmp_path: Path) -> None:
    """The hier block's source is part of each user's cache key, and a compiled flowgraph
    carries the hier block it was compiled with."""
    sources = tmp_path / "grc"
    sources.mkdir()
    for grc in ("tx.grc", OFDM_TX.name):
        shutil.copy(GRC_DIR / grc, sources)
    before = compile_flowgraph(sources / "tx.grc", tmp_path / "cache")
    hier = sources / OFDM_TX.name
    edited = hier.read_text().replace("value: '1.0'", "value: '0.5'")  # the default amplitude
    assert edited != hier.read_text()
    hier.write_text(edited)
    after = compile_flowgraph(sources / "tx.grc", tmp_path / "cache")
    assert after.parent != before.parent
    assert "amplitude=1.0" in (before.parent / "lgvsc_ofdm_tx.py").read_text()
    assert "amplitude=0.5" in (after.parent / "lgvsc_ofdm_tx.py").read_text()


@pytest.mark.flowgraph
@pytest.mark.parametrize("grc", GRC_FILES, ids=lambda p: p.name)
def test_flowgraph_compiles(grc: Path, tmp_path: Path) -> None:
    script = compile_flowgraph(grc, tmp_path)
    assert script.is_file()
    subprocess.run([sys.executable, "-m", "py_compile", str(script)], check=True)


def capture_tx(mcs: str, payloads: list[bytes], base: int) -> np.ndarray:
    """Run the real tx flowgraph and collect the IQ it pushes."""
    script = compile_flowgraph(GRC_DIR / "tx.grc")
    fg = FlowgraphProcess("tx", [sys.executable, "-u", str(script), f"--mcs={mcs}", f"--pdu-in=tcp://127.0.0.1:{base}",
                                 f"--iq-out=tcp://127.0.0.1:{base + 1}", f"--stats-out=tcp://127.0.0.1:{base + 2}"])
    ctx = zmq.Context()
    iq = ctx.socket(zmq.PULL)
    iq.setsockopt(zmq.RCVTIMEO, 1500)
    iq.setsockopt(zmq.LINGER, 0)
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    try:
        fg.start()
        assert fg.wait_ready(30), fg.describe_crash()
        iq.connect(f"tcp://127.0.0.1:{base + 1}")
        push.connect(f"tcp://127.0.0.1:{base}")
        time.sleep(0.2)
        for p in payloads:
            push.send(encode_pdu(p))
        chunks = []
        while True:
            try:
                chunks.append(iq.recv())
            except zmq.Again:
                break
    finally:
        fg.stop()
        push.close()
        iq.close()
        ctx.term()
    return np.frombuffer(b"".join(split_zmq_message(c)[2] for c in chunks), dtype=np.complex64)


@pytest.mark.parametrize("mcs", ["bpsk-1/2", "qpsk-2/3", "16qam-3/4", "64qam-5/6"])  # every modulation and rate
def test_tx_flowgraph_matches_reference_modulator(mcs: str, base_port: int) -> None:
    m = get_mcs(mcs)
    mapper = m.mapper()
    payloads = [os.urandom(n) for n in (m.max_link_pdu_bytes, 1, 100)]
    got = capture_tx(mcs, payloads, base_port)
    mod = OfdmModulator(m.ofdm)
    want = np.concatenate([mod.burst(mapper.symbols(p, seq)) for seq, p in enumerate(payloads)])
    assert want.size == sum(m.burst_cost(len(p))[1] for p in payloads)
    # Every burst, the last one's trailing zeros included, leaves the tx without waiting for
    # more input (GNU Radio's burst shaper held them back until the next burst).
    assert got.size == want.size
    np.testing.assert_allclose(got, want, atol=1e-4)
    # Signal power on the burst body is what the SNR definition assumes (unit mean power).
    body = want[: m.ofdm.burst_samples(m.burst_cost(len(payloads[0]))[0]) - m.ofdm.post_padding]
    assert abs(np.mean(np.abs(body) ** 2) - 1.0) < 0.1


def _noisy(x: np.ndarray, snr_db: float, p, rng: np.random.Generator) -> np.ndarray:  # noqa: ANN001
    sigma = p.noise_voltage(snr_db)
    return x + sigma * (rng.standard_normal(x.size) + 1j * rng.standard_normal(x.size)) / np.sqrt(2)


@pytest.mark.parametrize("mcs,snr_db,cfo", [("qpsk-1/2", 20.0, 0.0), ("qpsk-1/2", 5.0, 0.3), ("qpsk-1/2", 5.0, -0.4),
                                            ("16qam-3/4", 16.0, 0.1), ("64qam-5/6", 22.0, -0.2)])
def test_receiver_decodes_every_burst(mcs: str, snr_db: float, cfo: float) -> None:
    """Mixed MCS in one stream: the receiver follows the coded header from burst to burst."""
    m, other = get_mcs(mcs), get_mcs("bpsk-1/2")
    rng = np.random.default_rng(5)
    mod = OfdmModulator(m.ofdm)
    formats = [m if i % 3 else other for i in range(12)]
    payloads = [rng.bytes(f.max_link_pdu_bytes) for f in formats]
    pairs = enumerate(zip(formats, payloads, strict=True))
    x = np.concatenate([np.zeros(37, np.complex64)] + [mod.burst(f.mapper().symbols(p, seq)) for seq, (f, p) in pairs])
    x = _noisy(x * np.exp(2j * np.pi * cfo * np.arange(x.size) / m.ofdm.fft_len), snr_db, m.ofdm, rng)
    rx = OfdmBurstReceiver(m.ofdm)
    bursts = [b for i in range(0, x.size, 1000) for b in rx.feed(x[i:i + 1000])]
    assert [b.seq for b in bursts] == list(range(12))
    assert [b.mcs for b in bursts] == [f.name for f in formats]
    assert all(get_mcs(b.mcs).codec().decode_symbols(b.symbols, b.csi).payload == payloads[b.seq] for b in bursts)
    assert abs(np.mean([b.snr_db for b in bursts]) - snr_db) < 1.5 + 0.1 * max(0.0, 10 - snr_db)
    assert abs(np.mean([b.cfo for b in bursts]) - cfo) < 0.02


@pytest.mark.flowgraph
def test_gui_loopback_decodes_offscreen(tmp_path: Path) -> None:
    """loopback.grc (QT GUI) runs headless, its receiver decodes the random PDUs it sends, and
    its console reports the decoded rate instead of printing every PDU (that flooded GRC)."""
    script = compile_flowgraph(GRC_DIR / "loopback.grc", tmp_path)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(GRC_DIR.parent))
    try:
        proc = subprocess.run([sys.executable, "-u", str(script)], env=env, capture_output=True, text=True, timeout=6)
        output = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:  # a GUI runs until closed: stopping it is the plan
        output = (exc.stdout or b"").decode() + (exc.stderr or b"").decode()
    # Message Debug fed by a Probe Rate: "((rate_now . <bytes/s>) (rate_avg . <bytes/s>))" each second.
    rates = [float(r) for r in re.findall(r"rate_now \. ([-+0-9.e]+)", output)]
    assert rates and max(rates) > 1000, output[-2000:]  # ~50 PDUs of 64..200 bytes a second are sent
    assert "ldpc_iterations" not in output and len(output.splitlines()) < 100, output[-2000:]


def test_burst_padding_sends_each_bursts_zeros_with_it() -> None:
    """Pre- and post-padding around each burst, the length tag grown and at the burst's new
    start with its other tags; the trailing zeros leave while the stream is idle."""
    import pmt
    from gnuradio import blocks, gr
    from gnuradio import pdu as gr_pdu

    from lgvsc_phy.gr_blocks import BurstPadding

    tb = gr.top_block()
    to_stream = gr_pdu.pdu_to_tagged_stream(gr.types.complex_t, "packet_len")
    pad = BurstPadding(3, 5, "packet_len")
    sink = blocks.vector_sink_c()
    tb.connect(to_stream, pad, sink)
    tb.start()
    try:
        for n in (4, 2):  # the first burst carries a tx_time (its metadata becomes a tag at its start)
            meta = pmt.dict_add(pmt.make_dict(), pmt.intern("tx_time"), pmt.from_long(7)) if n == 4 else pmt.PMT_NIL
            to_stream.to_basic_block()._post(pmt.intern("pdus"), pmt.cons(meta, pmt.init_c32vector(n, [1] * n)))
            time.sleep(0.3)  # idle: nothing more arrives, the trailing zeros must be out already
        got = np.array(sink.data())
        tags = sorted((t.offset, pmt.symbol_to_string(t.key), pmt.to_python(t.value)) for t in sink.tags())
    finally:
        tb.stop()
        tb.wait()
    np.testing.assert_array_equal(got, [0] * 3 + [1] * 4 + [0] * 5 + [0] * 3 + [1] * 2 + [0] * 5)
    assert (0, "packet_len", 12) in tags and (12, "packet_len", 10) in tags
    assert (0, "tx_time", 7) in tags


def _receive_in_flowgraph(x: np.ndarray, batch: int) -> tuple[list[bytes], list[int], list[dict]]:
    """``x`` through the receiver block (decoding) in a GNU Radio flowgraph: the payloads it
    emitted, the sample count of each ``work`` call and the counters messages."""
    from gnuradio import blocks, gr

    from lgvsc_phy.gr_blocks import OfdmReceiver
    from lgvsc_phy.pmt_codec import decode_pair

    class Recording(OfdmReceiver):
        calls: list[int]

        def work(self, input_items, output_items):  # noqa: ANN001, ANN201 - GNU Radio signature
            self.calls.append(len(input_items[0]))
            return super().work(input_items, output_items)

    import pmt

    tb = gr.top_block()
    rx = Recording(0.06, decode=True, batch=batch)
    rx.calls = []
    source = blocks.vector_source_c(x.astype(np.complex64), False)
    source.set_max_noutput_items(2000)  # as a radio source hands over one USB packet per call
    store, counters = blocks.message_debug(), blocks.message_debug()
    tb.connect(source, rx)
    tb.msg_connect((rx, "out"), (store, "store"))
    tb.msg_connect((rx, "stats"), (counters, "store"))
    tb.run()
    payloads = [decode_pair(pmt.serialize_str(store.get_message(i)))[1] for i in range(store.num_messages())]
    stats = [decode_pair(pmt.serialize_str(counters.get_message(i)))[0] for i in range(counters.num_messages())]
    return payloads, rx.calls, stats


def test_a_batching_receiver_works_on_whole_batches_and_decodes_every_burst() -> None:
    """On a radio's endless stream (rx_usrp.grc: batch 16384) the receiver block is called on
    multiples of its batch, not on each packet, and decodes what it would unbatched; a loopback's
    rx.grc keeps batch 0, where the last burst must not wait for samples that never come."""
    m = get_mcs("qpsk-1/2")
    rng = np.random.default_rng(3)
    payloads = [rng.bytes(m.max_link_pdu_bytes) for _ in range(6)]
    mod = OfdmModulator(m.ofdm)
    bursts = np.concatenate([mod.burst(m.mapper().symbols(p, seq)) for seq, p in enumerate(payloads)])
    # A radio's stream has no end; this one ends on a whole batch (a block waiting for the rest
    # of its last batch would keep the flowgraph from finishing).
    tail = 2 * 8192 - (500 + bursts.size) % 8192
    stream = _noisy(np.concatenate([np.zeros(500), bursts, np.zeros(tail)]), 15.0, m.ofdm, rng)
    got, calls, stats = _receive_in_flowgraph(stream, 8192)
    assert got == payloads
    assert calls and all(n % 8192 == 0 for n in calls), calls
    # One counters message per call that finished bursts (not one per burst), cumulative, in order.
    assert len(stats) < len(payloads) and len(stats) <= len(calls)
    assert [s["crc_ok"] for s in stats] == sorted(s["crc_ok"] for s in stats)
    assert stats[-1]["crc_ok"] == stats[-1]["bursts"] == len(payloads) and stats[-1]["crc_fail"] == 0
    ended = _noisy(np.concatenate([np.zeros(500), bursts]), 15.0, m.ofdm, rng)
    assert _receive_in_flowgraph(ended, 0)[0] == payloads
    blocks = {b["name"]: b for grc in ("rx_usrp.grc", "rx_usrp_gui.grc") for b in read_grc(GRC_DIR / grc)["blocks"]}
    assert str(blocks["ofdm_receiver"]["parameters"]["batch"]) == "16384"
    rx = {b["name"]: b["parameters"] for b in read_grc(GRC_DIR / "rx.grc")["blocks"]}
    assert rx["ofdm_receiver"]["batch"] == "batch" and str(rx["batch"]["value"]) == "0"


def test_receiver_batch_is_a_sample_count() -> None:
    from lgvsc_phy.gr_blocks import OfdmReceiver

    with pytest.raises(ValueError, match="batch"):
        OfdmReceiver(batch=-1)

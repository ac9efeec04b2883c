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
    return np.frombuffer(b"".join(chunks), dtype=np.complex64)


@pytest.mark.parametrize("mcs", ["bpsk-1/2", "qpsk-2/3", "16qam-3/4", "64qam-5/6"])  # every modulation and rate
def test_tx_flowgraph_matches_reference_modulator(mcs: str, base_port: int) -> None:
    m = get_mcs(mcs)
    mapper = m.mapper()
    payloads = [os.urandom(n) for n in (m.max_link_pdu_bytes, 1, 100)]
    got = capture_tx(mcs, payloads, base_port)
    mod = OfdmModulator(m.ofdm)
    want = np.concatenate([mod.burst(mapper.symbols(p, seq)) for seq, p in enumerate(payloads)])
    assert want.size == sum(m.burst_cost(len(p))[1] for p in payloads)
    # The burst shaper emits a burst's trailing zero padding only once more input arrives, so
    # the last burst's padding may still be in the tx when the stream goes idle.
    assert want.size - m.ofdm.post_padding <= got.size <= want.size
    np.testing.assert_allclose(got, want[: got.size], atol=1e-4)
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

"""PHY benchmark through the real tx, channel and rx flowgraphs (separate processes, ZeroMQ).

    python -m tools.bench_phy --json out/bench_phy.json [--quick] [--plots out/bench_phy]

Writes, per MCS, the Es/N0 where PDU error rate reaches 1e-2 over AWGN (``snr_at_per_1e-2_db``)
beside the normal-approximation bound for the same block length, rate and constellation
(``bound_db``, per-codeword error rate chosen so that a PDU of that MCS fails 1 % of the time);
uncoded (pre-FEC) BER per modulation beside exact theory; under ``impairments``, the same SNR
figure for qpsk-1/2 under CFO, multipath and the B2x0 front-end profile (``--impairments b2x0``),
the multipath and B2x0 costs beside what they cost an ideal receiver (``ideal_cost_db``) and, for
multipath, the bound itself (``bound_cost_db``); throughputs measured in this run: the whole
chain (``chain_msps``), our LDPC decoder (``ldpc_decode_mbps``, batched and per burst) and GNU
Radio's stock ``fec.ldpc_decoder`` on the same code, SNR and iteration limit
(``stock_ldpc_decode_mbps``); and under ``realtime`` the rx flowgraph's CPU seconds per second of
samples fed at a live 1, 2 and 5 MS/s (``tools.bench_realtime``). PNG plots go next to the JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from lgvsc_phy.channel_spec import IMPAIRMENT_PROFILES
from lgvsc_phy.constellation import CONSTELLATIONS
from lgvsc_phy.ideal_link import IdealImpairedLink, IdealLink, carrier_gains
from lgvsc_phy.mcs import MCS_TABLE, THRESHOLD_DB, Mcs, get_mcs
from lgvsc_phy.theory import normal_approximation_snr_db, uncoded_ber
from tools.bench_realtime import DEFAULT_RATES, realtime_margin
from tools.per_sweep import measure

TARGET_PER = 1e-2


def _crossing(points: list[tuple[float, float]], target: float, floor: float) -> float | None:
    """SNR where log10(rate) crosses log10(target), linear between the bracketing points."""
    pts = sorted(points)
    for (s0, p0), (s1, p1) in zip(pts, pts[1:], strict=False):
        if p0 > target >= p1:
            l0, l1, lt = (math.log10(max(p, floor)) for p in (p0, p1, target))
            return s0 + (s1 - s0) * (l0 - lt) / (l0 - l1) if l0 != l1 else s1
    return None


class Bench:
    def __init__(self, pdus: int, base_port: int, log: bool = True) -> None:
        self.pdus, self.base_port, self.log = pdus, base_port, log
        self.runs = 0

    def point(self, mcs: str, snr_db: float, pdus: int | None = None, **kw) -> dict:  # noqa: ANN003
        self.runs += 1
        row = measure(mcs, snr_db, pdus or self.pdus, kw.pop("channel", "awgn"), self.base_port, seed=self.runs, **kw)
        if self.log:
            ber = f"{row['channel_ber']:.2e}" if row["channel_ber"] is not None else "n/a"
            print(f"  {mcs:10s} {snr_db:6.2f} dB {kw or ''} PER {row['per']:.4f} BER {ber} "
                  f"({row['chain_msps']:.2f} Msps)", flush=True)
        return row

    def snr_at_per(self, mcs: str, start_db: float, step_db: float = 0.5, **kw) -> dict:  # noqa: ANN003
        return snr_at_per(lambda snr: self.point(mcs, snr, **kw)["per"], start_db, step_db, self.pdus)


def snr_at_per(per_at: Callable[[float], float], start_db: float, step_db: float, pdus: int) -> dict:
    """Walk the SNR until PER brackets the target; interpolate the crossing."""
    points: list[tuple[float, float]] = []
    snr = start_db
    for _ in range(14):
        per = per_at(snr)
        points.append((snr, per))
        if _crossing(points, TARGET_PER, 0.5 / pdus) is not None:
            break
        snr += step_db if per > TARGET_PER else -step_db
    return {"snr_at_per_1e-2_db": _crossing(points, TARGET_PER, 0.5 / pdus),
            "per_curve": [{"snr_db": s, "per": p} for s, p in sorted(points)]}


def ideal_channel_cost(mcs: str, channel: str, start_db: float, pdus: int) -> dict:
    """What the channel itself costs our code: PER 1e-2 crossings of the ideal-receiver link
    (exact channel and noise known, ``lgvsc_phy.ideal_link``) on AWGN and on ``channel``."""
    crossings = {}
    for name in ("awgn", channel):
        link = IdealLink(mcs, name, seed=1)
        crossings[name] = snr_at_per(partial(link.pdu_error_rate, pdus=pdus), start_db, 0.25, pdus)
        print(f"  ideal receiver, {name}: PER 1e-2 at {crossings[name]['snr_at_per_1e-2_db']} dB", flush=True)
    a, b = (crossings[n]["snr_at_per_1e-2_db"] for n in ("awgn", channel))
    return {"ideal_awgn_db": a, f"ideal_{channel}_db": b, "ideal_cost_db": None if a is None or b is None else b - a}


def pdu_bound_db(m: Mcs, channel: str = "awgn") -> float:
    """Normal-approximation Es/N0 for a PDU error rate of ``TARGET_PER`` (each of its codewords
    failing independently), over AWGN or over the static carriers of ``channel``."""
    per_codeword = 1 - (1 - TARGET_PER) ** (1 / m.codewords_per_pdu)
    gains = None if channel == "awgn" else np.abs(carrier_gains(m, channel)) ** 2
    return normal_approximation_snr_db(m.constellation, m.code.n, m.code.rate, per_codeword, carrier_gains=gains)


def bound_channel_cost(mcs: str, channel: str) -> dict:
    """What ``channel`` costs any code of this block length and rate (the bound's own shift),
    the floor under both the ideal and the real receiver's cost."""
    m = get_mcs(mcs)
    a, b = pdu_bound_db(m), pdu_bound_db(m, channel)
    print(f"  bound: PER 1e-2 at {a:.2f} dB (awgn), {b:.2f} dB ({channel})", flush=True)
    return {"bound_awgn_db": a, f"bound_{channel}_db": b, "bound_cost_db": b - a}


CHAIN_RUNS, CHAIN_PDUS = 3, 1500  # ~2.5 s transfers: start-up and drain stay a few per cent


def chain_throughput(bench: Bench) -> dict:
    """On-air samples per wall second of tx + channel + rx (three processes) at qpsk-1/2, 25 dB:
    the median of ``CHAIN_RUNS`` transfers of ``CHAIN_PDUS`` PDUs, each with fresh flowgraphs
    (one short transfer swung by +-15 % on this shared 2-core machine)."""
    runs = [bench.point("qpsk-1/2", 25.0, pdus=CHAIN_PDUS)["chain_msps"] for _ in range(CHAIN_RUNS)]
    return {"chain_msps": float(np.median(runs)), "chain_msps_runs": runs, "chain_pdus_per_run": CHAIN_PDUS}


def bench_mcs(bench: Bench, names: list[str]) -> dict:
    out = {}
    for name in names:
        m = get_mcs(name)
        bound = pdu_bound_db(m)
        result = bench.snr_at_per(name, round(THRESHOLD_DB[name] * 2) / 2)
        snr = result["snr_at_per_1e-2_db"]
        out[name] = {"bound_db": bound, **result, "gap_db": None if snr is None else snr - bound,
                     "codewords_per_pdu": m.codewords_per_pdu, "info_bits_per_symbol": m.spectral_efficiency}
        print(f"{name}: PER 1e-2 at {snr} dB, bound {bound:.2f} dB", flush=True)
    return out


def bench_ber(bench: Bench) -> dict:
    """Pre-FEC BER on decoded rate-1/2 frames (all decode there, so no bias) vs exact theory."""
    out = {}
    for mod in ("bpsk", "qpsk", "16qam", "64qam"):
        const = CONSTELLATIONS[mod]
        grid = np.arange(-5, 30, 0.05)
        theory_db = float(np.interp(-3, np.log10(uncoded_ber(const, grid))[::-1], grid[::-1]))
        points = []
        for offset in (-1.0, 0.0, 1.0):
            snr = round((theory_db + offset) * 2) / 2
            row = bench.point(f"{mod}-1/2", snr)
            points.append({"snr_db": snr, "ber": row["channel_ber"], "theory": float(uncoded_ber(const, snr)[0])})
        measured = _crossing([(p["snr_db"], p["ber"]) for p in points if p["ber"]], 1e-3, 1e-7)
        out[mod] = {"snr_at_ber_1e-3_db": measured, "theory_snr_at_ber_1e-3_db": theory_db,
                    "gap_db": None if measured is None else measured - theory_db, "points": points}
        print(f"{mod}: BER 1e-3 at {measured} dB, theory {theory_db:.2f} dB", flush=True)
    return out


def _llrs(code, snr_db: float, count: int, seed: int = 0):  # noqa: ANN001, ANN202
    rng = np.random.default_rng(seed)
    const = CONSTELLATIONS["qpsk"]
    info = rng.integers(0, 2, (count, code.k), dtype=np.uint8)
    symbols = const.map(code.encode(info).reshape(-1))
    noise_var = 10 ** (-snr_db / 10)
    rx = symbols + np.sqrt(noise_var / 2) * (rng.standard_normal(symbols.size) + 1j * rng.standard_normal(symbols.size))
    return info, const.llr(rx, noise_var).reshape(count, code.n)


def bench_ldpc(snr_db: float, codewords: int, max_iter: int = 50) -> dict:
    code = get_mcs("qpsk-1/2").code
    info, llr = _llrs(code, snr_db, codewords)
    code.decode(llr[:40], max_iter)  # load the compiled kernels first
    t = time.perf_counter()
    result = code.decode(llr, max_iter)
    batched = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(0, min(codewords, 100), 2):  # as the rx flowgraph does it: one burst at a time
        code.decode(llr[i : i + 2], max_iter)
    per_burst = time.perf_counter() - t
    fer = float(np.mean(np.any(result.bits != info, axis=1)))
    return {"snr_db": snr_db, "codewords": codewords, "fer": fer, "mean_iterations": float(result.iterations.mean()),
            "ldpc_decode_mbps": info.size / batched / 1e6,
            "ldpc_decode_per_burst_mbps": min(codewords, 100) * code.k / per_burst / 1e6,
            "stock_ldpc_decode_mbps": _stock_ldpc_mbps(code, snr_db, min(codewords, 100), max_iter)}


def _stock_ldpc_mbps(code, snr_db: float, codewords: int, max_iter: int) -> float:  # noqa: ANN001
    """GNU Radio's fec.ldpc_decoder on the same H (alist), same Es/N0 and iteration limit,
    fed by its own encoder (its systematic bit order differs from ours)."""
    from gnuradio import blocks, fec, gr

    with tempfile.NamedTemporaryFile("w", suffix=".alist", delete=False) as f:
        f.write(code.to_alist())
    rng = np.random.default_rng(1)
    info = rng.integers(0, 2, codewords * code.k).astype(np.uint8)
    tb = gr.top_block()
    sink = blocks.vector_sink_b()
    tb.connect(blocks.vector_source_b(info.tolist()),
               fec.extended_encoder(encoder_obj_list=fec.ldpc_encoder_make(f.name), threading=None, puncpat="11"), sink)
    tb.run()
    coded = np.array(sink.data(), dtype=np.float32)
    noise_var = 10 ** (-snr_db / 10)  # per QPSK symbol; each bit rides one dimension
    soft = (2 * coded - 1) + np.sqrt(noise_var / 2) * rng.standard_normal(coded.size).astype(np.float32)
    soft = soft / np.sqrt(0.5)  # unit-energy QPSK: amplitude 1/sqrt(2) per dimension
    decoder = fec.ldpc_decoder.make(f.name, 0.5, max_iter)
    tb = gr.top_block()
    out = blocks.vector_sink_b()
    tb.connect(blocks.vector_source_f(soft.tolist()),
               fec.extended_decoder(decoder_obj_list=decoder, threading=None, ann=None, puncpat="11",
                                    integration_period=10000), out)
    t = time.perf_counter()
    tb.run()
    elapsed = time.perf_counter() - t
    errors = int(np.sum(np.array(out.data(), dtype=np.uint8)[: info.size] != info))
    Path(f.name).unlink()
    if errors > info.size // 100:
        raise RuntimeError(f"stock LDPC decoder made {errors} bit errors: its input convention changed?")
    return info.size / elapsed / 1e6


def bench_impairments(bench: Bench, awgn_db: float | None) -> dict:
    """qpsk-1/2's PER 1e-2 point under a CFO, one of 20 ppm at 2.45 GHz and 1 MS/s (3.14 spacings:
    the receiver's integer-offset search on), the static multipath profile and the B2x0
    front-end profile, each against AWGN (``cost_vs_awgn_db``); for multipath and B2x0 also what the same
    condition costs the ideal receiver (``ideal_cost_db``) and the receiver's own loss beyond it
    (``receiver_loss_db``)."""
    start = round((awgn_db or THRESHOLD_DB["qpsk-1/2"]) * 2) / 2
    out = {}
    b2x0 = dict(IMPAIRMENT_PROFILES["b2x0"])
    conditions = (("cfo_0.4", {"cfo": 0.4}), ("cfo_3.14_range_5", {"cfo": 3.14, "cfo_range": 5.0}),
                  ("multipath", {"channel": "multipath"}), ("b2x0", b2x0))
    for label, kw in conditions:
        r = bench.snr_at_per("qpsk-1/2", start, **kw)
        snr = r["snr_at_per_1e-2_db"]
        r["cost_vs_awgn_db"] = None if awgn_db is None or snr is None else snr - awgn_db
        if label == "multipath":
            r.update(ideal_channel_cost("qpsk-1/2", "multipath", start, bench.pdus))
            r.update(bound_channel_cost("qpsk-1/2", "multipath"))
        elif label == "b2x0":
            r.update(ideal_impairment_cost("qpsk-1/2", b2x0, start, bench.pdus))
        if r["cost_vs_awgn_db"] is not None and r.get("ideal_cost_db") is not None:
            r["receiver_loss_db"] = r["cost_vs_awgn_db"] - r["ideal_cost_db"]
        out[label] = r
    return out


def ideal_impairment_cost(mcs: str, impairments: dict, start_db: float, pdus: int) -> dict:
    """What a front end's impairments cost the ideal receiver (``IdealImpairedLink``: it knows and
    undoes every linear impairment and pays only for PA compression, quantization and gaps):
    its PER 1e-2 point with them against without."""
    crossings = {}
    for name, kw in (("none", {}), ("impaired", impairments)):
        link = IdealImpairedLink(mcs, kw, seed=1)
        crossings[name] = snr_at_per(partial(link.pdu_error_rate, pdus=pdus), start_db, 0.25, pdus)
        print(f"  ideal receiver, {name}: PER 1e-2 at {crossings[name]['snr_at_per_1e-2_db']} dB", flush=True)
    a, b = (crossings[n]["snr_at_per_1e-2_db"] for n in ("none", "impaired"))
    return {"ideal_awgn_db": a, "ideal_impaired_db": b, "ideal_cost_db": None if a is None or b is None else b - a}


def plot(results: dict, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    files = []
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, r in results.get("mcs", {}).items():
        curve = r["per_curve"]
        line, = ax.semilogy([p["snr_db"] for p in curve], [max(p["per"], 1e-4) for p in curve], "o-", label=name)
        ax.axvline(r["bound_db"], color=line.get_color(), ls=":", lw=0.8)
    ax.axhline(TARGET_PER, color="k", lw=0.5)
    ax.set(xlabel="Es/N0 per data subcarrier (dB)", ylabel="PDU error rate",
           title="PER through the flowgraphs (dotted: bound)")
    ax.legend(fontsize=6, ncol=2)
    ax.grid(True, which="both", alpha=0.3)
    fig.savefig(folder / "per.png", dpi=120)
    files.append(str(folder / "per.png"))
    fig, ax = plt.subplots(figsize=(7, 5))
    for mod, r in results.get("ber", {}).items():
        grid = np.arange(-4, 26, 0.25)
        line, = ax.semilogy(grid, uncoded_ber(CONSTELLATIONS[mod], grid), lw=0.8)
        pts = [p for p in r["points"] if p["ber"]]
        ax.semilogy([p["snr_db"] for p in pts], [p["ber"] for p in pts], "o", color=line.get_color(), label=mod)
    ax.set(xlabel="Es/N0 (dB)", ylabel="uncoded BER", title="Channel BER (dots) vs theory (lines)", ylim=(1e-5, 0.5))
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.savefig(folder / "ber.png", dpi=120)
    files.append(str(folder / "ber.png"))
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True, help="write the results here")
    ap.add_argument("--quick", action="store_true", help="fewer PDUs per point (fits in ~20 minutes)")
    ap.add_argument("--mcs", nargs="*", default=list(MCS_TABLE), help="MCS to measure (default: all)")
    ap.add_argument("--plots", help="folder for PNG plots (default: next to the JSON)")
    ap.add_argument("--base-port", type=int, default=52201)
    args = ap.parse_args()
    t0 = time.monotonic()
    bench = Bench(pdus=200 if args.quick else 600, base_port=args.base_port)
    results: dict = {"pdus_per_point": bench.pdus, "note": "Es/N0 per data subcarrier; AWGN unless stated"}
    print("== throughput", flush=True)
    results["throughput"] = bench_ldpc(snr_db=2.0, codewords=320 if args.quick else 1280)
    results["throughput"].update(chain_throughput(bench))
    print(json.dumps(results["throughput"]), flush=True)
    print("== uncoded BER", flush=True)
    results["ber"] = bench_ber(bench)
    print("== coded PER", flush=True)
    results["mcs"] = bench_mcs(bench, args.mcs)
    print("== impairments (qpsk-1/2)", flush=True)
    awgn = results["mcs"].get("qpsk-1/2", {}).get("snr_at_per_1e-2_db")
    results["impairments"] = bench_impairments(bench, awgn)
    print("== real-time margin (rx.grc at a live rate)", flush=True)
    results["realtime"] = realtime_margin(list(DEFAULT_RATES), 5.0 if args.quick else 12.0, args.base_port + 100)
    results["wall_s"] = time.monotonic() - t0
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    results["plots"] = plot(results, Path(args.plots) if args.plots else out.with_suffix(""))
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out} in {results['wall_s']:.0f} s", flush=True)


if __name__ == "__main__":
    main()

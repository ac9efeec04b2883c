"""The report's sections for links as they are: quality against the SNR a receiver really had when
the transmitter planned for another (graceful degradation), and against Doppler when fading moves
faster than the one probe the transmitter took. Used by ``tools.report``.

Each section has a table, a plot (one curve per scheme) and a verdict in words against the
targets of the layered-LGVSC work: below the design SNR, where the best baseline loses PDUs,
LGVSC >= best baseline + 2 dB; at design - 6 dB LGVSC keeps >= 80 % of its PSNR at the design
SNR; layering costs <= 1 dB against one layer at and above the design SNR; with a stale probe on
a fading channel, LGVSC >= the best baseline at every Doppler.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from tools.sweep import LGVSC_LAYERS, SCHEMES, load_bursts

if TYPE_CHECKING:
    from tools.report import Row

LGVSC_SCHEMES = tuple(LGVSC_LAYERS)  # the default (--layers auto) first

BASELINE_LEAD_DB = 2.0  # below the design SNR, where the best baseline loses PDUs
CLIFF_DB, CLIFF_KEEP = 6.0, 0.8  # at design - 6 dB, at least 80 % of the PSNR at the design SNR
LAYER_COST_DB = 1.0  # at and above the design SNR, layered vs one layer


def _lgvsc(rows: dict[str, Row]) -> str | None:
    """The LGVSC variant a verdict speaks for: the default (``--layers auto``) where it ran."""
    return next((s for s in LGVSC_SCHEMES if s in rows), None)


def _best_baseline(rows: dict[str, Row], metric: str = "psnr_db") -> Row | None:
    others = [r for s, r in rows.items() if s not in LGVSC_SCHEMES and not math.isnan(getattr(r, metric))]
    return max(others, key=lambda r: getattr(r, metric), default=None)


def degradation_groups(rows: list[Row]) -> dict[tuple, dict[float, dict[str, Row]]]:
    """(video, channel, CBR, design SNR, Doppler) -> actual SNR -> scheme -> row (first seed)."""
    groups: dict[tuple, dict[float, dict[str, Row]]] = defaultdict(lambda: defaultdict(dict))
    first_seed = min((r.seed for r in rows), default=1)
    for r in rows:
        if r.design_snr_db is not None and r.seed == first_seed:
            groups[(r.video, r.channel, r.cbr_target, r.design_snr_db, r.doppler)][r.snr_db].setdefault(r.scheme, r)
    return groups


def fading_groups(rows: list[Row], min_dopplers: int = 2) -> dict[tuple, dict[float, dict[str, Row]]]:
    """(video, channel, CBR, SNR, feedback delay) -> Doppler -> scheme -> row, for probed fading
    points (groups with at least ``min_dopplers`` Doppler values: a curve needs two), sorted; a
    feedback delay of None is the stale probe alone."""
    groups: dict[tuple, dict[float, dict[str, Row]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        if r.design_snr_db is None and r.doppler is not None:
            key = (r.video, r.channel, r.cbr_target, r.snr_db, r.feedback_delay_s)
            groups[key][r.doppler].setdefault(r.scheme, r)
    keep = sorted((k for k, v in groups.items() if len(v) >= min_dopplers),
                  key=lambda k: (*k[:4], -1.0 if k[4] is None else k[4]))
    return {k: groups[k] for k in keep}


def _fading_title(snr: float, feedback_s: float | None) -> str:
    if feedback_s is None:
        return f"mean SNR {snr:g} dB, stale probe"
    return f"mean SNR {snr:g} dB, feedback {feedback_s * 1e3:g} ms old"


def _schemes(points: dict[float, dict[str, Row]]) -> list[str]:
    present = {s for by_scheme in points.values() for s in by_scheme}
    return [s for s in SCHEMES if s in present] + sorted(present - set(SCHEMES))


def _table(points: dict[float, dict[str, Row]], x_label: str) -> list[str]:
    schemes = _schemes(points)
    lines = [f"| {x_label} | " + " | ".join(f"{s} PSNR / VMAF / PSSS (PER)" for s in schemes) + " |",
             "|---|" + "---|" * len(schemes)]
    for x in sorted(points):
        cells = []
        for s in schemes:
            r = points[x].get(s)
            cells.append("—" if r is None else f"{_f(r.psnr_db, 2)} / {_f(r.vmaf, 1)} / {_f(r.psss, 2)} ({r.per:.2f})")
        lines.append(f"| {x:g} | " + " | ".join(cells) + " |")
    return lines


def _f(value: float, digits: int) -> str:
    return "—" if math.isnan(value) else f"{value:.{digits}f}"


def degradation_verdict(design: float, points: dict[float, dict[str, Row]]) -> list[str]:
    out = []
    below = []
    for snr in sorted(points):
        rows = points[snr]
        mine, best = _lgvsc(rows), _best_baseline(rows)
        if snr < design and mine and best is not None and best.per > 0:
            below.append((snr, rows[mine].psnr_db - best.psnr_db, best.scheme))
    if below:
        met = [b for b in below if b[1] >= BASELINE_LEAD_DB]
        out.append(f"- Below the design SNR, where the best baseline lost PDUs: LGVSC leads it by "
                   f">= {BASELINE_LEAD_DB:g} dB at {len(met)} of {len(below)} SNRs ("
                   + ", ".join(f"{snr:g} dB: {m:+.2f} vs {s}" for snr, m, s in below) + ").")
    at_design, cliff = points.get(design, {}), points.get(design - CLIFF_DB, {})
    mine = _lgvsc(at_design)
    if mine and mine in cliff:
        ratio = cliff[mine].psnr_db / at_design[mine].psnr_db
        out.append(f"- Cliff: {mine} keeps {ratio:.0%} of its design-SNR PSNR at {design - CLIFF_DB:g} dB "
                   f"({cliff[mine].psnr_db:.2f} of {at_design[mine].psnr_db:.2f} dB; target "
                   f">= {CLIFF_KEEP:.0%}: {'met' if ratio >= CLIFF_KEEP else 'missed'}).")
    costs = [(snr, rows["lgvsc-single"].psnr_db - rows[m].psnr_db) for snr, rows in sorted(points.items())
             if snr >= design and "lgvsc-single" in rows and (m := _layered(rows))]
    if costs:
        worst = max(c for _, c in costs)
        out.append("- Layering cost at and above the design SNR (one layer minus layered): "
                   + ", ".join(f"{snr:g} dB: {c:+.2f}" for snr, c in costs)
                   + f" (target <= {LAYER_COST_DB:g} dB: {'met' if worst <= LAYER_COST_DB else 'missed'}).")
    frames = {r.frames_out for rows in points.values() for r in rows.values()}
    out.append(f"- Frames out: {', '.join(str(f) for f in sorted(frames))} in every run of this group."
               if len(frames) == 1 else f"- Frames out differ between runs: {sorted(frames)}.")
    return out


def _layered(rows: dict[str, Row]) -> str | None:
    return next((s for s in ("lgvsc-layered", "lgvsc") if s in rows and rows[s].layers == 2), None)


def fading_verdict(points: dict[float, dict[str, Row]]) -> list[str]:
    out = []
    for scheme in [s for s in LGVSC_SCHEMES if any(s in rows for rows in points.values())]:
        margins = [(fd, rows[scheme].psnr_db - best.psnr_db, best.scheme) for fd, rows in sorted(points.items())
                   if scheme in rows and (best := _best_baseline(rows)) is not None]
        if margins:
            ahead = [m for m in margins if m[1] >= 0]
            out.append(f"- {scheme} >= the best baseline at {len(ahead)} of {len(margins)} Doppler values ("
                       + ", ".join(f"fD {fd:g}: {m:+.2f} vs {s}" for fd, m, s in margins) + ").")
    return out


def markdown(rows: list[Row]) -> list[str]:
    lines = []
    for (video, channel, cbr, design, doppler), points in sorted(degradation_groups(rows).items(),
                                                                  key=lambda kv: (*kv[0][:4], kv[0][4] or 0.0)):
        fd = "" if doppler is None else f", fD {doppler:g}"
        lines += ["", f"**Graceful degradation: {video}, {channel}{fd}, CBR {cbr:g}, planned for {design:g} dB** "
                      "(the transmitter never learns the channel's SNR; PSNR dB / VMAF / PSSS, PER in brackets)", ""]
        lines += _table(points, "actual SNR dB") + ["", *degradation_verdict(design, points)]
    for (video, channel, cbr, snr, feedback), points in fading_groups(rows).items():
        if feedback is None:
            lines += ["", f"**Fading with a stale probe: {video}, {channel}, CBR {cbr:g}, mean SNR {snr:g} dB** "
                          "(one probe at the start; PSNR dB / VMAF / PSSS, PER in brackets)", ""]
        else:
            lines += ["", f"**Fading with feedback: {video}, {channel}, CBR {cbr:g}, mean SNR {snr:g} dB, reports "
                          f"{feedback * 1e3:g} ms old** (a probe, then each PDU's MCS from the receiver's newest "
                          "report that old; PSNR dB / VMAF / PSSS, PER in brackets)", ""]
        lines += _table(points, "Doppler fD*Ts") + ["", *fading_verdict(points)]
    return lines


def plot(rows: list[Row], out: Path) -> list[Path]:
    """Quality against actual SNR (per design group) and against Doppler (per fading group)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    jobs = [(f"{v}_{ch}_cbr{cbr:g}_design{d:g}" + ("" if fd is None else f"_fd{fd:g}"), points, "actual SNR (dB)",
             f"{v}, {ch}, CBR {cbr:g}: planned for {d:g} dB", d)
            for (v, ch, cbr, d, fd), points in degradation_groups(rows).items()]
    jobs += [(f"{v}_{ch}_cbr{cbr:g}_snr{snr:g}" + ("" if fb is None else f"_fb{fb:g}") + "_vs_doppler", points,
              "normalized Doppler fD*Ts", f"{v}, {ch}, CBR {cbr:g}, {_fading_title(snr, fb)}", None)
             for (v, ch, cbr, snr, fb), points in fading_groups(rows).items()]
    out.mkdir(parents=True, exist_ok=True)
    for stem, points, xlabel, title, design in jobs:
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        for ax, (metric, label) in zip(axes, (("psnr_db", "PSNR (dB)"), ("vmaf", "VMAF"), ("psss", "PSSS")),
                                       strict=True):
            for scheme in _schemes(points):
                xs = [x for x in sorted(points) if scheme in points[x] and not math.isnan(getattr(points[x][scheme],
                                                                                                    metric))]
                ax.plot(xs, [getattr(points[x][scheme], metric) for x in xs], marker="o", label=scheme)
            if design is not None:
                ax.axvline(design, color="grey", linestyle=":", linewidth=1)
            else:
                ax.set_xscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        paths.append(_save(fig, title, out / f"{stem}.png"))
    return paths


def _save(fig, title: str, path: Path) -> Path:  # noqa: ANN001 - a matplotlib Figure
    import matplotlib.pyplot as plt

    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_bursts(rows: list[Row], sweep_dir: Path, out: Path) -> list[Path]:
    """Per fading group, the SNR the receiver estimated on each burst in sending order, one panel
    per Doppler, one line per scheme, and a mark at the bottom for each PDU lost (its burst
    not decoded, so no estimate): whether the losses came with the fades."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    out.mkdir(parents=True, exist_ok=True)
    for (video, channel, cbr, snr, feedback), points in fading_groups(rows, min_dopplers=1).items():
        records = {fd: {scheme: load_bursts(sweep_dir, row.key) for scheme, row in by_scheme.items() if row.key}
                   for fd, by_scheme in sorted(points.items())}
        records = {fd: {k: v for k, v in got.items() if v} for fd, got in records.items()}
        records = {fd: got for fd, got in records.items() if got}
        if not records:
            continue
        fig, axes = plt.subplots(1, len(records), figsize=(max(7.0, 4.5 * len(records)), 3.6), squeeze=False)
        for ax, (fd, by_scheme) in zip(axes[0], records.items(), strict=True):
            floor = min((v for got in by_scheme.values() for v in got if v is not None), default=0.0) - 3
            for offset, (scheme, snrs) in enumerate(sorted(by_scheme.items())):
                line, = ax.plot(range(len(snrs)), [math.nan if v is None else v for v in snrs], marker=".",
                                linewidth=0.8, label=scheme)
                lost = [i for i, v in enumerate(snrs) if v is None]
                ax.plot(lost, [floor - offset] * len(lost), "x", color=line.get_color())
            ax.set_title(f"fD*Ts {fd:g}", fontsize=9)
            ax.set_xlabel("PDU (sending order)")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("burst SNR estimate (dB); x: lost")
        axes[0][0].legend(fontsize=7)
        stem = f"{video}_{channel}_cbr{cbr:g}_snr{snr:g}" + ("" if feedback is None else f"_fb{feedback:g}")
        paths.append(_save(fig, f"{video}, {channel}, CBR {cbr:g}, {_fading_title(snr, feedback)}: per-burst SNR "
                                "and PDUs lost", out / f"{stem}_bursts.png"))
    return paths

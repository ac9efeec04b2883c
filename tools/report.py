"""Plots, an HTML report and a Markdown results section from a sweep's ``results.csv``.

    python -m tools.report DIR [--readme README.md]

Writes ``DIR/plots/*.png`` (quality vs SNR per CBR, quality vs CBR per SNR, PER vs SNR, one
figure per video and channel, the backends printed on every figure), ``DIR/report.html`` and
``DIR/results.md``; ``--readme`` replaces the README's text between the results markers with
``results.md``, so no figure there is typed by hand.

Equal bandwidth is checked, not assumed: at every point the schemes' measured on-air CBRs must
agree within 10 % (the ``spread`` column); a point where they do not is flagged.
"""

from __future__ import annotations

import argparse
import base64
import html
import math
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from tools import degradation
from tools.sweep import SCHEMES, read_results

BEGIN, END = "<!-- results:begin (tools/report.py) -->", "<!-- results:end -->"
EQUAL_ON_AIR = 0.10  # schemes at a point must agree on on-air symbols within this
METRICS = (("psnr_db", "PSNR (dB)"), ("ssim", "SSIM"), ("vmaf", "VMAF"), ("psss", "PSSS"))
# Differences smaller than these are ties. VMAF: 1 point, over 10x our measured disagreement with
# libvmaf (at most 0.07 per clip, tests/test_vmaf.py) and well under the ~6 points usually taken as one
# just-noticeable difference.
TIE = {"psnr_db": 0.1, "ssim": 0.005, "vmaf": 1.0, "psss": 0.01}


class ReportError(ValueError):
    pass


@dataclass(frozen=True)
class Row:
    video: str
    scheme: str
    channel: str
    snr_db: float
    cbr_target: float
    seed: int
    cbr_on_air: float
    per: float
    psnr_db: float
    ssim: float
    psss: float
    frames_out: int
    mcs: str
    backends: str
    psss_backend: str
    vmaf: float = math.nan  # NaN (absent) in a results.csv written before the column existed
    design_snr_db: float | None = None  # None: the transmitter probed the link
    doppler: float | None = None  # None: not a fading channel (the sweep leaves the cell empty)
    layers: int = 1
    key: str = ""  # the sweep's point key (its per-burst record: tools.sweep.load_bursts)
    feedback_delay_s: float | None = None  # None: one probe, no feedback during the stream

    @classmethod
    def of(cls, raw: dict) -> Row:
        return cls(raw["video"], raw["scheme"], raw["channel"], float(raw["snr_db"]), float(raw["cbr_target"]),
                   int(raw.get("seed") or 1), _num(raw["cbr_on_air"]), _num(raw["per"]), _num(raw["psnr_db"]),
                   _num(raw["ssim"]), _num(raw["psss"]), int(float(raw["frames_out"] or 0)), raw["mcs"],
                   raw["backends"], raw["psss_backend"], _num(raw.get("vmaf")), _optional(raw.get("design_snr_db")),
                   _optional(raw.get("doppler")), int(float(raw.get("layers") or 1)), raw.get("key", ""),
                   _optional(raw.get("feedback_delay_s")))

    @property
    def point(self) -> tuple:
        return (self.video, self.channel, self.cbr_target, self.snr_db, self.seed, self.doppler)

    @property
    def probed(self) -> bool:
        """The transmitter adapted to one probe (the main grid), rather than planning for a design SNR
        or following feedback."""
        return self.design_snr_db is None and self.feedback_delay_s is None


LGVSC_SCHEMES = degradation.LGVSC_SCHEMES


def _num(text: str | None) -> float:
    return float(text) if text not in ("", None) else math.nan


def _optional(text: str | None) -> float | None:
    return float(text) if text not in ("", None) else None


def load(directory: Path) -> tuple[list[Row], list[dict]]:
    """The rows that ran, and those that failed (reported, never plotted)."""
    raw = read_results(directory / "results.csv")
    if not raw:
        raise ReportError(f"no results in {directory / 'results.csv'} (run tools.sweep first)")
    ok = [Row.of(r) for r in raw.values() if r["status"] == "ok"]
    return ok, [r for r in raw.values() if r["status"] != "ok"]


@dataclass
class Comparison:
    """The schemes at one point (video, channel, CBR, SNR, seed)."""

    point: tuple
    rows: dict[str, Row]

    @property
    def spread(self) -> float:
        """max/min - 1 of the on-air CBRs; inf when a scheme put nothing on the air."""
        values = [r.cbr_on_air for r in self.rows.values()]
        return math.inf if min(values) <= 0 else max(values) / min(values) - 1

    def margin(self, metric: str, scheme: str = "lgvsc") -> float | None:
        """``scheme`` (an LGVSC variant) minus the best baseline; None where either is absent (NaN)."""
        if scheme not in self.rows or math.isnan(mine := getattr(self.rows[scheme], metric)):
            return None
        others = [getattr(r, metric) for s, r in self.rows.items() if s not in LGVSC_SCHEMES]
        others = [v for v in others if not math.isnan(v)]
        return mine - max(others) if others else None


def compare(rows: list[Row]) -> list[Comparison]:
    by_point: dict[tuple, dict[str, Row]] = defaultdict(dict)
    for r in rows:
        by_point[r.point][r.scheme] = r
    return [Comparison(p, by_point[p]) for p in sorted(by_point, key=lambda p: (*p[:-1], p[-1] or 0.0))]


def schemes_of(rows: list[Row]) -> list[str]:
    present = {r.scheme for r in rows}
    return [s for s in SCHEMES if s in present] + sorted(present - set(SCHEMES))


def backend_legend(rows: list[Row]) -> str:
    by_scheme: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        by_scheme[r.scheme].add(r.backends)
    return " | ".join(f"{s}: {' / '.join(sorted(by_scheme[s]))}" for s in schemes_of(rows))


# ---------------------------------------------------------------- plots


def plot_all(rows: list[Row], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        groups[(r.video, r.channel)].append(r)
    paths = []
    for (video, channel), group in sorted(groups.items()):
        stem = f"{video}_{channel}"
        # a metric no row has (vmaf in an older results.csv) gets no empty panel row
        metrics = tuple(m for m in METRICS if any(not math.isnan(getattr(r, m[0])) for r in group))
        paths.append(_curves(group, "snr_db", "cbr_target", metrics, f"{video}, {channel}: quality vs SNR",
                             out / f"{stem}_quality_vs_snr.png"))
        paths.append(_curves(group, "cbr_target", "snr_db", metrics, f"{video}, {channel}: quality vs CBR",
                             out / f"{stem}_quality_vs_cbr.png"))
        paths.append(_curves(group, "snr_db", "cbr_target", (("per", "PER"),), f"{video}, {channel}: PER vs SNR",
                             out / f"{stem}_per_vs_snr.png"))
    return paths


def _curves(rows: list[Row], x: str, panel: str, metrics: tuple, title: str, path: Path) -> Path:
    """One column per value of ``panel``, one row per metric, one line per scheme (seeds averaged)."""
    import matplotlib.pyplot as plt

    panels = sorted({getattr(r, panel) for r in rows})
    fig, axes = plt.subplots(len(metrics), len(panels), figsize=(4.2 * len(panels), 2.8 * len(metrics) + 0.8),
                             squeeze=False)
    for j, value in enumerate(panels):
        for i, (metric, label) in enumerate(metrics):
            ax = axes[i][j]
            for scheme in schemes_of(rows):
                xs, ys = _series([r for r in rows if r.scheme == scheme and getattr(r, panel) == value], x, metric)
                if xs:
                    ax.plot(xs, ys, marker="o", label=scheme)
            if x == "cbr_target":
                ax.set_xscale("log")
            ax.set_xlabel("SNR (dB)" if x == "snr_db" else "CBR target (on air)")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.set_title(f"{'CBR' if panel == 'cbr_target' else 'SNR'} {value:g}{' dB' if panel == 'snr_db' else ''}",
                         fontsize=10)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title)
    fig.text(0.01, 0.005, "backends: " + backend_legend(rows), fontsize=6, wrap=True)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _series(rows: list[Row], x: str, metric: str) -> tuple[list[float], list[float]]:
    acc: dict[float, list[float]] = defaultdict(list)
    for r in rows:
        value = getattr(r, metric)
        if not math.isnan(value):
            acc[getattr(r, x)].append(value)
    xs = sorted(acc)
    return xs, [sum(acc[v]) / len(acc[v]) for v in xs]


# ---------------------------------------------------------------- tables and verdict


def _fmt(value: float, digits: int) -> str:
    return "—" if math.isnan(value) else f"{value:.{digits}f}"


def results_markdown(rows: list[Row], failed: list[dict], source: str) -> str:
    """The main grid (transmitters that probed the link) as a table and verdict, then the
    sections for transmitters that planned for a design SNR and for fading (``tools.degradation``)."""
    planned = [r for r in rows if not r.probed]
    rows = [r for r in rows if r.probed]
    schemes = schemes_of(rows)
    comparisons = compare(rows)
    slash = " / ".join(schemes)
    lines = [f"Generated by `python -m tools.report {source}` from `{source}/results.csv`; "
             f"each cell lists {slash}. Backends: {backend_legend(rows)}.", "",
             "| video | channel | CBR | SNR dB | MCS | on-air CBR | spread | PER | PSNR dB | SSIM | VMAF | PSSS |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in comparisons:
        video, channel, cbr, snr, seed, _ = c.point

        def cells(attr: str, digits: int, c: Comparison = c) -> str:
            return " / ".join(_fmt(getattr(c.rows[s], attr), digits) if s in c.rows else "—" for s in schemes)

        mcs = " / ".join(c.rows[s].mcs if s in c.rows else "—" for s in schemes)
        on_air = " / ".join(f"{c.rows[s].cbr_on_air:.2e}" if s in c.rows else "—" for s in schemes)
        spread = "n/a" if len(c.rows) < 2 else ("nothing sent" if math.isinf(c.spread) else f"{c.spread:.1%}")
        label = f"{snr:g}" + (f" (seed {seed})" if seed != 1 else "") + _doppler_label(c)
        lines.append(f"| {video} | {channel} | {cbr:g} | {label} | {mcs} | {on_air} | {spread} | {cells('per', 3)} "
                     f"| {cells('psnr_db', 2)} | {cells('ssim', 3)} | {cells('vmaf', 1)} | {cells('psss', 2)} |")
    lines += ["", *verdict(comparisons), *degradation.markdown(rows + planned)]
    if failed:
        lines += ["", f"{len(failed)} points failed and are not shown:"]
        lines += [f"- `{f['key']}`: {f['status']}" for f in failed]
    return "\n".join(lines) + "\n"


def verdict(comparisons: list[Comparison]) -> list[str]:
    """Where LGVSC wins and where it loses, counted, in words."""
    contested = [c for c in comparisons if "lgvsc" in c.rows and len(c.rows) > 1]
    if not contested:
        return ["(no point has LGVSC and a baseline both)"]
    unequal = [c for c in contested if c.spread > EQUAL_ON_AIR]
    out = [f"Equal bandwidth: the schemes' on-air CBRs agree within {EQUAL_ON_AIR:.0%} at "
           f"{len(contested) - len(unequal)} of {len(contested)} points"
           + ("." if not unequal else "; not at " + ", ".join(_where(c) for c in unequal) + ".")]
    for metric, label in METRICS:
        margins = [(c, c.margin(metric)) for c in contested if c.margin(metric) is not None]
        if not margins:
            continue
        wins = [c for c, m in margins if m > TIE[metric]]
        losses = [c for c, m in margins if m < -TIE[metric]]
        unit = " dB" if metric == "psnr_db" else ""
        best = max(margins, key=lambda cm: cm[1])
        worst = min(margins, key=lambda cm: cm[1])
        ties = len(margins) - len(wins) - len(losses)
        out.append(f"- {label}: LGVSC beats the best baseline at {len(wins)} of {len(margins)} points, "
                   f"loses at {len(losses)}, ties (within {TIE[metric]:g}) at {ties}; its margin ranges from "
                   f"{worst[1]:+.3g}{unit} ({_where(worst[0])}) to {best[1]:+.3g}{unit} ({_where(best[0])}).")
        if wins and metric == "psnr_db":
            out.append("  - LGVSC wins on PSNR at: " + "; ".join(_where(c) for c in wins) + ".")
    return out


def _where(c: Comparison) -> str:
    video, channel, cbr, snr, seed, _ = c.point
    return f"{video} {channel} CBR {cbr:g} {snr:g} dB" + (f" seed {seed}" if seed != 1 else "") + _doppler_label(c)


def _doppler_label(c: Comparison) -> str:
    doppler = c.point[-1]
    return "" if doppler is None else f" fD {doppler:g}"


# ---------------------------------------------------------------- HTML and README


def write_html(rows: list[Row], failed: list[dict], plots: list[Path], markdown: str, path: Path) -> None:
    figures = "".join(
        f'<figure><img src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        f"<figcaption>{html.escape(p.name)}</figcaption></figure>" for p in plots)
    body = _markdown_table_html(markdown)
    path.write_text(
        "<!doctype html><meta charset='utf-8'><title>LGVSC vs separation: sweep report</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:2px 6px}figure{display:inline-block;margin:1em}</style>"
        f"<h1>LGVSC vs H.264/H.265 + LDPC + QAM, same flowgraphs, equal on-air symbols</h1>"
        f"<p>{len(rows)} runs, {len(failed)} failed. Backends: {html.escape(backend_legend(rows))}</p>"
        f"{body}{figures}")


def _markdown_table_html(markdown: str) -> str:
    """The results table and verdict as HTML (the Markdown is the single source)."""
    parts, table = [], []
    for line in markdown.splitlines():
        if line.startswith("|"):
            if not line.startswith("|---"):
                table.append(line.strip("|").split("|"))
            continue
        if table:
            head, *body = table
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(c.strip())}</th>" for c in head) + "</tr>"
                         + "".join("<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in r) + "</tr>"
                                   for r in body) + "</table>")
            table = []
        if line.strip():
            parts.append(f"<p>{html.escape(line.lstrip('- '))}</p>")
    return "".join(parts)


def splice_readme(readme: Path, markdown: str) -> None:
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise ReportError(f"{readme} has no results markers ({BEGIN} ... {END})")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{markdown}{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--readme", help="README whose results section is replaced")
    args = ap.parse_args(argv)
    directory = Path(args.dir)
    try:
        rows, failed = load(directory)
        markdown = results_markdown(rows, failed, args.dir.rstrip("/"))
        plots = plot_all([r for r in rows if r.probed], directory / "plots")
        plots += degradation.plot(rows, directory / "plots")
        plots += degradation.plot_bursts(rows, directory, directory / "plots")
        (directory / "results.md").write_text(markdown)
        write_html(rows, failed, plots, markdown, directory / "report.html")
        if args.readme:
            splice_readme(Path(args.readme), markdown)
    except (ReportError, OSError) as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    print(f"report: {directory / 'report.html'}, {len(plots)} plots, {directory / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A self-contained HTML page for a loopback run: side by side frames, keyframes, figures."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
from PIL import Image


def _img_tag(frame: np.ndarray, width: int = 320, title: str = "") -> str:
    img = Image.fromarray(frame)
    if img.width > width:
        img = img.resize((width, max(1, round(img.height * width / img.width))), Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img src="data:image/jpeg;base64,{data}" title="{html.escape(title)}">'


def _svg_curve(values: np.ndarray, label: str, marks: list[int], width: int = 720, height: int = 180) -> str:
    """Per-frame curve as inline SVG (no plotting dependency); red ticks mark keyframes."""
    if values.size == 0:
        return ""
    finite = np.minimum(values, 60.0)
    lo, hi = float(finite.min()), float(finite.max()) + 1e-9
    xs = np.linspace(30, width - 10, values.size)
    ys = height - 20 - (finite - lo) / (hi - lo) * (height - 40)
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    ticks = "".join(
        f'<line x1="{xs[m]:.1f}" y1="{height - 20}" x2="{xs[m]:.1f}" y2="{height - 12}" stroke="#c00"/>'
        for m in marks if 0 <= m < values.size
    )
    return (
        f'<svg width="{width}" height="{height}" style="background:#fafafa;border:1px solid #ddd">'
        f'<polyline fill="none" stroke="#036" stroke-width="1.5" points="{points}"/>{ticks}'
        f'<text x="32" y="14" font-size="12">{html.escape(label)}: {lo:.1f} .. {hi:.1f} dB '
        f'(red: received keyframes)</text></svg>'
    )


def _svg_bursts(snr_db: list[float | None], width: int = 720, height: int = 140) -> str:
    """One bar per PDU in sending order: the SNR the receiver estimated on its burst, or a red
    full-height bar where the PDU was lost (on a fading channel: which fades took what)."""
    if not snr_db:
        return "<p>(no PDU was sent)</p>"
    seen = [v for v in snr_db if v is not None]
    lo, hi = min([0.0, *seen]), max([1.0, *seen])
    step = (width - 40) / len(snr_db)
    bars = []
    for i, v in enumerate(snr_db):
        x = 30 + i * step
        if v is None:
            bars.append(f'<rect class="lost" x="{x:.1f}" y="10" width="{max(step - 1, 1):.1f}" '
                        f'height="{height - 30}" fill="#c00"/>')
            continue
        h = (v - lo) / (hi - lo) * (height - 30)
        bars.append(f'<rect class="received" x="{x:.1f}" y="{height - 20 - h:.1f}" width="{max(step - 1, 1):.1f}" '
                    f'height="{h:.1f}" fill="#036"/>')
    lost = len(snr_db) - len(seen)
    return (f'<svg id="bursts" width="{width}" height="{height}" style="background:#fafafa;border:1px solid #ddd">'
            f'{"".join(bars)}<text x="32" y="{height - 4}" font-size="12">receiver SNR per PDU, {lo:.1f} .. '
            f'{hi:.1f} dB; red: lost ({lost} of {len(snr_db)})</text></svg>')


def _svg_constellation(snapshot: dict | None, size: int = 260) -> str:
    """Equalized symbols the rx decoder sampled, on the I/Q plane (unit-energy constellations)."""
    if not snapshot or not snapshot.get("points"):
        return "<p>(no snapshot reached the link)</p>"
    half, scale = size / 2, size / 2 / 1.6
    dots = "".join(f'<circle cx="{half + scale * i:.1f}" cy="{half - scale * q:.1f}" r="1.6" fill="#1f77b4"/>'
                   for i, q in snapshot["points"] if abs(i) < 1.6 and abs(q) < 1.6)
    axes = (f'<line x1="0" y1="{half}" x2="{size}" y2="{half}" stroke="#bbb"/>'
            f'<line x1="{half}" y1="0" x2="{half}" y2="{size}" stroke="#bbb"/>')
    return (f'<svg width="{size}" height="{size + 16}" xmlns="http://www.w3.org/2000/svg">{axes}{dots}'
            f'<text x="4" y="{size + 12}" font-size="12">{html.escape(snapshot["mcs"])}, '
            f'{len(snapshot["points"])} equalized symbols</text></svg>')


def _breakdown_table(report: dict) -> str:
    parts = report.get("on_air_breakdown") or {}
    total = sum(parts.values()) or 1
    rows = "".join(f"<tr><td>{html.escape(k.replace('_', ' '))}</td><td>{v}</td><td>{100 * v / total:.1f} %</td>"
                   f"<td>{v / max(1, report.get('source_values', 1)):.2e}</td></tr>" for k, v in parts.items())
    return (f"<table><tr><th>on-air samples</th><th>count</th><th>share</th><th>CBR</th></tr>{rows}"
            f"<tr><th>total</th><th>{total}</th><th></th><th>{total / max(1, report.get('source_values', 1)):.2e}"
            f"</th></tr></table><p>Protection: {html.escape(str(report.get('protection')))}</p>")


def _contact_sheet_tag(stream: bytes | None) -> str:
    if not stream:
        return ""
    import tempfile

    from semantic.contact_sheet import contact_sheet

    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "sheet.png"
        try:
            contact_sheet(stream, png)
        except ValueError:
            return ""
        data = base64.b64encode(png.read_bytes()).decode()
    return f'<h2>Keyframes as sent (contact sheet)</h2><img src="data:image/png;base64,{data}">'


def write_html(path: Path, report: dict, samples: dict[int, tuple[np.ndarray, np.ndarray]], psnr: np.ndarray,
               keyframe_images: dict[int, np.ndarray], stream: bytes | None = None) -> None:
    """``samples``: frame -> (source, output) shown side by side; ``keyframe_images``: the
    received keyframes as decoded; ``stream``: the bitstream as sent (for its contact sheet)."""
    rows = "".join(
        f"<tr><td>frame {t}<br>PSNR {psnr[t]:.1f} dB</td><td>{_img_tag(src)}</td><td>{_img_tag(out)}</td></tr>"
        for t, (src, out) in sorted(samples.items()) if t < len(psnr)
    )
    keyframes = sorted(keyframe_images)
    kf = "".join(f"<figure>{_img_tag(keyframe_images[t], 160)}<figcaption>{t}</figcaption></figure>"
                 for t in keyframes)
    keys = ["frames_in", "frames_out", "width", "height", "fps", "mcs", "protection", "snr_db", "snr_estimate_db",
            "channel", "cbr_target",
            "stream_bytes", "payload_symbols", "on_air_symbols", "cbr_payload", "cbr_on_air", "pdus_sent",
            "pdus_received", "per", "ber", "psnr_db", "ssim", "vmaf", "psss", "backends", "wall_s"]
    table = "".join(
        f"<tr><th>{k}</th><td>{html.escape(_fmt(report.get(k)))}</td></tr>" for k in keys if k in report
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>LGVSC loopback report</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:4px 10px;text-align:left;vertical-align:top}}
figure{{display:inline-block;margin:4px}} img{{display:block}}</style></head><body>
<h1>LGVSC loopback: {html.escape(Path(str(report.get('input', ''))).name)}</h1>
<p>Decoder backend <b>{html.escape(str(report.get('backends', {}).get('decoder')))}</b>, keyframes by
<b>{html.escape(str(report.get('backends', {}).get('kf')))}</b>,
PSSS backend <b>{html.escape(str(report.get('psss_backend')))}</b>; every figure below comes from this run
through the real tx, channel and rx GNU Radio flowgraphs.</p>
<table>{table}</table>
<h2>Per-frame PSNR</h2>{_svg_curve(psnr, "PSNR", keyframes)}
<h2>Where the on-air symbols went (CBR breakdown)</h2>{_breakdown_table(report)}
<h2>What each burst saw</h2>{_svg_bursts(report.get("pdu_snr_db") or [])}
<h2>Constellation at the receiver</h2>{_svg_constellation(report.get("constellation"))}
<h2>Original (left) and reconstruction (right)</h2><table>{rows}</table>
<h2>Keyframes received ({len(keyframes)})</h2>{kf}
{_contact_sheet_tag(stream)}
</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)

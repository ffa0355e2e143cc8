"""A comparison as one self-contained HTML file: the table, rate-distortion plots
(size against PSNR, size against encode speed) drawn as inline SVG, and for every
lossy choice its worst slice, windowed, beside the source and the difference.

No script is needed to see it (it opens from a mail attachment or a file share); a
few lines of script only count the plots into ``data-`` attributes, which the tests
read back through headless Chromium.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import numpy as np
from PIL import Image

from dicompress.batch.pools import Isolated
from dicompress.codecs import get_codec
from dicompress.compare.report import QUALITY_NOTE, visibility
from dicompress.compare.choices import Choice
from dicompress.compare.measure import Comparison, Row
from dicompress.errors import DicompressError, UnsupportedTransferSyntax
from dicompress.pipeline.encode import FrameView, frame_loss
from dicompress.pipeline.frames import frames_at
from dicompress.pipeline.read import read_header


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 12px 0 24px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.bad { color: #b00; font-weight: bold; }
.plots { display: flex; flex-wrap: wrap; gap: 24px; }
figure { margin: 0; }
.slice img { image-rendering: pixelated; width: 256px; border: 1px solid #ccc; margin-right: 8px; }
.note { color: #666; font-size: 12px; }
"""


def _colour(label: str) -> str:
    """The plot colour of the codec a choice's label names (``j2k-lossy:10``)."""
    try:
        return get_codec(label.split(":")[0]).colour
    except UnsupportedTransferSyntax:
        return "#333"


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * step:
            step *= m
            break
    start = math.floor(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 2)]


def scatter(points: list[tuple[float, float, str]], x_label: str, y_label: str, *,
            log_y: bool = False, width: int = 520, height: int = 360) -> str:
    """An SVG scatter plot; each point (x, y, label) is a circle with its label."""
    left, right, top, bottom = 64, 20, 16, 48
    xs = [p[0] for p in points] or [0.0, 1.0]
    ys = [math.log10(max(p[1], 1e-9)) if log_y else p[1] for p in points] or [0.0, 1.0]
    x_ticks = _nice_ticks(0.0, max(xs) * 1.05)
    y_ticks = _nice_ticks(min(ys) - 0.5 if not log_y else math.floor(min(ys)),
                          max(ys) + 0.5 if not log_y else math.ceil(max(ys)))
    x0, x1 = x_ticks[0], x_ticks[-1]
    y0, y1 = y_ticks[0], y_ticks[-1]

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def py(y: float) -> float:
        return height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)

    out = [f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img">',
           f'<rect x="{left}" y="{top}" width="{width - left - right}" '
           f'height="{height - top - bottom}" fill="#fafafa" stroke="#999"/>']
    for t in x_ticks:
        out.append(f'<line x1="{px(t):.1f}" y1="{height - bottom}" x2="{px(t):.1f}" '
                   f'y2="{height - bottom + 4}" stroke="#999"/><text x="{px(t):.1f}" '
                   f'y="{height - bottom + 17}" font-size="11" text-anchor="middle">{t:g}</text>')
    for t in y_ticks:
        value = 10 ** t if log_y else t
        out.append(f'<line x1="{left - 4}" y1="{py(t):.1f}" x2="{width - right}" y2="{py(t):.1f}" '
                   f'stroke="#e4e4e4"/><text x="{left - 7}" y="{py(t) + 4:.1f}" font-size="11" '
                   f'text-anchor="end">{value:g}</text>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 10}" font-size="12" '
               f'text-anchor="middle">{html.escape(x_label)}</text>')
    out.append(f'<text transform="translate(14 {(top + height - bottom) / 2}) rotate(-90)" '
               f'font-size="12" text-anchor="middle">{html.escape(y_label)}</text>')
    centres = [(px(x), py(y)) for (x, _, _), y in zip(points, ys)]
    frame = (left, top, width - right, height - bottom)
    places = place_labels(centres, [label for _, _, label in points], frame)
    for (cx, cy), (_, _, label) in zip(centres, points):
        out.append(f'<circle class="point" cx="{cx:.1f}" cy="{cy:.1f}" r="{_POINT_RADIUS}" '
                   f'fill="{_colour(label)}"><title>{html.escape(label)}</title></circle>')
    for (cx, cy), (_, _, label), (tx, ty, leader) in zip(centres, points, places):
        if leader:  # moved away from its point: a thin line says whose label it is
            out.append(f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{leader[0]:.1f}" '
                       f'y2="{leader[1]:.1f}" stroke="#aaa" stroke-width="0.8"/>')
        out.append(f'<text class="label" x="{tx:.1f}" y="{ty:.1f}" font-size="{_LABEL_SIZE}">'
                   f'{html.escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)


_POINT_RADIUS = 5
_LABEL_SIZE = 10  # px
#: Width of a character of a label at _LABEL_SIZE, an upper bound for the sans-serif
#: fonts a browser picks for codec labels (letters, digits, ':' and '-'), so that boxes
#: estimated here contain the boxes drawn (tests/test_compare.py measures them in Chromium).
_CHAR_WIDTH = 6.2
_ASCENT, _DESCENT = 9.0, 3.0  # of a label's box, from its baseline


def _label_box(tx: float, ty: float, label: str) -> tuple[float, float, float, float]:
    return tx, ty - _ASCENT, tx + len(label) * _CHAR_WIDTH, ty + _DESCENT


def _overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_labels(centres: list[tuple[float, float]], labels: list[str],
                 frame: tuple[float, float, float, float]
                 ) -> list[tuple[float, float, tuple[float, float] | None]]:
    """Where each point's label goes: (x, y of its baseline start, the end of a leader
    line or None).

    Greedy, in the order given: the first place, by growing distance from the point
    (right or left of it, above or below), whose box lies inside `frame` (left, top,
    right, bottom) and meets no label placed before it and no point. Labels moved off
    their point get a leader line. Where no place is free (a plot far too crowded) the
    label goes beside its point.
    """
    keep_clear = [(x - _POINT_RADIUS - 1, y - _POINT_RADIUS - 1, x + _POINT_RADIUS + 1,
                   y + _POINT_RADIUS + 1) for x, y in centres]
    placed: list[tuple[float, float, float, float]] = []
    out = []
    for (x, y), label in zip(centres, labels):
        width = len(label) * _CHAR_WIDTH
        choice = None
        for step in range(0, 12):
            rise = step * (_ASCENT + _DESCENT + 1)
            for dx, dy in ((7, -6 - rise), (7, 12 + rise), (-7 - width, -6 - rise),
                           (-7 - width, 12 + rise)):
                box = _label_box(x + dx, y + dy, label)
                inside = (box[0] >= frame[0] and box[1] >= frame[1] and box[2] <= frame[2]
                          and box[3] <= frame[3])
                if inside and not any(_overlaps(box, other) for other in placed + keep_clear):
                    choice = (x + dx, y + dy, box, step > 0)
                    break
            if choice:
                break
        if choice is None:
            tx, ty = x + 7, y - 6
            choice = (tx, ty, _label_box(tx, ty, label), False)
        tx, ty, box, moved = choice
        placed.append(box)
        leader = None
        if moved:  # to the box's nearer vertical edge, at mid-height
            edge = box[0] if tx >= x else box[2]
            leader = (edge, (box[1] + box[3]) / 2)
        out.append((tx, ty, leader))
    return out


def _png(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _worst_slice(choice: Choice, row: Row, window, decoder: Isolated) -> str:
    """Source and decoded frames of the worst slice, at the window the display error was
    measured at, and the difference (the source decoded in `decoder`'s process)."""
    path, frame, slice_number, value = row.worst
    try:
        layout, arr = next(frames_at(Path(path), [frame - 1], decoder))
        decoded = choice.codec.decode_frame(choice.codec.encode_frame(arr, layout, 1), layout)
        view = FrameView(read_header(Path(path)), frame - 1, window)
        loss = frame_loss(arr, decoded, view, layout.bits_stored)
        win = view.resolve(arr) if view.grayscale else None
        shown = [np.clip(np.floor(view.display(a, win, layout.bits_stored) + 0.5), 0, 255)
                 .astype(np.uint8) for a in (arr, decoded)]
        diff = decoded.astype(np.int64) - arr.astype(np.int64)
        peak = max(1, int(np.abs(diff).max()))
        gray = np.clip(128 + diff * (127.0 / peak), 0, 255).astype(np.uint8)
        if gray.ndim == 3:
            gray = gray.mean(axis=2).astype(np.uint8)
    except (DicompressError, StopIteration, ValueError) as exc:
        return f'<p class="note">worst slice of {html.escape(row.choice)} not shown: {html.escape(str(exc))}</p>'
    return (f'<figure class="slice"><figcaption><b>{html.escape(row.choice)}</b>: slice '
            f'{slice_number} ({html.escape(Path(path).name)} frame {frame}), PSNR {value:.2f} dB; '
            f'on this slice: max error {loss.max_abs_error_modality:.4g} in the modality\'s units '
            f'({loss.max_error} stored), {loss.max_display_error:.1f} display levels at '
            f'{html.escape(loss.window)}</figcaption>'
            f'<img alt="source" src="{_png(shown[0])}"><img alt="decoded" src="{_png(shown[1])}">'
            f'<img alt="difference" src="{_png(gray)}"><div class="note">source, decoded '
            f'(same window), difference (grey = 0, black/white = -/+{peak})</div></figure>')


def _cell(value: float, fmt: str) -> str:
    return "∞" if math.isinf(value) else format(value, fmt)


def _table(rows: list[Row]) -> str:
    head = ("<tr><th>codec</th><th>scope</th><th>frames</th><th>bytes</th><th>ratio</th>"
            "<th>encode MB/s</th><th>decode MB/s</th><th>max error (stored)</th>"
            "<th>max error (modality units)</th><th>max display error (levels)</th>"
            "<th>window</th><th>flag</th><th>RMSE</th>"
            "<th>PSNR dB</th><th>SSIM</th><th>SSIM min</th><th>worst slice</th></tr>")
    body = []
    for r in rows:
        if not r.frames:
            body.append(f"<tr><td>{html.escape(r.choice)}</td><td>{html.escape(r.scope)}</td>"
                        f'<td colspan="15" class="note">not applicable: {html.escape(r.not_applicable)}'
                        "</td></tr>")
            continue
        worst = "-" if r.worst is None else f"{r.worst[2]} ({r.worst[3]:.2f} dB)"
        bad = ' class="bad"' if r.lossless_violated else ""
        flag = visibility(r)
        flag_cell = f'<td class="bad">{html.escape(flag)}</td>' if flag else "<td>-</td>"
        body.append(f"<tr{bad}><td>{html.escape(r.choice)}</td><td>{html.escape(r.scope)}</td>"
                    f"<td>{r.frames}</td><td>{r.stored_bytes:,}</td><td>{r.ratio:.2f}</td>"
                    f"<td>{r.encode_mb_s:.1f}</td><td>{r.decode_mb_s:.1f}</td><td>{r.max_error}</td>"
                    f"<td>{r.max_abs_error_modality:.4g}</td><td>{r.max_display_error:.2f}</td>"
                    f"<td>{html.escape(', '.join(sorted(r.windows)) or '-')}</td>{flag_cell}"
                    f"<td>{r.rmse:.3f}</td><td>{_cell(r.psnr, '.2f')}</td><td>{r.ssim:.5f}</td>"
                    f"<td>{r.ssim_min:.5f}</td><td>{worst}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


_COUNT_SCRIPT = """<script>
document.body.dataset.plots = document.querySelectorAll('svg.plot').length;
document.body.dataset.points = document.querySelectorAll('svg.plot circle.point').length;
document.body.dataset.images = [...document.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth > 0).length;
// labels as drawn: pairs that overlap, and labels over a point or outside their plot
let overlaps = 0, outside = 0;
const meet = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
for (const svg of document.querySelectorAll('svg.plot')) {
  const frame = svg.getBoundingClientRect();
  const labels = [...svg.querySelectorAll('text.label')].map(t => t.getBoundingClientRect());
  const points = [...svg.querySelectorAll('circle.point')].map(c => c.getBoundingClientRect());
  labels.forEach((a, i) => {
    overlaps += labels.slice(i + 1).filter(b => meet(a, b)).length + points.filter(p => meet(a, p)).length;
    if (a.left < frame.left || a.right > frame.right || a.top < frame.top || a.bottom > frame.bottom) outside++;
  });
}
document.body.dataset.labelOverlaps = overlaps;
document.body.dataset.labelsOutside = outside;
</script>"""


def build(result: Comparison) -> str:
    rows = [result.overall[c.label] for c in result.choices]
    measured = [r for r in rows if r.frames]
    lossy = [r for r in measured if not r.lossless]
    mb = 1e6
    size_psnr = [(r.stored_bytes / mb, r.psnr, r.choice) for r in lossy if math.isfinite(r.psnr)]
    size_speed = [(r.stored_bytes / mb, r.encode_mb_s, r.choice) for r in measured]
    lossless_note = ", ".join(f"{r.choice} {r.stored_bytes / mb:.2f} MB" for r in measured if r.lossless)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>dicompress compare</title>", f"<style>{_STYLE}</style></head><body>",
        "<h1>Compression choices compared</h1>",
        f"<p>{result.frames} frames from {len(result.series)} series, {len(result.choices)} choices, "
        f"measured in {result.seconds:.1f} s. Sizes are the encoded frames <code>dicompress "
        "transcode</code> stores; speeds per core.</p>",
        f"<p>{html.escape(QUALITY_NOTE)}.</p>",
        _table(rows), '<div class="plots">',
        "<figure>" + scatter(size_psnr, "size (MB)", "PSNR (dB), peak = each frame's range") +
        f"<figcaption>Size against quality, lossy choices. Lossless: {html.escape(lossless_note) or 'none'}."
        "</figcaption></figure>",
        "<figure>" + scatter(size_speed, "size (MB)", "encode speed (MB/s per core, log)", log_y=True) +
        "<figcaption>Size against encode speed, every choice.</figcaption></figure></div>",
    ]
    if lossy:
        parts.append("<h2>Worst slice of each lossy choice</h2>")
        by_label = {c.label: c for c in result.choices}
        with Isolated() as decoder:
            parts += [_worst_slice(by_label[r.choice], r, result.window, decoder) for r in lossy
                      if r.worst is not None]
    if len(result.series) > 1:
        parts += ["<h2>Per series</h2>", _table(list(result.per_series.values()))]
    if result.failed or result.skipped:
        parts.append("<h2>Not measured</h2><ul>" + "".join(
            f"<li>{html.escape(p)}: {html.escape(r)}</li>" for p, r in result.failed + result.skipped)
            + "</ul>")
    parts += [_COUNT_SCRIPT, "</body></html>"]
    return "".join(parts)


def write_html(result: Comparison, path: Path) -> None:
    Path(path).write_text(build(result), encoding="utf-8")

"""The page a zip of exported pictures opens with (index.html): a contact sheet a doctor
reads in a mail client's browser.

A grid of the pictures in series and slice order, each captioned with its slice number,
position and thickness; a click shows it full size (CSS `:target`, no script: mail
attachments open from disk, often with scripts off), with the previous and next slices a
click away. Above the grid: the study as far as it can be shown without identifying the
patient (the description when it passes the Clean Descriptors test, the year of the study
date, the modality), each series with its window, and which slices this part of a split
export holds. Nothing on the page comes from an identifying attribute unless the user
asked for identifiers (--keep-identifiers).
"""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass(frozen=True)
class Still:
    """What the page says about one exported picture (built by export/stills.py from the
    same filtered text the picture's own metadata carries)."""

    name: str  # path inside the zip
    series: str  # the series label (file names use it too)
    description: str = ""  # Series Description, when it passes the descriptors test
    modality: str = ""
    study: str = ""  # Study Description, when it passes the descriptors test
    study_date: str = ""  # the year only, unless identifiers are kept
    frame: int | None = None  # 1-based slice (frame) number in the series; None: animation
    frames: int = 1  # in the series (an animation: the frames it holds)
    position: float | None = None  # mm along the slice normal
    thickness: str = ""  # Slice Thickness, mm
    window: str = ""  # the window used, as export wrote it


_STYLE = """
body{font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#111;color:#eee}
header{padding:12px 16px;background:#222;border-bottom:1px solid #333}
h1{font-size:20px;margin:0 0 4px}
header p{margin:2px 0;color:#ccc}
table{border-collapse:collapse;margin-top:6px;font-size:14px}
td,th{padding:2px 10px 2px 0;text-align:left;vertical-align:top}
th{color:#999;font-weight:normal}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:8px;padding:12px}
figure{margin:0;background:#000;border:1px solid #333}
figure img{display:block;width:100%;height:auto;image-rendering:auto}
figcaption{font-size:12px;padding:3px 5px;color:#ddd}
.view{display:none;position:fixed;inset:0;background:#000;overflow:auto;z-index:9;text-align:center}
.view:target{display:block}
.view img{height:86vh;width:auto;max-width:96vw;object-fit:contain;margin-top:1vh}
.view p{margin:6px;color:#eee}
.view a{color:#8cf;margin:0 14px;font-size:18px;text-decoration:none}
a{color:#8cf}
"""


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _millimetres(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} mm"


def caption(still: Still) -> str:
    """One line under a picture: slice n of N, position, thickness."""
    if still.frame is None:
        parts = [f"animation, {_plural(still.frames, 'frame')}"]
    else:
        parts = [f"slice {still.frame} of {still.frames}"]
    if still.position is not None:
        parts.append(f"at {_millimetres(still.position)}")
    if still.thickness:
        parts.append(f"{still.thickness} mm thick")
    return ", ".join(parts)


def _series_rows(stills: list[Still]) -> list[str]:
    """Per series: what it is, its window, and which of its slices this page holds."""
    rows, order = {}, []
    for still in stills:
        if still.series not in rows:
            rows[still.series] = []
            order.append(still.series)
        rows[still.series].append(still)
    out = []
    for label in order:
        members = rows[label]
        first = members[0]
        what = " ".join(p for p in (first.modality, first.description) if p) or label
        numbers = [s.frame for s in members if s.frame is not None]
        if numbers:
            held = (f"slice {numbers[0]}" if len(numbers) == 1 else
                    f"slices {_ranges(sorted(set(numbers)))}") + f" of {first.frames}"
        else:
            held = f"an animation of {_plural(first.frames, 'frame')}"
        positions = [s.position for s in members if s.position is not None]
        if len(positions) > 1:
            held += f" ({min(positions):.1f} to {max(positions):.1f} mm)"
        thickness = f"{first.thickness} mm" if first.thickness else ""
        out.append("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in (
            what, held, thickness, first.window or "")) + "</tr>")
    return out


def _ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 7, 9, 10] -> '1-3, 7, 9-10'; [1, 3, 5, 7] -> '1-7 (every 2nd)'."""
    steps = {b - a for a, b in zip(numbers, numbers[1:])}
    if len(numbers) > 2 and len(steps) == 1 and steps != {1}:
        step = steps.pop()
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(step % 10 if step % 100 not in (11, 12, 13) else 0, "th")
        return f"{numbers[0]}-{numbers[-1]} (every {step}{suffix})"
    spans: list[list[int]] = []
    for n in sorted(set(numbers)):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def index_html(title: str, names: list[str], stills: dict) -> bytes:
    """The contact sheet of the pictures `names` (in order), described by `stills`
    (name -> Still; a plain string is taken as a caption)."""
    described = [stills[n] if isinstance(stills.get(n), Still) else
                 Still(name=n, series=str(stills.get(n) or n)) for n in names]
    studies = sorted({(s.study, s.study_date) for s in described if s.study or s.study_date})
    heading = [f"<h1>{html.escape(title)}</h1>"]
    for study, date in studies:
        heading.append("<p>" + html.escape(" · ".join(p for p in (study, date) if p)) + "</p>")
    heading.append(f"<p>{_plural(len(names), 'image')}, exported by dicompress. "
                   "Click a picture to see it full size.</p>")
    heading.append("<table><tr><th>series</th><th>on this page</th><th>thickness</th>"
                   "<th>window</th></tr>" + "".join(_series_rows(described)) + "</table>")
    grid, views = [], []
    for i, still in enumerate(described):
        name = html.escape(still.name)
        text = html.escape(caption(still)) if isinstance(stills.get(still.name), Still) \
            else html.escape(still.series)
        grid.append(f'<figure><a href="#v{i}"><img src="{name}" loading="lazy" alt="{text}">'
                    f"</a><figcaption>{text}</figcaption></figure>")
        back = f'<a href="#v{i - 1}">&larr; previous</a>' if i else ""
        ahead = f'<a href="#v{i + 1}">next &rarr;</a>' if i + 1 < len(described) else ""
        views.append(f'<div class="view" id="v{i}"><p>{html.escape(still.series)}: {text} '
                     f'{back}<a href="#">close</a>{ahead}</p><img src="{name}" loading="lazy" '
                     f'alt="{text}"></div>')
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<header>{''.join(heading)}</header>\n<main>\n" + "\n".join(grid)
            + "\n</main>\n" + "\n".join(views) + "\n</body></html>\n").encode()

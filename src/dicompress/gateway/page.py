"""The status page at / on the status port: what a person at the gateway needs to see.

Read-only HTML made from the same report as /status: the queue per route, what went in
which syntax, throughput, the last problems and notes, the held and failed instances.
It names no patient: the queue holds no patient attribute, only UIDs, routes and AE
titles (SOP and Study Instance UIDs identify objects, not people). It refreshes itself
every 10 seconds and needs no script.
"""

from __future__ import annotations

from html import escape

from pydicom.uid import UID

from dicompress.gateway.config import GatewayConfig

_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; } td, th { padding: 3px 10px; border-bottom: 1px solid #ddd;
text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.bad { color: #a00; font-weight: 600; } .muted { color: #777; }
code { font-size: 12px; }
"""


def _syntax(uid: str | None) -> str:
    return (UID(uid).keyword or uid) if uid else "-"


def _table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell if cell.startswith("<td") else f"<td>{cell}</td>"
                                    for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _n(value, bad: bool = False) -> str:
    return f'<td class="n{" bad" if bad and value else ""}">{escape(str(value))}</td>'


def _counts(report: dict) -> str:
    """The totals as data- attributes of <body>, for scripts and tests."""
    keys = ("queued", "sent", "held", "failed")
    return "".join(f' data-{k}="{int(report[k])}"' for k in keys if k in report)


def status_page(config: GatewayConfig, report: dict) -> str:
    """The page for `report` (service.status)."""
    if "error" in report:
        body = f"<p class=bad>{escape(report['error'])}</p>"
    else:
        routes = [[escape(name), escape(str(r.get("destination"))), escape(str(r.get("target"))),
                   _n(r["queued"]),
                   _n("-" if r["oldest_seconds"] is None else f"{r['oldest_seconds']:.0f} s"),
                   _n(r["sent"]), _n(r["sent_other_than_target"], bad=True),
                   _n(r["held"], bad=True), _n(r["failed"], bad=True),
                   ", ".join(f"{escape(_syntax(s))}: {n}"
                             for s, n in sorted(r["sent_syntaxes"].items(), key=str))]
                  for name, r in sorted(report["routes"].items())]
        minute = report["last_minute"]
        ratio = report["ratio"]
        instances = [[f"<code>{escape(e['sop_instance'])}</code>", escape(e["route"]),
                      escape(e["reason"] or "")]
                     for e in report["held_instances"] + report["failed_instances"]]
        body = "".join([
            "<h2>Routes</h2>",
            _table(["route", "destination", "target", "queued", "oldest", "sent",
                    "sent other than target", "held", "failed", "sent in"], routes,
                   "no routes"),
            "<h2>Throughput</h2>",
            f"<p>Last minute: {minute['received']} received ({minute['received_mb']} MB), "
            f"{minute['sent']} sent ({minute['sent_mb']} MB). Sent in all: {report['sent']} "
            f"instances, {report['bytes_in'] / 1e6:.1f} MB as received, "
            f"{report['bytes_out'] / 1e6:.1f} MB as sent"
            f"{f' (ratio {ratio})' if ratio else ''}.</p>",
            "<h2>Last problems</h2>",
            _table(["SOP Instance UID", "route", "error"],
                   [[f"<code>{escape(p['sop_instance'])}</code>", escape(p["route"]),
                     escape(p["error"] or "")] for p in report["problems"]],
                   "none: nothing is waiting on a retry"),
            "<h2>Notes</h2>",
            _table(["age", "route", "note"],
                   [[_n(f"{n['age_seconds']:.0f} s"), escape(n["route"]), escape(n["note"])]
                    for n in report["notes"]], "none"),
            f"<h2>Held ({report['held']}) and failed ({report['failed']}) instances</h2>",
            _table(["SOP Instance UID", "route", "reason"], instances,
                   "none"),
            "<p class=muted>Held and failed instances go back into the queue with "
            "<code>dicompress serve --config F --requeue</code>; one is dropped with "
            "<code>--drop UID</code> or sent elsewhere with <code>--reroute UID ROUTE</code>.</p>",
        ])
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f'<meta http-equiv="refresh" content="10">'
            f"<title>dicompress gateway {escape(config.ae_title)}</title>"
            f"<style>{_STYLE}</style></head><body{_counts(report)}>"
            f"<h1>dicompress gateway {escape(config.ae_title)} "
            f'<span class="muted">port {config.port}</span></h1>{body}</body></html>')

"""Log lines for the people who run the gateway.

One line per association (calling AE title, address, accepted or rejected and why)
and one per instance forwarded (route, SOP Instance UID, syntax in -> out, bytes in
-> out, milliseconds, result). An event's fields travel in the record
(``extra={"fields": {...}}``): the text format writes them as ``key=value`` after
the message, the JSON format (``--log-format json``, one object a line, for log
shippers) as keys of the object.

Tracebacks are written only with ``-v``: without it an exception logged with
``exc_info`` becomes its type and message on the same line. Expected failures (a
destination down, an image the encoder refuses) are logged without ``exc_info`` in
the first place; only our own bugs carry one.
"""

from __future__ import annotations

import json
import logging
import sys
import time

LOG = logging.getLogger("dicompress.gateway")


def event(level: int, message: str, **fields) -> None:
    """Log `message` with structured `fields` (None values left out)."""
    LOG.log(level, message, extra={"fields": {k: v for k, v in fields.items() if v is not None}})


def _value(value) -> str:
    text = str(value)
    return json.dumps(text) if (not text or any(c in text for c in ' "=\\')) else text


class TextFormatter(logging.Formatter):
    def __init__(self, tracebacks: bool) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s")
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        saved = record.msg, record.args, record.exc_info, record.exc_text
        if fields:
            record.msg = record.getMessage() + " " + " ".join(
                f"{k}={_value(v)}" for k, v in fields.items())
            record.args = ()
        if record.exc_info and not self.tracebacks:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({type(exc).__name__}: {exc}; -v shows where)"
            record.args, record.exc_info, record.exc_text = (), None, None
        try:
            return super().format(record)
        finally:
            record.msg, record.args, record.exc_info, record.exc_text = saved


class JSONFormatter(logging.Formatter):
    def __init__(self, tracebacks: bool) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                 + f".{int(record.msecs):03d}Z",
                 "level": record.levelname, "logger": record.name,
                 "message": record.getMessage(), **getattr(record, "fields", {})}
        if record.exc_info:
            exc = record.exc_info[1]
            entry["error"] = f"{type(exc).__name__}: {exc}"
            if self.tracebacks:
                entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(log_format: str = "text", verbose: bool = False, stream=None) -> logging.Handler:
    """The root handler for `dicompress serve` (pynetdicom's own lines only with -v)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter((JSONFormatter if log_format == "json" else TextFormatter)(verbose))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("pynetdicom").setLevel(logging.INFO if verbose else logging.WARNING)
    # pydicom logs every decoder plugin that fails on a frame, with its traceback (one
    # undecodable image: dozens of ERROR lines); its messages reach our line per instance
    # as the error text
    logging.getLogger("pydicom").setLevel(logging.INFO if verbose else logging.CRITICAL)
    return handler

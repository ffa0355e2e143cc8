"""No silent fallback: whatever the gateway sends other than the route's target is
recorded in the queue with its reason, counted per route, noted in /status and logged;
the route's `fallback` decides what happens (uncompressed, original, hold)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import generate_uid
from pynetdicom import AE

from dicompress.gateway import Gateway, load_config, status
from dicompress.gateway.service import requeue
from dicompress.samples import find_sample
from test_gateway import (PynetdicomSCP, _wait_until, free_port, gateway_factory,  # noqa: F401
                          make_series, write_config)

EXPLICIT, IMPLICIT = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
J2K, HTJ2K, RLE = "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.5"


def send(port: int, paths: list[Path], calling: str = "CT1") -> None:
    """Each file in its own transfer syntax (pynetdicom sends the file's bytes)."""
    ae = AE(ae_title=calling)
    for path in paths:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        ae.add_requested_context(ds.SOPClassUID, [ds.file_meta.TransferSyntaxUID])
    assoc = ae.associate("127.0.0.1", port, ae_title="DICOMPRESS")
    assert assoc.is_established
    try:
        for path in paths:
            assert assoc.send_c_store(path).Status == 0
    finally:
        assoc.release()


def rows(config: Path) -> list[dict]:
    with sqlite3.connect(load_config(config).database) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM instances ORDER BY id")]


def implicit_ct(folder: Path) -> Path:
    """CT_small (signed 16-bit: no JPEG) as Implicit VR Little Endian, a new instance."""
    ds = pydicom.dcmread(find_sample("CT_small.dcm"))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ct-implicit.dcm"
    ds.file_meta.TransferSyntaxUID = IMPLICIT
    ds.save_as(path, enforce_file_format=True)
    return path


def broken_j2k(folder: Path) -> Path:
    """A JPEG 2000 instance whose codestream is cut short inside a well-formed fragment:
    it is received (the encapsulation is sound) but no decoder can read it."""
    ds = pydicom.dcmread(find_sample("MR_small_jp2klossless.dcm"))
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[:300]])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "broken-j2k.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def instance_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "instance"]


@pytest.fixture
def gateway(tmp_path, gateway_factory):
    """(config, gateway port, destination) for a route to a pynetdicom SCP taking
    `syntaxes`; `route` lines are added to the route."""
    made = []

    def make(target: str, syntaxes: list[str] | None, route: str = "", dest: str = ""):
        dest_port = free_port()
        scp = PynetdicomSCP(dest_port, syntaxes)
        made.append(scp)
        config, port = write_config(tmp_path, dest_port, target=target)
        text = config.read_text()
        if dest:
            text = text.replace(f"port = {dest_port} }}", f"port = {dest_port}, {dest} }}")
        config.write_text(text + route)
        scp.gateway = gateway_factory(config)
        return config, port, scp

    yield make
    for scp in made:
        scp.stop()


def test_destination_refusing_the_target_is_recorded_counted_noted_and_logged(
        tmp_path, gateway, caplog):

    caplog.set_level(logging.INFO, logger="dicompress.gateway")
    config, port, dest = gateway("htj2k", [EXPLICIT, IMPLICIT])
    series = make_series(tmp_path / "series", 3, 32)
    send(port, series)
    _wait_until(lambda: len(dest.received) == 3, what="forwarded")
    _wait_until(lambda: status(load_config(config))["sent"] == 3, what="acknowledged")
    for row in rows(config):
        assert (row["target"], row["syntax_out"]) == (HTJ2K, EXPLICIT)
        assert row["fallback"] == "the destination refused HTJ2KLossless"
    report = status(load_config(config))
    route = report["routes"]["reading site"]
    assert route["sent_other_than_target"] == 3 and route["sent_syntaxes"] == {EXPLICIT: 3}
    assert len(report["notes"]) == 3 and all("refused HTJ2KLossless" in n["note"]
                                             for n in report["notes"])
    lines = instance_records(caplog)
    assert len(lines) == 3 and all(r.levelno == logging.WARNING for r in lines)
    assert {r.fields["reason"] for r in lines} == {"the destination refused HTJ2KLossless"}
    assert {r.fields["syntax_out"] for r in lines} == {"ExplicitVRLittleEndian"}


def test_the_target_sent_is_no_fallback(tmp_path, gateway, caplog):

    caplog.set_level(logging.INFO, logger="dicompress.gateway")
    config, port, dest = gateway("htj2k", None)
    send(port, make_series(tmp_path / "series", 2, 32))
    _wait_until(lambda: status(load_config(config))["sent"] == 2, what="acknowledged")
    assert [(r["syntax_out"], r["fallback"]) for r in rows(config)] == [(HTJ2K, None)] * 2
    route = status(load_config(config))["routes"]["reading site"]
    assert route["sent_other_than_target"] == 0 and route["sent_syntaxes"] == {HTJ2K: 2}
    assert [r.levelno for r in instance_records(caplog)] == [logging.INFO] * 2


@pytest.mark.parametrize("fallback, sent_as", [("uncompressed", EXPLICIT), ("original", IMPLICIT)])
def test_a_layout_the_encoder_refuses_goes_by_the_routes_fallback(tmp_path, gateway, fallback,
                                                                   sent_as):
    source = implicit_ct(tmp_path / "in")
    config, port, dest = gateway("jpeg", None, f'fallback = "{fallback}"\n')
    send(port, [source])
    _wait_until(lambda: status(load_config(config))["sent"] == 1, what="acknowledged")
    (row,) = rows(config)
    assert row["syntax_out"] == sent_as == dest.received[0].file_meta.TransferSyntaxUID
    assert row["target"] == "1.2.840.10008.1.2.4.51"  # 16 bits allocated: JPEG 12-bit
    assert row["fallback"].startswith("the encoder refused the layout (JPEG codes unsigned")
    original = pydicom.dcmread(source)
    assert dest.received[0].PixelData == original.PixelData  # lossless, as it came


def test_fallback_hold_keeps_the_instance_listed_and_requeueable(tmp_path, gateway):
    source = implicit_ct(tmp_path / "in")
    config, port, dest = gateway("jpeg", None, 'fallback = "hold"\n')
    send(port, [source])
    _wait_until(lambda: status(load_config(config))["held"] == 1, what="held")
    report = status(load_config(config))
    (held,) = report["held_instances"]
    assert held["sop_instance"] == pydicom.dcmread(source).SOPInstanceUID
    assert "refused the layout" in held["reason"] and "fallback = 'hold'" in held["reason"]
    assert report["routes"]["reading site"]["held"] == 1 and not dest.received
    (row,) = rows(config)
    assert (tmp_path / "spool" / row["path"]).is_file()  # kept in the spool
    # the operator lets it go uncompressed after all, and requeues it
    dest.gateway.stop()
    dest.gateway.server = None  # stopped here, not again by the fixture
    dest.gateway.forwarders = []
    config.write_text(config.read_text().replace('fallback = "hold"', ""))
    assert requeue(load_config(config)) == 1
    again = Gateway(load_config(config))
    again.start()
    try:
        _wait_until(lambda: len(dest.received) == 1, what="sent after the requeue")
    finally:
        again.stop()
    assert dest.received[0].file_meta.TransferSyntaxUID == EXPLICIT
    audit = (tmp_path / "spool" / "audit.log").read_text()
    assert '"action": "requeue"' in audit and held["sop_instance"] in audit


def test_an_encoder_failure_sends_the_original_with_the_error_text(tmp_path, gateway):
    source = broken_j2k(tmp_path / "in")
    config, port, dest = gateway("htj2k", [J2K, EXPLICIT, IMPLICIT, HTJ2K])
    send(port, [source])
    _wait_until(lambda: status(load_config(config))["sent"] == 1, what="acknowledged")
    (row,) = rows(config)
    assert row["syntax_out"] == J2K  # neither HTJ2K nor uncompressed could be made
    assert row["fallback"].startswith("the encoder failed (") and "cannot be decoded" in \
        row["fallback"]
    assert dest.received[0].PixelData == pydicom.dcmread(source).PixelData  # as it came


def test_an_encoder_failure_with_no_way_out_is_held_not_retried_forever(tmp_path, gateway):
    source = broken_j2k(tmp_path / "in")
    config, port, dest = gateway("htj2k", [EXPLICIT, IMPLICIT, HTJ2K])  # no JPEG 2000
    send(port, [source])
    _wait_until(lambda: status(load_config(config))["held"] == 1, what="held")
    (held,) = status(load_config(config))["held_instances"]
    assert held["reason"].startswith("the encoder failed (")
    assert "ExplicitVRLittleEndian failed too" in held["reason"]
    assert not dest.received


def test_avoid_keeps_a_syntax_from_the_images_a_destination_mangles(tmp_path, gateway):
    colour = pydicom.dcmread(find_sample("SC_rgb.dcm"))
    grey = pydicom.dcmread(find_sample("CT_small.dcm"))
    paths = []
    for name, ds in (("colour", colour), ("grey", grey)):
        ds.StudyInstanceUID = "1.2.3.4"  # one study, one association
        paths.append(tmp_path / f"{name}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    config, port, dest = gateway("rle", None, dest='avoid = ["rle:colour"]')
    send(port, paths)
    _wait_until(lambda: status(load_config(config))["sent"] == 2, what="acknowledged")
    by_uid = {r["sop_instance"]: r for r in rows(config)}
    assert by_uid[colour.SOPInstanceUID]["syntax_out"] == EXPLICIT
    assert by_uid[colour.SOPInstanceUID]["fallback"] == \
        "the destination avoids rle:colour (its avoid setting)"
    assert (by_uid[grey.SOPInstanceUID]["syntax_out"], by_uid[grey.SOPInstanceUID]["fallback"]) \
        == (RLE, None)


def test_fallback_and_avoid_are_checked_in_the_config(tmp_path):
    base = ('[[route]]\ncalling = ["CT1"]\n'
            'destination = { ae_title = "R", host = "h", port = 1%s }\n')
    cases = {base % "" + 'fallback = "drop"\n': "fallback = 'drop'; one of uncompressed",
             base % ', avoid = ["nonsense"]': "avoid 'nonsense'",
             base % ', avoid = ["rle:grey"]': "only \":colour\"",
             base % ', avoid = "rle"': "a list"}
    path = tmp_path / "g.toml"
    from dicompress.gateway import ConfigError
    for text, message in cases.items():
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_config(path)
    path.write_text(base % ', avoid = ["htj2k", "rle:colour", "1.2.840.10008.1.2.4.203"]')
    avoid = load_config(path).routes[0].destination.avoid
    assert [str(a) for a in avoid] == ["htj2k", "rle:colour", "htj2k-lossy"]
    assert load_config(path).host == "127.0.0.1"  # loopback unless configured

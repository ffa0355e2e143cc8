"""The choices `compare` and `plan` measure: a codec with its settings, as the user names
it (``j2k-lossy:10``), parsed against the codec table; and the transforms of encoded
frames offered where the sources are in a syntax they take."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from dicompress.codecs import Codec, available_codecs, get_codec
from dicompress.codecs.registry import compare_defaults
from dicompress.errors import UnsupportedTransferSyntax


def __getattr__(name: str):
    # DEFAULT_CODECS: what compare measures when not told (today every lossless target
    # that codes frames, J2K and HTJ2K lossy at four ratios, JPEG-LS near-lossless at three
    # NEARs, JPEG at two qualities), read off the codec table when asked: codecs may
    # register after import
    if name == "DEFAULT_CODECS":
        return compare_defaults()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Choice:
    """A codec with its settings, as the user named it (``j2k-lossy:10``)."""

    label: str
    codec: Codec

    @property
    def lossless(self) -> bool:
        return self.codec.lossless


def parse_codecs(text: str | None) -> list[Choice]:
    """``rle,j2k,j2k-lossy:10,20,jpegls-near:2,jpeg:85`` -> choices; a bare number
    adds another value for the codec before it."""
    choices: list[Choice] = []
    current: str | None = None
    for token in (text or compare_defaults()).split(","):
        token = token.strip()
        if not token:
            continue
        if ":" in token:
            current, value = (part.strip() for part in token.split(":", 1))
        elif _is_number(token):
            if current is None:
                raise UnsupportedTransferSyntax(f"--codecs: {token!r} follows no codec")
            value = token
        else:
            current, value = token, None
        choices.append(_choice(current, value))
    configs = [json.dumps(c.codec.get_config(), sort_keys=True) for c in choices]
    if len(set(configs)) != len(configs):
        raise UnsupportedTransferSyntax(f"--codecs names the same choice twice: {text}")
    return choices


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _choice(name: str, value: str | None) -> Choice:
    codec = get_codec(name)
    if not codec.per_frame:
        raise UnsupportedTransferSyntax(
            f"--codecs {name}: {name} compresses the whole file, not frames; compare it with "
            "`dicompress transcode` sizes")
    if value is None:
        return Choice(codec.name, codec)
    option = codec.value_option
    if option is None:
        raise UnsupportedTransferSyntax(f"--codecs {name}:{value}: {name} takes no value")
    if not _is_number(value):
        raise UnsupportedTransferSyntax(f"--codecs {name}:{value}: the {option} must be a number")
    number = float(value)
    if codec.spec(option).type is int:
        if number != int(number):
            raise UnsupportedTransferSyntax(f"--codecs {name}:{value}: the {option} is a whole number")
        number = int(number)
    configured = codec.configure(**{option: number})
    return Choice(f"{codec.name}:{number:g}", configured)


def offered_transforms(transfer_syntaxes: Iterable[str], *, planning: bool = False
                       ) -> list[Choice]:
    """The table's codecs that take frames only as they are encoded (``encodes_pixels``
    False: jpegxl-jpeg, from JPEG baseline) and take some of `transfer_syntaxes`: compare
    (their `compare_values` set) and plan (their `plan_rank` set) offer them where the
    sources are in such a syntax, and nowhere else."""
    syntaxes = set(transfer_syntaxes)
    offered = []
    for codec in available_codecs():
        listed = codec.plan_rank if planning else codec.compare_values
        if (not codec.encodes_pixels and listed is not None
                and any(codec.takes_encoded(s) for s in syntaxes)):
            offered.append(Choice(codec.name, codec))
    return offered

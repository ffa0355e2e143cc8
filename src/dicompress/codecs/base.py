"""The codec interface: a `Codec` carries every fact about one transfer-syntax target
(its name and UID, lossless or not, the layouts it accepts, its typed `Option` specs,
its place in the lists other modules derive), encodes and decodes frames, and may turn
frames of another encoding into its own without decoding them (`register_transform`).
The table of codecs is `dicompress.codecs.registry`; the helpers here are shared by the
codec modules."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dicompress.errors import UnsupportedLayout, UnsupportedTransferSyntax
from dicompress.layout import FrameLayout


#: `Codec.plan_values` for a rate-controlled codec: `plan` asks for the ratio the
#: budget needs rather than trying fixed values.
BUDGET_RATIO = "budget-ratio"


@dataclass(frozen=True)
class Option:
    """One setting of a codec: what the CLI, the gateway's TOML and `configure` accept."""

    name: str
    #: int, float, str or tuple (a tuple arrives as a list from JSON and TOML).
    type: type
    default: Any = None
    #: Inclusive range of a number (None: unbounded on that side).
    low: float | None = None
    high: float | None = None
    #: The values a text option takes (compared in upper case).
    choices: tuple[str, ...] = ()
    help: str = ""
    #: The CLI flag that sets it; ``--<name>`` unless given.
    flag: str = ""
    metavar: str | None = None
    #: Turns the CLI's text into a value when ``type(text)`` will not do; raises
    #: UnsupportedTransferSyntax with the flag in its message.
    parse: Callable[[str], Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.flag:
            object.__setattr__(self, "flag", f"--{self.name}")

    def coerce(self, value: Any) -> Any:
        """`value` as the codec keeps it (JSON and TOML have no tuples)."""
        if self.type is tuple and isinstance(value, list):
            return tuple(value)
        return value

    def check(self, value: Any) -> None:
        """Raise UnsupportedTransferSyntax when `value` is out of range or not a choice."""
        if value is None:
            return
        if self.low is not None or self.high is not None:
            low = -np.inf if self.low is None else self.low
            high = np.inf if self.high is None else self.high
            if not low <= float(value) <= high:
                raise UnsupportedTransferSyntax(
                    f"{self.name} must be between {self.low} and {self.high}, not {value}")
        if self.choices and str(value).upper() not in self.choices:
            raise UnsupportedTransferSyntax(
                f"{self.name} must be one of {', '.join(self.choices)}")

    def from_text(self, text: str) -> Any:
        """The value of the CLI's `text` for this option."""
        return self.parse(text) if self.parse is not None else self.type(text)

    def to_text(self, value: Any) -> str:
        """`value` as the CLI flag takes it (the inverse of `from_text`)."""
        if isinstance(value, tuple):
            return "x".join(str(v) for v in value)
        return f"{value:g}" if isinstance(value, (int, float)) else str(value)


@dataclass(frozen=True)
class Codec:
    """One transfer syntax we can write, and every fact the rest of dicompress needs of it."""

    name: str
    transfer_syntax: str
    #: One line for the CLI's list of targets.
    description: str = ""
    lossless: bool = True
    #: Pixel data as fragments (PS3.5 A.4) rather than native (PS3.5 8.1).
    encapsulated: bool = True
    #: False when the whole dataset is compressed (PS3.5 A.5), not frame by frame.
    per_frame: bool = True
    #: False when frames can only come from another encoding (`from_encoded`), never from
    #: decoded pixels (JPEG XL's JPEG recompression).
    encodes_pixels: bool = True
    #: Lossy Image Compression Method (0028,2114) term, for lossy codecs.
    lossy_method: str = ""
    #: Other transfer syntaxes the codec picks for some layouts (JPEG 12-bit).
    also_writes: tuple[str, ...] = ()
    #: Other names `get_codec` knows it by.
    aliases: tuple[str, ...] = ()
    #: The options `configure` accepts.
    specs: tuple[Option, ...] = field(default=(), repr=False)
    #: The options set (the others take their spec's default).
    options: dict[str, Any] = field(default_factory=dict)

    # -- its place in the lists others make ----------------------------------------
    #: Place in listings (CLI help, compare's defaults); ties go by name.
    order: int = 1000
    #: The option a bare number sets in ``compare --codecs name:value``.
    value_option: str | None = None
    #: What ``compare`` measures by default: None, not measured; (), the codec as it
    #: is; else these values of `value_option`. A codec that does not encode pixels is
    #: measured where the sources are in a syntax it takes (`takes_encoded`).
    compare_values: tuple[float, ...] | None = None
    #: Where ``plan`` tries this codec among its candidates (lower first); None: never.
    plan_rank: int | None = None
    #: The values of `value_option` plan tries, or BUDGET_RATIO.
    plan_values: tuple[float, ...] | str = ()
    #: Where a gateway tries this syntax when the destination refuses the target
    #: (lower first); None: never.
    fallback_rank: int | None = None
    #: The gateway's target when a route names none.
    gateway_default: bool = False
    #: For a syntax that holds lossless or lossy data: the lossless-only codec that
    #: re-encodes frames that were never lossy (de-identification's blanking).
    lossless_twin: str | None = None
    #: The colour of this codec's points in compare's plots.
    colour: str = "#333"

    # -- options -----------------------------------------------------------------
    @property
    def defaults(self) -> dict[str, Any]:
        """Options `configure` accepts, with their defaults."""
        return {spec.name: spec.default for spec in self.specs}

    def spec(self, name: str) -> Option | None:
        return next((s for s in self.specs if s.name == name), None)

    def configure(self, **options: Any) -> "Codec":
        """A copy with `options` set (None values ignored); unknown options raise."""
        options = {k: v for k, v in options.items() if v is not None}
        unknown = sorted(set(options) - {s.name for s in self.specs})
        if unknown:
            accepted = ", ".join(sorted(s.name for s in self.specs)) or "none"
            raise UnsupportedTransferSyntax(
                f"{self.name} has no option {', '.join(unknown)} (accepted: {accepted})"
            )
        merged = {**self.options, **{k: self.spec(k).coerce(v) for k, v in options.items()}}
        for spec in self.specs:
            spec.check(merged.get(spec.name))
        self.validate_options(merged)
        return dataclasses.replace(self, options=merged)

    def option(self, key: str) -> Any:
        return self.options.get(key, self.defaults.get(key))

    def validate_options(self, options: dict[str, Any]) -> None:
        """Raise UnsupportedTransferSyntax for combinations of options that cannot be
        (each option's own range is checked by its spec)."""

    def get_config(self) -> dict[str, Any]:
        """Name, transfer syntax and every option's value: what `codec_from_config`
        makes the same codec from (and what lossy marking records)."""
        return {"name": self.name, "transfer_syntax": self.transfer_syntax,
                **{k: self.option(k) for k in sorted(self.defaults)}}

    def reencoding(self, previous_ratio: float | None) -> "Codec":
        """The settings that encode frames again that this codec's syntax already held
        lossy (at `previous_ratio`, when the file says): by default the same codec."""
        return self

    # -- what a layout becomes ---------------------------------------------------
    def check_layout(self, layout: FrameLayout) -> None:
        """Raise UnsupportedLayout if frames of `layout` cannot be encoded."""

    def transfer_syntax_for(self, layout: FrameLayout) -> str:
        """The transfer syntax UID frames of `layout` are written in."""
        return self.transfer_syntax

    def output_attributes(self, layout: FrameLayout) -> dict[str, Any]:
        """Image Pixel attributes the encoded data implies (keyword -> value)."""
        return {}

    # -- frames ------------------------------------------------------------------
    def encode_frame(self, arr: np.ndarray, layout: FrameLayout, threads: int = 1) -> bytes:
        """Encode one frame (rows x columns [x samples], interleaved).

        `threads` is how many threads the codec may use inside this one frame
        (the caller runs frames in parallel when a file has many).
        """
        raise NotImplementedError

    def decode_frame(self, data: bytes, layout: FrameLayout) -> np.ndarray:
        """Decode one encoded frame to the array `encode_frame` was given."""
        raise NotImplementedError

    # -- encoded frames, not decoded -----------------------------------------------
    def from_encoded(self, fragment: bytes, source_syntax: str, layout: FrameLayout) -> bytes | None:
        """One frame encoded in `source_syntax` turned into this codec's encoding without
        decoding it (a JPEG recompressed as JPEG XL, and back), or None: decode instead.
        A transform adds no loss: the output keeps the source's lossy attributes."""
        transform = _TRANSFORMS.get((str(source_syntax), self.transfer_syntax))
        return None if transform is None else transform(fragment)

    def takes_encoded(self, source_syntax: str) -> bool:
        """Whether frames in `source_syntax` are transformed by `from_encoded`."""
        return (str(source_syntax), self.transfer_syntax) in _TRANSFORMS

    @property
    def searches_quality(self) -> bool:
        """True when frames are encoded to a target PSNR (each frame searched)."""
        return self.option("psnr") is not None


#: Fragment-to-fragment transforms, no decoding: (source syntax, target syntax) -> the
#: function of one frame's bytes. Codec modules register theirs (`register_transform`).
_TRANSFORMS: dict[tuple[str, str], Callable[[bytes], bytes]] = {}


def register_transform(source_syntax: str, target_syntax: str,
                       transform: Callable[[bytes], bytes]) -> None:
    """Frames in `source_syntax` become frames in `target_syntax` by `transform(fragment)`,
    without decoding (see `Codec.from_encoded`)."""
    _TRANSFORMS[(str(source_syntax), str(target_syntax))] = transform


# -- helpers the codec modules share ------------------------------------------------
def stored_bits(layout: FrameLayout) -> int:
    return layout.bits_stored or layout.bits_allocated


def check_values_fit(arr: np.ndarray, layout: FrameLayout, codec: str) -> None:
    """Codecs that code Bits Stored bits cannot keep values beyond them."""
    bits = stored_bits(layout)
    if bits >= arr.dtype.itemsize * 8:
        return
    if layout.pixel_representation:
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        low, high = 0, (1 << bits) - 1
    if arr.size and (arr.min() < low or arr.max() > high):
        raise UnsupportedLayout(
            f"pixel values lie outside the {bits} bits of Bits Stored "
            f"({int(arr.min())}..{int(arr.max())}); {codec} codes only those bits, so "
            "they would be lost: use rle or explicit, which keep every bit"
        )

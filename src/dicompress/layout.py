"""A frame's geometry: rows, columns, samples, bits, sign and planar order.

Plays the role of pydicom's runner: codecs receive one `FrameLayout`, not twelve
arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dicompress.errors import InvalidDicomFile, NotAnImage, UnsupportedLayout


def _value(ds, keyword: str):
    """The value of `keyword` in `ds`, None when absent or empty; a value pydicom cannot
    convert (a damaged header) raises InvalidDicomFile."""
    try:
        value = ds.get(keyword)
    except Exception as exc:  # pydicom converting a raw value met damage
        raise InvalidDicomFile(f"{keyword} cannot be read ({type(exc).__name__}: {exc})") from exc
    return None if value is None or value == "" else value


def header_number(ds, keyword: str, low: int, high: int, default: int | None = None) -> int:
    """The integer value of `keyword` in `ds`, checked to lie in `low`..`high`; `default`
    when absent (UnsupportedLayout if there is none). A damaged value raises
    InvalidDicomFile naming the attribute."""
    value = _value(ds, keyword)
    if value is None:
        if default is None:
            raise UnsupportedLayout(f"Pixel Data without {keyword}")
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidDicomFile(f"{keyword} is {str(value)[:32]!r}, not a number") from None
    if not low <= number <= high:
        raise InvalidDicomFile(f"{keyword} is {number}, outside {low}..{high}")
    return number


@dataclass(frozen=True)
class FrameLayout:
    rows: int
    columns: int
    samples_per_pixel: int = 1
    bits_allocated: int = 8
    bits_stored: int | None = None
    pixel_representation: int = 0
    planar_configuration: int = 0
    photometric_interpretation: str = "MONOCHROME2"
    number_of_frames: int = 1

    @classmethod
    def from_dataset(cls, ds) -> "FrameLayout":
        """The layout of `ds`'s *Pixel Data*."""
        if "PixelData" not in ds:
            raise NotAnImage("the dataset has no Pixel Data")
        return cls.from_dataset_header(ds)

    @classmethod
    def from_dataset_header(cls, ds) -> "FrameLayout":
        """The layout the Image Pixel attributes of `ds` describe (pixel data not needed).

        A value that is not a number of the right range (a damaged header) raises
        InvalidDicomFile naming the attribute."""
        missing = [k for k in ("Rows", "Columns", "BitsAllocated") if _value(ds, k) is None]
        if missing:
            raise UnsupportedLayout(f"Pixel Data without {', '.join(missing)}")
        bits_allocated = header_number(ds, "BitsAllocated", 1, 64)
        return cls(
            rows=header_number(ds, "Rows", 0, 0xFFFF),
            columns=header_number(ds, "Columns", 0, 0xFFFF),
            samples_per_pixel=header_number(ds, "SamplesPerPixel", 1, 0xFFFF, default=1),
            bits_allocated=bits_allocated,
            bits_stored=header_number(ds, "BitsStored", 0, 64, default=bits_allocated) or bits_allocated,
            pixel_representation=header_number(ds, "PixelRepresentation", 0, 1, default=0),
            planar_configuration=header_number(ds, "PlanarConfiguration", 0, 1, default=0),
            photometric_interpretation=str(_value(ds, "PhotometricInterpretation") or ""),
            number_of_frames=header_number(ds, "NumberOfFrames", 0, 2**31 - 1, default=1) or 1,
        )

    @property
    def bytes_per_sample(self) -> int:
        return (self.bits_allocated + 7) // 8

    @property
    def dtype(self) -> np.dtype:
        """Little-endian numpy dtype of one sample."""
        if self.bits_allocated not in (8, 16, 32, 64):
            raise UnsupportedLayout(
                f"{self.bits_allocated} bits allocated has no numpy sample type"
            )
        kind = "i" if self.pixel_representation else "u"
        return np.dtype(f"<{kind}{self.bytes_per_sample}")

    @property
    def frame_pixels(self) -> int:
        return self.rows * self.columns

    @property
    def frame_bytes(self) -> int:
        return self.frame_pixels * self.samples_per_pixel * self.bytes_per_sample

    @property
    def pixel_data_bytes(self) -> int:
        """The bytes of native Pixel Data for all frames (1-bit samples packed, PS3.5 8.1.1)."""
        samples = self.frame_pixels * self.samples_per_pixel * self.number_of_frames
        if self.bits_allocated == 1:
            return (samples + 7) // 8
        return samples * self.bytes_per_sample

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """Shape of one decoded frame as numpy holds it (samples last)."""
        if self.samples_per_pixel == 1:
            return (self.rows, self.columns)
        return (self.rows, self.columns, self.samples_per_pixel)

"""A frame's geometry: rows, columns, samples, bits, sign and planar order.

Plays the role of pydicom's runner: codecs receive one `FrameLayout`, not twelve
arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dicompress.errors import NotAnImage, UnsupportedLayout


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
        """The layout the Image Pixel attributes of `ds` describe (pixel data not needed)."""
        missing = [k for k in ("Rows", "Columns", "BitsAllocated") if ds.get(k) is None]
        if missing:
            raise UnsupportedLayout(f"Pixel Data without {', '.join(missing)}")
        frames = ds.get("NumberOfFrames", 1)
        return cls(
            rows=int(ds.Rows),
            columns=int(ds.Columns),
            samples_per_pixel=int(ds.get("SamplesPerPixel", 1) or 1),
            bits_allocated=int(ds.BitsAllocated),
            bits_stored=int(ds.get("BitsStored", ds.BitsAllocated) or ds.BitsAllocated),
            pixel_representation=int(ds.get("PixelRepresentation", 0) or 0),
            planar_configuration=int(ds.get("PlanarConfiguration", 0) or 0),
            photometric_interpretation=str(ds.get("PhotometricInterpretation", "")),
            number_of_frames=int(frames) if frames not in (None, "") else 1,
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
    def frame_shape(self) -> tuple[int, ...]:
        """Shape of one decoded frame as numpy holds it (samples last)."""
        if self.samples_per_pixel == 1:
            return (self.rows, self.columns)
        return (self.rows, self.columns, self.samples_per_pixel)

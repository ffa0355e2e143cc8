"""Export DICOM images as ordinary pictures: PNG, JPEG, TIFF, animated GIF.

read & order series (select.py) -> display values (frames.py: windowing through
dicompress.voi, colour to RGB) -> image files (writers.py) -> size budget and
zip bundles (budget.py). Patient identity never reaches an output unless asked.
"""

from dicompress.export.job import ExportOptions, ExportResult, export

__all__ = ["ExportOptions", "ExportResult", "export"]

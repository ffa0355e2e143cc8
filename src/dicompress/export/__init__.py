"""Export DICOM images as ordinary pictures: PNG, JPEG, TIFF, animated GIF.

one run (job.py): read & order series (select.py) -> each still, by worker processes
(stills.py): display values (frames.py: windowing through dicompress.voi, colour to
RGB) -> image files (writers.py) with their text (text.py) -> size budget and zip
bundles (budget.py, page.py). Patient identity never reaches an output unless asked.
"""

from dicompress.export.job import ExportOptions, ExportResult, export

__all__ = ["ExportOptions", "ExportResult", "export"]

"""Comparing compression choices on the user's own data (`dicompress compare`)."""

from dicompress.compare.metrics import Quality, psnr_from_mse, quality, ssim
from dicompress.compare.choices import DEFAULT_CODECS, Choice, parse_codecs
from dicompress.compare.measure import Comparison
from dicompress.compare.run import compare

__all__ = ["DEFAULT_CODECS", "Choice", "Comparison", "Quality", "compare", "parse_codecs",
           "psnr_from_mse", "quality", "ssim"]

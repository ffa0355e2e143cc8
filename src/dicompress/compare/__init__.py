"""Comparing compression choices on the user's own data (`dicompress compare`)."""

from dicompress.compare.metrics import Quality, psnr_from_mse, quality, ssim
from dicompress.compare.run import DEFAULT_CODECS, Choice, Comparison, compare, parse_codecs

__all__ = ["DEFAULT_CODECS", "Choice", "Comparison", "Quality", "compare", "parse_codecs",
           "psnr_from_mse", "quality", "ssim"]

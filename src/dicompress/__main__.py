"""`python -m dicompress`: the command line."""

from dicompress.cli import run

run()

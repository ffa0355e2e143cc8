"""pydicom's decoders for JPEG, JPEG-LS, JPEG 2000, RLE and deflated frames, each run
after the frame check of `dicompress.pipeline.codestream`, and GDCM tried last for JPEG
2000: installed only when asked (`dicompress.plugins.register(check=True)`,
``prefer=True``).

GDCM aborts the process on a codestream that disagrees with the header (a C++
exception through C: SIGABRT), and pydicom 3.0 tries it first; the other decoders
raise. With the check in front of every one of them, a frame that disagrees is refused
before any native code sees it; with GDCM last, what the check cannot foresee meets a
decoder that raises first. dicompress's own reading (`pipeline.frames`) runs the check
itself and names its decoder, so it needs neither: importing dicompress leaves
pydicom's decoders as they are.
"""

from __future__ import annotations

import functools

from dicompress.pipeline.codestream import CHECKED_SYNTAXES, J2K_SYNTAXES, check_frame  # noqa: F401 (J2K_SYNTAXES: for plugins)

#: Tried last for JPEG 2000: the one decoder seen to abort rather than raise there. (For
#: JPEG its order stays: a lossy JPEG decodes to other values, off by one, in another
#: decoder, and outputs must not change with this.)
LAST = "gdcm"


def checked(decode):
    """`decode(src, runner)` behind the codestream check."""
    if getattr(decode, "codestream_checked", False):
        return decode

    @functools.wraps(decode)
    def run(src, runner):
        check_frame(src, str(runner.transfer_syntax), rows=runner.rows, columns=runner.columns,
                    samples_per_pixel=runner.samples_per_pixel,
                    bits_allocated=runner.bits_allocated)
        return decode(src, runner)

    run.codestream_checked = True
    return run


def register(check: bool = True, reorder: bool = False) -> None:
    """With `check`, put the check in front of every decoder pydicom has for the checked
    syntaxes; with `reorder`, GDCM last for JPEG 2000 (idempotent)."""
    from pydicom.pixels import get_decoder

    for uid in sorted(CHECKED_SYNTAXES):
        try:
            decoder = get_decoder(uid)
        except NotImplementedError:  # a syntax this pydicom does not decode
            continue
        plugins = dict(decoder._available)
        if check:
            plugins = {label: checked(decode) for label, decode in plugins.items()}
        if reorder and uid in J2K_SYNTAXES:  # pydicom walks its plugins in insertion order
            plugins = dict(sorted(plugins.items(), key=lambda item: item[0] == LAST))
        decoder._available = plugins

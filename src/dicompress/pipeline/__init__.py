"""The one path every DICOM write takes.

::

    read  (read.py)      a header source: a pydicom Dataset (pixel data left on disk), or
                         the byte ranges of a parsed file (the fast path, direct/)
    frames (frames.py)   a frame source: native frames read straight from the file, or
                         decoded by pydicom's decoders (ours first); stored.py: the
                         encapsulated frames as stored, checked before decoding;
                         decoded.py: the layout of decoded frames
    encode (encode.py)   each frame encoded by the target codec (threads), and decoded
                         again when verifying
    mark  (mark.py)      the output's attributes: Image Pixel, lossy marking and
                         derivation, File Meta Information
    write (write.py)     encapsulation (Basic / Extended Offset Table), a temporary file
                         beside the target, fsync, then `verify`, then rename
    verify (verify.py)   an independent read-back of what was written: a reader that shares
                         no code with the writer walks the whole file

`dicompress.transcode` composes these for one file; de-identification and the gateway
write through `write.write_file` too. Shared types live below this package
(`dicompress.errors`, `dicompress.layout`, `dicompress.uids`, `dicompress.fileio`).
"""

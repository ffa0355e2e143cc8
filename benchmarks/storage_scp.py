"""A Storage SCP for the gateway benchmark: pynetdicom, every syntax dicompress decodes
(DCMTK 3.6.7's storescp does not know HTJ2K), each instance written as received.

    python benchmarks/storage_scp.py PORT FOLDER
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from pynetdicom import AE, AllStoragePresentationContexts, evt

from dicompress.gateway.service import ACCEPTED_SYNTAXES


def main() -> None:
    port, folder = int(sys.argv[1]), Path(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    ae = AE(ae_title="READ")
    ae.maximum_pdu_size = 0  # no limit: what a reading site's archive would offer
    # The DCMTK relay opens an association per image, one after the other; pynetdicom's
    # default limit (10) counts associations still being torn down, and on a busy machine
    # it rejected some of them ("Local Limit Exceeded"): those images never arrived.
    ae.maximum_associations = 64
    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, ACCEPTED_SYNTAXES)

    def store(event):
        name = str(event.request.AffectedSOPInstanceUID)
        (folder / f"{name}.dcm").write_bytes(event.encoded_dataset(include_meta=True))
        return 0x0000

    server = ae.start_server(("127.0.0.1", port), block=False,
                             evt_handlers=[(evt.EVT_C_STORE, store)])
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    server.shutdown()


if __name__ == "__main__":
    main()

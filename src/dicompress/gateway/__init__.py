"""The transcoding service: a DICOM gateway for teleradiology links.

config.py     the policy as held: listener, routes (who may send, where to, how compressed,
              what to do when the target cannot be sent), destinations (DIMSE or STOW-RS)
loader.py     the policy read from TOML, every key checked
queue.py      the durable SQLite queue of received instances, and the operators' audit
receiver.py   the Storage SCP: spooled, fsynced and queued before success is returned
forwarder.py  one sender per route: target syntax first, the route's fallback, retries
dimse.py      an association: accepted syntaxes, C-STORE, a bounded send queue, TLS
encoded.py    what a sender sends (or holds), and objects without pixels re-encoded
stow.py       DICOMweb destinations: STOW-RS over http.client
logs.py       a line per association and per instance, as text or JSON
metrics.py    the counters, and /metrics in the Prometheus text format
page.py       the status page (HTML) at / on the status port
service.py    the running service: SCP, forwarders, the status port; requeue, drop,
              reroute
"""

from dicompress.errors import ConfigError
from dicompress.gateway.config import GatewayConfig
from dicompress.gateway.loader import load_config
from dicompress.gateway.service import Gateway, status

__all__ = ["ConfigError", "Gateway", "GatewayConfig", "load_config", "status"]

"""The transcoding service: a DICOM gateway for teleradiology links.

config.py     the TOML policy: listener, routes (who may send, where to, how compressed,
              what to do when the target cannot be sent), destinations (DIMSE or STOW-RS)
queue.py      the durable SQLite queue of received instances, and the operators' audit
receiver.py   the Storage SCP: spooled, fsynced and queued before success is returned
forwarder.py  one sender per route: target syntax first, the route's fallback, retries
stow.py       DICOMweb destinations: STOW-RS over http.client
logs.py       a line per association and per instance, as text or JSON
metrics.py    the counters, and /metrics in the Prometheus text format
page.py       the status page (HTML) at / on the status port
service.py    the running service: SCP, forwarders, the status port; requeue, drop,
              reroute
"""

from dicompress.gateway.config import ConfigError, GatewayConfig, load_config
from dicompress.gateway.service import Gateway, status

__all__ = ["ConfigError", "Gateway", "GatewayConfig", "load_config", "status"]

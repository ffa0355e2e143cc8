"""The transcoding service: a DICOM gateway for teleradiology links.

config.py     the TOML policy: listener, routes (who may send, where to, how compressed)
queue.py      the durable SQLite queue of received instances
receiver.py   the Storage SCP: spooled, fsynced and queued before success is returned
forwarder.py  the Storage SCU per route: target syntax first, fallbacks, retries
service.py    the running service: SCP, forwarders, /status on loopback
"""

from dicompress.gateway.config import ConfigError, GatewayConfig, load_config
from dicompress.gateway.service import Gateway, status

__all__ = ["ConfigError", "Gateway", "GatewayConfig", "load_config", "status"]

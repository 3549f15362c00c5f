"""``[metrics]``: the Prometheus endpoint, off by default and only on a loopback address.

Kept import-light (no prometheus_client): ``agent.config`` reads it with every other section.
"""

from __future__ import annotations

import dataclasses
import ipaddress


def loopback_host_port(listen: str, what: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) with a loopback address and a port 0-65535.
    ``ValueError`` otherwise: these endpoints have no authentication, so they never face a network."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{what} must be HOST:PORT, not {listen[:64]!r}")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        raise ValueError(f"{what} must name a loopback address (127.0.0.1 or [::1]), not {host[:64]!r}") from None
    if not ip.is_loopback:
        raise ValueError(f"{what} must be a loopback address (127.0.0.0/8 or ::1): {host[:64]!r} would expose "
                         "unauthenticated data to the network")
    return bare, int(port)


@dataclasses.dataclass(frozen=True)
class MetricsSettings:
    """``[metrics]``: ``enabled`` starts a Prometheus text endpoint at ``http://<listen>/metrics``."""

    enabled: bool = False
    listen: str = "127.0.0.1:9464"

    def __post_init__(self) -> None:
        loopback_host_port(self.listen, "[metrics] listen")

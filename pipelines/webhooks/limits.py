"""The receiver's bounds, in one place (CLI flags map onto these fields)."""
from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class ReceiverLimits:
    # A delivery carries one object (a few KiB); anything near a MiB is not AutoSync. The body
    # is read as a stream and refused once it passes this, whatever the transfer encoding.
    max_body_bytes: int = MIB
    # From the first byte of a request to the end of its headers; a slow-sending client
    # (slowloris) is cut off after this.
    header_timeout_seconds: float = 10.0
    # From the end of the headers to the end of the body.
    body_timeout_seconds: float = 10.0
    # Request line plus headers; AutoSync sends well under 2 KiB.
    max_header_bytes: int = 32 * 1024
    # Open connections plus running requests (uvicorn's limit_concurrency); past it uvicorn
    # answers 503 at once. With the body cap it bounds buffered bodies to about
    # max_connections x max_body_bytes.
    max_connections: int = 300
    # Deliveries verified and waiting for the warehouse; past it 503 + Retry-After.
    max_pending_writes: int = 1000
    # What a 503 asks the sender to wait.
    retry_after_seconds: int = 5
    # Idle keep-alive connections are closed after this.
    keep_alive_seconds: float = 5.0

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_header_bytes", "max_connections", "max_pending_writes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("header_timeout_seconds", "body_timeout_seconds", "keep_alive_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")

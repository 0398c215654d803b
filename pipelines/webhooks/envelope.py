"""What a delivery is: the signature AutoSync sends and the event envelope it signs.

AutoSync signs each delivery with `X-AutoSync-Signature` = lowercase hex HMAC-SHA256 of the raw
body under the subscription secret. The signature carries no timestamp, so a captured delivery
can be replayed at will: the store deduplicates on the event id.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

SIGNATURE_HEADER = "X-AutoSync-Signature"
SIGNATURE_LENGTH = 64  # hex digits of a SHA-256 digest
_LOWER_HEX = re.compile(r"[0-9a-f]{64}")

# Event name prefix -> connector resources whose rows the event changes. The first resource is
# the type of the object in `data`. A payment also changes its work order (the work order embeds
# `payments[]` and `amount_paid`/`balance_due`), so payment events resync both.
EVENT_RESOURCES: dict[str, tuple[str, ...]] = {
    "workorder": ("work_orders",),
    "payment": ("payments", "work_orders"),
    "customer": ("customers",),
    "appointment": ("appointments",),
    "inspection": ("inspections",),
    "inventory": ("inventory",),
}
MAX_EVENT_ID_LENGTH = 255


def resources_for_event(event_name: str) -> tuple[str, ...]:
    """Connector resources an event touches; empty for an event this receiver does not know."""
    prefix = event_name.split(".", 1)[0]
    return EVENT_RESOURCES.get(prefix, ())


def compute_signature(secret: str, raw_body: bytes) -> str:
    """The signature AutoSync sends: lowercase hex HMAC-SHA256 of the exact raw body."""
    return hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()


def signature_is_well_formed(provided: str) -> bool:
    """64 lowercase hex digits: anything else cannot be an AutoSync signature (checked before
    the body is read, so a forger without one costs us no body bytes)."""
    return len(provided) == SIGNATURE_LENGTH and _LOWER_HEX.fullmatch(provided) is not None


def signature_is_valid(secret: str, raw_body: bytes, provided: str | None) -> bool:
    if not provided:
        return False
    expected = compute_signature(secret, raw_body).encode("ascii")
    # Bytes on both sides: compare_digest refuses non-ASCII str, and a header is latin-1 text.
    # Constant time, so a forger cannot learn the signature byte by byte from response timing.
    return hmac.compare_digest(expected, provided.encode("latin-1"))


class InvalidEnvelope(ValueError):
    """The body is signed but is not an AutoSync event envelope."""


class UnknownEvent(InvalidEnvelope):
    """A well-formed envelope whose event this receiver does not map to any resource."""


def _parse_timestamp(value: Any, field: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise InvalidEnvelope(f"'{field}' must be an ISO-8601 timestamp string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:  # the API sends UTC; a naive value is taken as UTC
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):  # OverflowError: year 1 with a positive offset
        raise InvalidEnvelope(f"'{field}' is not an ISO-8601 timestamp: {value[:40]!r}") from None


def _is_int(value: Any) -> bool:
    # bool is an int subclass; and a warehouse BIGINT holds 64 bits, no more.
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


@dataclass(frozen=True)
class WebhookEvent:
    """One verified delivery, in the shape of a `webhook_events` row."""

    event_id: str
    event: str
    shop_id: int
    resource: str | None
    object_id: int | None
    object_updated_at: datetime | None
    created_at: datetime
    received_at: datetime
    payload: str  # the raw body, verbatim JSON text

    @property
    def touched_resources(self) -> tuple[str, ...]:
        return resources_for_event(self.event)

    @classmethod
    def from_body(cls, raw_body: bytes, received_at: datetime | None = None) -> "WebhookEvent":
        """Parse a verified body. Raises InvalidEnvelope (UnknownEvent for an event name this
        receiver cannot map to a resource) with a message that says what is wrong."""
        try:
            text = raw_body.decode("utf-8")
            envelope = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InvalidEnvelope("body is not UTF-8 JSON") from None
        except RecursionError:
            raise InvalidEnvelope("body is JSON nested too deeply") from None
        if "\x00" in text:
            # Postgres text cannot hold NUL; AutoSync never sends one.
            raise InvalidEnvelope("body contains a NUL character")
        if not isinstance(envelope, dict):
            raise InvalidEnvelope("body must be a JSON object")
        event_id = envelope.get("id")
        if not isinstance(event_id, str) or not event_id or len(event_id) > MAX_EVENT_ID_LENGTH:
            raise InvalidEnvelope("'id' must be a non-empty string (the event id, evt_...)")
        event = envelope.get("event")
        if not isinstance(event, str) or "." not in event:
            raise InvalidEnvelope("'event' must be an event name such as 'workorder.completed'")
        shop_id = envelope.get("shop_id")
        if not _is_int(shop_id):
            raise InvalidEnvelope("'shop_id' must be an integer")
        created_at = _parse_timestamp(envelope.get("created_at"), "created_at")
        data = envelope.get("data")
        if not isinstance(data, dict):
            raise InvalidEnvelope("'data' must be an object (the resource as GET returns it)")
        resources = resources_for_event(event)
        if not resources:
            raise UnknownEvent(
                f"unknown event {event[:60]!r}: this receiver syncs only events starting with "
                + ", ".join(f"'{prefix}.'" for prefix in EVENT_RESOURCES)
            )
        object_id = data.get("id")
        if not _is_int(object_id):
            object_id = None
        object_updated_at = None
        if data.get("updated_at"):
            try:
                object_updated_at = _parse_timestamp(data["updated_at"], "data.updated_at")
            except InvalidEnvelope:
                # The envelope is what we must understand; the object is AutoSync's business.
                # Keep the event (its sync reads the API anyway), just without an order key.
                pass
        return cls(
            event_id=event_id,
            event=event,
            shop_id=shop_id,
            resource=resources[0],
            object_id=object_id,
            object_updated_at=object_updated_at,
            created_at=created_at,
            received_at=received_at or datetime.now(timezone.utc),
            payload=text,
        )

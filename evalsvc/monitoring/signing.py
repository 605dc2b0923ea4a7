"""Signed webhook alerts, and the helper a receiver uses to verify them.

Every alert is POSTed as JSON with two headers:

* ``X-Evalsvc-Timestamp``: seconds since the epoch when it was signed;
* ``X-Evalsvc-Signature``: ``sha256=`` and the hex HMAC-SHA256, keyed by the
  monitor's webhook secret, of ``"{timestamp}." + body`` (the raw bytes).

A receiver checks it with :func:`verify_webhook` (this module needs only the
standard library, so it can be copied into a receiver as is)::

    from evalsvc.monitoring.signing import verify_webhook, WebhookRejected
    seen = set()   # delivery ids already accepted (keep them for the tolerance window)
    try:
        payload = verify_webhook(secret, body, headers["X-Evalsvc-Timestamp"],
                                 headers["X-Evalsvc-Signature"], seen=seen)
    except WebhookRejected as exc:
        return 400, str(exc)

It refuses a changed body or header (the signature no longer matches), a
message signed more than ``tolerance`` seconds ago or in the future (a replay
of an old message), and, with ``seen``, a delivery id it has accepted before
(a replay within the window).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import MutableSet
from typing import Any

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookRejected", "sign_webhook", "verify_webhook"]

TIMESTAMP_HEADER = "X-Evalsvc-Timestamp"
SIGNATURE_HEADER = "X-Evalsvc-Signature"
#: Seconds a signed message stays acceptable.
TOLERANCE_S = 300


class WebhookRejected(Exception):
    """The message is not a fresh, unaltered alert from evalsvc."""


def _mac(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def sign_webhook(secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """The headers that sign ``body``."""
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: f"sha256={_mac(secret, timestamp, body)}"}


def verify_webhook(
    secret: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    *,
    tolerance: int = TOLERANCE_S,
    now: float | None = None,
    seen: MutableSet[str] | None = None,
) -> dict[str, Any]:
    """Check a received alert; return its payload or raise :class:`WebhookRejected`."""
    if not timestamp or not signature or not signature.startswith("sha256="):
        raise WebhookRejected("missing or malformed signature headers")
    if not hmac.compare_digest(signature[len("sha256=") :], _mac(secret, timestamp, body)):
        raise WebhookRejected("signature does not match: the message was altered or signed with another secret")
    try:
        signed_at = int(timestamp)
    except ValueError:
        raise WebhookRejected("timestamp is not a number") from None
    current = time.time() if now is None else now
    if abs(current - signed_at) > tolerance:
        raise WebhookRejected(f"signed {int(current - signed_at)} s ago, outside the {tolerance} s window: a replay")
    payload = json.loads(body)
    delivery = str(payload.get("delivery", ""))
    if seen is not None:
        if not delivery or delivery in seen:
            raise WebhookRejected(f"delivery {delivery!r} was already received: a replay")
        seen.add(delivery)
    return payload

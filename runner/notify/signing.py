"""Signing a webhook request, and checking a signature as a receiver does.

The signature is the hex HMAC-SHA256, keyed by the sink's secret, of the request's
timestamp (unix seconds, as sent in `Runner-Timestamp`), a dot, and the body as
sent. Signing the timestamp lets a receiver refuse an old request replayed by
someone who recorded it; signing the exact bytes means the receiver checks the
body before parsing it.
"""

from __future__ import annotations

import hashlib
import hmac

EVENT_ID = "Runner-Event-Id"
TIMESTAMP = "Runner-Timestamp"
SIGNATURE = "Runner-Signature"
TOLERANCE_S = 300  # a receiver's usual bound on a request's age


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def headers(secret: str, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one POST: content type, event id, timestamp and signature."""
    return {
        "Content-Type": "application/json",
        EVENT_ID: event_id,
        TIMESTAMP: str(timestamp),
        SIGNATURE: signature(secret, timestamp, body),
    }


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    sent: str,
    now: float,
    *,
    tolerance: float = TOLERANCE_S,
) -> bool:
    """Whether a request is runner's: the signature matches (compared in constant
    time) and the timestamp is within `tolerance` seconds of `now`."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, int(timestamp), body), sent)

"""Webhook signatures: HMAC-SHA256 over `<timestamp>.<raw body>` with the endpoint's secret.

docs/NOTIFICATIONS.md documents the headers and a receiver's recipe; `signature_verify` is that recipe, and the
tests' receiver uses it unchanged.
"""

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-MT5Guard-Signature"
TIMESTAMP_HEADER = "X-MT5Guard-Timestamp"
EVENT_HEADER = "X-MT5Guard-Event"
DELIVERY_HEADER = "X-MT5Guard-Delivery"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def signature_compute(*, secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={mac}"


def signature_verify(
    *,
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float | None = None,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True when the signature matches and the timestamp is within the tolerance (replays are refused)."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent_at) > tolerance_seconds:
        return False
    expected = signature_compute(secret=secret, timestamp=timestamp, body=body)
    return hmac.compare_digest(expected, signature or "")

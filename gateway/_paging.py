"""Page tokens: Temporal's own, with a checksum over it and the list query.

A made-up, damaged or reused-with-other-filters token is refused at once (422) instead of
reaching Temporal, which answers garbage with UNKNOWN after ten seconds of retries. The
checksum is not a secret: it catches mistakes, not forgeries, so every gateway replica reads
every other's tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from gateway._errors import ApiError

PAGE_TOKEN = r"^[A-Za-z0-9_-]+={0,2}$"
"""base64url, as the gateway hands page tokens out."""
CHECK_BYTES = 8


def _check(query: str, token: bytes) -> bytes:
    return hashlib.sha256(query.encode() + b"\0" + token).digest()[:CHECK_BYTES]


def bad_page_token() -> ApiError:
    """422 for a page token this gateway did not hand out for this query."""
    return ApiError(422, "invalid_page_token", "page_token is not a token from a page")


def encode(query: str, token: bytes | None) -> str | None:
    """The page token to hand out for Temporal's `token`; None on the last page."""
    if not token:
        return None
    return base64.urlsafe_b64encode(_check(query, token) + token).decode()


def decode(query: str, page_token: str | None) -> bytes | None:
    """Temporal's token out of a page token handed out for `query`; 422 for any other."""
    if page_token is None:
        return None
    try:
        raw = base64.b64decode(page_token.encode(), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise bad_page_token() from None
    check, token = raw[:CHECK_BYTES], raw[CHECK_BYTES:]
    if not token or not hmac.compare_digest(check, _check(query, token)):
        raise bad_page_token()
    return token

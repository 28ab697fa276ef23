"""Model provider errors as Temporal failures: Temporal owns the retries of a model call.

Mirrors the provider SDKs' own retry rules (and the SDK's `openai_agents` model activity):

- `x-should-retry: true` or `false`, when the endpoint sends it, decides;
- otherwise 408, 409, 429 and 5xx (Anthropic's 529 "overloaded" among them) are retried,
  every other 4xx is not;
- the delay before the retry is the endpoint's `retry-after-ms`, else its `retry-after`
  (seconds or an HTTP date), capped at `MAX_RETRY_AFTER`; without one, the activity's
  retry policy backs off;
- a lost connection or a timeout is retried, and so is Anthropic's `RetryableError`;
- a provider error wrapped by a framework (`raise ... from err`) counts as the provider's;
- a prompt over the model's context window (OpenAI's and Azure's 400 with code
  `context_length_exceeded`, Anthropic's 400 "prompt is too long", which has no code) is
  `ContextLengthExceeded`, not retried as is: the model activity shrinks its window first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from email.utils import mktime_tz, parsedate_tz

import anthropic
import httpx
import openai
from temporalio.exceptions import ApplicationError

from activities.bounds import error_text
from interface import ErrorType

__all__ = [
    "MAX_RETRY_AFTER",
    "RETRYABLE_STATUS",
    "provider_failure",
    "context_overflow",
    "provider_failures",
    "retry_delay",
    "should_retry",
]

RETRYABLE_STATUS = frozenset({408, 409, 429})
"""Retried 4xx statuses; every 5xx is retried too."""
MAX_RETRY_AFTER = timedelta(minutes=5)
"""A longer `retry-after` is cut to this: the call's `schedule_to_close` bounds it anyway."""
STATUS_ERRORS = (openai.APIStatusError, anthropic.APIStatusError, httpx.HTTPStatusError)
UNREACHABLE = (
    openai.APIConnectionError,
    anthropic.APIConnectionError,
    httpx.TransportError,
    TimeoutError,
    ConnectionError,
)


@contextmanager
def provider_failures() -> Iterator[None]:
    """Around a model call: provider errors become classified `ApplicationError`s; anything
    else passes through unchanged, for the activity's own classification."""
    try:
        yield
    except Exception as exc:
        failure = provider_failure(exc)
        if failure is None:
            raise
        raise failure from None


def provider_failure(exc: BaseException) -> ApplicationError | None:
    """The failure a provider error (or an error it caused) means; None for other errors."""
    for error in _causes(exc):
        if isinstance(error, STATUS_ERRORS) and _overflows(error):
            return ApplicationError(
                error_text(f"the prompt is over the model's context window: {_detail(error)}"),
                type=ErrorType.CONTEXT_LENGTH_EXCEEDED.value,
                non_retryable=True,
            )
        if isinstance(error, STATUS_ERRORS):
            return _status_failure(error)
        if isinstance(error, UNREACHABLE):
            return ApplicationError(
                error_text(f"model endpoint unreachable: {type(error).__name__}: {error}"),
                type=ErrorType.MODEL_UNAVAILABLE.value,
            )
        if isinstance(error, anthropic.RetryableError):  # raised to opt into a retry
            return ApplicationError(error_text(str(error)), type=type(error).__name__)
    return None


def context_overflow(exc: BaseException) -> bool:
    """The endpoint refused the prompt as longer than the model's context window."""
    return any(isinstance(e, STATUS_ERRORS) and _overflows(e) for e in _causes(exc))


def _overflows(error: StatusError) -> bool:
    if error.response.status_code not in (400, 413):
        return False
    body = getattr(error, "body", None)
    if body is None:  # httpx's own error: read the body as the SDKs would
        try:
            body = error.response.json()
        except Exception:
            return False
    inner = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        return False
    if inner.get("code") is not None:  # OpenAI, Azure: the code decides
        return inner.get("code") == "context_length_exceeded"
    message = inner.get("message")  # Anthropic has no code for it
    return isinstance(message, str) and message.startswith("prompt is too long")


def _detail(error: StatusError) -> str:
    return getattr(error, "message", None) or str(error)


def should_retry(status: int, headers: Mapping[str, str]) -> bool:
    """The endpoint's `x-should-retry` if it says true or false, else the status decides."""
    hint = headers.get("x-should-retry")
    if hint == "true":
        return True
    if hint == "false":
        return False
    return status in RETRYABLE_STATUS or status >= 500


def retry_delay(headers: Mapping[str, str]) -> timedelta | None:
    """The delay the endpoint asks for: `retry-after-ms`, else `retry-after` in seconds or
    as an HTTP date; None if it asks for none (or for something unreadable)."""
    seconds = _asked_seconds(headers)
    if seconds is None or seconds <= 0:
        return None
    return min(timedelta(seconds=seconds), MAX_RETRY_AFTER)


def _asked_seconds(headers: Mapping[str, str]) -> float | None:
    millis = _number(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    value = headers.get("retry-after")
    seconds = _number(value)
    return seconds if seconds is not None else _http_date(value)


StatusError = openai.APIStatusError | anthropic.APIStatusError | httpx.HTTPStatusError


def _status_failure(error: StatusError) -> ApplicationError:
    response = error.response
    status, headers = response.status_code, response.headers
    retry = should_retry(status, headers)
    detail = _detail(error)
    return ApplicationError(
        error_text(f"model endpoint answered HTTP {status}: {detail}"),
        type=f"ModelHTTP{status}",
        non_retryable=not retry,
        next_retry_delay=retry_delay(headers) if retry else None,
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and the errors it was raised from: a framework may wrap the provider's error."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen and len(seen) < 8:
        seen.add(id(error))
        yield error
        error = error.__cause__


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _http_date(value: str | None) -> float | None:
    parsed = parsedate_tz(value) if value else None
    if parsed is None:
        return None
    try:
        return mktime_tz(parsed) - time.time()
    except (OverflowError, ValueError):
        return None

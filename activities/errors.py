"""How the activities report failures: which are retried, for how long, under which type.

The activities raise only `ApplicationError`s. Their `type` is what history, the Web UI
and the workflow (as the cause of an `ActivityError`) see; messages are scrubbed of
anything key-like and cut to `MAX_ERROR_CHARS`.

ApplicationError.type
├── retried, until the call's `schedule_to_close`
│   ├── ModelHTTP<status>    408, 409, 429, 5xx, or `x-should-retry: true`; after the
│   │                        endpoint's `retry-after-ms` / `retry-after` (provider_errors)
│   ├── ModelUnavailable     the model endpoint could not be reached, or timed out
│   ├── ToolRetryableError   a tool said so (also a tool's TimeoutError, ConnectionError)
│   ├── LeaseHeld            another attempt holds the tool call's claim; after its lease
│   ├── LeaseLost            this attempt's claim was taken over by a newer attempt
│   └── <transient type>     the database or the network is away for a while:
│                            TimeoutError, ConnectionError, OperationalError, InterfaceError
├── not retried
│   ├── ModelHTTP<status>    any other 4xx, or `x-should-retry: false`
│   ├── ContextLengthExceeded  one message (or a tool call with its results) is over any
│   │                        window; the model activity shrinks its window before that
│   ├── UnknownAgent         no agent of that name on this worker
│   ├── ConfigurationError   the wiring is wrong (an agent's, or the worker's converter)
│   └── LedgerKeyConflict    one ledger key was used for two different calls
└── retried at most `UNEXPECTED_ATTEMPTS` attempts in all, then not
    ├── ModelResponseInvalid the client could not parse the endpoint's answer (a 200 that is
    │                        not the JSON it expects: JSONDecodeError, ValidationError, ...)
    └── <exception type>     anything else: a bug in our code or a framework's
                             (TypeError, KeyError, AttributeError, ValidationError, ...)

What a tool itself raises is not a failure but an error result the model reads
(activities.tools), except `ToolRetryableError`, a timeout or a lost connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from pydantic import ValidationError
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from temporalio import activity
from temporalio.exceptions import ApplicationError, FailureError

from activities.bounds import error_text

__all__ = ["TRANSIENT", "UNEXPECTED_ATTEMPTS", "classified", "describe", "failure", "unexpected"]

UNEXPECTED_ATTEMPTS = 3
"""Attempts (the first included) for an unexpected exception: a bug does not go away on
retry, but a bounded few retries absorb a rare flake. The attempt counts every failure of
the activity, so an unexpected exception after two retried 429s is final at once."""
TRANSIENT = (
    TimeoutError,
    ConnectionError,
    OperationalError,
    InterfaceError,
    DisconnectionError,
    PoolTimeout,
)
"""Errors of a database or network that is away for a while: retried like the model's 5xx."""
MAX_TRACE_FRAMES = 12
"""Frames kept in an activity failure's stack trace: ours, and the innermost one."""


@contextmanager
def classified() -> Iterator[None]:
    """Around an activity's body: what escapes it leaves as a classified `ApplicationError`,
    with the traceback of where it was raised and without its chained causes."""
    try:
        yield
    except FailureError:
        raise  # already classified (ApplicationError), or Temporal's own
    except Exception as exc:
        error = failure(exc, activity.info().attempt)
        raise error.with_traceback(short_traceback(exc.__traceback__)) from None


def short_traceback(tb: TracebackType | None) -> TracebackType | None:
    """`tb` without the libraries' frames, save the innermost: a SQLAlchemy error's 40
    frames took the failure past the server's bound for a pending activity's last failure,
    which then showed only "Failure exceeds size limit"."""
    frames: list[TracebackType] = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    kept = [f for f in frames[:-1] if not _is_library(f.tb_frame.f_code.co_filename)]
    kept = (kept + frames[-1:])[-MAX_TRACE_FRAMES:]
    chain: TracebackType | None = None
    for frame in reversed(kept):
        chain = TracebackType(chain, frame.tb_frame, frame.tb_lasti, frame.tb_lineno)
    return chain


def _is_library(filename: str) -> bool:
    return "site-packages" in filename or "dist-packages" in filename or "/lib/python3" in filename


def failure(exc: Exception, attempt: int) -> ApplicationError:
    """The failure `exc` means on attempt number `attempt` (the first is 1)."""
    if isinstance(exc, ApplicationError):
        return exc
    if isinstance(exc, TRANSIENT) or getattr(exc, "connection_invalidated", False):
        return ApplicationError(error_text(describe(exc)), type=type(exc).__name__)
    return unexpected(exc, attempt)


def unexpected(exc: Exception, attempt: int, error_type: str | None = None) -> ApplicationError:
    """A bug's failure, typed `error_type` or with its exception's name: retried until
    attempt `UNEXPECTED_ATTEMPTS`, then not."""
    final = attempt >= UNEXPECTED_ATTEMPTS
    then = "not retried" if final else "retried"
    return ApplicationError(
        error_text(
            f"unexpected error, attempt {attempt} of {UNEXPECTED_ATTEMPTS}, {then}: {describe(exc)}"
        ),
        type=error_type or type(exc).__name__,
        non_retryable=final,
    )


def describe(exc: BaseException) -> str:
    """`Type: message`, without what would put SQL parameters or customer input in history:
    a SQLAlchemy error shows its driver's error, a validation error its locations."""
    if isinstance(exc, StatementError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, ValidationError):
        problems = exc.errors(include_url=False, include_input=False, include_context=False)
        where = "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in problems)
        return f"ValidationError: {exc.error_count()} for {exc.title}: {where}"
    return f"{type(exc).__name__}: {exc}"

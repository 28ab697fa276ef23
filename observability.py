"""Logs that name their conversation, turn and tool call; OpenTelemetry tracing.

Logs: `LogContextInterceptor` (on every worker, through `AgentConversationsPlugin`)
remembers the activity's conversation ID, turn and tool-call key while it runs, and
`ConversationLogFilter` puts them on every log record made meanwhile, whoever the logger
(the tool's own, SQLAlchemy's, ...). Workflow records get the conversation ID from
`workflow.logger`'s own extra; the workflow writes the turn into the message where it has
one. `workflow.logger` drops its records during replay, so a replayed history does not
repeat them.

Tracing: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, workers and clients get
`temporalio.contrib.opentelemetry.TracingInterceptor` (the plugin's `tracing=True`) and an
SDK tracer provider exporting OTLP/HTTP there. Unset, nothing is installed: the
interceptor's workflow spans cost a call out of the workflow per span.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from interface.secrets import redact_known

__all__ = [
    "ConversationLogFilter",
    "LogContext",
    "LogContextInterceptor",
    "client_interceptors",
    "configure_logging",
    "quiet_prompt_loggers",
    "configure_tracing",
    "log_handler",
    "tracing_interceptor",
]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s%(context)s"
_ACTIVITY_TURN = re.compile(r"/t(\d+)/s\d+/")


@dataclass(frozen=True)
class LogContext:
    conversation_id: str
    turn: int | None = None
    key: str | None = None
    """The tool call's ledger key; None for model calls and the workflow."""

    def suffix(self) -> str:
        parts = [f"conversation={self.conversation_id}"]
        if self.turn is not None:
            parts.append(f"turn={self.turn}")
        if self.key is not None:
            parts.append(f"key={self.key}")
        return " [" + " ".join(parts) + "]"


_current: ContextVar[LogContext | None] = ContextVar("agent_log_context", default=None)


def current() -> LogContext | None:
    return _current.get()


def _from_activity_input(args: Any) -> LogContext | None:
    request = args[0] if args else None
    conversation_id = getattr(request, "conversation_id", None)
    if isinstance(conversation_id, str):
        return LogContext(
            conversation_id, getattr(request, "turn", None), getattr(request, "key", None)
        )
    info = activity.info()
    if not info.workflow_id:
        return None
    turn = _ACTIVITY_TURN.search(info.activity_id)
    return LogContext(info.workflow_id, int(turn.group(1)) if turn else None)


class _ActivityLogContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        token = _current.set(_from_activity_input(input.args))
        try:
            return await super().execute_activity(input)
        finally:
            _current.reset(token)


class LogContextInterceptor(Interceptor):
    """Makes the running activity's conversation, turn and tool-call key known to logging."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityLogContext(next)


class ConversationLogFilter(logging.Filter):
    """Adds `conversation_id`, `turn`, `key` and `context` (" [conversation=... turn=...
    key=...]", or "") to every record. Attach it to handlers, not loggers, so that it sees
    the records of every logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get() or _from_workflow_record(record)
        record.conversation_id = context.conversation_id if context else None
        record.turn = context.turn if context else None
        record.key = context.key if context else None
        record.context = context.suffix() if context else ""
        return True


def _from_workflow_record(record: logging.LogRecord) -> LogContext | None:
    """workflow.logger's records carry `temporal_workflow` (workflow ID = conversation ID)."""
    details = getattr(record, "temporal_workflow", None)
    if isinstance(details, dict) and details.get("workflow_id"):
        return LogContext(str(details["workflow_id"]))
    return None


class SecretLogFilter(logging.Filter):
    """Replaces the configured secrets (interface.secrets) in a record's message and
    traceback: a library may log what an endpoint echoed back."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_known(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_known(record.exc_text)
        return True


def log_handler(stream: TextIO | None = None) -> logging.Handler:
    """A stream handler that prints each record with its conversation context."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ConversationLogFilter())
    handler.addFilter(SecretLogFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    return handler


PROMPT_LOGGERS = (
    "autogen_core.events",  # LLMCall: every prompt and answer, at INFO
    "autogen_agentchat.events",
    "autogen",  # AG2's classic API
    "openai",  # request options, messages included, at DEBUG
    "anthropic",
    "httpx",
    "httpcore",
    "llama_index",
    "agent_framework",
    "aiosqlite",  # SQL parameters (transcript rows) at DEBUG
    "sqlalchemy.engine",
    "temporalio.worker._activity",  # activity payloads at DEBUG (plain without a codec)
    "temporalio.worker._workflow",  # workflow activations, payloads included, at DEBUG
)
"""Framework and driver loggers that print prompts, answers, request bodies or SQL
parameters: customer text."""


def quiet_prompt_loggers(enabled: bool = False) -> None:
    """Keep the frameworks' prompt loggers at WARNING, so that customer text stays out of the
    logs, unless `enabled` (AGENT_LOG_PROMPTS=1): then they log at the root logger's level."""
    for name in PROMPT_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if enabled else logging.WARNING)


def configure_logging(level: int = logging.INFO) -> None:
    """The entry points' logging: one handler on the root logger, with context."""
    root = logging.getLogger()
    root.setLevel(level)
    root.addHandler(log_handler())


class TracingSettings(Protocol):
    otel_endpoint: str | None
    otel_service_name: str | None


def tracing_interceptor() -> Any:
    """Temporal's OpenTelemetry `TracingInterceptor`, a client and a worker interceptor
    (`AgentConversationsPlugin(tracing=True)` installs it)."""
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return TracingInterceptor()


def client_interceptors(settings: TracingSettings) -> list[Any]:
    """`[TracingInterceptor()]` when tracing is configured, else nothing. Given to
    `Client.connect`, it also applies to every worker built on that client."""
    return [tracing_interceptor()] if settings.otel_endpoint else []


def configure_tracing(settings: TracingSettings, default_service: str) -> Callable[[], None]:
    """Install an SDK tracer provider exporting OTLP/HTTP to `otel_endpoint` (the exporter
    reads the other `OTEL_EXPORTER_OTLP_*` variables itself). Returns the function that
    flushes and stops it: call it before exiting (entry points exit without atexit)."""
    if not settings.otel_endpoint:
        return lambda: None
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    service = settings.otel_service_name or default_service
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider.shutdown

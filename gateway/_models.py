"""The gateway's own HTTP models and settings; conversation payloads come from `interface`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway._auth import GatewayAuth
from interface.contract import MAX_CONVERSATION_ID_CHARS

AGENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
"""Agent names: also the only text placed inside a list query, so no quotes or spaces."""
MAX_TEXT_CHARS = 100_000
"""Transport guard, far below Temporal's 2 MB payload limit; each conversation's own limit
(`max_message_chars`, 32,000 by default) is enforced by the workflow's validator."""
NOT_BLANK = r"[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
"""A character `str.strip()` keeps: the workflow's "text is empty" rule as a JSON Schema
pattern (ECMA and Python regexes read it alike)."""
MAX_ID_CHARS = MAX_CONVERSATION_ID_CHARS
"""Conversation IDs and Idempotency-Keys (interface.contract); the workflow rejects longer
message IDs."""

AgentName = Annotated[str, Field(pattern=AGENT_PATTERN, examples=["claims-assistant"])]
ListedStatus = Literal["idle", "thinking", "waiting_approval", "ended", "failed"]


class GatewaySettings(BaseModel):
    """How the gateway waits and what it tells clients to do when Temporal is away."""

    ask_timeout: float = Field(default=60.0, gt=0)
    """Seconds a synchronous message waits for its turn; then the turn goes on and the
    gateway answers 202 with the conversation's Location, as in async mode."""
    query_timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for a worker to answer the `state` query; then 504."""
    retry_after: int = Field(default=5, ge=1)
    """Seconds sent in `Retry-After` with every 503."""
    auth: GatewayAuth = Field(default_factory=GatewayAuth)
    """The API keys accepted. The default has none, so every request is refused (401)."""
    cors_origins: list[str] = Field(default_factory=list)
    """Origins whose browsers may call the gateway (CORS), and the only `Origin`s a
    state-changing request may carry. None by default."""
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """Larger request bodies are refused with 413 before they are read whole."""
    sse_ping_seconds: float = Field(default=15.0, gt=0)
    """Event streams send a `: ping` comment this often, so proxies keep them open."""
    temporal_ui_url: str | None = "http://localhost:8233"
    """The Temporal Web UI the chat page links each conversation to; None for no link."""


class SendMessage(BaseModel):
    """Body of `POST /conversations/{id}/messages`."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        max_length=MAX_TEXT_CHARS,
        json_schema_extra={"pattern": NOT_BLANK},
        examples=["Check policy status for claim 123"],
    )
    agent: AgentName | None = None
    """The agent of a new conversation (the workflow's default: claims-assistant); ignored
    when the conversation is already running."""

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        """The workflow's rule, checked here too: async mode gets no answer from it."""
        if not text.strip():
            raise ValueError("text is empty")
        return text


class Accepted(BaseModel):
    """A request the conversation will act on; `GET state_url` shows the outcome."""

    conversation_id: str
    state_url: str
    message_id: str | None = None
    tool_call_id: str | None = None


class ConversationItem(BaseModel):
    """One conversation in a list; agent, status and turns need the search attributes."""

    conversation_id: str
    run_id: str
    workflow_status: str
    """Temporal's execution status: RUNNING, COMPLETED, FAILED, TERMINATED, ..."""
    started_at: datetime
    closed_at: datetime | None = None
    agent: str | None = None
    status: str | None = None
    turn_count: int | None = None


class ConversationPage(BaseModel):
    """Result of `GET /conversations`, newest first."""

    conversations: list[ConversationItem]
    next_page_token: str | None = None
    """Pass as `page_token` for the next page; null on the last one."""


class ErrorBody(BaseModel):
    """Every error the gateway answers with."""

    error: str
    """A stable, machine-readable code, e.g. `conversation_not_found`."""
    message: str
    """What went wrong, for a person."""
    details: list[dict[str, object]] | None = None
    """For `invalid_request`: each problem's location and message."""

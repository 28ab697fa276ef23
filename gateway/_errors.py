"""The errors the gateway answers with, and how Temporal's exceptions become them.

ApiError(status, code, message)                 every answer that is not a success
  401 unauthenticated                           no API key, or an unknown one (gateway._auth)
  403 forbidden                                 the key may not touch this conversation or agent
  403 origin_not_allowed                        a state-changing request from another Origin
  404 tool_call_not_pending                     a decision for a call that waits for none
  413 body_too_large                            the body is over `max_body_bytes`
  415 unsupported_media_type                    a state-changing request whose body is not JSON
  404 conversation_not_found                    RPCError NOT_FOUND (query, signal, describe)
  409 conversation_ended                        WorkflowAlreadyStartedError (an ended ID is
                                                never restarted), signal to a closed run,
                                                AcceptedUpdateCompletedWorkflow
  409 conversation_ending                       the `ask` validator: ConversationEnding
  409 conversation_closed                       the conversation was terminated, cancelled or
                                                timed out: ConversationClosed
  429 backlog_full (with Retry-After)           the `ask` validator: BacklogFull
  422 invalid_request                           the body, a header or a parameter; RPCError
                                                INVALID_ARGUMENT
  422 message_rejected                          the `ask` validator: MessageRejected
  422 unknown_agent                             the conversation failed: UnknownAgent
  422 invalid_page_token                        a page token the gateway did not hand out
  501 filter_unavailable                        list filters without the search attributes
  502 encrypted_conversation                    the conversation is encrypted and the gateway has
                                                no keys (EncryptedConversation, or the worker's
                                                EncryptionRequired): set AGENT_CODEC_KEYS
  502 temporal_error, unexpected_error          anything else, logged
  503 temporal_unavailable, temporal_busy,      connecting failed (RuntimeError), RPCError
      no_worker (all with Retry-After)          UNAVAILABLE, RESOURCE_EXHAUSTED, no poller
  504 temporal_timeout                          RPCError DEADLINE_EXCEEDED, a query timing out
"""

from __future__ import annotations

import logging

from fastapi.responses import JSONResponse
from temporalio.client import (
    RPCTimeoutOrCancelledError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from conversation_client import ENCRYPTED_HINT, EncryptedConversation
from gateway._models import ErrorBody
from interface.contract import ErrorType

log = logging.getLogger("gateway")

COMPLETED_BEFORE_UPDATE = "AcceptedUpdateCompletedWorkflow"
"""The SDK's failure type when the run closes before an accepted update finishes."""
CONNECT_FAILED = "Failed client connect"
"""The SDK raises RuntimeError with this, not RPCError, when it cannot connect."""
RETRY_LATER = {429, 503}


class ApiError(Exception):
    """An HTTP error with a stable code and a message for a person."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, object]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    def response(self, retry_after: int) -> JSONResponse:
        """The JSON response, with `Retry-After` on a 429 or 503."""
        body = ErrorBody(error=self.code, message=self.message, details=self.details)
        headers = dict(self.headers)
        if self.status in RETRY_LATER:
            headers["Retry-After"] = str(retry_after)
        return JSONResponse(body.model_dump(exclude_none=True), self.status, headers or None)


def not_found(conversation_id: str) -> ApiError:
    """404 for a conversation ID Temporal does not know."""
    return ApiError(404, "conversation_not_found", f"no conversation {conversation_id!r}")


def ended(conversation_id: str) -> ApiError:
    """409 for a conversation whose workflow has closed."""
    message = f"conversation {conversation_id!r} has ended; start a new one with another ID"
    return ApiError(409, "conversation_ended", message)


def encrypted() -> ApiError:
    return ApiError(502, "encrypted_conversation", f"the gateway cannot read it: {ENCRYPTED_HINT}")


def unavailable(detail: str) -> ApiError:
    """503: Temporal cannot be reached; the client should retry after a while."""
    return ApiError(503, "temporal_unavailable", f"Temporal is unavailable: {detail}")


def from_exception(error: BaseException, conversation_id: str | None = None) -> ApiError:
    """The answer for an exception raised while talking to Temporal."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, WorkflowAlreadyStartedError):
        return ended(conversation_id or "")
    if isinstance(error, EncryptedConversation):
        return encrypted()
    if isinstance(error, WorkflowUpdateFailedError):
        return _update_failed(error, conversation_id or "")
    if isinstance(error, RPCError):
        return _rpc_error(error, conversation_id)
    if isinstance(error, RuntimeError) and CONNECT_FAILED in str(error):
        return unavailable(str(error))  # a lazy client's first call, or a reconnect
    if isinstance(error, RPCTimeoutOrCancelledError | TimeoutError):
        return ApiError(504, "temporal_timeout", "Temporal or its workers did not answer in time")
    if isinstance(error, WorkflowQueryRejectedError):
        return ended(conversation_id or "")
    if isinstance(error, WorkflowQueryFailedError):
        return ApiError(502, "temporal_error", f"the state query failed: {error.message}")
    return ApiError(502, "unexpected_error", "the gateway failed unexpectedly; it was logged")


def _update_failed(error: WorkflowUpdateFailedError, conversation_id: str) -> ApiError:
    """By the failure's type (interface.contract), never by its text."""
    cause = error.cause
    reason = getattr(cause, "message", None) or str(cause)
    kind = getattr(cause, "type", None)
    if kind == COMPLETED_BEFORE_UPDATE:
        return ended(conversation_id)
    if kind == ErrorType.CONVERSATION_ENDING:
        return ApiError(409, "conversation_ending", f"rejected: {reason}")
    if kind == ErrorType.UNKNOWN_AGENT:  # the workflow fails pending asks with it
        return ApiError(422, "unknown_agent", reason)
    if kind == ErrorType.CONVERSATION_CLOSED:  # so does a closed conversation's new run
        return ApiError(409, "conversation_closed", reason)
    if kind == ErrorType.BACKLOG_FULL:
        return ApiError(429, "backlog_full", f"rejected: {reason}")
    if kind == ErrorType.ENCRYPTION_REQUIRED:
        return encrypted()
    return ApiError(422, "message_rejected", f"rejected: {reason}")


def _rpc_error(error: RPCError, conversation_id: str | None) -> ApiError:
    status = error.status
    if status == RPCStatusCode.NOT_FOUND and conversation_id is not None:
        return not_found(conversation_id)
    if status == RPCStatusCode.UNAVAILABLE:
        return unavailable(error.message)
    if status == RPCStatusCode.RESOURCE_EXHAUSTED:
        return ApiError(503, "temporal_busy", f"Temporal is rate limiting: {error.message}")
    if status == RPCStatusCode.FAILED_PRECONDITION and "poller" in error.message:
        return ApiError(503, "no_worker", f"no worker is polling: {error.message}")
    if status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
        return ApiError(504, "temporal_timeout", f"Temporal did not answer: {error.message}")
    if status == RPCStatusCode.INVALID_ARGUMENT:
        return ApiError(422, "invalid_request", f"Temporal refused: {error.message}")
    name = status.name if status else "UNKNOWN"
    return ApiError(502, "temporal_error", f"Temporal refused ({name}): {error.message}")

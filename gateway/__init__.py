"""An HTTP gateway for conversations: `python -m gateway`, or `create_app` in any ASGI server."""

from gateway._app import create_app
from gateway._auth import ApiKey, AuthConfigError, Caller, GatewayAuth
from gateway._errors import ApiError
from gateway._models import (
    Accepted,
    ConversationItem,
    ConversationPage,
    ErrorBody,
    GatewaySettings,
    SendMessage,
)
from gateway._temporal import ConversationsFactory, connector

__all__ = [
    "Accepted",
    "ApiError",
    "ApiKey",
    "AuthConfigError",
    "Caller",
    "ConversationItem",
    "ConversationPage",
    "ConversationsFactory",
    "ErrorBody",
    "GatewayAuth",
    "GatewaySettings",
    "SendMessage",
    "connector",
    "create_app",
]

"""An HTTP gateway for conversations: `python -m gateway`, or `create_app` in any ASGI server."""

from gateway._app import create_app
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
    "ConversationItem",
    "ConversationPage",
    "ConversationsFactory",
    "ErrorBody",
    "GatewaySettings",
    "SendMessage",
    "connector",
    "create_app",
]

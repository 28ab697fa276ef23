"""Errors raised by agent definitions and tools.

AgentError
├── ConfigurationError      wiring is wrong; raised at worker start-up
│   ├── DuplicateName       an agent or tool name registered twice
│   ├── UnknownAgent        a conversation names an agent the worker does not have
│   ├── UnsupportedOption   a framework option set that the durable loop cannot honour yet
│   └── InvalidToolOptions  no such tool kind, or `ToolOptions` naming a tool the agent lacks
└── ToolError               raised by a tool; the classes say whether to retry
    ├── ToolInputError      arguments the tool cannot use: back to the model, no retry
    ├── ToolBusinessError   a business rule refused the call: back to the model, no retry
    └── ToolRetryableError  transient (a flaky service): retried under the tool's policy
        └── ToolNotStarted  nothing was sent (the service cannot be reached): the ledger
                            forgets the claim, so the retry is a first attempt
"""

from __future__ import annotations

__all__ = [
    "AgentError",
    "ConfigurationError",
    "DuplicateName",
    "InvalidToolOptions",
    "ToolBusinessError",
    "ToolError",
    "ToolInputError",
    "ToolNotStarted",
    "ToolRetryableError",
    "UnknownAgent",
    "UnsupportedOption",
]


class AgentError(Exception):
    """Base of this package's errors."""


class ConfigurationError(AgentError):
    pass


class DuplicateName(ConfigurationError):
    pass


class UnknownAgent(ConfigurationError):
    pass


class UnsupportedOption(ConfigurationError):
    pass


class InvalidToolOptions(ConfigurationError):
    pass


class ToolError(AgentError):
    pass


class ToolInputError(ToolError):
    pass


class ToolBusinessError(ToolError):
    pass


class ToolRetryableError(ToolError):
    pass


class ToolNotStarted(ToolRetryableError):
    pass

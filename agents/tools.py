"""Tool definitions: a pydantic argument model, an async function and how it may be run."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, get_args, get_type_hints

from autogen_core.tools import ToolSchema
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from agents.errors import ConfigurationError, InvalidToolOptions
from interface import ToolPolicy

ToolKind = Literal["read", "database", "external"]
"""read: no side effect, no ledger. database: its writes commit with its ledger row.
external: a side effect elsewhere, deduped downstream by the idempotency key."""
TOOL_KINDS: tuple[str, ...] = get_args(ToolKind)

ToolFn = Callable[["ToolContext", Any], Awaitable[Any]]


@dataclass
class ToolContext:
    """What a tool receives besides its arguments."""

    conversation_id: str
    turn: int
    idempotency_key: str
    session: AsyncSession | None = None

    @property
    def db(self) -> AsyncSession:
        """The session inside the ledger's transaction (database tools only)."""
        if self.session is None:
            raise ConfigurationError("only tools of kind 'database' get a database session")
        return self.session


_current: ContextVar[ToolContext | None] = ContextVar("tool_context", default=None)


def current_tool_context() -> ToolContext:
    """The running tool's context, for tools written as plain functions (AutoGen or
    LlamaIndex `FunctionTool`s) that need the ledger's session or the idempotency key."""
    ctx = _current.get()
    if ctx is None:
        raise ConfigurationError("current_tool_context() is only set while a tool runs")
    return ctx


@contextmanager
def running(ctx: ToolContext) -> Iterator[None]:
    token = _current.set(ctx)
    try:
        yield
    finally:
        _current.reset(token)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args_model: type[BaseModel]
    fn: ToolFn
    kind: ToolKind = "read"
    policy: ToolPolicy = field(default_factory=ToolPolicy)
    dedupes_downstream: bool = True
    """external tools: False if the provider ignores idempotency keys; a crashed attempt
    is then reported as `unknown` instead of being run again."""
    parameters: dict[str, Any] | None = None
    """The JSON schema shown to the model; by default, the argument model's."""

    def __post_init__(self) -> None:
        check_kind(self.kind, f"tool {self.name!r}")

    @cached_property
    def schema(self) -> ToolSchema:
        """Built once: the model activity sends it on every call."""
        parameters = self.parameters
        if parameters is None:
            parameters = self.args_model.model_json_schema()
            parameters.pop("title", None)
        return ToolSchema(name=self.name, description=self.description, parameters=parameters)  # type: ignore[typeddict-item]


def tool(
    *,
    kind: ToolKind = "read",
    name: str | None = None,
    description: str | None = None,
    policy: ToolPolicy | None = None,
    dedupes_downstream: bool = True,
) -> Callable[[ToolFn], Tool]:
    """Make a `Tool` of `async def fn(ctx: ToolContext, args: SomeModel) -> result`."""

    def wrap(fn: ToolFn) -> Tool:
        return Tool(
            name=name or fn.__name__,
            description=description or inspect.getdoc(fn) or fn.__name__,
            args_model=_args_model(fn),
            fn=fn,
            kind=kind,
            policy=policy or ToolPolicy(),
            dedupes_downstream=dedupes_downstream,
        )

    return wrap


def check_kind(kind: object, where: str) -> None:
    """Refuse a kind the ledger does not know (a typo would change how the tool runs)."""
    if kind not in TOOL_KINDS:
        raise InvalidToolOptions(
            f"{where}: kind {kind!r} is not a tool kind; valid kinds: {', '.join(TOOL_KINDS)}"
        )


def _args_model(fn: ToolFn) -> type[BaseModel]:
    params = list(inspect.signature(fn).parameters)
    hints = get_type_hints(fn)
    model = hints.get(params[1]) if len(params) == 2 else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ConfigurationError(
            f"tool {fn.__name__}: expected (ctx: ToolContext, args: <pydantic model>)"
        )
    return model

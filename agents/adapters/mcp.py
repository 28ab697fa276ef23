"""MCP servers as tool sources: `mcp_tools(StdioServer(...))` gives plain `Tool`s.

Discovery runs when `mcp_tools` is called, at worker start-up: the server's tools are
listed once and cached in an `McpToolset`. Each tool's input schema from the server is what
the model sees. Its kind comes from the server's annotations, which `ToolOptions` override:

- `readOnlyHint: true`: kind `read`, re-run freely.
- `idempotentHint: true`: kind `external` that dedupes downstream; the ledger's key goes to
  the server in the request's `_meta` (`MCP_IDEMPOTENCY_META_KEY`).
- anything else: `external` without downstream dedupe; a call interrupted between claim and
  record is reported `unknown`, never run again.

The calls run in the tool activity under the ledger; the worker's pool of MCP sessions
(`activities.mcp`) is installed as this module's caller by the plugin, because agents never
import activities. Secrets (headers, env) are named here by environment variable and read
from the worker's environment only when a connection opens.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol

import mcp.types as mcp_types
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from pydantic import BaseModel, ConfigDict, model_validator

from agents.adapters.options import ToolOptions
from agents.errors import ConfigurationError, ToolBusinessError, UnsupportedOption
from agents.tools import Tool, ToolContext, ToolKind
from interface import ToolPolicy
from interface.contract import MCP_IDEMPOTENCY_META_KEY

__all__ = [
    "HttpServer",
    "InvalidMcpSchema",
    "McpCaller",
    "McpServer",
    "McpToolError",
    "McpToolUnavailable",
    "McpToolset",
    "StdioServer",
    "connect",
    "list_all_tools",
    "mcp_tools",
    "spec_tool",
    "use_caller",
]

log = logging.getLogger(__name__)

DISCOVERY_TIMEOUT = 30.0
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what model APIs accept as a function name


@dataclass(frozen=True)
class StdioServer:
    """An MCP server the worker spawns and talks to over stdin/stdout."""

    command: str
    args: Sequence[str] = ()
    env_from_env: Mapping[str, str] = field(default_factory=dict)
    """The server's environment variable -> the worker's variable its value is read from."""
    cwd: str | None = None
    name: str | None = None
    """How errors and logs name the server; by default the command and its first argument."""

    @property
    def label(self) -> str:
        return self.name or " ".join(
            [Path(self.command).name, *[Path(a).name for a in self.args[:1]]]
        )


@dataclass(frozen=True)
class HttpServer:
    """An MCP server reached over streamable HTTP."""

    url: str
    headers_from_env: Mapping[str, str] = field(default_factory=dict)
    """An HTTP header -> the worker's environment variable its value is read from."""
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.url.split("?")[0]


McpServer = StdioServer | HttpServer


class InvalidMcpSchema(ConfigurationError):
    """A server's tool has a name or an input schema the model could not be given."""


class McpToolError(ToolBusinessError):
    """The server answered the call with `isError`: the model sees the server's text."""


class McpToolUnavailable(ToolBusinessError):
    """The server no longer offers the tool (its list changed)."""


class McpCaller(Protocol):
    """Runs one call on a server's session; `activities.mcp.McpSessions` is the one."""

    async def call(
        self, toolset: McpToolset, tool: str, arguments: dict[str, Any], meta: dict[str, Any] | None
    ) -> str: ...


_caller: McpCaller | None = None


def use_caller(caller: McpCaller | None) -> None:
    """Install the worker's session pool (the plugin does this)."""
    global _caller
    _caller = caller


def mcp_tools(
    server: McpServer | Any,
    *,
    options: ToolOptions | None = None,
    refresh_interval: timedelta | None = timedelta(minutes=5),
    timeout: float = DISCOVERY_TIMEOUT,
) -> McpToolset:
    """The server's tools, discovered now: attach them with `registry.add(..., extra_tools=)`.

    `server` is a `StdioServer`, an `HttpServer`, or LlamaIndex's `McpToolSpec` /
    `BasicMCPClient` (its command or URL, args, env and headers are used). `options`
    override kinds, policies and dedupe per tool name; `refresh_interval` bounds how stale
    the cached list may get besides `notifications/tools/list_changed`."""
    toolset = McpToolset(as_server(server), options, refresh_interval)
    toolset.replace(_discover(toolset.server, timeout), strict=True)
    return toolset


class McpToolset:
    """One server's tools, cached; refreshed by the worker's pool when the list changes.

    Iterating gives the current `Tool`s; `version` grows with every change, so a registry
    entry can rebuild its agent's tool list."""

    def __init__(
        self,
        server: McpServer,
        options: ToolOptions | None = None,
        refresh_interval: timedelta | None = timedelta(minutes=5),
    ) -> None:
        self.server, self.options, self.refresh_interval = server, options, refresh_interval
        self.version = 0
        self.refreshed_at = 0.0
        self._tools: dict[str, Tool] = {}
        self._listed: dict[str, mcp_types.Tool] = {}

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def due(self) -> bool:
        interval = self.refresh_interval
        return (
            interval is not None
            and time.monotonic() - self.refreshed_at >= interval.total_seconds()
        )

    def replace(self, listing: Sequence[mcp_types.Tool], *, strict: bool = False) -> None:
        """Take a new listing. At discovery (`strict`) an invalid tool is refused; at a
        refresh it is left out and logged, so one bad tool cannot stop a running worker."""
        self.refreshed_at = time.monotonic()
        tools: dict[str, Tool] = {}
        for listed in listing:
            try:
                tools[listed.name] = self._tool(listed)
            except InvalidMcpSchema as exc:
                if strict:
                    raise
                log.warning("%s; the tool is left out", exc)
        if strict and self.options is not None:  # a refresh may drop a tool named there
            self.options.check(list(tools), f"MCP server {self.server.label!r}")
        listed_now = {t.name: t for t in listing if t.name in tools}
        if listed_now != self._listed:
            self._tools, self._listed = tools, listed_now
            self.version += 1

    def _tool(self, listed: mcp_types.Tool) -> Tool:
        where = f"MCP server {self.server.label!r}: tool {listed.name!r}"
        schema = checked_schema(where, listed)
        kind, dedupes, policy = self._kind_of(listed)
        return Tool(
            name=listed.name,
            description=listed.description or listed.name,
            args_model=_arguments_model(listed.name, schema),
            fn=McpCall(self, listed.name, sends_key=kind != "read"),
            kind=kind,
            policy=policy,
            dedupes_downstream=dedupes,
            parameters=copy.deepcopy(schema),
        )

    def _kind_of(self, listed: mcp_types.Tool) -> tuple[ToolKind, bool, ToolPolicy]:
        hints = listed.annotations or mcp_types.ToolAnnotations()
        kind: ToolKind = "read" if hints.read_only_hint else "external"
        dedupes = kind == "read" or bool(hints.idempotent_hint)
        options = self.options
        if options is None:
            return kind, dedupes, ToolPolicy()
        kind = options.kinds.get(listed.name, kind)
        if kind == "database":
            raise UnsupportedOption(
                f"MCP server {self.server.label!r}: tool {listed.name!r} cannot be a 'database' "
                "tool (its effect is on the server, not in the ledger's transaction)"
            )
        dedupes = options.dedupes.get(listed.name, dedupes or kind == "read")
        return kind, dedupes, options.policies.get(listed.name, ToolPolicy())


@dataclass(frozen=True)
class McpCall:
    """A discovered tool's function: one `tools/call` through the worker's session pool."""

    toolset: McpToolset
    name: str
    sends_key: bool

    async def __call__(self, ctx: ToolContext, args: BaseModel) -> str:
        if _caller is None:
            raise ConfigurationError(
                f"MCP tool {self.name!r} runs on a worker built with AgentConversationsPlugin"
            )
        if self.name not in self.toolset:
            raise McpToolUnavailable(
                f"MCP server {self.toolset.server.label!r} no longer offers tool {self.name!r}; "
                f"it offers {sorted(t.name for t in self.toolset)}"
            )
        meta = {MCP_IDEMPOTENCY_META_KEY: ctx.idempotency_key} if self.sends_key else None
        arguments = args.model_dump(mode="json", exclude_unset=True)
        return await _caller.call(self.toolset, self.name, arguments, meta)


def checked_schema(where: str, listed: mcp_types.Tool) -> dict[str, Any]:
    """The tool's input schema, if a model can be given it: an object schema that is valid
    JSON Schema, under a name model APIs accept."""
    if not TOOL_NAME.match(listed.name):
        raise InvalidMcpSchema(f"{where}: the name must match {TOOL_NAME.pattern}")
    schema = listed.input_schema
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise InvalidMcpSchema(f"{where}: the input schema must be a JSON object schema")
    if not isinstance(schema.get("properties", {}), dict):
        raise InvalidMcpSchema(f"{where}: the input schema's properties must be an object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InvalidMcpSchema(f"{where}: invalid input schema: {exc.message}") from None
    return schema


def _arguments_model(name: str, schema: dict[str, Any]) -> type[BaseModel]:
    """A model whose JSON schema is the server's, and which validates against it."""
    validator = Draft202012Validator(schema)

    class McpArguments(BaseModel):
        model_config = ConfigDict(extra="allow")
        server_schema: ClassVar[dict[str, Any]] = schema

        @model_validator(mode="before")
        @classmethod
        def _valid(cls, data: Any) -> Any:
            errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
            if errors:
                raise ValueError("; ".join(_error_text(e) for e in errors[:5]))
            return data

        @classmethod
        def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return copy.deepcopy(cls.server_schema)

    McpArguments.__name__ = McpArguments.__qualname__ = f"{name}_arguments"
    return McpArguments


def _error_text(error: Any) -> str:
    path = "/".join(str(p) for p in error.path)
    return f"{path or '(arguments)'}: {error.message}"


# --- connections (used by discovery here and by the worker's pool) ----------------------


@asynccontextmanager
async def connect(
    server: McpServer, on_message: Any = None, read_timeout: float | None = None
) -> AsyncIterator[Client]:
    """An initialized MCP client for `server`, secrets read from the environment now.

    The handshake-era protocol (`mode="legacy"`): its servers send
    `notifications/tools/list_changed` on the session itself."""
    options: dict[str, Any] = {"mode": "legacy", "cache": None, "message_handler": on_message}
    options["read_timeout_seconds"] = read_timeout
    if isinstance(server, StdioServer):
        params = StdioServerParameters(
            command=server.command, args=list(server.args), env=_env(server), cwd=server.cwd
        )
        async with Client(params, **options) as client:
            yield client
        return
    async with create_mcp_http_client(headers=_headers(server)) as http:
        transport = streamable_http_client(server.url, http_client=http)
        async with Client(transport, **options) as client:  # type: ignore[arg-type]
            yield client


async def list_all_tools(client: Client) -> list[mcp_types.Tool]:
    tools: list[mcp_types.Tool] = []
    cursor: str | None = None
    for _ in range(100):
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        cursor = page.next_cursor
        if cursor is None:
            return tools
    raise ConfigurationError("MCP tools/list returned more than 100 pages")


def _secret(variable: str, what: str) -> str:
    value = os.environ.get(variable)
    if value is None:
        raise ConfigurationError(f"{what} is read from ${variable}, which is not set")
    return value


def _env(server: StdioServer) -> dict[str, str]:
    return {
        name: _secret(variable, f"MCP server {server.label!r}: env {name}")
        for name, variable in server.env_from_env.items()
    }


def _headers(server: HttpServer) -> dict[str, str]:
    return {
        header: _secret(variable, f"MCP server {server.label!r}: header {header}")
        for header, variable in server.headers_from_env.items()
    }


def _discover(server: McpServer, timeout: float) -> list[mcp_types.Tool]:
    """List the server's tools from a thread with its own loop: registration is synchronous
    and may run inside the worker's event loop."""
    found: list[list[mcp_types.Tool]] = []
    failure: list[BaseException] = []

    async def run() -> None:
        async with asyncio.timeout(timeout), connect(server) as client:
            found.append(await list_all_tools(client))

    def in_thread() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=in_thread, name=f"mcp-discovery {server.label}")
    thread.start()
    thread.join()
    if failure:
        raise ConfigurationError(
            f"MCP server {server.label!r}: listing its tools failed: "
            f"{type(failure[0]).__name__}: {_first_line(failure[0])}"
        ) from None
    return found[0]


def _first_line(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return (str(exc).splitlines() or [""])[0][:300]


def as_server(source: Any) -> McpServer:
    """A server of ours, or one read from LlamaIndex's `McpToolSpec` / `BasicMCPClient`."""
    if isinstance(source, StdioServer | HttpServer):
        return source
    client = getattr(source, "client", source)
    target = getattr(client, "command_or_url", None)
    if not isinstance(target, str):
        raise ConfigurationError(
            f"mcp_tools() takes a StdioServer, an HttpServer or LlamaIndex's McpToolSpec / "
            f"BasicMCPClient, not {type(source).__name__}"
        )
    if target.startswith(("http://", "https://")):
        if getattr(client, "headers", None):
            raise UnsupportedOption(
                "BasicMCPClient(headers=...): header values would sit in code; use "
                "HttpServer(url=..., headers_from_env={header: ENV_VARIABLE})"
            )
        return HttpServer(url=target)
    if getattr(client, "env", None):
        raise UnsupportedOption(
            "BasicMCPClient(env=...): values would sit in code; use "
            "StdioServer(command=..., env_from_env={name: ENV_VARIABLE})"
        )
    return StdioServer(command=target, args=tuple(getattr(client, "args", None) or ()))


# --- LlamaIndex's McpToolSpec tools, mapped onto the same machinery ---------------------

_spec_toolsets: dict[int, McpToolset] = {}


def spec_tool(tool: object, options: ToolOptions | None = None) -> Tool | None:
    """The `Tool` for a LlamaIndex `FunctionTool` made by `McpToolSpec.to_tool_list()`, run
    through the worker's pool under the ledger; None for any other tool."""
    fn = getattr(tool, "async_fn", None)
    if getattr(fn, "__qualname__", "") != "McpToolSpec._create_tool_fn.<locals>.async_tool_fn":
        return None
    assert fn is not None
    cells = dict(
        zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__ or ()), strict=True)
    )
    spec, name = cells["self"], cells["tool_name"]
    toolset = _spec_toolsets.get(id(spec))
    if toolset is None:  # one discovery per spec, kept while the worker runs
        toolset = _spec_toolsets[id(spec)] = mcp_tools(spec)
    found = next((t for t in toolset if t.name == name), None)
    if found is None:
        raise ConfigurationError(f"MCP server {toolset.server.label!r} has no tool {name!r}")
    if options is None or name not in {*options.kinds, *options.policies, *options.dedupes}:
        return found
    return _overridden(found, options)


def _overridden(tool: Tool, options: ToolOptions) -> Tool:
    changes: dict[str, Any] = {}
    if tool.name in options.kinds:
        changes["kind"] = options.kinds[tool.name]
        if changes["kind"] == "database":
            raise UnsupportedOption(f"MCP tool {tool.name!r} cannot be a 'database' tool")
        changes["dedupes_downstream"] = changes["kind"] == "read"
    if tool.name in options.policies:
        changes["policy"] = options.policies[tool.name]
    if tool.name in options.dedupes:
        changes["dedupes_downstream"] = options.dedupes[tool.name]
    return dataclasses.replace(tool, **changes)

"""How a framework agent's tools run under the ledger: kind, policy and downstream dedup."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from agents.errors import InvalidToolOptions, UnsupportedOption
from agents.tools import ToolKind, check_kind
from interface import ToolPolicy

__all__ = ["DEFAULT_KIND", "ToolOptions", "Unsupported", "refuse_unsupported"]

Unsupported = tuple[str, Callable[[Any], object], str]
"""An option the durable loop cannot honour yet: (its name, whether a framework object sets
it, what to do instead)."""


def refuse_unsupported(
    source: object, table: Sequence[Unsupported], written: Callable[[str], str]
) -> None:
    """UnsupportedOption for the first option of `table` that `source` sets; `written(name)`
    says where it was set, e.g. `agent 'x': AssistantAgent(memory=...)`."""
    for option, is_set, advice in table:
        if is_set(source):
            raise UnsupportedOption(f"{written(option)} is not supported yet: {advice}")


DEFAULT_KIND: ToolKind = "external"
"""A framework tool's side effects are unknown: by default it runs under the ledger as an
external tool that cannot dedupe downstream, so a crashed call is surfaced as `unknown`
instead of being repeated. Declare `read` or `database` per tool with `ToolOptions`."""


class ToolOptions:
    """How each of an agent's tools runs: kind, policy, downstream dedup, by tool name.

    Every name must be a tool of the agent (or of the team) it is registered with: a typo
    would otherwise leave the real tool on the default kind. With `shared=True` the options
    are a catalogue for several agents that each use some of the tools: names an agent does
    not have are allowed, and instead each of its tools must have its kind here."""

    def __init__(
        self,
        kinds: Mapping[str, ToolKind] | None = None,
        policies: Mapping[str, ToolPolicy] | None = None,
        dedupes_downstream: Mapping[str, bool] | None = None,
        *,
        shared: bool = False,
    ) -> None:
        self.kinds, self.policies = dict(kinds or {}), dict(policies or {})
        self.dedupes = dict(dedupes_downstream or {})
        self.shared = shared
        self._validate()

    def for_tool(self, name: str) -> dict[str, Any]:
        kind = self.kinds.get(name, DEFAULT_KIND)
        return {
            "kind": kind,
            "policy": self.policies.get(name, ToolPolicy()),
            "dedupes_downstream": self.dedupes.get(name, kind != "external"),
        }

    def check(self, tools: Collection[str], owner: str) -> None:
        """Refuse options that would not apply to `tools`, the tools of `owner`."""
        if self.shared:
            missing = sorted(set(tools) - set(self.kinds))
            if missing:
                close = difflib.get_close_matches(missing[0], list(self.kinds), n=1)
                typo = f" (is {close[0]!r} a typo of it?)" if close else ""
                raise InvalidToolOptions(
                    f"{owner}: shared ToolOptions give no kind for its tool {missing[0]!r}"
                    f"{typo}; shared options need a kind for every tool"
                )
            return
        for option, names in self._by_option().items():
            for name in names:
                if name not in tools:
                    raise InvalidToolOptions(
                        f"{owner}: ToolOptions {option}= names {name!r}, which is not one of "
                        f"its tools {sorted(tools)}{_did_you_mean(name, tools)}; options "
                        "for the tools of several agents are ToolOptions(..., shared=True)"
                    )

    def _by_option(self) -> dict[str, Collection[str]]:
        return {"kinds": self.kinds, "policies": self.policies, "dedupes_downstream": self.dedupes}

    def _validate(self) -> None:
        for name, kind in self.kinds.items():
            check_kind(kind, f"ToolOptions kinds= for {name!r}")
        for name, policy in self.policies.items():
            if not isinstance(policy, ToolPolicy):
                raise InvalidToolOptions(
                    f"ToolOptions policies= for {name!r}: expected a ToolPolicy, "
                    f"got {type(policy).__name__}"
                )
        for name, dedupes in self.dedupes.items():
            kind = self.kinds.get(name, DEFAULT_KIND)
            if not isinstance(dedupes, bool) or kind != "external":
                raise InvalidToolOptions(
                    f"ToolOptions dedupes_downstream= for {name!r}: expected True or False "
                    f"for an external tool, got {dedupes!r} for a {kind!r} tool"
                )


def _did_you_mean(name: str, candidates: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""

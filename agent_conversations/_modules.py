"""Registrations from modules the user names: `python worker.py --agents mypkg.agents`."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from agents.errors import ConfigurationError
from agents.registry import AgentRegistry

__all__ = ["module_names", "register_modules"]


def module_names(values: Iterable[str | None]) -> list[str]:
    """`["a,b", "c"]` -> `["a", "b", "c"]`: repeated options and comma-separated lists."""
    names = (name.strip() for value in values if value for name in value.split(","))
    return list(dict.fromkeys(name for name in names if name))


def register_modules(registry: AgentRegistry, names: Iterable[str]) -> None:
    """Import each module and call its `register(registry)`.

    Raises ConfigurationError naming the module that is missing or has no `register`."""
    for name in names:
        register = getattr(_import(name), "register", None)
        if not callable(register):
            raise ConfigurationError(f"agent module {name!r} has no register(registry) function")
        register(registry)


def _import(name: str) -> object:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name and (name == error.name or name.startswith(f"{error.name}.")):
            raise ConfigurationError(
                f"agent module {name!r} not found; is it installed or on PYTHONPATH?"
            ) from None
        raise  # the module exists, one of its own imports is missing

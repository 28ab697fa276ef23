"""Registrations from modules the user names: `python worker.py --agents mypkg.agents`."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from activities.db import TableSet
from agents.errors import ConfigurationError
from agents.registry import AgentRegistry

__all__ = ["module_names", "register_modules"]


def module_names(values: Iterable[str | None]) -> list[str]:
    """`["a,b", "c"]` -> `["a", "b", "c"]`: repeated options and comma-separated lists."""
    names = (name.strip() for value in values if value for name in value.split(","))
    return list(dict.fromkeys(name for name in names if name))


def register_modules(registry: AgentRegistry, names: Iterable[str]) -> list[TableSet]:
    """Import each module, call its `register(registry)`, and return the tables it brings:
    its optional `TABLES`, a TableSet or a list of them, which the worker migrates.

    Raises ConfigurationError naming the module that is missing, has no `register`, or
    whose TABLES is not made of TableSets."""
    tables: list[TableSet] = []
    for name in names:
        module = _import(name)
        register = getattr(module, "register", None)
        if not callable(register):
            raise ConfigurationError(f"agent module {name!r} has no register(registry) function")
        register(registry)
        tables += _tables(name, getattr(module, "TABLES", []))
    return tables


def _tables(name: str, declared: object) -> list[TableSet]:
    found = [declared] if isinstance(declared, TableSet) else declared
    if not isinstance(found, list | tuple) or not all(isinstance(t, TableSet) for t in found):
        raise ConfigurationError(f"agent module {name!r}: TABLES must be a TableSet or a list")
    return list(found)


def _import(name: str) -> object:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name and (name == error.name or name.startswith(f"{error.name}.")):
            raise ConfigurationError(
                f"agent module {name!r} not found; is it installed or on PYTHONPATH?"
            ) from None
        raise  # the module exists, one of its own imports is missing

"""The test tiers; tests/conftest.py gives every test exactly one (`pytest -m unit`)."""

from __future__ import annotations

__all__ = ["SERVICE_FIXTURES", "TIERS"]

TIERS = ("unit", "integration", "replay", "e2e")

# A test using one of these (directly or through another fixture, e.g. `run_worker`) needs
# the session's Temporal dev server or a database file, so it is not a unit test.
SERVICE_FIXTURES = frozenset({"env", "db", "any_db"})

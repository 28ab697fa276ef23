"""Alembic environment and the core's revisions: package data, found with importlib.resources."""

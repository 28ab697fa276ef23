"""The demo's Alembic revisions (branch `demo`), shipped in the package."""

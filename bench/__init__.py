"""Benchmarks: our conversation workflow against a bare-Temporal floor (`python -m bench`)."""

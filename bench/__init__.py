"""Benchmarks: `.venv/bin/python -m bench [--quick]` (see bench/__main__.py)."""

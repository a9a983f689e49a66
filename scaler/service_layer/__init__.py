"""Use cases: what each entry point does, on the ports in `ports.py` (the adapters implement
them; tests/fakes.py holds in-memory ones)."""

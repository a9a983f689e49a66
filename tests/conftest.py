"""Fixtures shared by every suite that needs the real stack (integration, fuzz, security)."""

from tests.app_under_test import app, settings_override, stack  # noqa: F401

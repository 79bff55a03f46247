"""Fixtures and helpers of the study app's tests (tests/test_app_*.py)."""

"""Kept for code that imports the defaults from here: they are declared in :mod:`prefstyle.models.defaults`."""

from prefstyle.models.defaults import DEFAULT_LIKED_MODEL, DEFAULT_MODEL

__all__ = ["DEFAULT_LIKED_MODEL", "DEFAULT_MODEL"]

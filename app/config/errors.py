"""The one error a bad config raises."""

from __future__ import annotations


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or holds a wrong value."""

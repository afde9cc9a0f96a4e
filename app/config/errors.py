"""The one error a bad config raises."""

from __future__ import annotations

from typing import Any

from app.config.fleet import safe_id


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or holds a wrong value."""


def table_id(raw: Any, table: str, index: int, keys: set[str]) -> str:
    """The id of the `index`-th `[[server.<table>]]`: a table of known keys whose id URLs carry as written."""
    where = f"[[server.{table}]] #{index + 1}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    if set(raw) - keys:
        raise ConfigError(f"{where}: unknown key(s) {sorted(set(raw) - keys)}")
    if not safe_id(raw.get("id")):
        raise ConfigError(f"{where}: id must be 1-64 letters, digits, '.', '_' or '-'")
    return raw["id"]

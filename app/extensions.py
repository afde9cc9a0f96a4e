"""Every object the running app holds in `app.extensions`, read through one getter each (set by the factory)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import current_app

if TYPE_CHECKING:
    from app.config import ServerConfig
    from app.limits import RateLimiter, Slots
    from app.live.figures import Figures
    from app.store import Store


def get_config() -> ServerConfig:
    """The typed server config of the current app."""
    return current_app.extensions["usage_config"]


def get_store() -> Store:
    """The usage store of the current app."""
    return current_app.extensions["usage_store"]


def get_figures() -> Figures:
    """The figures (payload builder and its caches) of the current app."""
    return current_app.extensions["figures"]


def get_dispenser_rate() -> RateLimiter:
    """The events-per-minute budget of each dispenser (`dispenser_events_per_min`)."""
    return current_app.extensions["dispenser_rate"]


def get_refill_rate() -> RateLimiter:
    """One refill a minute per dispenser: a reservoir is not refilled twice a minute."""
    return current_app.extensions["refill_rate"]


def get_export_slots() -> Slots:
    """The exports that may run at once (`max_exports`), each cut at `export_deadline_s`."""
    return current_app.extensions["export_slots"]


def get_translations(lang: str) -> dict[str, Any]:
    """The page catalog of one language (app/translations/LANG.json), loaded once at start."""
    return current_app.extensions["translations"][lang]


def get_dashboard_version() -> str:
    """The version of the page's files, so an open kiosk reloads when they change."""
    return current_app.extensions["dashboard_version"]

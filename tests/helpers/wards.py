"""A test config whose dispensers sit in wards (groups) with compliance settings, and an app on it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask

from app import create_app
from app.config import load_config
from tests.helpers.config import config_text

# site > ward-a (entree, cafeteria: ICU, 10 opportunities per patient-day, target 80 %) and ward-b (b12: regular).
WARDS = """
[[server.groups]]
id = "site"
name = "Site"

[[server.groups]]
id = "ward-a"
name = "Ward A"
parent = "site"
opportunities_per_patient_day = 10
target_pct = 80
ward_type = "icu"

[[server.groups]]
id = "ward-b"
name = "Ward B"
parent = "site"
opportunities_per_patient_day = 20
ward_type = "regular"
"""
MEMBERS = {"entree": "ward-a", "cafeteria": "ward-a", "b12": "ward-b"}


def ward_config_text(**server: object) -> str:
    """config_text() with the wards above and each test dispenser in its ward."""
    text = config_text(**server).replace("\n[[server.dispensers]]", WARDS + "\n[[server.dispensers]]", 1)
    for ident, group in MEMBERS.items():
        text = text.replace(f'id = "{ident}"\n', f'id = "{ident}"\ngroup = "{group}"\n')
    return text


@contextmanager
def ward_app(tmp_path: Path, **server: object) -> Iterator[Flask]:
    """An app on a fresh database in tmp_path with the wards config (threading mode)."""
    path = tmp_path / "config.toml"
    path.write_text(ward_config_text(**server), encoding="utf-8")
    app = create_app(load_config(path))
    try:
        yield app
    finally:
        app.extensions["usage_store"].engine.dispose()

"""Secrets in config.toml: example tokens only for the demo, asked for explicitly; weak or mistyped secrets refused."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from app import create_app
from app.config import ConfigError, load_config
from devkit.servers import ROOT, free_port
from tests.helpers.config import ADMIN, TOKENS, config_text


def shipped_copy(tmp_path: Path, *replace: tuple[str, str]) -> Path:
    """The shipped config.toml with its database in tmp_path (and the given replacements)."""
    text = (ROOT / "config.toml").read_text(encoding="utf-8").replace("instance/usage.db", "usage.db")
    text = text.replace('async_mode = "eventlet"', 'async_mode = "threading"')  # in this process: no eventlet
    for old, new in replace:
        text = text.replace(old, new)
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("case", [lambda t: t, str.lower])
def test_create_app_refuses_example_tokens_whatever_the_address(tmp_path, monkeypatch, case):
    monkeypatch.delenv("GEL_DEMO", raising=False)
    path = shipped_copy(tmp_path, *((t, case(t)) for t in ("CHANGE-ME-admin-token", "CHANGE-ME-entree-token")))
    cfg = load_config(path)
    assert cfg.host == "127.0.0.1"  # behind nginx the app listens on loopback: the address proves nothing
    with pytest.raises(ConfigError, match=r"example value(.|\n)*secrets.token_urlsafe") as refused:
        create_app(cfg)
    assert "entree" in str(refused.value) and "admin_token" in str(refused.value)
    assert "change-me-entree-token" not in str(refused.value).lower()  # it names dispensers, never their tokens


def test_the_demo_serves_them_when_asked_for(tmp_path, monkeypatch):
    cfg = load_config(shipped_copy(tmp_path))
    app = create_app(cfg, demo=True)
    app.extensions["usage_store"].engine.dispose()
    monkeypatch.setenv("GEL_DEMO", "1")
    app = create_app(cfg)
    app.extensions["usage_store"].engine.dispose()


def run_server(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin"})


def test_python_m_app_refuses_them_on_loopback_without_demo_and_off_loopback_with_it(tmp_path):
    path = str(shipped_copy(tmp_path))
    plain = run_server("--config", path, "--host", "127.0.0.1", "--port", str(free_port()))
    assert plain.returncode == 2 and "refusing to serve" in plain.stderr and "--demo" in plain.stderr
    lan = run_server("--config", path, "--host", "0.0.0.0", "--port", str(free_port()), "--demo")
    assert lan.returncode == 2 and "refusing to listen on 0.0.0.0" in lan.stderr


def with_lines(tmp_path: Path, text: str, *lines: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text.replace("[server]\n", "[server]\n" + "".join(x + "\n" for x in lines), 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(("lines", "message"), [
    (['maintenance_token = "short-token"'], "maintenance_token must be at least 16"),
    (["maintenance_token = 1234567890123456789"], "maintenance_token must be a string"),
    ([f'maintenance_token = "{TOKENS["cafeteria"]}"'], "maintenance_token must differ"),
    ([f'maintenance_token = "{ADMIN}"'], "maintenance_token must differ"),
    (['cors_origins = "kiosk.example"'], "cors_origins"),
    (["cors_origins = { a = 1 }"], "cors_origins"),
    (["cors_origins = true"], "cors_origins"),
    (["max_exports = 0"], "max_exports"),
    (['max_dashboards = "10"'], "max_dashboards"),
    (["max_dashboards_per_address = 1.5"], "max_dashboards_per_address"),
    (["max_connections = -1"], "max_connections"),
    (["dispenser_events_per_min = -1"], "dispenser_events_per_min"),
    (["idle_timeout_s = 0"], "idle_timeout_s"),
    (["idle_timeout_s = inf"], "idle_timeout_s"),
])
def test_weak_or_mistyped_server_values_are_refused(tmp_path, lines, message):
    with pytest.raises(ConfigError, match=message):
        load_config(with_lines(tmp_path, config_text(), *lines))


@pytest.mark.parametrize(("old", "new", "message"), [
    (f'admin_token = "{ADMIN}"', "admin_token = 12345678901234567890", "admin_token must be a string"),
    (f'admin_token = "{ADMIN}"', 'admin_token = "admin-short"', "admin_token must be at least 16"),
    (f'admin_token = "{ADMIN}"', f'admin_token = "{TOKENS["entree"]}"', "admin_token must differ"),
    (f'token = "{TOKENS["b12"]}"', "token = 12345678901234567890", "token must be a string"),
    (f'token = "{TOKENS["b12"]}"', 'token = "b12-short"', "token must be at least 16"),
])
def test_weak_or_mistyped_tokens_are_refused(tmp_path, old, new, message):
    text = config_text()
    assert old in text
    with pytest.raises(ConfigError, match=message) as refused:
        load_config(with_lines(tmp_path, text.replace(old, new)))
    assert "token_urlsafe" in str(refused.value) or "differ" in message


def test_an_admin_token_equal_to_a_digest_declared_dispenser_is_refused(tmp_path):
    digest = hashlib.sha256(ADMIN.encode()).hexdigest()
    text = config_text().replace(f'token = "{TOKENS["b12"]}"', f'token_sha256 = "{digest}"')
    with pytest.raises(ConfigError, match="admin_token must differ"):
        load_config(with_lines(tmp_path, text))


def test_the_limits_have_defaults(tmp_path):
    cfg = load_config(with_lines(tmp_path, config_text()))
    assert (cfg.max_exports, cfg.max_dashboards, cfg.max_dashboards_per_address) == (2, 2000, 64)
    assert (cfg.max_connections, cfg.idle_timeout_s, cfg.dispenser_events_per_min) == (4000, 60.0, 6000)

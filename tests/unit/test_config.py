"""config.toml parsing and the start-up security check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.config import ConfigError, load_config
from app.config.tokens import insecure_reason
from devkit.servers import ROOT


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_config_loads_with_defaults():
    cfg = load_config(ROOT / "config.toml")
    assert cfg.async_mode == "eventlet"
    assert cfg.database == "sqlite:///" + str(ROOT / "instance" / "usage.db")
    assert len(cfg.dispensers) == 3 and cfg.dispensers[0].capacity_ml == 300


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    cfg = load_config(write(tmp_path, '[server]\ndatabase = "sqlite:///data/u.db"\n'))
    assert cfg.database == f"sqlite:///{tmp_path.resolve()}/data/u.db"


def test_postgresql_url_gets_the_pure_python_driver(tmp_path):
    cfg = load_config(write(tmp_path, '[server]\ndatabase = "postgresql://postgres@127.0.0.1:5432/test"\n'))
    assert cfg.database == "postgresql+pg8000://postgres@127.0.0.1:5432/test"


@pytest.mark.parametrize(("text", "message"), [
    ('[server]\nprot = 1\n', "unknown key"),
    ('[server]\nasync_mode = "tornado"\n', "async_mode"),
    ('[[server.dispensers]]\nid = "a"\n', "token"),
    ('[[server.dispensers]]\nid = "a"\ntoken = "short"\n', "16 characters"),
    ('[[server.dispensers]]\nid = "a"\ntoken = "long-enough-token"\ncapacity_ml = -3\n', "capacity_ml"),
    ('[[server.dispensers]]\nid = "a"\ntoken = "long-enough-token"\n'
     '[[server.dispensers]]\nid = "a"\ntoken = "other-one-token-x"\n', "unique"),
    ('[[server.dispensers]]\nid = "a"\ntoken = "long-enough-token"\n'
     '[[server.dispensers]]\nid = "b"\ntoken = "long-enough-token"\n', "own token"),
    ("[server\n", "config.toml"),
    ('[server]\nport = "80"\n', "port"),
    ("[server]\noffline_after_s = 0\n", "offline_after_s"),
    ('[server]\ntimezone = "Mars/Olympus"\n', "timezone"),
    ('[server]\nopening_hours = "8h-18h"\n', "opening_hours"),
    ('[server]\nlog_level = "LOUD"\n', "log_level"),
])
def test_bad_config_is_a_clear_error(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_example_tokens_are_refused_off_loopback():
    cfg = load_config(ROOT / "config.toml")
    assert insecure_reason(cfg, "127.0.0.1", demo=True) is None
    assert insecure_reason(cfg, "localhost", demo=True) is None
    reason = insecure_reason(cfg, "0.0.0.0", demo=True)
    assert "entree" in reason and "secrets.token_urlsafe" in reason
    for decl in cfg.dispensers:
        assert decl.token not in reason  # the message names dispensers, never their tokens


def test_server_refuses_to_start_on_the_lan_with_example_tokens():
    proc = subprocess.run([sys.executable, "-m", "app", "--config", str(ROOT / "config.toml"), "--host", "0.0.0.0",
                           "--port", "1"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "refusing to serve" in proc.stderr
    assert "CHANGE-ME-entree-token" not in proc.stderr


def test_server_reports_a_bad_config(tmp_path):
    bad = write(tmp_path, "[server]\nport = 'x'\nnope = 1\n")
    proc = subprocess.run([sys.executable, "-m", "app", "--config", str(bad)], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 2 and "unknown key" in proc.stderr

"""The `[dispenser]` table of a config file: typed, range-checked, plus the warnings worth a line at start."""

import logging
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gel_toolkit import ConfigFileError, is_loopback, load_toml

SERVO_MIN_ANGLE, SERVO_MAX_ANGLE = -90.0, 90.0
MAX_BCM_PIN = 27  # the 40-pin header's GPIO0 to GPIO27
MAX_BATCH = 1000  # the server refuses larger arrays


class ConfigError(ValueError):
    """The `[dispenser]` table is missing, has an unknown key or a wrong value."""


@dataclass(frozen=True)
class Config:
    """The `[dispenser]` table of config.toml; only the first seven keys are required."""

    id: str
    server_url: str
    token: str
    sensor_pin: int
    servo_pin: int
    dose_ml: float
    spool: Path
    sensor_active_low: bool = True  # most IR obstacle modules pull OUT low when a hand is there
    bounce_s: float = 0.05
    rest_angle: float = 0.0
    dispense_angle: float = 70.0
    min_pulse_width: float = 0.001
    max_pulse_width: float = 0.002
    hold_s: float = 0.6  # how long the arm stays pressed
    return_s: float = 0.4  # time for the arm to reach rest before the servo is detached
    min_interval_s: float = 2.0
    max_per_minute: int = 20
    stuck_after_s: float = 15.0
    refill_pin: int | None = None
    heartbeat_s: float = 60.0
    log_level: str = "INFO"
    batch_size: int = 100
    timeout_s: float = 5.0
    deadline_s: float = 30.0  # the most one request may take, answer included, whatever the server's pace
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    auth_retry_s: float = 60.0  # a refused token is a config problem: retry slowly, not in a burst
    shutdown_flush_s: float = 3.0
    simulate_mean_interval_s: float = 20.0
    simulate_hand_share: float = 0.7  # --simulate with a door counter: the share of people coming in who use it
    entry_pin: int | None = None  # the door's beam (or PIR); with exit_pin, the beam someone coming in breaks first
    exit_pin: int | None = None  # the second beam, on the room side: the one someone leaving breaks first
    entry_active_low: bool = True  # break-beam receivers pull OUT low while the beam is broken; a PIR: false
    entry_debounce_s: float = 0.3  # a beam broken again this soon after it cleared: the same passage (an arm, a bag)
    entry_window_s: float = 1.5  # two beams: the second must follow the first this soon to make a passage
    entry_stuck_after_s: float = 30.0  # a beam broken this long (a trolley, a wedge) is stuck: nothing counts
    ca_file: Path | None = None  # a private CA that signed the server's certificate


REQUIRED = ("id", "server_url", "token", "sensor_pin", "servo_pin", "dose_ml", "spool")
POSITIVE = ("hold_s", "return_s", "stuck_after_s", "heartbeat_s", "timeout_s", "deadline_s",
            "backoff_base_s", "backoff_max_s",
            "auth_retry_s", "simulate_mean_interval_s", "entry_window_s", "entry_stuck_after_s")
NOT_NEGATIVE = ("bounce_s", "min_interval_s", "shutdown_flush_s", "entry_debounce_s")
PINS = ("sensor_pin", "servo_pin", "refill_pin", "entry_pin", "exit_pin")


def _typed(name: str, value: Any, kind: Any) -> Any:
    """Check one value against its dataclass type; ints are accepted for floats."""
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int or kind == (int | None):
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (value is None and kind is not int)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    else:  # str and Path are both written as strings in TOML
        ok = isinstance(value, str) and value != ""
    if not ok:
        raise ConfigError(f"[dispenser] {name} has the wrong type: {value!r}")
    return value


def _validate(cfg: Config) -> None:
    """Range checks that a type alone cannot express."""
    rules = [
        (cfg.server_url.startswith(("http://", "https://")), "server_url must start with http:// or https://"),
        (len(cfg.token) >= 8, "token must be at least 8 characters"),
        (0 < cfg.dose_ml <= 1000, "dose_ml must be > 0 and <= 1000"),
        (SERVO_MIN_ANGLE <= cfg.rest_angle <= SERVO_MAX_ANGLE, "rest_angle must be from -90 to 90"),
        (SERVO_MIN_ANGLE <= cfg.dispense_angle <= SERVO_MAX_ANGLE, "dispense_angle must be from -90 to 90"),
        (0 < cfg.min_pulse_width < cfg.max_pulse_width < 0.02, "need 0 < min_pulse_width < max_pulse_width < 0.02"),
        (1 <= cfg.batch_size <= MAX_BATCH, f"batch_size must be from 1 to {MAX_BATCH}"),
        (cfg.max_per_minute >= 1, "max_per_minute must be >= 1"),
        (cfg.log_level.upper() in logging.getLevelNamesMapping(), "log_level must be DEBUG, INFO, WARNING or ERROR"),
        (cfg.ca_file is None or cfg.ca_file.is_file(), f"ca_file {cfg.ca_file} is not a readable file"),
        (0 <= cfg.simulate_hand_share <= 1, "simulate_hand_share must be from 0 to 1"),
    ]
    rules += _pin_rules(cfg)
    rules += [(getattr(cfg, name) > 0, f"{name} must be > 0") for name in POSITIVE]
    rules += [(getattr(cfg, name) >= 0, f"{name} must be >= 0") for name in NOT_NEGATIVE]
    for ok, message in rules:
        if not ok:
            raise ConfigError(f"[dispenser] {message}")


def _pin_rules(cfg: Config) -> list[tuple[bool, str]]:
    """BCM numbers on the header; the door's beams on pins of their own."""
    pins = {name: getattr(cfg, name) for name in PINS if getattr(cfg, name) is not None}
    rules = [(0 <= pin <= MAX_BCM_PIN, f"{name} must be a BCM pin number from 0 to {MAX_BCM_PIN}")
             for name, pin in pins.items()]
    rules.append((cfg.exit_pin is None or cfg.entry_pin is not None, "exit_pin needs an entry_pin (the outer beam)"))
    # The sensor and the servo on one pin is left to gpiozero (it refuses the second claim); not the new beams.
    for beam in ("entry_pin", "exit_pin"):
        earlier = PINS[:PINS.index(beam)]
        rules += [(pin != pins[beam], f"{beam} and {name} are both {pin}: each needs a pin of its own")
                  for name, pin in pins.items() if beam in pins and name in earlier]
    return rules


def _build(table: dict[str, Any], base: Path) -> Config:
    """Check keys and types, resolve paths against the config file's folder."""
    kinds = {f.name: f.type for f in fields(Config)}
    unknown = sorted(set(table) - set(kinds))
    if unknown:
        raise ConfigError(f"[dispenser]: unknown key(s) {unknown} (allowed: {', '.join(kinds)})")
    missing = [k for k in REQUIRED if k not in table]
    if missing:
        raise ConfigError(f"[dispenser]: missing required key(s) {missing}")
    values = {name: _typed(name, value, kinds[name]) for name, value in table.items()}
    for key in ("spool", "ca_file"):
        if key in values:
            path = Path(values[key])
            values[key] = path if path.is_absolute() else base / path
    cfg = Config(**values)
    _validate(cfg)
    return cfg


def warnings_for(cfg: Config, document: dict[str, Any]) -> list[str]:
    """What is unsafe but allowed: a token sent in clear on the network, other dispensers' tokens on this card."""
    found = []
    url = urlsplit(cfg.server_url)
    if url.scheme == "http" and not is_loopback(url.hostname or ""):
        found.append(f"server_url {cfg.server_url} is plain http to another host: the token travels in clear; "
                     "use https:// (with ca_file for a private CA)")
    server = document.get("server")
    if isinstance(server, dict) and _holds_tokens(server):
        found.append("this config file holds a [server] table with tokens: a stolen SD card gives them all away; "
                     "keep only [dispenser] on a dispenser (see deploy/dispenser.example.toml)")
    return found


def _holds_tokens(server: dict[str, Any]) -> bool:
    declared = server.get("dispensers")
    tables = declared if isinstance(declared, list) else []
    return bool(server.get("admin_token")) or any(isinstance(d, dict) and d.get("token") for d in tables)


def read_config(path: str | Path, overrides: dict[str, Any] | None = None) -> tuple[Config, list[str]]:
    """The checked `[dispenser]` table and the start-up warnings; `overrides` (CLI flags) replace keys first."""
    path = Path(path)
    try:
        document = load_toml(path)
    except ConfigFileError as exc:
        raise ConfigError(str(exc)) from None
    table = dict(document.get("dispenser") or {})
    table.update({k: v for k, v in (overrides or {}).items() if v is not None})
    cfg = _build(table, path.resolve().parent)
    return cfg, warnings_for(cfg, document)


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read and check the `[dispenser]` table; `overrides` (CLI flags) replace keys before the checks."""
    return read_config(path, overrides)[0]

"""What the server and the dispenser share: secret redaction in logs and TOML loading (standard library only).

Installed with both extras, so a dispenser-only Pi gets it without Flask.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

MASK = "***"


class ConfigFileError(ValueError):
    """A config file that cannot be read: missing, unreadable or not valid TOML."""


def load_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; every failure is a ConfigFileError whose message names the file."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigFileError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigFileError(f"config file {path} cannot be read: {exc.strerror or exc}") from None


def is_loopback(host: str) -> bool:
    """True when `host` (a name or an address) only reaches this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _variants(secrets: Iterable[str]) -> list[str]:
    """Each secret as written and as it appears URL-encoded (in a query string); longest first."""
    found = set()
    for secret in secrets:
        if isinstance(secret, str) and secret:
            found.update({secret, quote(secret, safe="")})
    return sorted(found, key=len, reverse=True)


def _masked(text: str, variants: list[str]) -> str:
    """`text` with each of these (longest first) replaced by ***."""
    for secret in variants:
        text = text.replace(secret, MASK)
    return text


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced by ***."""
    return _masked(text, _variants(secrets))


class RedactSecrets(logging.Filter):
    """Replace every secret by *** in a record's final message, its traceback and its stack, whoever logged it."""

    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        self.secrets = _variants(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Redact these too (a reloaded config's new tokens; the old ones stay redacted)."""
        self.secrets = _variants([*self.secrets, *secrets])

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place; never drop the record."""
        if record.exc_info and not record.exc_text:
            # Formatted here, so the handler's formatter prints this redacted text instead of the live exception.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = _masked(record.getMessage(), self.secrets), None
        if record.exc_text:
            record.exc_text = _masked(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = _masked(record.stack_info, self.secrets)
        return True


def setup_logging(level: str, secrets: Iterable[str], stream: TextIO | None = None,
                  fmt: str = "%(asctime)s %(levelname)s %(name)s %(message)s") -> logging.Handler:
    """Every record of every logger to `stream` (stderr), one line each, secrets redacted; return the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    return handler

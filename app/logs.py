"""Logging for both servers: one key=value line per record, secrets never written (messages and tracebacks)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TextIO

import gel_toolkit

FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def setup_logging(level: str, secrets: Iterable[str] = (), stream: TextIO | None = None) -> logging.Handler:
    """Send logs to `stream` (stderr) as `time level logger message`, with secrets redacted; return the handler."""
    return gel_toolkit.setup_logging(level, secrets, stream, FORMAT)

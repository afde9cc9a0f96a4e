"""Logging for both servers: one key=value line per record, secrets never written (messages and tracebacks)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import TextIO

from gel_toolkit import RedactSecrets


def setup_logging(level: str, secrets: Iterable[str] = (), stream: TextIO | None = None) -> logging.Handler:
    """Send logs to `stream` (stderr) as `time level logger message`, with secrets redacted; return the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    return handler

"""Logging for both servers: one key=value line per record, secrets never written (messages and tracebacks)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import TextIO

import gel_toolkit

FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"
QUERY_VALUE = re.compile(r"([?&][^=&\s\"]*=)[^&\s\"#]*")
ACCESS_LOGGER = "app.access"


class HideQueryValues(logging.Filter):
    """Request lines keep their query's keys, not its values: a token sent in a URL may be one nobody knows."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the message in place; never drop the record."""
        record.msg, record.args = QUERY_VALUE.sub(r"\1***", record.getMessage()), None
        return True


def setup_logging(level: str, secrets: Iterable[str] = (), stream: TextIO | None = None) -> logging.Handler:
    """Send logs to `stream` (stderr) as `time level logger message`, with secrets redacted; return the handler."""
    handler = gel_toolkit.setup_logging(level, secrets, stream, FORMAT)
    handler.addFilter(HideQueryValues())
    return handler


def redact_more(secrets: Iterable[str]) -> None:
    """Every handler of the root logger redacts these secrets too, from now on (a config reload's new tokens)."""
    for handler in logging.getLogger().handlers:
        for found in handler.filters:
            if isinstance(found, gel_toolkit.RedactSecrets):
                found.add(secrets)

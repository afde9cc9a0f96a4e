"""Bad input, refused the same way everywhere: `ApiError` (a status and a message naming the field), strict JSON."""

from __future__ import annotations

import json
from typing import Any


class ApiError(ValueError):
    """A request the server refuses: `status` is the HTTP code, the message names the field."""

    def __init__(self, message: str, status: int = 400, retry_after: int | None = None, **extra: object):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after  # seconds, sent as Retry-After (429, 503)
        self.extra = extra  # more keys of the answer beside "error", for programs (e.g. max_batch)


def _no_constants(name: str) -> Any:
    raise ApiError(f"invalid JSON: {name} is not a number")


def load_json(body: bytes) -> Any:
    """Parse a JSON body strictly: NaN, Infinity and bad UTF-8 are refused."""
    try:
        return json.loads(body, parse_constant=_no_constants)
    except ApiError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(f"invalid JSON: {exc}") from None
    except RecursionError:  # thousands of nested [ or {: no valid body nests more than twice
        raise ApiError("invalid JSON: nested too deeply") from None

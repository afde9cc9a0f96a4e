"""What a request handler needs from the running app: its config, its store, the caller's identity."""

from __future__ import annotations

import hmac

from flask import current_app, request

from app.config import ServerConfig, token_digest
from app.ingest import InvalidInput
from app.store import Store


def get_config() -> ServerConfig:
    """The typed server config of the current app."""
    return current_app.extensions["usage_config"]


def get_store() -> Store:
    """The usage store of the current app."""
    return current_app.extensions["usage_store"]


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def caller_dispenser() -> str:
    """The dispenser id the Bearer token names; 401 (InvalidInput) for a missing or unknown one."""
    token = bearer_token()
    if token is None:
        raise InvalidInput("missing Authorization: Bearer <token> header", status=401)
    found = get_config().token_digests.get(token_digest(token))
    if found is None:
        raise InvalidInput("unknown token", status=401)
    return found


def is_admin() -> bool:
    """True when the Bearer token is `[server] admin_token`."""
    admin, token = get_config().admin_token, bearer_token()
    return bool(admin and token and hmac.compare_digest(admin.encode(), token.encode()))

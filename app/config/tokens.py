"""The config's secrets: tokens, the digests they are compared by, and the refusal to serve the example ones."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from app.config.errors import ConfigError
from gel_toolkit import is_loopback

if TYPE_CHECKING:
    from app.config import ServerConfig

# Tokens shipped in the example config.toml start with this (any case): served only by the demo, on loopback.
EXAMPLE_TOKEN_PREFIX = "change-me"
MIN_TOKEN_LENGTH = 16  # token_urlsafe(24) gives 32; shorter secrets are guessable over a LAN
MAKE_TOKEN = "python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"

def token_digest(token: str) -> bytes:
    """What tokens are compared by: a lookup of the digest leaks nothing about the token through timing."""
    return hashlib.sha256(token.encode()).digest()


def credential(raw: dict, where: str) -> tuple[str | None, str | None]:
    """A dispenser's token, or the hex SHA-256 of it: exactly one of the two."""
    if ("token" in raw) == ("token_sha256" in raw):
        raise ConfigError(f"{where}: give either token or token_sha256 (the hex SHA-256 of the token)")
    if "token" in raw:
        return secret(raw["token"], f"{where}: token"), None
    digest = str(raw["token_sha256"]).lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ConfigError(f"{where}: token_sha256 must be 64 hexadecimal characters (sha256sum of the token)")
    return None, digest


def secret(token: Any, what: str) -> str:
    """A secret from the config: a string of at least MIN_TOKEN_LENGTH characters."""
    if not isinstance(token, str):
        raise ConfigError(f'{what} must be a string in quotes (e.g. token = "..."), made with {MAKE_TOKEN}')
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"{what} must be at least {MIN_TOKEN_LENGTH} characters; make one with {MAKE_TOKEN}")
    return token


def check_tokens(cfg: ServerConfig) -> None:
    """The admin and maintenance tokens: strings, long enough, and nobody else's."""
    seen = {**cfg.token_digests, **{d: p.id for d, p in cfg.staff_digests.items()}}
    for key in ("admin_token", "maintenance_token"):
        if (token := getattr(cfg, key)) is None:
            continue
        secret(token, f"[server] {key}")
        if token_digest(token) in seen:
            raise ConfigError(f"[server] {key} must differ from every other token (it equals another's)")
        seen = {**seen, token_digest(token): key}


def example_tokens(cfg: ServerConfig) -> list[str]:
    """Who still has a token of the example config.toml (any case): dispenser ids, admin_token, maintenance_token."""
    weak = [d.id for d in cfg.dispensers if d.token and d.token.lower().startswith(EXAMPLE_TOKEN_PREFIX)]
    return weak + [key for key in ("admin_token", "maintenance_token")
                   if (getattr(cfg, key) or "").lower().startswith(EXAMPLE_TOKEN_PREFIX)]


def insecure_reason(cfg: ServerConfig, host: str | None = None, demo: bool = False) -> str | None:
    """Why serving this config (on `host`, when known) would be unsafe, or None."""
    # The example tokens are public: only the demo, asked for explicitly, serves them, and on loopback only.
    # Behind a proxy the server listens on loopback too, so the address alone proves nothing.
    weak = example_tokens(cfg)
    if not weak or (demo and (host is None or is_loopback(host))):
        return None
    where = f"listen on {host}" if demo else "serve"
    return (
        f"refusing to {where}: the token of {', '.join(weak)} is still the example value from config.toml. "
        f"Give each [[server.dispensers]] (and admin_token, maintenance_token) its own secret, e.g. {MAKE_TOKEN}, "
        f"put it in that dispenser's [dispenser] table and give the server its token_sha256 "
        f"(printf %s TOKEN | sha256sum); or run the demo on 127.0.0.1 (make demo, python -m app --demo, GEL_DEMO=1)."
    )

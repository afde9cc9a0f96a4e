"""Who may call a route: one decorator, `@requires(...)`, names the roles it admits and hands the view its caller.

The roles, from the Bearer token:
- "dispenser": any declared dispenser's own token (the view's `by.id` is that dispenser);
- "dispenser:self": the token of the dispenser the route names (`<dispenser:dispenser_id>`), no other;
- "admin": `[server] admin_token`; "maintenance": `[server] maintenance_token` (refills, census, modes).
The table of which route admits which role is in docs/architecture.md.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Response, request

from app.config.tokens import token_digest
from app.domain.input import ApiError
from app.extensions import get_config

ROLES = frozenset({"dispenser", "dispenser:self", "admin", "maintenance"})
STAFF = frozenset({"admin", "maintenance"})


@dataclass(frozen=True)
class Caller:
    """Who sent the request: `role` ("admin", "maintenance" or "dispenser") and, for a dispenser, its `id`."""

    role: str
    id: str | None = None

    def __str__(self) -> str:
        return self.role


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _is(token: str, secret: str | None) -> bool:
    """True when `token` is `secret` (compared in constant time)."""
    return bool(secret) and hmac.compare_digest(secret.encode(), token.encode())


def identify(wanted: str) -> Caller:
    """The caller the Bearer token names; 401 without a token or with one nobody holds."""
    token = bearer_token()
    if token is None:
        raise ApiError(f"missing Authorization: Bearer <{wanted}> header", status=401)
    cfg = get_config()
    if _is(token, cfg.admin_token):
        return Caller("admin")
    if _is(token, cfg.maintenance_token):
        return Caller("maintenance")
    found = cfg.token_digests.get(token_digest(token))
    if found is None:
        raise ApiError("unknown token", status=401)
    return Caller("dispenser", found)


def _refusal(roles: frozenset[str], caller: Caller) -> ApiError:
    """The 403 for a known caller the route does not admit, saying who may."""
    if caller.role == "dispenser":
        if "dispenser:self" in roles:
            return ApiError("this token belongs to another dispenser", status=403)
        return ApiError("a dispenser's token may not do this: use the admin or maintenance token", status=403)
    if roles & {"dispenser", "dispenser:self"} and not roles & STAFF:
        return ApiError("only the dispenser itself may do this, with its own token", status=403)
    return ApiError(f"the {caller.role} token may not do this", status=403)


def _wanted(roles: frozenset[str]) -> str:
    """How the 401 names the token it expected."""
    staff = sorted(roles & STAFF)
    if not staff:
        return "token"
    names = " or ".join(staff)
    return f"{names} token" if len(roles) == len(staff) else f"dispenser's, {names} token"


def requires(*roles: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Admit only callers in `roles` (401 without a known token, 403 for another); the view gets `by`: a Caller."""
    admitted = frozenset(roles)
    unknown = admitted - ROLES
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    wanted = _wanted(admitted)

    def decorate(view: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Response:
            caller = identify(wanted)
            if not (caller.role in admitted or ("dispenser:self" in admitted and caller.role == "dispenser"
                                                and caller.id == kwargs.get("dispenser_id"))):
                raise _refusal(admitted, caller)
            return view(*args, by=caller, **kwargs)

        checked.roles = admitted  # read by the route-permission table's test
        return checked

    return decorate

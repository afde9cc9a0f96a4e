"""Who may call a route: one decorator, `@requires(...)`, names the roles it admits and hands the view its caller.

The roles, from the Bearer token:
- "dispenser": any declared dispenser's own token (the view's `by.id` is that dispenser);
- "dispenser:self": the token of the dispenser the route names (`<dispenser:dispenser_id>`), no other;
- "admin", "hygiene", "maintenance": a person's own token (`[[server.staff]]`), or the shared `admin_token`
  (admin) and `maintenance_token` (maintenance);
- "maintenance-token": the shared maintenance token alone, where it keeps what it could do before personal
  tokens (the census), which a person's maintenance role does not.
A person limited to groups is refused (403) for a dispenser or group outside them. The table of which route
admits which role is in docs/architecture.md.
"""

from __future__ import annotations

import functools
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Response, current_app, request

from app.config.tokens import token_digest
from app.domain.input import ApiError
from app.extensions import get_config, get_store
from app.store.auditlog import append_audit, audit_entry
from app.web.http import client_address

ROLES = frozenset({"dispenser", "dispenser:self", "admin", "hygiene", "maintenance", "maintenance-token"})
STAFF = frozenset({"admin", "hygiene", "maintenance", "maintenance-token"})
SHARED_NAMES = {"admin": "shared admin token", "maintenance": "shared maintenance token"}


@dataclass(frozen=True)
class Caller:
    """Who sent the request: `role` (admin, hygiene, maintenance or dispenser), the dispenser's or person's `id`,
    their `name`, the `groups` a person is limited to, and `shared` for the shared admin and maintenance tokens."""

    role: str
    id: str | None = None
    name: str | None = None
    groups: tuple[str, ...] = ()
    shared: bool = False

    @property
    def audit_name(self) -> str:
        """What the audit names the caller by: a person's id, or which shared token ("shared admin token")."""
        return self.name if self.shared else self.who

    @property
    def who(self) -> str:
        """What records name the caller by: a person's id, or the role of a shared token or a dispenser."""
        return self.id if self.id is not None and self.role != "dispenser" else self.role

    def __str__(self) -> str:
        return self.who


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
        return Caller("admin", name=SHARED_NAMES["admin"], shared=True)
    if _is(token, cfg.maintenance_token):
        return Caller("maintenance", name=SHARED_NAMES["maintenance"], shared=True)
    digest = token_digest(token)
    person = cfg.staff_digests.get(digest)
    if person is not None:
        return Caller(person.role, person.id, person.name, person.groups)
    found = cfg.token_digests.get(digest)
    if found is None:
        raise ApiError("unknown token", status=401)
    return Caller("dispenser", found, found)


def admits(admitted: frozenset[str], caller: Caller, dispenser_id: str | None) -> bool:
    """True when a caller of this role may call a route admitting these roles (groups checked apart)."""
    if caller.role == "dispenser":
        return "dispenser" in admitted or ("dispenser:self" in admitted and caller.id == dispenser_id)
    return caller.role in admitted or (caller.shared and caller.role == "maintenance"
                                       and "maintenance-token" in admitted)


def within_groups(caller: Caller, dispenser_id: str | None, group_id: str | None) -> bool:
    """True unless the caller is limited to groups and the route's dispenser or group lies outside them."""
    if not caller.groups:
        return True
    fleet = get_config().fleet
    if dispenser_id is not None:
        chain = fleet.ancestors(dispenser_id) if dispenser_id in fleet.group_of else ()
    elif group_id is not None:
        chain = fleet.chains.get(group_id, ())
    else:
        return True  # a route about no dispenser or group: the view narrows what it shows
    return any(g in caller.groups for g in chain)


def _refusal(roles: frozenset[str], caller: Caller) -> ApiError:
    """The 403 for a known caller the route does not admit, saying who may."""
    if caller.role == "dispenser":
        if "dispenser:self" in roles:
            return ApiError("this token belongs to another dispenser", status=403)
        return ApiError("a dispenser's token may not do this: use the admin or maintenance token", status=403)
    if roles & {"dispenser", "dispenser:self"} and not roles & STAFF:
        return ApiError("only the dispenser itself may do this, with its own token", status=403)
    return ApiError(f"the {caller.name or caller.role} ({caller.role}) may not do this", status=403)


def _wanted(roles: frozenset[str]) -> str:
    """How the 401 names the token it expected."""
    staff = sorted({r.replace("-token", "") for r in roles & STAFF})
    if not staff:
        return "token"
    names = " or ".join(staff)
    return f"{names} token" if roles <= STAFF else f"dispenser's, {names} token"


REFUSALS_EVERY_S = 10.0  # an address's refused staff actions: one audit entry per this long, not one per request


def audit_refusal(refused: ApiError, caller: Caller | None, kwargs: dict[str, Any]) -> None:
    """A refused staff action (401, 403) in the audit, at most one per address every REFUSALS_EVERY_S."""
    address, now = client_address(), time.monotonic()
    last = current_app.extensions.setdefault("audit_refusals", {})  # address -> when its last one was recorded
    if now - last.get(address, -REFUSALS_EVERY_S) < REFUSALS_EVERY_S:
        return
    if len(last) > 10_000:  # many addresses: start afresh rather than grow
        last.clear()
    last[address] = now
    detail = {"status": refused.status, "route": request.path, "method": request.method, "reason": str(refused)}
    who, role = (caller.audit_name, caller.role) if caller is not None else ("unknown", "none")
    append_audit(get_store(), [audit_entry(who, role, "refused", kwargs.get("dispenser_id") or kwargs.get("group_id"),
                                           detail=detail, address=address)])


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
            try:
                caller = identify(wanted)
                if not admits(admitted, caller, kwargs.get("dispenser_id")):
                    raise _refusal(admitted, caller)
                if not within_groups(caller, kwargs.get("dispenser_id"), kwargs.get("group_id")):
                    raise ApiError(f"{caller.name} may act only in {', '.join(caller.groups)}", status=403)
            except ApiError as refused:
                if admitted & STAFF and request.method != "GET":
                    audit_refusal(refused, locals().get("caller"), kwargs)
                raise
            return view(*args, by=caller, **kwargs)

        checked.roles = admitted  # read by the route-permission table's test
        return checked

    return decorate

"""People: `[[server.staff]]`, each with a role, their own token (kept as its SHA-256) and the groups they act in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from app.config.errors import ConfigError, table_id

ROLES = ("admin", "hygiene", "maintenance")
STAFF_KEYS = {"id", "name", "role", "token_sha256", "groups"}


@dataclass(frozen=True)
class StaffDecl:
    """One person: `role` is admin, hygiene or maintenance; `groups` empty means the whole fleet."""

    id: str
    name: str
    role: str
    digest: bytes
    groups: tuple[str, ...] = ()


def staff_member(raw: Any, index: int, groups: set[str]) -> StaffDecl:
    """One `[[server.staff]]` table, checked; every error names the key."""
    ident = table_id(raw, "staff", index, STAFF_KEYS)
    where = f"[[server.staff]] {ident!r}"
    name = raw.get("name", ident)
    if not isinstance(name, str) or not 0 < len(name) <= 200:
        raise ConfigError(f"{where}: name must be 1 to 200 characters")
    if raw.get("role") not in ROLES:
        raise ConfigError(f"{where}: role must be one of {list(ROLES)}")
    digest = str(raw.get("token_sha256", "")).lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ConfigError(f"{where}: token_sha256 must be 64 hexadecimal characters: make the token with "
                          f"`python -m app --config FILE staff-token {ident}`")
    wanted = raw.get("groups", [])
    if not isinstance(wanted, list) or not all(isinstance(g, str) for g in wanted):
        raise ConfigError(f"{where}: groups must be a list of group ids")
    unknown = [g for g in wanted if g not in groups]
    if unknown:
        raise ConfigError(f"{where}: groups: unknown group(s) {unknown}")
    return StaffDecl(ident, name, raw["role"], bytes.fromhex(digest), tuple(wanted))


def staff_members(raw: Any, groups: set[str], dispenser_digests: set[bytes]) -> tuple[StaffDecl, ...]:
    """Every `[[server.staff]]`: unique ids, and tokens nobody else holds (no dispenser's, no one else's)."""
    if not isinstance(raw, list):
        raise ConfigError("[[server.staff]] must be an array of tables")
    found = tuple(staff_member(t, i, groups) for i, t in enumerate(raw))
    seen_ids: set[str] = set()
    seen = set(dispenser_digests)
    for person in found:
        if person.id in seen_ids:
            raise ConfigError(f"[[server.staff]]: id {person.id!r} is declared twice")
        if person.digest in seen:
            raise ConfigError(f"[[server.staff]] {person.id!r}: each person needs their own token "
                              "(it equals another's)")
        seen_ids.add(person.id)
        seen.add(person.digest)
    return found

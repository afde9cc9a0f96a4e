"""The fleet's groups (site, building, floor, ward...) as a tree, and dispensers declared in a CSV file."""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")  # dispenser and group ids: they travel in URLs
CSV_COLUMNS = ("id", "name", "group", "capacity_ml", "token_sha256")
WARD_KEYS = ("opportunities_per_patient_day", "target_pct", "ward_type")  # a ward's optional compliance settings


@dataclass(frozen=True)
class GroupDecl:
    """One `[[server.groups]]` table: a named group, inside another one or at the top."""

    id: str
    name: str
    parent: str | None = None
    # Compliance (a ward): the expected hand-hygiene opportunities per patient-day, the target rate, and the type
    # that picks the HAND-KISS reference ("icu", "intermediate", "regular"; any other has none).
    opportunities_per_patient_day: float | None = None
    target_pct: float | None = None
    ward_type: str | None = None


def parse_groups(raw: Any) -> tuple[GroupDecl, ...]:
    """The `[[server.groups]]` tables, checked: unique ids, declared parents, no cycle (ValueError)."""
    if not isinstance(raw, list):
        raise ValueError("[[server.groups]] must be an array of tables")
    found: dict[str, GroupDecl] = {}
    for index, table in enumerate(raw):
        group = _group(table, f"[[server.groups]] #{index + 1}")
        if group.id in found:
            raise ValueError(f"[[server.groups]] #{index + 1}: group id {group.id!r} is declared twice")
        found[group.id] = group
    for group in found.values():
        if group.parent is not None and group.parent not in found:
            raise ValueError(f"[[server.groups]] {group.id!r}: unknown parent {group.parent!r}")
    for group in found.values():
        _chain(group.id, found)  # raises on a cycle
    return tuple(found.values())


def _group(table: Any, where: str) -> GroupDecl:
    """One group table, checked on its own."""
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table")
    unknown = set(table) - {"id", "name", "parent", *WARD_KEYS}
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}")
    ident = table.get("id")
    if not safe_id(ident):
        raise ValueError(f"{where}: id {str(ident)[:80]!r} must be 1 to 64 of A-Z a-z 0-9 - _ .")
    name, parent = table.get("name", ident), table.get("parent")
    if not isinstance(name, str) or not 1 <= len(name) <= 200:
        raise ValueError(f"{where} ({ident}): name must be a string of 1 to 200 characters")
    if parent is not None and not isinstance(parent, str):
        raise ValueError(f"{where} ({ident}): parent must be a group id")
    return GroupDecl(ident, name, parent, **_ward(table, f"{where} ({ident})"))



def safe_id(ident: object) -> bool:
    """True for an id that URLs carry as written: 1 to 64 letters, digits, '-', '_' or '.' (not '.' or '..')."""
    return isinstance(ident, str) and SAFE_ID.fullmatch(ident) is not None and ident not in (".", "..")


def _ward(table: dict, where: str) -> dict[str, Any]:
    """The optional compliance keys of a group table, checked."""
    found: dict[str, Any] = {}
    for key, low, high in (("opportunities_per_patient_day", 0, 10_000), ("target_pct", 0, 100)):
        value = table.get(key)
        if value is None:
            continue
        if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
                or not low <= value <= high or (key == "opportunities_per_patient_day" and value == 0)):
            rule = "a number > 0" if key == "opportunities_per_patient_day" else "a number from 0 to 100"
            raise ValueError(f"{where}: {key} must be {rule}")
        found[key] = float(value)
    kind = table.get("ward_type")
    if kind is not None:
        if not isinstance(kind, str) or not 1 <= len(kind) <= 40:
            raise ValueError(f"{where}: ward_type must be a string such as \"icu\", \"intermediate\" or \"regular\"")
        found["ward_type"] = kind
    return found


def _chain(ident: str, groups: dict[str, GroupDecl]) -> tuple[str, ...]:
    """The group ids from the top of the tree down to `ident`."""
    chain: list[str] = []
    current: str | None = ident
    while current is not None:
        if current in chain:
            raise ValueError(f"[[server.groups]]: parents form a cycle ({' -> '.join([*chain, current])})")
        chain.append(current)
        current = groups[current].parent
    return tuple(reversed(chain))


class Fleet:
    """The group tree with each dispenser's place in it, computed once per config."""

    def __init__(self, groups: Iterable[GroupDecl], members: Iterable[tuple[str, str | None]]):
        self.groups = {g.id: g for g in groups}
        self.group_of = dict(members)  # dispenser id -> group id or None, in declaration order
        self.chains = {g: _chain(g, self.groups) for g in self.groups}
        self.subtrees: dict[str, list[str]] = {g: [] for g in self.groups}  # group -> itself and descendants
        for g, chain in self.chains.items():
            for above in chain:
                self.subtrees[above].append(g)
        self.members: dict[str, list[str]] = {g: [] for g in self.groups}  # group -> dispensers in its subtree
        for dispenser, g in self.group_of.items():
            for above in self.chains.get(g, ()) if g is not None else ():
                self.members[above].append(dispenser)
        self.paths = {d: [self.groups[a].name for a in self.chains[g]] if g is not None else []
                      for d, g in self.group_of.items()}

    def path(self, dispenser_id: str) -> list[str]:
        """The names of the groups holding a dispenser, from the top down (empty without a group)."""
        return self.paths.get(dispenser_id, [])

    def inherited(self, group: str | None, key: str) -> Any:
        """A group's ward setting (`target_pct`...): its own, else its nearest ancestor's; None if none has one."""
        for g in reversed(self.chains.get(group, ()) if group is not None else ()):
            value = getattr(self.groups[g], key)
            if value is not None:
                return value
        return None

    def ancestors(self, dispenser_id: str) -> tuple[str, ...]:
        """The ids of the groups holding a dispenser, from the top down."""
        group = self.group_of.get(dispenser_id)
        return self.chains[group] if group is not None else ()


def read_dispensers_csv(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """The rows of a dispensers CSV file as (where, table) pairs, `where` naming the file and line (ValueError)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return _rows(path.name, csv.reader(fh))
    except FileNotFoundError:
        raise ValueError(f"dispensers_csv: file not found: {path}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path.name}: not UTF-8 text") from None
    except csv.Error as exc:
        raise ValueError(f"{path.name}: {exc}") from None


def csv_lines(reader: Any, width: int, prefix: str = "") -> Iterator[tuple[str, list[str]]]:
    """The non-blank lines of a CSV reader, stripped and named ("<prefix>line 7"); ValueError for a wrong width."""
    for cells in reader:
        where = f"{prefix}line {reader.line_num}"
        if not any(c.strip() for c in cells):
            continue  # blank lines are allowed
        if len(cells) != width:
            raise ValueError(f"{where}: {len(cells)} columns, expected {width}")
        yield where, [c.strip() for c in cells]


def _rows(name: str, reader: Any) -> list[tuple[str, dict[str, Any]]]:
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != CSV_COLUMNS:
        raise ValueError(f"{name} line 1: the header must be {','.join(CSV_COLUMNS)}")
    rows = []
    for where, (ident, label, group, capacity, digest) in csv_lines(reader, len(CSV_COLUMNS), f"{name} "):
        table: dict[str, Any] = {"id": ident, "token_sha256": digest}
        if label:
            table["name"] = label
        if group:
            table["group"] = group
        if capacity:
            try:
                table["capacity_ml"] = float(capacity)
            except ValueError:
                raise ValueError(f"{where}: capacity_ml must be a positive number") from None
        rows.append((where, table))
    return rows

"""A hospital-shaped fleet for demos, tests and benchmarks: a site, two buildings, floors, wards, N dispensers.

Standard library only. write_fleet() writes a config.toml with `[[server.groups]]` and a dispensers.csv that
holds only the SHA-256 of each token, as a real deployment of hundreds of dispensers would.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

WARDS = ("Cardiologie", "Pneumologie", "Urgences", "Pédiatrie", "Neurologie", "Gériatrie", "Oncologie",
         "Chirurgie", "Maternité", "Réanimation", "Néphrologie", "Orthopédie")
PER_WARD = 10
WARDS_PER_FLOOR = 3


def layout(n: int, per_ward: int = PER_WARD) -> tuple[list[dict], list[dict]]:
    """The groups (site -> building -> floor -> ward) and `n` dispensers, `per_ward` to a ward, in order."""
    groups = [{"id": "site", "name": "CHU Nord"}]
    groups += [{"id": f"bat-{b}", "name": f"Bâtiment {b.upper()}", "parent": "site"} for b in "ab"]
    dispensers: list[dict] = []
    floors: set[str] = set()
    ward_count = max(1, -(-n // per_ward))
    for w in range(ward_count):
        building = "ab"[w % 2]
        floor = w // 2 // WARDS_PER_FLOOR + 1
        floor_id = f"bat-{building}-e{floor}"
        if floor_id not in floors:
            floors.add(floor_id)
            groups.append({"id": floor_id, "name": f"Étage {floor}", "parent": f"bat-{building}"})
        label = WARDS[w % len(WARDS)] + (f" {w // len(WARDS) + 1}" if w >= len(WARDS) else "")
        ward_id = f"ward-{w + 1:03d}"
        groups.append({"id": ward_id, "name": label, "parent": floor_id})
        for k in range(min(per_ward, n - len(dispensers))):
            room = f"{building.upper()}{floor}{(w // 2 % WARDS_PER_FLOOR) * per_ward + k + 1:02d}"
            dispensers.append({"id": f"d{len(dispensers) + 1:04d}", "name": f"Chambre {room}", "group": ward_id,
                               "capacity_ml": 500 if k == 0 else 300})
    return groups, dispensers


def default_token(index: int) -> str:
    """A predictable token per dispenser: only for tests and benchmarks on loopback."""
    return f"fleet-token-{index:05d}"


def write_fleet(directory: Path, n: int, server: dict[str, object] | None = None,
                token_of: Callable[[int], str] = default_token,
                per_ward: int = PER_WARD) -> tuple[Path, dict[str, str]]:
    """Write config.toml and dispensers.csv for `n` dispensers; return the config path and id -> token."""
    directory.mkdir(parents=True, exist_ok=True)
    groups, dispensers = layout(n, per_ward)
    tokens = {d["id"]: token_of(i) for i, d in enumerate(dispensers)}
    lines = ["[server]", 'dispensers_csv = "dispensers.csv"']
    lines += [f"{key} = {_toml(value)}" for key, value in (server or {}).items()]
    for g in groups:
        lines += ["", "[[server.groups]]"] + [f"{key} = {_toml(value)}" for key, value in g.items()]
    config = directory / "config.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with (directory / "dispensers.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["id", "name", "group", "capacity_ml", "token_sha256"])
        for d in dispensers:
            digest = hashlib.sha256(tokens[d["id"]].encode()).hexdigest()
            writer.writerow([d["id"], d["name"], d["group"], d["capacity_ml"], digest])
    return config, tokens


def _toml(value: object) -> str:
    """A TOML scalar: strings quoted (JSON escapes are valid TOML basic strings), numbers and booleans as is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)

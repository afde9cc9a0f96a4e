"""Write mutmut's last results into docs/mutation.md: per core module, mutants killed, survived and equivalent.

`make mutate` runs it after `mutmut run`. The equivalent mutants (no test can tell them from the code) are named,
each with its reason, in tools/mutation_equivalents.toml; a survivor not named there counts against the score.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "mutation.md"
EQUIVALENTS = ROOT / "tools" / "mutation_equivalents.toml"
BEGIN, END = "<!-- mutation:results -->", "<!-- /mutation:results -->"
# mutmut's exit codes (mutmut.stats): a timeout is a kill too (the tests noticed: they hung).
STATUS = {1: "killed", 3: "killed", 36: "killed", 24: "killed", -24: "killed", 152: "killed", 255: "killed",
          0: "survived", 5: "survived", 33: "survived", None: "not checked"}


def statuses(meta: Path) -> dict[str, str]:
    """Each mutant in a module's results (mutants/app/store/writes.py.meta) and what became of it."""
    if not meta.exists():
        return {}
    codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return {name: STATUS.get(code, "suspicious") for name, code in codes.items()}


def checked(module: str, dirs: list[Path]) -> tuple[dict[str, str], Path | None]:
    """The module's results from the first mutants/ directory in which it was run (several runs may share out)."""
    for meta in (mutants / (module + ".meta") for mutants in dirs):
        found = statuses(meta)
        if any(s != "not checked" for s in found.values()):
            return found, meta
    return {}, None


def run_of(meta: Path) -> str:
    """When a module's results were last written, and the commit checked out then (mutants/ outlives commits)."""
    written = datetime.fromtimestamp(meta.stat().st_mtime, UTC)
    commit = subprocess.run(["git", "log", "-1", f"--before={written.isoformat()}", "--format=%h"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip() or "unknown"
    return f"{written:%Y-%m-%d %H:%M} UTC, {commit}"


def summary(module: str, found: dict[str, str], equivalent: dict[str, str], run: str) -> tuple[str, list[str]]:
    """A module's row of the results table, and its survivors not named as equivalent."""
    count = Counter(found.values())
    eq = [n for n, s in found.items() if s == "survived" and n in equivalent]
    open_ = sorted(n for n, s in found.items() if s == "survived" and n not in equivalent)
    judged = count["killed"] + count["survived"] - len(eq)
    score = f"{count['killed']} / {judged} = {100 * count['killed'] // judged} %" if judged else "not run"  # floor
    row = (f"| `{module}` | {run} | {len(found)} | {count['killed']} | {count['survived']} | {len(eq)} | "
           f"{count['not checked'] + count['suspicious']} | {score} |")
    return row, open_


def previous(section: str, modules: list[str], equivalent: dict[str, str]) -> dict[str, tuple[str, list[str]]]:
    """The rows and open survivors of the last results section, per module: kept for the modules not run now."""
    default_run = ""
    if match := re.search(r"Run on (\S+), commit (\w+)", section):  # a table of one run: no run column
        default_run = f"{match[1]}, {match[2]}"
    found: dict[str, tuple[str, list[str]]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| `") and cells[0].strip("`") in modules:
            if len(cells) == 7:
                cells.insert(1, default_run)
            found[cells[0].strip("`")] = ("| " + " | ".join(cells) + " |", [])
    for name in re.findall(r"^- `([^`]+)`$", section, flags=re.M):
        if name in equivalent:  # named since that run
            continue
        for module, (_, open_) in found.items():
            if name.startswith(dotted(module)):
                open_.append(name)
    return found


def dotted(module: str) -> str:
    """The prefix of a module's mutant names: app/store/writes.py -> "app.store.writes."."""
    return module.removesuffix(".py").replace("/", ".") + "."


def render(rows: list[str], open_: list[str], equivalent: dict[str, str], shown: list[str]) -> str:
    """The text between the markers; the equivalents listed are those of the modules shown."""
    lines = [BEGIN, "Each module's row comes from its last run: when its results were written, the commit then.",
             "",
             "| module | run | mutants | killed | survived | of which equivalent | not run | "
             "killed of the non-equivalent |", "|---|---|---|---|---|---|---|---|", *rows, ""]
    lines += ["Survivors that are not equivalent (each a test to write):", ""]
    lines += [f"- `{name}`" for name in open_] or ["- none"]
    lines += ["", "Equivalent mutants (tools/mutation_equivalents.toml):", ""]
    prefixes = tuple(dotted(m) for m in shown)
    lines += [f"- `{name}`: {why}" for name, why in sorted(equivalent.items()) if name.startswith(prefixes)]
    return "\n".join([*lines, END])


def main(argv: list[str]) -> int:
    """Rewrite the results section of docs/mutation.md from mutants/ (or the mutants/ directories given)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mutmut"]
    modules = config["only_mutate"]
    equivalent = tomllib.loads(EQUIVALENTS.read_text(encoding="utf-8"))["equivalent"]
    dirs = [Path(a) for a in argv] or [ROOT / "mutants"]
    doc = DOC.read_text(encoding="utf-8")
    head, rest = doc.split(BEGIN, 1)
    section, tail = rest.split(END, 1)
    results = previous(section, modules, equivalent)
    for module in modules:
        found, meta = checked(module, dirs)
        if meta is not None:
            results[module] = summary(module, found, equivalent, run_of(meta))
    shown = [m for m in modules if m in results]
    rows = [results[m][0] for m in shown]
    open_ = [name for m in shown for name in results[m][1]]
    DOC.write_text(head + render(rows, open_, equivalent, shown) + tail, encoding="utf-8")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

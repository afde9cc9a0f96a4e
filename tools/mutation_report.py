"""Write mutmut's last results into docs/mutation.md: per core module, mutants killed, survived and equivalent.

`make mutate` runs it after `mutmut run`. The equivalent mutants (no test can tell them from the code) are named,
each with its reason, in tools/mutation_equivalents.toml; a survivor not named there counts against the score.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections import Counter
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "mutation.md"
EQUIVALENTS = ROOT / "tools" / "mutation_equivalents.toml"
BEGIN, END = "<!-- mutation:results -->", "<!-- /mutation:results -->"
# mutmut's exit codes (mutmut.stats): a timeout is a kill too (the tests noticed: they hung).
STATUS = {1: "killed", 3: "killed", 36: "killed", 24: "killed", -24: "killed", 152: "killed", 255: "killed",
          0: "survived", 5: "survived", 33: "survived", None: "not checked"}


def statuses(module: str, mutants: Path) -> dict[str, str]:
    """Each mutant of a module (e.g. app/store/writes.py) and what became of it."""
    meta = mutants / (module + ".meta")
    if not meta.exists():
        return {}
    codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return {name: STATUS.get(code, "suspicious") for name, code in codes.items()}


def checked(module: str, dirs: list[Path]) -> dict[str, str]:
    """The module's results from the first mutants/ directory in which it was run (several runs may share out)."""
    for mutants in dirs:
        found = statuses(module, mutants)
        if any(s != "not checked" for s in found.values()):
            return found
    return {}


def summary(modules: list[str], dirs: list[Path], equivalent: dict[str, str]) -> tuple[list[str], list[str]]:
    """The results table's rows (modules run only), and the survivors not named as equivalent."""
    rows, open_ = [], []
    for module in modules:
        found = checked(module, dirs)
        if not found:
            continue
        count = Counter(found.values())
        eq = sorted(n for n, s in found.items() if s == "survived" and n in equivalent)
        open_ += sorted(n for n, s in found.items() if s == "survived" and n not in equivalent)
        judged = count["killed"] + count["survived"] - len(eq)
        score = f"{count['killed']} / {judged} = {100 * count['killed'] / judged:.0f} %" if judged else "not run"
        rows.append(f"| `{module}` | {len(found)} | {count['killed']} | {count['survived']} | {len(eq)} | "
                    f"{count['not checked'] + count['suspicious']} | {score} |")
    return rows, open_


def render(rows: list[str], open_: list[str], equivalent: dict[str, str], commit: str, day: str,
           seen: list[str]) -> str:
    """The text between the markers; the equivalents listed are those of the modules run (`seen` prefixes)."""
    lines = [BEGIN, f"Run on {day}, commit {commit}.", "",
             "| module | mutants | killed | survived | of which equivalent | not run | killed of the non-equivalent |",
             "|---|---|---|---|---|---|---|", *rows, ""]
    lines += ["Survivors that are not equivalent (each a test to write):", ""]
    lines += [f"- `{name}`" for name in open_] or ["- none"]
    lines += ["", "Equivalent mutants (tools/mutation_equivalents.toml):", ""]
    lines += [f"- `{name}`: {why}" for name, why in sorted(equivalent.items()) if name.startswith(tuple(seen))]
    return "\n".join([*lines, END])


def main(argv: list[str]) -> int:
    """Rewrite the results section of docs/mutation.md from mutants/ (or the mutants/ directories given)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mutmut"]
    equivalent = tomllib.loads(EQUIVALENTS.read_text(encoding="utf-8"))["equivalent"]
    dirs = [Path(a) for a in argv] or [ROOT / "mutants"]
    rows, open_ = summary(config["only_mutate"], dirs, equivalent)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    doc = DOC.read_text(encoding="utf-8")
    head, rest = doc.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    seen = [m.removesuffix(".py").replace("/", ".") + "." for m in config["only_mutate"] if checked(m, dirs)]
    text = render(rows, open_, equivalent, commit, date.today().isoformat(), seen)
    DOC.write_text(head + text + tail, encoding="utf-8")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`tools/demo.py` as a child process, its output collected line by line as it comes (the tests read it live)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from devkit.servers import ROOT


def collect(stream, lines: list[str]) -> None:
    """Append each line of `stream` to `lines` until it closes."""
    for line in stream:
        lines.append(line.rstrip("\n"))


def start_demo(config: Path, cwd: Path, *args: str) -> tuple[subprocess.Popen, list[str], list[str]]:
    """The demo on `config` with `args`: (its process, its stdout lines so far, its stderr lines so far)."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "demo.py"), "--config", str(config), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    out: list[str] = []
    err: list[str] = []
    for stream, lines in ((proc.stdout, out), (proc.stderr, err)):
        threading.Thread(target=collect, args=(stream, lines), daemon=True).start()
    return proc, out, err
